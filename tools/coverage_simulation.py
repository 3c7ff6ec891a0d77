"""Coverage of the claims' interval rule, simulated at each profile's measured spread: the rule now and before.

    python tools/coverage_simulation.py [--profiles mini nfcorpus mini_transformer] [--trials 400]

For each profile, reads ``results/<profile>/per_query.csv.gz`` and ``claims.csv`` (report only; nothing trains):

* the variance components of the headline's per-(seed, query) nDCG@10 differences (MTA4DPR minus no assistant):
  seed, query and noise sd (:func:`mta4dpr_core.report.statistics.variance_components`);
* the largest per-seed effect sd among the profile's quality claims (``seed std``), the spread a claim can have.

At the larger of the two seed sds, with the headline's query and noise sds and the profile's number of test
queries, it simulates null families of 15 claims with 3 and 5 seeds and prints, for the t rule
(:func:`~mta4dpr_core.report.statistics.crossed_t`) and the two-level percentile bootstrap used before
(:func:`~mta4dpr_core.report.statistics.percentile_bootstrap`, 1,000 resamples), the coverage of the 95% intervals
and the share of families with at least one Holm-significant claim (nominal: 95% and at most 5%).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mta4dpr_core.report.statistics import simulate_coverage, variance_components  # noqa: E402


def headline_differences(directory: Path, metric: str = "nDCG@10") -> np.ndarray:
    """[seeds, queries] of MTA4DPR's final test ``metric`` minus no assistant's, from ``per_query.csv.gz``."""
    path = directory / "per_query.csv.gz"
    if not path.is_file():
        raise SystemExit(
            f"error: {path} is missing (run the profile first: python -m mta4dpr_core.runner --profile {directory.name})"
        )
    df = pd.read_csv(path)
    df = df[(df["metric"] == metric) & (df["test set"] == "test")]
    sides = []
    for run in ("mta4dpr", "no_assistants"):
        rows = df[df["run"] == run]
        rows = rows[rows["iteration"] == rows.groupby("seed")["iteration"].transform("max")]
        sides.append(rows.pivot(index="seed", columns="query_id", values="value").sort_index())
    ours, other = sides
    return ours.to_numpy() - other.loc[ours.index, ours.columns].to_numpy()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", nargs="+", default=["mini", "nfcorpus", "mini_transformer"])
    parser.add_argument("--results", default=str(ROOT / "results"))
    parser.add_argument("--trials", type=int, default=400, help="null families per design (default 400)")
    parser.add_argument("--family", type=int, default=15, help="claims per family (default 15)")
    args = parser.parse_args(argv)
    print(
        "| profile | seed sd (pts) | query sd | noise sd | queries | seeds | rule | coverage | families with a false significant claim |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for profile in args.profiles:
        directory = Path(args.results) / profile
        d = headline_differences(directory)
        seed_sd, query_sd, noise_sd = variance_components(d)
        claims = pd.read_csv(directory / "claims.csv")
        claim_sd = (
            float(pd.to_numeric(claims.loc[claims["family"] == "quality", "seed std"], errors="coerce").max()) / 100
        )
        sd = max(seed_sd, claim_sd)
        for seeds in (3, 5):
            for method in ("bootstrap", "t"):
                result = simulate_coverage(
                    method,
                    seeds,
                    sd,
                    query_sd,
                    noise_sd,
                    queries=d.shape[1],
                    trials=args.trials if method == "t" else max(args.trials // 4, 50),
                    family=args.family,
                )
                label = "t (now)" if method == "t" else "two-level bootstrap (before)"
                print(
                    f"| {profile} | {100 * sd:.2f} | {query_sd:.3f} | {noise_sd:.3f} | {d.shape[1]} | {seeds} | {label} | "
                    f"{result.coverage:.1%} | {result.family_false_significant:.1%} of {result.trials} |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
