"""The regime map across profiles: results/regime_map.{csv,md,png} (report only: reads the tables the profiles
wrote and the paper's numbers; mta4dpr_core.report.regime_map says what each column is).

    python tools/regime_map.py [--profiles mini nfcorpus mini_transformer regime regime_transductive regime_nfcorpus] [--results-root results]
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mta4dpr_core.report.regime_map import write_regime_map  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--profiles",
        nargs="+",
        default=["mini", "nfcorpus", "mini_transformer", "regime", "regime_transductive", "regime_nfcorpus"],
    )
    parser.add_argument("--results-root", default=str(ROOT / "results"))
    args = parser.parse_args(argv)
    points, sweeps, _ = write_regime_map(args.results_root, args.profiles)
    root = Path(args.results_root)
    print(points.to_string(index=False))
    print(
        f"wrote {root / 'regime_map.csv'}, {root / 'regime_map.md'}, {root / 'regime_map.png'} "
        f"({len(points)} points, {len(sweeps)} sweep rows)"
    )


if __name__ == "__main__":
    main()
