"""Assistant selection per training batch (paper 3.2.3), vectorised over the batch.

Given the teacher's distribution ``P_t`` [B, C] and the candidates' ``P_a`` [A, B, C]
(original and fused assistants), each method gives one number per candidate,
averaged over the batch's queries, and picks the best:

- ``kl``: mean_q KL(P_t || P_a) = sum_p P_t log(P_t / P_a); minimum wins (default).
- ``footrule``: Spearman's footrule, mean_q sum_p |rank_t(p) - rank_a(p)|; minimum wins.
- ``rbo``: rank-biased overlap (Webber et al. 2010, extrapolated RBO_ext over the
  full candidate list) with persistence p (default 0.9: the top 10 ranks carry
  about 65% of the weight, matching a batch of ~35 candidates); maximum wins.
- ``random``: uniform over candidates (seeded).

The selection never touches gradients: it works on stored scores only.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-12


def kl_divergence(teacher: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """KL(P_t || P_a) per candidate, averaged over queries: [A]."""
    t = np.clip(teacher, EPS, 1.0)[None]
    a = np.clip(candidates, EPS, 1.0)
    return (t * (np.log(t) - np.log(a))).sum(-1).mean(-1)


def ranks(scores: np.ndarray) -> np.ndarray:
    """0-based rank of each item (0 = best), ties broken by position."""
    order = np.argsort(-scores, axis=-1, kind="stable")
    out = np.empty_like(order)
    np.put_along_axis(out, order, np.arange(scores.shape[-1]), axis=-1)
    return out


def spearman_footrule(teacher: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Mean over queries of sum_p |rank_t(p) - rank_a(p)|: [A]."""
    return np.abs(ranks(teacher)[None] - ranks(candidates)).sum(-1).mean(-1)


def rank_biased_overlap(teacher: np.ndarray, candidates: np.ndarray, p: float = 0.9) -> np.ndarray:
    """Extrapolated RBO between the teacher's and each candidate's ranking, averaged over queries: [A].

    RBO_ext = (X_C / C) p^C + (1 - p)/p * sum_{d=1}^{C} (X_d / d) p^d, where X_d is the
    overlap of the two top-d lists. An item is in both top-d lists iff
    max(rank_t, rank_a) < d, so X_d is a cumulative count of those maxima.
    """
    count = teacher.shape[-1]
    deepest = np.maximum(ranks(teacher)[None], ranks(candidates))  # [A, B, C]
    flat = deepest.reshape(-1, count)
    offsets = (np.arange(flat.shape[0]) * count)[:, None]
    hist = (
        np.bincount((flat + offsets).ravel(), minlength=flat.shape[0] * count).reshape(deepest.shape).astype(np.float64)
    )
    overlap = np.cumsum(hist, axis=-1)  # X_d for d = 1..C
    depth = np.arange(1, count + 1)
    weights = p**depth
    rbo = (overlap[..., -1] / count) * p**count + (1 - p) / p * (overlap / depth * weights).sum(-1)
    return rbo.mean(-1)


def select_assistant(
    teacher_probs: np.ndarray,
    candidate_probs: np.ndarray,
    method: str = "kl",
    rbo_p: float = 0.9,
    rng: np.random.Generator | None = None,
) -> tuple[int, np.ndarray]:
    """Index of the best candidate for this batch and every candidate's value (NaN for random)."""
    if method == "kl":
        values = kl_divergence(teacher_probs, candidate_probs)
        return int(np.argmin(values)), values
    if method == "footrule":
        values = spearman_footrule(teacher_probs, candidate_probs)
        return int(np.argmin(values)), values
    if method == "rbo":
        values = rank_biased_overlap(teacher_probs, candidate_probs, rbo_p)
        return int(np.argmax(values)), values
    if method == "random":
        rng = rng or np.random.default_rng()
        return int(rng.integers(candidate_probs.shape[0])), np.full(candidate_probs.shape[0], np.nan)
    raise ValueError(f"unknown selection method {method!r}; expected kl, footrule, rbo or random")
