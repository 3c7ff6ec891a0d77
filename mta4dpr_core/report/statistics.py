"""Paired comparisons of two systems over seeds and test queries, Holm's correction, and the verdict rule.

**Data.** Systems A and B are evaluated with the same seeds on the same test queries. The paired
difference is ``d[s, q] = A[s, q] - B[s, q]`` (S seeds x Q queries) and the effect is its mean over
seeds and queries.

**Interval: a two-level bootstrap over seeds and queries.** Each resample draws S seeds with
replacement and, independently, Q queries with replacement, and keeps every drawn (seed, query)
pair, so the pairing of A and B by seed and query is never broken (the two-way "pigeonhole"
bootstrap of a crossed design, Owen 2007). With ``u_b`` the multinomial counts of the drawn seeds
and ``v_b`` those of the drawn queries::

    effect_b = u_b @ d @ v_b / (S * Q)          b = 1 .. B

The 95% interval is the 2.5th and 97.5th percentiles of ``effect_1 .. effect_B``.

**p-value: the sign of the same resamples** (the two-sided percentile-bootstrap p)::

    p = min(1, 2 * min(1 + #{effect_b <= 0}, 1 + #{effect_b >= 0}) / (B + 1))

so ``p < 0.05`` exactly when 0 falls outside the 95% percentile interval (up to one resample).
The smallest p it can give is ``2 / (B + 1)``.

**Verdict.** *confirmed* when p < 0.05 and the effect has the paper's sign, *contradicted* when
p < 0.05 and it has the other sign, *inconclusive* otherwise. In a family of claims
(:func:`family_verdicts`) p is Holm's adjusted p over the family.

**Borderline.** The whole procedure runs with ``STABILITY_SEEDS`` generator seeds (``seed``,
``seed + 1``, ...). The numbers reported are the first generator seed's; a verdict that is not
the same for all of them is reported as *borderline*. ``bound_spread`` is the larger range (max -
min over generator seeds) of the two interval bounds. ``RESAMPLES`` is chosen so that on 5 seeds
x 300 queries of per-query differences with sd 0.2 (metrics on a 0-1 scale) each bound moves by
less than 0.0005, i.e. 0.05 points in percent, across 20 generator seeds
(``tests/report/test_statistics.py``; measured at most 0.032 points over five such data sets, against up to
0.047 with 100,000 resamples).

**One seed.** With a single seed on both sides ``u_b`` is always (1): the seed level is
degenerate, the interval covers query sampling only and says nothing about seed-to-seed variation
(``seed_level`` is False). A fixed scorer (one row) against seeded runs is broadcast over their
seeds; the seed level is then the seeded system's.

**Limits.** With few seeds the percentile bootstrap understates the seed level (its variance by
(S-1)/S and its tails, which a t with S-1 degrees of freedom would widen); the per-(seed, query)
noise enters both levels, which errs the other way. The per-seed effects, their sample std and the
number of seeds with the paper's sign are reported beside every interval.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> b = rng.uniform(0, 1, size=(3, 200)); a = b + 0.1 + rng.normal(0, 0.05, size=b.shape)
>>> result = compare(a, b, resamples=2000, stability_seeds=2)
>>> result.verdict, result.seeds_holding, result.low < 0.1 < result.high, result.p < 0.001
('confirmed', 3, True, True)
>>> compare(b[:1], a[:1], resamples=2000, stability_seeds=2).seed_level
False
>>> [round(float(x), 3) for x in holm([0.01, 0.04, 0.03])]
[0.03, 0.06, 0.06]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np
from scipy import stats

from ..config.threads import one_thread_per_process

CONFIDENCE = 0.95
ALPHA = 0.05
RESAMPLES = 200_000  # see the module docstring: bound stability < 0.0005 across 20 generator seeds
STABILITY_SEEDS = 20  # generator seeds behind the "borderline" check
VERDICTS = ("confirmed", "contradicted", "inconclusive", "borderline")
_ROOT = 2024_17  # root of the resampling generators (numpy SeedSequence entropy)
_CHUNK = 1024  # resamples drawn at a time (memory)


@dataclass
class Comparison:
    ours: float  # mean over seeds and queries
    other: float
    effect: float  # ours - other (in the paper's direction when higher_is_better)
    low: float  # 95% interval of the effect (two-level bootstrap, the first generator seed)
    high: float
    seed_std: float  # sample std over seeds of the per-seed effect (nan for one seed)
    seeds_holding: int  # seeds whose per-seed effect has the paper's sign
    seeds: int
    queries: int
    verdict: str
    p: float = float("nan")  # two-sided bootstrap p (the first generator seed)
    p_holm: float = float("nan")  # Holm-adjusted over the family (= p for a family of one)
    per_seed: tuple = ()  # the per-seed effects
    seed_level: bool = True  # False when the seed level is degenerate (one seed)
    bound_spread: float = float("nan")  # largest range of a bound across the generator seeds
    resamples: int = 0
    higher_is_better: bool = True
    draws: dict = field(default_factory=dict, repr=False)  # per generator seed: low, high, p arrays

    def as_dict(self):
        return asdict(self)


def verdict(low: float, high: float, higher_is_better: bool = True) -> str:
    """The interval rule: confirmed when ``[low, high]`` excludes 0 in the paper's direction."""
    if np.isnan(low) or np.isnan(high):
        return "inconclusive"
    if (low > 0 and higher_is_better) or (high < 0 and not higher_is_better):
        return "confirmed"
    if (high < 0 and higher_is_better) or (low > 0 and not higher_is_better):
        return "contradicted"
    return "inconclusive"


