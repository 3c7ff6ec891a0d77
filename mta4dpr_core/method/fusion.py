"""Fused assistants (paper 3.2.2).

Every subset of size >= 2 of the m assistants is a fused assistant whose score
distribution is the mean of its members' per-query softmax distributions::

    P_S(p | q) = sum_{a in S} w_a P_a(p | q) / sum_{a in S} w_a,   P_a = softmax(s_a(q, .) / T_a)

With ``weights=None`` every w_a = 1 (the published paper); weights give the
rewrite's weighted fusion. There are 2^m - m - 1 fused assistants.

Example::

    >>> import numpy as np
    >>> probs = np.array([[[0.5, 0.5]], [[1.0, 0.0]]])   # 2 assistants, 1 query, 2 passages
    >>> fused_assistant_subsets(2)
    [(0, 1)]
    >>> candidate_distributions(probs, fused_assistant_subsets(2))[2].tolist()
    [[0.75, 0.25]]
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np


def fused_assistant_subsets(m: int, min_size: int = 2) -> list:
    """All subsets of ``range(m)`` with at least ``min_size`` members, by size then lexicographically."""
    return [subset for size in range(min_size, m + 1) for subset in combinations(range(m), size)]


def softmax(scores: np.ndarray, temperature: float = 1.0, axis: int = -1) -> np.ndarray:
    """Softmax over candidates; NaN scores (padding) get probability 0."""
    scaled = np.where(np.isnan(scores), -np.inf, scores / temperature)
    scaled = scaled - np.max(scaled, axis=axis, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=axis, keepdims=True)


def fuse(probs: np.ndarray, subset: Sequence[int], weights: Sequence[float] | None = None) -> np.ndarray:
    """Weighted mean of the members' distributions: probs [m, B, C] -> [B, C]."""
    w = np.ones(len(subset)) if weights is None else np.asarray([weights[i] for i in subset], dtype=np.float64)
    return np.tensordot(w / w.sum(), probs[list(subset)], axes=1)


def candidate_distributions(
    probs: np.ndarray, subsets: Sequence[Sequence[int]], weights: Sequence[float] | None = None
) -> np.ndarray:
    """Originals then fused assistants: [m + len(subsets), B, C]."""
    if not subsets:
        return probs
    fused = np.stack([fuse(probs, subset, weights) for subset in subsets])
    return np.concatenate([probs, fused], axis=0)


def assistant_names(names: Sequence[str], subsets: Sequence[Sequence[int]]) -> list[str]:
    """Display names in the order of :func:`candidate_distributions` ("A&B" for a fused pair)."""
    return list(names) + ["&".join(names[i] for i in subset) for subset in subsets]
