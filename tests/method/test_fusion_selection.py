"""Fused assistants (3.2.2) and per-batch assistant selection (3.2.3)."""

from __future__ import annotations

import numpy as np
import pytest

from mta4dpr_core.method.fusion import assistant_names, candidate_distributions, fuse, fused_assistant_subsets, softmax
from mta4dpr_core.method.selection import (
    kl_divergence,
    rank_biased_overlap,
    ranks,
    select_assistant,
    spearman_footrule,
)


def _random_probs(rng, shape):
    return softmax(rng.normal(size=shape) * 2)


# --- fusion ------------------------------------------------------------------------------------


@pytest.mark.parametrize("m", [2, 3, 4, 5])
def test_number_of_fused_subsets(m):
    subsets = fused_assistant_subsets(m)
    assert len(subsets) == 2**m - m - 1
    assert len(set(subsets)) == len(subsets)
    assert all(len(s) >= 2 and list(s) == sorted(s) and max(s) < m for s in subsets)
    assert [len(s) for s in subsets] == sorted(len(s) for s in subsets)  # by size
    probs = _random_probs(np.random.default_rng(m), (m, 3, 6))
    assert candidate_distributions(probs, subsets).shape == (2**m - 1, 3, 6)


def test_fused_is_mean_of_distributions():
    rng = np.random.default_rng(0)
    probs = _random_probs(rng, (3, 4, 7))
    subsets = fused_assistant_subsets(3)
    candidates = candidate_distributions(probs, subsets)
    np.testing.assert_allclose(candidates[:3], probs)
    for position, subset in enumerate(subsets, start=3):
        np.testing.assert_allclose(candidates[position], sum(probs[i] for i in subset) / len(subset), atol=1e-12)
    np.testing.assert_allclose(candidates.sum(-1), 1.0, atol=1e-12)
    assert assistant_names(["a", "b", "c"], subsets) == ["a", "b", "c", "a&b", "a&c", "b&c", "a&b&c"]


def test_weighted_fusion():
    probs = np.array([[[0.5, 0.5]], [[1.0, 0.0]], [[0.0, 1.0]]])
    np.testing.assert_allclose(fuse(probs, (0, 1), weights=[1.0, 3.0, 5.0]), [[0.875, 0.125]])
    np.testing.assert_allclose(fuse(probs, (1, 2), weights=[1.0, 3.0, 1.0]), [[0.75, 0.25]])
    np.testing.assert_allclose(fuse(probs, (0, 1)), [[0.75, 0.25]])
    weighted = candidate_distributions(probs, fused_assistant_subsets(3), weights=[1.0, 1.0, 2.0])
    np.testing.assert_allclose(weighted[-1], [[(0.5 + 1.0 + 0.0) / 4, (0.5 + 0.0 + 2.0) / 4]])


def test_softmax_temperature_and_padding():
    scores = np.array([[1.0, 2.0, np.nan]])
    p = softmax(scores, temperature=0.5)
    e = np.exp(np.array([2.0, 4.0]))
    np.testing.assert_allclose(p, [[e[0] / e.sum(), e[1] / e.sum(), 0.0]])


# --- divergences and rank distances ------------------------------------------------------------


def test_kl_by_hand():
    teacher = np.array([[0.5, 0.25, 0.25], [0.1, 0.6, 0.3]])
    candidates = np.array([teacher, [[1 / 3] * 3, [0.2, 0.2, 0.6]]])
    values = kl_divergence(teacher, candidates)
    q0 = 0.5 * np.log(0.5 * 3) + 2 * 0.25 * np.log(0.25 * 3)
    q1 = 0.1 * np.log(0.1 / 0.2) + 0.6 * np.log(0.6 / 0.2) + 0.3 * np.log(0.3 / 0.6)
    np.testing.assert_allclose(values, [0.0, (q0 + q1) / 2], atol=1e-9)


def test_ranks_and_footrule_by_hand():
    assert ranks(np.array([0.1, 0.7, 0.2])).tolist() == [2, 0, 1]
    assert ranks(np.array([0.5, 0.5, 0.9])).tolist() == [1, 2, 0]  # ties broken by position
    teacher = np.array([[0.6, 0.3, 0.1]])  # ranks 0 1 2
    candidates = np.array(
        [
            [[0.1, 0.3, 0.6]],  # ranks 2 1 0 -> |0-2| + 0 + |2-0| = 4
            [[0.3, 0.6, 0.1]],  # ranks 1 0 2 -> 1 + 1 + 0 = 2
            [[0.5, 0.4, 0.1]],
        ]
    )  # same order -> 0
    np.testing.assert_allclose(spearman_footrule(teacher, candidates), [4, 2, 0])


