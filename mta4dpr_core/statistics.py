"""Paired comparisons of two systems over test queries and seeds, and the verdict rule.

For systems A and B evaluated with the same seeds on the same test queries, the
per-(seed, query) difference is ``d[s, q] = A[s, q] - B[s, q]``. The effect is its
mean, ``mean_{s,q} d[s, q]``. Its 95% interval comes from ``scipy.stats.bootstrap``
(BCa) resampling test queries, each query carrying its difference averaged over
the seeds (paired by seed and query):

    d_q = mean_s d[s, q];   effect = mean_q d_q;   interval = bootstrap over q

A claim is **confirmed** when the interval excludes 0 in the paper's direction,
**contradicted** when it excludes 0 the other way, **inconclusive** otherwise.
Seeds enter through the per-query averages; their spread is reported beside the
interval (sample standard deviation of the per-seed means, ``ddof=1``).

>>> import numpy as np
>>> a = np.array([[0.5, 0.7, 0.9, 0.4]] * 2); b = a - 0.1
>>> compare(a, b).verdict
'confirmed'
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 5000


@dataclass
class Comparison:
    ours: float            # mean over seeds and queries
    other: float
    effect: float          # ours - other (in the paper's direction when higher_is_better)
    low: float             # 95% interval of the effect
    high: float
    seed_std: float        # sample std over seeds of the per-seed effect (nan for one seed)
    seeds_holding: int     # seeds whose per-seed effect has the paper's sign
    seeds: int
    queries: int
    verdict: str

    def as_dict(self):
        return asdict(self)


def verdict(low: float, high: float, higher_is_better: bool = True) -> str:
    if np.isnan(low) or np.isnan(high):
        return "inconclusive"
    if (low > 0 and higher_is_better) or (high < 0 and not higher_is_better):
        return "confirmed"
    if (high < 0 and higher_is_better) or (low > 0 and not higher_is_better):
        return "contradicted"
    return "inconclusive"


def paired_interval(differences: np.ndarray, seed: int = 0, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """BCa bootstrap interval of the mean of per-query ``differences`` (scipy.stats.bootstrap)."""
    differences = np.asarray(differences, dtype=np.float64)
    if len(differences) < 2 or np.allclose(differences, differences[0]):
        value = float(differences.mean()) if len(differences) else float("nan")
        return value, value  # no spread: the interval is the point (a degenerate bootstrap)
    result = stats.bootstrap((differences,), np.mean, confidence_level=confidence, n_resamples=RESAMPLES, method="BCa",
                             random_state=np.random.default_rng(seed), vectorized=True)
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def compare(ours: np.ndarray, other: np.ndarray, higher_is_better: bool = True, seed: int = 0) -> Comparison:
    """``ours`` and ``other``: per-query metrics, shape (seeds, queries), rows paired by seed."""
    ours, other = np.atleast_2d(np.asarray(ours, dtype=np.float64)), np.atleast_2d(np.asarray(other, dtype=np.float64))
    if ours.shape[1] != other.shape[1]:
        raise ValueError(f"paired comparison needs the same queries, got {ours.shape[1]} and {other.shape[1]}")
    if ours.shape[0] != other.shape[0]:
        # a fixed scorer (one row) against seeded runs: pair it with every seed
        ours, other = np.broadcast_arrays(ours, other)
    diff = ours - other
    low, high = paired_interval(diff.mean(0), seed)
    per_seed = diff.mean(1)
    sign = 1 if higher_is_better else -1
    return Comparison(ours=float(ours.mean()), other=float(other.mean()), effect=float(diff.mean()), low=low, high=high,
                      seed_std=float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else float("nan"),
                      seeds_holding=int((sign * per_seed > 0).sum()), seeds=len(per_seed), queries=diff.shape[1],
                      verdict=verdict(low, high, higher_is_better))


def mean_and_sample_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``; nan for fewer than two values)."""
    values = np.asarray([v for v in values if v is not None and not np.isnan(v)], dtype=np.float64)
    if len(values) == 0:
        return float("nan"), float("nan")
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else float("nan")
