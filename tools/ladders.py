"""Where the student sits: ladder.{csv,md}, gap_points.{csv,md} and gap.png in each profile's results folder,
and results/assistant_gap.{csv,md,png} across profiles (report only: reads the tables the profiles wrote).

    python tools/ladders.py [--profiles mini mini_transformer nfcorpus smoke] [--results-root results]
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mta4dpr_core.config.params import load_params, profile_path, resolve_path  # noqa: E402
from mta4dpr_core.report import ladder  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", nargs="+", default=["mini", "mini_transformer", "nfcorpus", "smoke"])
    parser.add_argument("--results-root", default=None, help="default: the first profile's output.results_dir")
    args = parser.parse_args(argv)

    loaded = {name: load_params(profile_path(name)) for name in args.profiles}
    root = (
        Path(args.results_root).resolve()
        if args.results_root
        else resolve_path(next(iter(loaded.values()))["output"]["results_dir"])
    )
    for name, params in loaded.items():
        folder = root / name
        if not (folder / "table1.csv").is_file():
            print(f"{name}: no {folder / 'table1.csv'}, skipped")
            continue
        table, points = ladder.write_ladder_and_gap(folder, params)
        print(
            f"{name}: wrote {folder / 'ladder.csv'} ({len(table)} rungs), {folder / 'gap_points.csv'} ({len(points)} points), {folder / 'gap.png'}"
        )
    pooled = ladder.cross_profile_gap(root, loaded)
    print(
        f"all: wrote {root / 'assistant_gap.csv'} ({len(pooled)} points from {pooled['profile'].nunique()} profiles), {root / 'assistant_gap.png'}"
    )


if __name__ == "__main__":
    main()