def decide(p: float, effect: float, higher_is_better: bool = True, alpha: float = ALPHA) -> str:
    """The p rule: confirmed when ``p < alpha`` with the paper's sign, contradicted with the other one."""
    if np.isnan(p) or np.isnan(effect) or p >= alpha or effect == 0:
        return "inconclusive"
    return "confirmed" if (effect > 0) == bool(higher_is_better) else "contradicted"


def paired_interval(differences: np.ndarray, seed: int = 0, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """One-level BCa bootstrap interval of the mean of ``differences`` (scipy.stats.bootstrap, 5000
    resamples). Used where the units are not (seed, query) pairs (the overhead's training steps)."""
    differences = np.asarray(differences, dtype=np.float64)
    if len(differences) < 2 or np.allclose(differences, differences[0]):
        value = float(differences.mean()) if len(differences) else float("nan")
        return value, value  # no spread: the interval is the point (a degenerate bootstrap)
    result = stats.bootstrap(
        (differences,),
        np.mean,
        confidence_level=confidence,
        n_resamples=5000,
        method="BCa",
        random_state=np.random.default_rng(seed),
        vectorized=True,
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _indices(n: int, resamples: int, generator_seed: int, level: int):
    """Chunks of resampled indices (each ``[chunk, n]``) for ``n`` units at one level (0 seeds, 1 queries).
    The draws depend only on (n, resamples, generator seed, level): every comparison with as many units
    gets the same resamples (common random numbers), in a batch or alone."""
    rng = np.random.default_rng([_ROOT, generator_seed, level, n])
    dtype = np.uint16 if n < 2**16 else np.int64
    for start in range(0, resamples, _CHUNK):
        yield rng.integers(0, n, size=(min(_CHUNK, resamples - start), n), dtype=dtype)


def _counts(indices: np.ndarray, n: int) -> np.ndarray:
    rows = len(indices)
    flat = indices.astype(np.intp) + (np.arange(rows, dtype=np.intp) * n)[:, None]
    return np.bincount(flat.ravel(), minlength=rows * n).reshape(rows, n)


def bootstrap_effects(diffs, resamples: int = RESAMPLES, generator_seed: int = 0) -> list[np.ndarray]:
    """``effect_b = u_b @ d @ v_b / (S * Q)`` for b = 1..resamples, for each ``d`` in ``diffs``
    (arrays [seeds, queries]); one array of ``resamples`` effects per matrix."""
    diffs = [np.atleast_2d(np.asarray(d, dtype=np.float64)) for d in diffs]
    out: list = [None] * len(diffs)
    seed_counts = {}
    for s in {d.shape[0] for d in diffs}:
        if s == 1:
            seed_counts[s] = np.ones((resamples, 1))
        else:
            seed_counts[s] = np.concatenate([_counts(i, s) for i in _indices(s, resamples, generator_seed, 0)]).astype(
                np.float64
            )
    for q in sorted({d.shape[1] for d in diffs}):
        # the matrices with q queries, stacked and grouped by their number of seeds: [rows, q]
        groups = {}
        for k, d in enumerate(diffs):
            if d.shape[1] == q:
                groups.setdefault(d.shape[0], []).append(k)
        order = [(s, members) for s, members in sorted(groups.items())]
        # float32 products: the sums of a resample are off by ~1e-7 of the largest |d| (far below the 0.0005 stability)
        matrix = np.concatenate([diffs[k] for _, members in order for k in members]).T.astype(np.float32)  # [q, rows]
        effects = {s: np.empty((len(members), resamples)) for s, members in order}
        start = 0
        for chunk in _indices(q, resamples, generator_seed, 1):
            rows = len(chunk)
            sums = _counts(chunk, q).astype(np.float32) @ matrix  # [chunk, rows]
            offset = 0
            for s, members in order:
                block = sums[:, offset : offset + len(members) * s].reshape(rows, len(members), s).astype(np.float64)
                effects[s][:, start : start + rows] = np.einsum(
                    "cks,cs->kc", block, seed_counts[s][start : start + rows]
                ) / (s * q)
                offset += len(members) * s
            start += rows
        for s, members in order:
            for j, k in enumerate(members):
                out[k] = effects[s][j]
    return out


def _summary(effects: np.ndarray, confidence: float, scale: float = 1.0):
    """(low, high, p) of one set of resampled effects; a resample within rounding of 0 (1e-6 of the largest
    |d|: the float32 products) counts on both sides."""
    tail = (1 - confidence) / 2
    low, high = np.quantile(effects, [tail, 1 - tail])
    zero = 1e-6 * scale
    b = len(effects)
    p = min(1.0, 2 * min(1 + int((effects <= zero).sum()), 1 + int((effects >= -zero).sum())) / (b + 1))
    return float(low), float(high), p


def _generator_summaries(diffs, resamples, confidence, generator_seed) -> np.ndarray:
    """[pairs, 3]: (low, high, p) of every pair under one generator seed."""
    return np.array(
        [
            _summary(effects, confidence, float(np.abs(d).max()))
            for d, effects in zip(diffs, bootstrap_effects(diffs, resamples, generator_seed))
        ]
    ).reshape(len(diffs), 3)


# below this many resampled query draws (resamples x generator seeds x queries) processes cost more than they save
_PARALLEL_WORK = 50_000_000


def _map_generators(diffs, resamples, confidence, generators, workers=None):
    """:func:`_generator_summaries` for each generator seed, in order: in forked worker processes when the
    work is large (the stability check's 20 seeds x 200,000 resamples took most of notebook 07's minute
    on one core), else in this process."""
    import functools
    import os

    one = functools.partial(_generator_summaries, diffs, resamples, confidence)
    queries = sum(np.atleast_2d(d).shape[1] for d in diffs)
    if workers is None:
        large = resamples * len(generators) * queries >= _PARALLEL_WORK
        workers = (os.cpu_count() or 1) if large else 1
    workers = max(1, min(int(workers), len(generators)))
    if workers == 1:
        return [one(g) for g in generators]
    import multiprocessing

    try:
        context = multiprocessing.get_context("fork")
    except ValueError:  # no fork on this platform: one process
        return [one(g) for g in generators]
    with context.Pool(workers, initializer=one_thread_per_process) as pool:
        return pool.map(one, generators, chunksize=1)


def compare_many(
    pairs,
    higher_is_better=True,
    seed: int = 0,
    resamples: int = RESAMPLES,
    stability_seeds: int = STABILITY_SEEDS,
    confidence: float = CONFIDENCE,
    workers: int | None = None,
) -> list[Comparison]:
    """:func:`compare` for many ``(ours, other)`` pairs at once: pairs with as many queries share the
    query resamples (one draw per generator seed for the whole batch). ``higher_is_better``: one
    flag or one per pair. Each verdict is that of a family of one; see :func:`family_verdicts`.
    ``workers``: processes over the generator seeds (default: one per CPU core when the work is large);
    each seed's draws are the same in any process, so the results do not depend on it."""
    flags = [higher_is_better] * len(pairs) if isinstance(higher_is_better, bool) else list(higher_is_better)
    diffs, base = [], []
    for ours, other in pairs:
        ours, other = (
            np.atleast_2d(np.asarray(ours, dtype=np.float64)),
            np.atleast_2d(np.asarray(other, dtype=np.float64)),
        )
        if ours.shape[1] != other.shape[1]:
            raise ValueError(f"paired comparison needs the same queries, got {ours.shape[1]} and {other.shape[1]}")
        if ours.shape[1] == 0:
            raise ValueError("paired comparison needs at least one query")
        if ours.shape[0] != other.shape[0]:
            # a fixed scorer (one row) against seeded runs: pair it with every seed
            ours, other = np.broadcast_arrays(ours, other)
        diffs.append(ours - other)
        base.append((ours, other))
    generators = [seed + i for i in range(max(1, stability_seeds))]
    draws = np.empty((len(diffs), len(generators), 3))
    for g, summaries in enumerate(_map_generators(diffs, resamples, confidence, generators, workers)):
        draws[:, g] = summaries
    results = []
    for k, (diff, (ours, other), flag) in enumerate(zip(diffs, base, flags)):
        per_seed = diff.mean(1)
        effect = float(diff.mean())
        low, high, p = (float(x) for x in draws[k, 0])
        spread = float(max(np.ptp(draws[k, :, 0]), np.ptp(draws[k, :, 1])))
        sign = 1 if flag else -1
        result = Comparison(
            ours=float(ours.mean()),
            other=float(other.mean()),
            effect=effect,
            low=low,
            high=high,
            seed_std=float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else float("nan"),
            seeds_holding=int((sign * per_seed > 0).sum()),
            seeds=len(per_seed),
            queries=diff.shape[1],
            verdict="inconclusive",
            p=p,
            p_holm=p,
            per_seed=tuple(float(x) for x in per_seed),
            seed_level=len(per_seed) > 1,
            bound_spread=spread,
            resamples=resamples,
            higher_is_better=flag,
            draws={"low": draws[k, :, 0].copy(), "high": draws[k, :, 1].copy(), "p": draws[k, :, 2].copy()},
        )
        results.append(result)
    return family_verdicts(results, adjust=False)


def compare(
    ours: np.ndarray,
    other: np.ndarray,
    higher_is_better: bool = True,
    seed: int = 0,
    resamples: int = RESAMPLES,
    stability_seeds: int = STABILITY_SEEDS,
) -> Comparison:
    """``ours`` and ``other``: per-query metrics, shape (seeds, queries), rows paired by seed (a single
    row is broadcast over the other side's seeds). The two-level bootstrap of the module docstring;
    ``stability_seeds=1`` skips the borderline check (an interval only)."""
    return compare_many([(ours, other)], higher_is_better, seed, resamples, stability_seeds)[0]


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values: ``max_{j <= i} min(1, (m - j + 1) p_(j))`` in sorted order."""
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out


def family_verdicts(comparisons, alpha: float = ALPHA, adjust: bool = True) -> list[Comparison]:
    """Verdicts of one declared family: Holm over the family's p-values, for every generator seed;
    the reported ``p_holm`` is the first generator seed's. A verdict that differs between generator
    seeds is *borderline*. ``adjust=False``: each comparison is a family of one."""
    comparisons = list(comparisons)
    if not comparisons:
        return []
    p = np.array([c.draws["p"] if c.draws else [c.p] for c in comparisons])  # [k, generators]
    adjusted = np.stack([holm(p[:, g]) for g in range(p.shape[1])], axis=1) if adjust else p
    out = []
    for c, row in zip(comparisons, adjusted):
        verdicts = {decide(x, c.effect, c.higher_is_better, alpha) for x in row}
        out.append(replace(c, p_holm=float(row[0]), verdict=verdicts.pop() if len(verdicts) == 1 else "borderline"))
    return out


def effect_ratio(ours_delta, paper_delta) -> float:
    """repro_eval's Effect Ratio (Breuer et al., SIGIR 2020): the reproduction's mean per-topic improvement
    over the original's, ``mean_q(A'_q - B'_q) / mean_q(A_q - B_q)``. 1 = the same effect, 0 = none, < 0 =
    the other way. nan when the paper's improvement is 0 or missing."""
    if paper_delta is None or ours_delta is None or np.isnan(paper_delta) or paper_delta == 0:
        return float("nan")
    return float(ours_delta) / float(paper_delta)


def delta_relative_improvement(paper_advanced, paper_baseline, ours_advanced, ours_baseline) -> float:
    """repro_eval's ΔRI: ``RI_original - RI_reproduced`` with ``RI = (advanced - baseline) / baseline``
    (mean scores). 0 = the same relative improvement; > 0 = ours is smaller."""
    values = (paper_advanced, paper_baseline, ours_advanced, ours_baseline)
    if any(v is None or np.isnan(v) for v in values) or paper_baseline == 0 or ours_baseline == 0:
        return float("nan")
    return float((paper_advanced - paper_baseline) / paper_baseline - (ours_advanced - ours_baseline) / ours_baseline)


def mean_and_sample_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``; nan for fewer than two values)."""
    values = np.asarray([v for v in values if v is not None and not np.isnan(v)], dtype=np.float64)
    if len(values) == 0:
        return float("nan"), float("nan")
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else float("nan")