def _rbo_loop(teacher_scores, candidate_scores, p):
    """RBO_ext written out literally: (X_C / C) p^C + (1 - p)/p * sum_d (X_d / d) p^d."""
    a = list(np.argsort(-teacher_scores, kind="stable"))
    b = list(np.argsort(-candidate_scores, kind="stable"))
    count = len(a)
    total = 0.0
    overlap = 0
    for d in range(1, count + 1):
        overlap = len(set(a[:d]) & set(b[:d]))
        total += overlap / d * p**d
    return overlap / count * p**count + (1 - p) / p * total


def test_rbo_identical_rankings_is_one():
    teacher = _random_probs(np.random.default_rng(1), (5, 9))
    values = rank_biased_overlap(teacher, teacher[None], p=0.9)
    np.testing.assert_allclose(values, [1.0], atol=1e-12)


def test_rbo_small_example_by_hand():
    teacher = np.array([[0.5, 0.3, 0.2]])  # order 0 1 2
    reversed_ = np.array([[[0.2, 0.3, 0.5]]])  # order 2 1 0: X_1 = 0, X_2 = 1, X_3 = 3
    p = 0.5
    expected = (3 / 3) * p**3 + (1 - p) / p * (0 / 1 * p + 1 / 2 * p**2 + 3 / 3 * p**3)
    np.testing.assert_allclose(rank_biased_overlap(teacher, reversed_, p), [expected])


@pytest.mark.parametrize("p", [0.5, 0.9, 0.98])
def test_rbo_matches_loop_on_random_rankings(p):
    rng = np.random.default_rng(int(p * 100))
    teacher = rng.normal(size=(4, 11))
    candidates = rng.normal(size=(3, 4, 11))
    expected = [np.mean([_rbo_loop(teacher[q], candidates[a, q], p) for q in range(4)]) for a in range(3)]
    np.testing.assert_allclose(rank_biased_overlap(teacher, candidates, p), expected, atol=1e-12)
    assert all(0 <= v <= 1 for v in expected)


# --- selection ---------------------------------------------------------------------------------


def test_select_assistant_argmin_and_argmax():
    rng = np.random.default_rng(5)
    teacher = _random_probs(rng, (6, 8))
    far = _random_probs(rng, (3, 6, 8))
    close = softmax(np.log(teacher) + rng.normal(scale=0.01, size=teacher.shape))
    candidates = np.concatenate([far[:2], close[None], far[2:]])  # the close one is candidate 2
    for method in ("kl", "footrule"):
        chosen, values = select_assistant(teacher, candidates, method)
        assert chosen == 2 == int(np.argmin(values)), method
    chosen, values = select_assistant(teacher, candidates, "rbo", rbo_p=0.9)
    assert chosen == 2 == int(np.argmax(values))
    # with the identical distribution as a candidate it wins every method
    exact = np.concatenate([candidates, teacher[None]])
    assert select_assistant(teacher, exact, "kl")[0] == 4
    assert select_assistant(teacher, exact, "rbo")[0] in (2, 4)  # same ranking gives RBO 1
    with pytest.raises(ValueError, match="unknown selection method"):
        select_assistant(teacher, candidates, "best")


def test_random_selection_is_seeded():
    candidates = _random_probs(np.random.default_rng(0), (7, 2, 5))
    teacher = candidates[0]
    draws = [select_assistant(teacher, candidates, "random", rng=np.random.default_rng(42))[0] for _ in range(3)]
    assert len(set(draws)) == 1
    sequence = [select_assistant(teacher, candidates, "random", rng=np.random.default_rng(42))[0]]
    rng = np.random.default_rng(42)
    many = [select_assistant(teacher, candidates, "random", rng=rng)[0] for _ in range(300)]
    assert many[0] == sequence[0]
    assert set(many) == set(range(7))  # uniform over all candidates
    assert np.isnan(select_assistant(teacher, candidates, "random", rng=rng)[1]).all()
