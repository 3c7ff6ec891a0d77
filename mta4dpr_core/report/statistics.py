"""Paired comparisons of two systems over seeds and test queries, Holm's correction, and the verdict rule.

**Data.** Systems A and B are evaluated with the same seeds on the same test queries. The paired
difference is ``d[s, q] = A[s, q] - B[s, q]`` (S seeds x Q queries) and the effect is its mean over
seeds and queries.

**Interval: a t interval over a crossed design of seeds and queries.** Seeds and test queries are
both samples, so the effect's variance has a seed part and a query part. With ``e_s`` the per-seed
effects (mean over queries) and ``g_q`` the per-query effects (mean over seeds)::

    V_seed = var(e_s) / S        V_query = var(g_q) / Q        (sample variances, ddof = 1)
    se^2   = V_seed + V_query
    df     = (U + V_query)^2 / (U^2 / (S - 1) + V_query^2 / (Q - 1)),   U = V_seed (S - 1) / chi2_{0.05, S-1}
    interval = effect -/+ t_{df, 0.975} se          p = 2 P(T_df > |effect| / se)

``se`` is Owen's (2007) variance estimate of a crossed mean: it counts the seed x query noise in
both parts (conservative by ``var(noise) / (S Q)``). ``df`` is Welch-Satterthwaite's, with the
seed part at its one-sided 95% upper confidence bound ``U``: with 3 seeds whose means agree by
chance, plain Satterthwaite would take the query part's hundreds of df. With a dominant seed
part the interval is a t with about S - 1 df, as wide as the seeds allow; with a negligible one
it is the queries' t.

**Why not the two-level bootstrap used before** (:func:`percentile_bootstrap`, kept for the
comparison): it resamples 3 or 5 seeds as if they were the population and its percentile tails
are too short. :func:`simulate_coverage` measures both rules on null data at a profile's seed sd
(``tools/coverage_simulation.py`` prints the table; ``tests/report/test_coverage.py`` fails when
the rule's coverage drops below 93% or its family-wise error rises above 5%).

**Verdict.** *confirmed* when p < 0.05 and the effect has the paper's sign, *contradicted* when
p < 0.05 and it has the other sign, *inconclusive* otherwise. In a family of claims
(:func:`family_verdicts`) p is Holm's adjusted p over the family. The rule is analytic: no Monte
Carlo, so the same data give the same verdict on any machine.

**One seed.** With a single seed on both sides the seed part is absent: the interval covers query
sampling only and says nothing about seed-to-seed variation (``seed_level`` is False). A fixed
scorer (one row) against seeded runs is broadcast over their seeds; the seed part is then the
seeded system's.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> b = rng.uniform(0, 1, size=(3, 200)); a = b + 0.1 + rng.normal(0, 0.05, size=b.shape)
>>> result = compare(a, b)
>>> result.verdict, result.seeds_holding, result.low < 0.1 < result.high, result.p < 0.001
('confirmed', 3, True, True)
>>> compare(b[:1], a[:1]).seed_level
False
>>> [round(float(x), 3) for x in holm([0.01, 0.04, 0.03])]
[0.03, 0.06, 0.06]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

CONFIDENCE = 0.95
ALPHA = 0.05
METHOD = "t over seeds x queries (Owen variance, Satterthwaite df at the seed variance's 95% upper bound)"
VERDICTS = ("confirmed", "contradicted", "inconclusive")
_ROOT = 2024_17  # root of the resampling generators of the old bootstrap (numpy SeedSequence entropy)
_CHUNK = 1024  # resamples drawn at a time (memory)


@dataclass
class Comparison:
    ours: float  # mean over seeds and queries
    other: float
    effect: float  # ours - other (in the paper's direction when higher_is_better)
    low: float  # 95% interval of the effect
    high: float
    seed_std: float  # sample std over seeds of the per-seed effect (nan for one seed)
    seeds_holding: int  # seeds whose per-seed effect has the paper's sign
    seeds: int
    queries: int
    verdict: str
    p: float = float("nan")  # two-sided p of the t statistic
    p_holm: float = float("nan")  # Holm-adjusted over the family (= p for a family of one)
    per_seed: tuple = ()  # the per-seed effects
    seed_level: bool = True  # False when the seed part is absent (one seed)
    se: float = float("nan")  # the effect's standard error (seed and query parts)
    df: float = float("nan")  # its Welch-Satterthwaite degrees of freedom
    higher_is_better: bool = True

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
    from scipy import stats  # noqa: PLC0415 (lazy: 0.6 s of every process's start; reports that never test load none)

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


def crossed_t(d: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float, float, float, float, float]:
    """``(effect, low, high, p, se, df)``: the t interval of the module docstring for one matrix ``d``
    [seeds, queries] (the seed part left out for one seed).

    >>> d = np.array([[0.1, 0.3, 0.2], [0.2, 0.4, 0.3]])
    >>> effect, low, high, p, se, df = crossed_t(d)
    >>> round(effect, 3), round(se, 4), round(df, 2)
    (0.25, 0.0764, 1.01)
    """
    d = np.atleast_2d(np.asarray(d, dtype=np.float64))
    s, q = d.shape
    effect = float(d.mean())
    parts = []  # (variance of the mean, degrees of freedom)
    if s > 1:
        parts.append((float(d.mean(1).var(ddof=1)) / s, s - 1))
    if q > 1:
        parts.append((float(d.mean(0).var(ddof=1)) / q, q - 1))
    variance = sum(v for v, _ in parts)
    if not parts or variance <= 1e-30:
        # no spread at all: the interval is the point, and any non-zero effect is certain
        p = float("nan") if not parts else (1.0 if effect == 0 else 0.0)
        return effect, effect, effect, p, 0.0, float("inf")
    se = float(np.sqrt(variance))
    df = _degrees_of_freedom(parts)
    from scipy import stats  # noqa: PLC0415 (lazy: as in paired_interval)

    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
    p = float(2 * stats.t.sf(abs(effect) / se, df))
    return effect, effect - half, effect + half, p, se, float(df)


SEED_VARIANCE_BOUND = 0.95  # the one-sided upper confidence bound of the seed variance the df are computed at


def _degrees_of_freedom(parts) -> float:
    """Welch-Satterthwaite's df of ``sum(v)``, with the seed part (the first of two) at its one-sided
    ``SEED_VARIANCE_BOUND`` upper confidence bound. Why: with 3 seeds whose means agree by chance, plain
    Satterthwaite takes the query part's hundreds of df and the t quantile drops from 4.3 to 2.0; simulated at a
    seed sd of 2.5 points and 3 seeds, 18% of null families of 15 then held a false significant claim. At the
    bound, at most 4.5% did over the simulated designs (``tests/report/test_coverage.py``)."""
    if len(parts) == 1:
        return float(parts[0][1])
    from scipy import stats  # noqa: PLC0415 (lazy: as in paired_interval)

    (seed, seed_df), (query, query_df) = parts
    seed = seed * seed_df / float(stats.chi2.ppf(1 - SEED_VARIANCE_BOUND, seed_df))
    if seed + query <= 0:
        return float(seed_df)
    return float((seed + query) ** 2 / (seed**2 / seed_df + query**2 / query_df))


def compare_many(pairs, higher_is_better=True, confidence: float = CONFIDENCE) -> list[Comparison]:
    """:func:`compare` for many ``(ours, other)`` pairs. ``higher_is_better``: one flag or one per pair.
    Each verdict is that of a family of one; see :func:`family_verdicts`."""
    flags = [higher_is_better] * len(pairs) if isinstance(higher_is_better, bool) else list(higher_is_better)
    results = []
    for (ours, other), flag in zip(pairs, flags, strict=True):
        ours = np.atleast_2d(np.asarray(ours, dtype=np.float64))
        other = np.atleast_2d(np.asarray(other, dtype=np.float64))
        if ours.shape[1] != other.shape[1]:
            raise ValueError(f"paired comparison needs the same queries, got {ours.shape[1]} and {other.shape[1]}")
        if ours.shape[1] == 0:
            raise ValueError("paired comparison needs at least one query")
        if ours.shape[0] != other.shape[0]:
            # a fixed scorer (one row) against seeded runs: pair it with every seed
            ours, other = np.broadcast_arrays(ours, other)
        diff = ours - other
        effect, low, high, p, se, df = crossed_t(diff, confidence)
        per_seed = diff.mean(1)
        sign = 1 if flag else -1
        results.append(
            Comparison(
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
                se=se,
                df=df,
                higher_is_better=flag,
            )
        )
    return family_verdicts(results, adjust=False)


def compare(ours: np.ndarray, other: np.ndarray, higher_is_better: bool = True) -> Comparison:
    """``ours`` and ``other``: per-query metrics, shape (seeds, queries), rows paired by seed (a single
    row is broadcast over the other side's seeds). The t interval of the module docstring."""
    return compare_many([(ours, other)], higher_is_better)[0]


# ---- the two-level percentile bootstrap used before (kept for the coverage comparison) ------------------


def _indices(n: int, resamples: int, generator_seed: int, level: int):
    rng = np.random.default_rng([_ROOT, generator_seed, level, n])
    dtype = np.uint16 if n < 2**16 else np.int64
    for start in range(0, resamples, _CHUNK):
        yield rng.integers(0, n, size=(min(_CHUNK, resamples - start), n), dtype=dtype)


def _counts(indices: np.ndarray, n: int) -> np.ndarray:
    rows = len(indices)
    flat = indices.astype(np.intp) + (np.arange(rows, dtype=np.intp) * n)[:, None]
    return np.bincount(flat.ravel(), minlength=rows * n).reshape(rows, n)


def bootstrap_effects(d, resamples: int, generator_seed: int = 0) -> np.ndarray:
    """The two-level (seeds x queries) bootstrap's resampled effects ``u_b @ d @ v_b / (S Q)``, b = 1..resamples:
    each resample draws S seeds and, independently, Q queries with replacement (Owen's pigeonhole bootstrap)."""
    d = np.atleast_2d(np.asarray(d, dtype=np.float64))
    s, q = d.shape
    out = np.empty(resamples)
    seeds = (
        np.ones((resamples, 1))
        if s == 1
        else np.concatenate([_counts(i, s) for i in _indices(s, resamples, generator_seed, 0)])
    )
    start = 0
    for chunk in _indices(q, resamples, generator_seed, 1):
        rows = len(chunk)
        sums = _counts(chunk, q).astype(np.float64) @ d.T  # [rows, s]
        out[start : start + rows] = (sums * seeds[start : start + rows]).sum(1) / (s * q)
        start += rows
    return out


def percentile_bootstrap(d, resamples: int = 2000, generator_seed: int = 0, confidence: float = CONFIDENCE):
    """``(low, high, p)`` of the two-level percentile bootstrap (the rule before the t interval): the percentile
    interval of :func:`bootstrap_effects` and its two-sided sign p (floor ``2 / (resamples + 1)``)."""
    effects = bootstrap_effects(d, resamples, generator_seed)
    tail = (1 - confidence) / 2
    low, high = np.quantile(effects, [tail, 1 - tail])
    b = len(effects)
    p = min(1.0, 2 * min(1 + int((effects <= 0).sum()), 1 + int((effects >= 0).sum())) / (b + 1))
    return float(low), float(high), p


# ---- coverage of the interval rule, simulated -----------------------------------------------------------


@dataclass(frozen=True)
class Coverage:
    """What :func:`simulate_coverage` measured for one method and design."""

    method: str
    seeds: int
    queries: int
    seed_sd: float
    query_sd: float
    noise_sd: float
    trials: int
    coverage: float  # share of 95% intervals that hold the true effect
    family_false_significant: float  # share of null families with at least one Holm-significant claim
    family: int


def simulate_coverage(
    method: str,
    seeds: int,
    seed_sd: float,
    query_sd: float = 0.1,
    noise_sd: float = 0.15,
    queries: int = 300,
    trials: int = 400,
    family: int = 15,
    resamples: int = 1000,
    rng_seed: int = 0,
) -> Coverage:
    """Null effects ``d[s, q] = a_s + b_q + e_sq`` (a ~ N(0, seed_sd), b ~ N(0, query_sd), e ~ N(0, noise_sd)),
    in ``trials`` families of ``family`` independent claims. ``method``: ``"t"`` (:func:`crossed_t`, the rule) or
    ``"bootstrap"`` (:func:`percentile_bootstrap` with ``resamples``). Returns the coverage of the 95% intervals
    and the family-wise rate of false significant verdicts after Holm."""
    rng = np.random.default_rng(rng_seed)
    covered, total, false_families = 0, 0, 0
    for trial in range(trials):
        p_values = []
        for claim in range(family):
            d = (
                rng.normal(0, seed_sd, size=(seeds, 1))
                + rng.normal(0, query_sd, size=(1, queries))
                + rng.normal(0, noise_sd, size=(seeds, queries))
            )
            if method == "t":
                _, low, high, p, _, _ = crossed_t(d)
            elif method == "bootstrap":
                low, high, p = percentile_bootstrap(d, resamples, generator_seed=trial * family + claim)
            else:
                raise ValueError(f"unknown method {method!r}; known: t, bootstrap")
            covered += low <= 0 <= high
            total += 1
            p_values.append(p)
        false_families += bool((holm(p_values) < ALPHA).any())
    return Coverage(
        method, seeds, queries, seed_sd, query_sd, noise_sd, trials, covered / total, false_families / trials, family
    )


def variance_components(d: np.ndarray) -> tuple[float, float, float]:
    """``(seed sd, query sd, noise sd)`` of ``d[s, q] = a_s + b_q + e_sq``, by the two-way ANOVA's method of
    moments (a component estimated below 0 is 0): what :func:`simulate_coverage` is fed from a profile's data."""
    d = np.atleast_2d(np.asarray(d, dtype=np.float64))
    s, q = d.shape
    residual = d - d.mean(1, keepdims=True) - d.mean(0, keepdims=True) + d.mean()
    noise = float((residual**2).sum() / max((s - 1) * (q - 1), 1))
    seed = max(float(d.mean(1).var(ddof=1)) - noise / q, 0.0) if s > 1 else 0.0
    query = max(float(d.mean(0).var(ddof=1)) - noise / s, 0.0) if q > 1 else 0.0
    return float(np.sqrt(seed)), float(np.sqrt(query)), float(np.sqrt(noise))


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
    """Verdicts of one declared family: Holm over the family's p-values. ``adjust=False``: each comparison
    is a family of one."""
    comparisons = list(comparisons)
    if not comparisons:
        return []
    p = np.array([c.p for c in comparisons])
    adjusted = holm(p) if adjust else p
    return [
        replace(c, p_holm=float(x), verdict=decide(x, c.effect, c.higher_is_better, alpha))
        for c, x in zip(comparisons, adjusted, strict=True)
    ]


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
