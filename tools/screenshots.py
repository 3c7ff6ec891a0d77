"""Screenshots of what a reader meets first, in headless Chromium (Debian's ``chromium``), 1,400 pixels wide.

    python tools/screenshots.py --profile mini --out docs/screenshots

Each executed notebook of ``results/<profile>/notebooks`` named by ``--notebooks`` is rendered to HTML by
nbconvert (outputs as stored, nothing rerun) and shot at the top of the page; each figure of ``--figures`` is shot
as it is. Chromium is not a dependency of the package: install it with ``apt-get install chromium``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def shoot(url: str, out: Path, width: int, height: int) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("no chromium on PATH (apt-get install chromium)")
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--window-size={width},{height}",
        f"--screenshot={out}",
        url,
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=120)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="mini")
    parser.add_argument("--notebooks", nargs="*", default=["01_data_prep", "04_training", "07_summary"])
    parser.add_argument("--figures", nargs="*", default=["claims.png", "gap.png"])
    parser.add_argument("--out", default="docs/screenshots")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=2200)
    args = parser.parse_args(argv)
    results = REPO / "results" / args.profile
    out = REPO / args.out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.notebooks:
            notebook = results / "notebooks" / f"{name}.ipynb"
            subprocess.run(
                [sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", "--output-dir", tmp, str(notebook)],
                check=True,
                capture_output=True,
            )
            shoot((Path(tmp) / f"{name}.html").as_uri(), out / f"{args.profile}_{name}.png", args.width, args.height)
            print(out / f"{args.profile}_{name}.png")
    for figure in args.figures:
        path = results / figure
        shoot(path.as_uri(), out / f"{args.profile}_{path.stem}.png", args.width, 900)
        print(out / f"{args.profile}_{path.stem}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
