"""The pilot learning curve of teacher-only KD on eval queries (mta4dpr_core.experiments.pilot), written to
results/<profile>/pilot_curve.{csv,md}.

    python tools/pilot_curve.py --profile mini --steps 150 600 2400 --seeds 13 42
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mta4dpr_core.config.params import load_params, profile_path  # noqa: E402
from mta4dpr_core.experiments.experiment import Setup  # noqa: E402
from mta4dpr_core.experiments.pilot import BAND_SLACK, pilot_learning_curve  # noqa: E402
from mta4dpr_core.report.studies import results_dir  # noqa: E402
from mta4dpr_core.report.tables import write_table  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="mini")
    parser.add_argument("--steps", nargs="+", type=int, default=[150, 600, 2400])
    parser.add_argument("--seeds", nargs="+", type=int, default=[13, 42])
    args = parser.parse_args(argv)
    params = load_params(profile_path(args.profile))
    setup = Setup.from_params(params)
    table = pilot_learning_curve(setup, args.steps, args.seeds)
    write_table(
        table,
        results_dir(params),
        "pilot_curve",
        f"Pilot learning curve: teacher-only KD ({args.profile}'s recipe, {params['iterations']['count']} iterations) "
        f"at several step counts, on the eval queries held out of the training split (never the test set), seeds "
        f"{args.seeds}; the band is [weakest assistant − {BAND_SLACK:g}, best assistant] on the same queries",
    )
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
