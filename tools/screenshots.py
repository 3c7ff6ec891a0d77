"""Screenshots of the executed notebooks, as a reader sees them rendered (docs/screenshots/).

Each executed notebook of a profile (``results/<profile>/notebooks/``) is converted to HTML by
nbconvert, with MathJax served from the local ``jupyter_server_mathjax`` package rather than a CDN
(so the Method sections' formulas render offline), then photographed by headless Chromium.

    .venv/bin/python tools/screenshots.py --profile mini --notebooks 01 03 04 07
    .venv/bin/python tools/screenshots.py --profile mini_transformer --notebooks 04 --height 3000
    .venv/bin/python tools/screenshots.py --profile mini --notebooks 01 04 07 --figures claims.png gap.png

Needs ``chromium`` (Debian: ``apt-get install chromium``); installs ``jupyter-server-mathjax`` into the
running environment when it is missing. Writes ``docs/screenshots/<profile>-<notebook>.png``, and ``<profile>-<figure>.png`` for each figure of
``--figures`` (a PNG of ``results/<profile>/`` shown in the browser at its own size, as a reader opening it meets it).
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def mathjax_url() -> str:
    if importlib.util.find_spec("jupyter_server_mathjax") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "jupyter-server-mathjax"], check=True)
    spec = importlib.util.find_spec("jupyter_server_mathjax")
    script = Path(spec.origin).parent / "static" / "MathJax.js"
    if not script.exists():
        raise SystemExit(f"{script}: MathJax.js not found in jupyter_server_mathjax")
    return f"{script.as_uri()}?config=TeX-AMS-MML_HTMLorMML-full"


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    raise SystemExit("no Chromium found: apt-get install chromium (or put google-chrome on PATH)")


def shoot(browser: str, url: str, target: Path, width: int, height: int) -> None:
    # the virtual-time budget lets MathJax typeset before the picture is taken
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--allow-file-access-from-files",
            "--virtual-time-budget=20000",
            f"--window-size={width},{height}",
            f"--screenshot={target}",
            url,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    print(f"{target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="mini")
    parser.add_argument("--notebooks", nargs="+", default=["01", "03", "04", "07"], help="notebook numbers or names")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=2400, help="pixels from the top of the page")
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--figures", nargs="*", default=[], help="PNG files of results/<profile>/ to shoot as well")
    args = parser.parse_args()

    executed = ROOT / "results" / args.profile / "notebooks"
    notebooks = [
        path for path in sorted(executed.glob("*.ipynb")) if any(path.stem.startswith(n) for n in args.notebooks)
    ]
    if not notebooks:
        raise SystemExit(
            f"{executed}: no executed notebook matches {args.notebooks} (run `make publish PROFILE={args.profile}`, which writes results/)"
        )
    url, browser, out = mathjax_url(), chromium(), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for notebook in notebooks:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "jupyter",
                    "nbconvert",
                    "--to",
                    "html",
                    "--log-level",
                    "WARN",
                    f"--HTMLExporter.mathjax_url={url}",
                    "--output-dir",
                    tmp,
                    str(notebook),
                ],
                check=True,
            )
            html = Path(tmp) / f"{notebook.stem}.html"
            target = out / f"{args.profile}-{notebook.stem}.png"
            shoot(browser, html.as_uri(), target, args.width, args.height)
    for name in args.figures:
        figure = ROOT / "results" / args.profile / name
        if not figure.exists():
            raise SystemExit(
                f"{figure}: no such figure (run `make publish PROFILE={args.profile}`, which writes results/)"
            )
        shoot(browser, figure.as_uri(), out / f"{args.profile}-{figure.stem}.png", args.width, 900)


if __name__ == "__main__":
    main()
