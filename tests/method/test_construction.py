"""Training-data construction (3.2.1): RRF, candidate merging, the pair-score cache, mining, storage."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import MatrixScorer, make_training_data

from mta4dpr_core.method.construction import (
    PairScoreStore,
    TrainingData,
    build_training_data,
    merge_candidates,
    mine_student_failures,
    reciprocal_rank_fusion,
    retrieve_negatives,
    score_with_cache,
    split_eval_queries,
    top_by_rrf,
)
from mta4dpr_core.retrieval.data import Corpus, Split

NAN = np.nan


# --- reciprocal rank fusion --------------------------------------------------------------------


def test_reciprocal_rank_fusion_by_hand():
    scores = np.array(
        [
            [[3.0, 1.0, 2.0, NAN, NAN]],  # ranks d0=1, d2=2, d1=3; d3 not ranked
            [[NAN, 5.0, 4.0, 1.0, NAN]],  # ranks d1=1, d2=2, d3=3; d0 not ranked
        ]
    )
    fused = reciprocal_rank_fusion(scores, c=60)
    expected = [1 / 61, 1 / 63 + 1 / 61, 1 / 62 + 1 / 62, 1 / 63, -np.inf]
    np.testing.assert_allclose(fused[0], expected)
    # c changes the weights
    assert reciprocal_rank_fusion(scores, c=0)[0, 0] == pytest.approx(1.0)


def test_top_by_rrf_orders_and_pads():
    candidates = np.array([[7, 3, 9, 5, -1], [4, 2, -1, -1, -1]])
    fused = np.array([[0.1, 0.3, 0.3, 0.2, -np.inf], [0.5, 0.6, -np.inf, -np.inf, -np.inf]])
    top = top_by_rrf(candidates, fused, 4)
    assert top.tolist() == [[3, 9, 5, 7], [2, 4, -1, -1]]  # equal RRF: lower document index first
    wide = top_by_rrf(candidates, fused, 7)
    assert wide.shape == (2, 7) and wide[0].tolist() == [3, 9, 5, 7, -1, -1, -1]


def test_merge_candidates_first_seen_union():
    a = np.array([[5, 1, 2], [0, -1, -1]])
    b = np.array([[2, 7, 5], [3, 0, 4]])
    merged = merge_candidates([a, b])
    assert merged.tolist() == [[5, 1, 2, 7], [0, 3, 4, -1]]


def test_retrieve_negatives_excludes_positives():
    matrix = np.array([[9, 8, 7, 6, 5, 4, 3, 2.0], [1, 2, 3, 4, 5, 6, 7, 8.0]])
    scorer = MatrixScorer(["a", "b"], matrix)
    out = retrieve_negatives(scorer, ["a", "b"], ["", ""], [[0, 2], [7]], k=3)
    assert out.tolist() == [[1, 3, 4], [6, 5, 4]]
    few = retrieve_negatives(scorer, ["a", "b"], ["", ""], [[0, 2], [7]], k=7)
    assert few[0].tolist() == [1, 3, 4, 5, 6, 7, -1]  # only 6 non-positive passages exist


# --- pair-score store --------------------------------------------------------------------------


def test_pair_score_store_roundtrip(tmp_path):
    path = tmp_path / "scores" / "s.npz"
    store = PairScoreStore(path, n_docs=10)
    values, found = store.lookup(np.array([3, 4]))
    assert not found.any() and np.isnan(values).all()
    store.add(np.array([12, 3, 12]), np.array([1.5, -2.0, 9.0], np.float32))
    values, found = store.lookup(np.array([3, 12, 11]))
    assert found.tolist() == [True, True, False]
    assert values[:2].tolist() == [-2.0, 1.5] and np.isnan(values[2])
    store.add(np.array([3, 50]), np.array([100.0, 7.0], np.float32))  # an existing key keeps its value
    store.save()
    reloaded = PairScoreStore(path, n_docs=10)
    values, found = reloaded.lookup(np.array([50, 3, 12, 0]))
    assert found.tolist() == [True, True, True, False]
    assert values[:3].tolist() == [7.0, -2.0, 1.5]
    assert len(PairScoreStore(path, n_docs=11).keys) == 0  # another corpus size: not reused


def test_score_with_cache_scores_only_unseen_pairs(tmp_path):
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(4, 20)).astype(np.float32)
    ids = ["q0", "q1", "q2", "q3"]
    scorer = MatrixScorer(ids, matrix)
    store = PairScoreStore(tmp_path / "s.npz", 20)
    rows = np.array([0, 1, 2, 3])
    first = np.array([[1, 2, -1], [3, 4, 5], [6, -1, -1], [7, 8, 9]])
    stats = {}
    out = score_with_cache(scorer, ids, ids, rows, first, store, stats)
    expected = np.where(first >= 0, np.take_along_axis(matrix, np.maximum(first, 0), 1), np.nan)
    np.testing.assert_array_equal(out, expected)
    assert scorer.pairs_scored == 9 and stats == {"pairs_scored": 9, "pairs_cached": 0}

    second = np.array([[1, 2, 10], [3, 4, 5], [6, 11, -1], [7, 8, 9]])  # 2 new pairs, rows 1 and 3 fully cached
    stats = {}
    out = score_with_cache(scorer, ids, ids, rows, second, store, stats)
    np.testing.assert_array_equal(
        out, np.where(second >= 0, np.take_along_axis(matrix, np.maximum(second, 0), 1), np.nan)
    )
    assert scorer.pairs_scored == 9 + 2
    assert stats == {"pairs_scored": 2, "pairs_cached": 9}
    store.save()
    again = PairScoreStore(tmp_path / "s.npz", 20)
    out = score_with_cache(scorer, ids, ids, rows, second, again)
    assert scorer.pairs_scored == 11  # everything now comes from disk
    assert np.isnan(out[2, 2]) and out[0, 2] == matrix[0, 10]


def test_split_eval_queries_seeded_and_sized():
    mask = split_eval_queries(200, 0.1, seed=13)
    assert mask.dtype == bool and mask.sum() == 20
    assert (split_eval_queries(200, 0.1, seed=13) == mask).all()
    assert (split_eval_queries(200, 0.1, seed=14) != mask).any()
    assert split_eval_queries(200, 0.001, seed=13, minimum=5).sum() == 5
    assert split_eval_queries(200, 0.0, seed=13).sum() == 0
    assert split_eval_queries(3, 0.9, seed=13).sum() == 2  # at least one training query is left


def test_eval_queries_come_from_the_labelled_queries_alone():
    # pseudo-queries follow the labelled ones; an eval query's judgment must be a real one
    mask = split_eval_queries(1000, 0.1, seed=13, eligible=200)
    assert mask.sum() == 20 and not mask[200:].any()
    # with every query labelled the mask is the one it always was (committed runs keep their eval sets)
    assert (split_eval_queries(200, 0.1, seed=13, eligible=200) == split_eval_queries(200, 0.1, seed=13)).all()


# --- mining the student's failures -------------------------------------------------------------


def _placing(n_docs, target_ranks, seed):
    """Scores over ``n_docs`` where doc ``d`` lands at 1-based rank ``r`` for each (d, r) in target_ranks."""
    rng = np.random.default_rng(seed)
    order = [d for d in rng.permutation(n_docs).tolist() if d not in target_ranks]
    for doc, rank in sorted(target_ranks.items(), key=lambda item: item[1]):
        order.insert(rank - 1, doc)
    scores = np.empty(n_docs, np.float32)
    scores[order] = np.arange(n_docs, 0, -1)
    return scores


def test_mine_student_failures_picks_exactly_teacher_right_student_wrong(tmp_path):
    n_docs, k, max_rank = 40, 3, 15
    positives = [[0], [1], [2], [3], [4], [5, 20], [6]]
    student_ranks = [{0: 1}, {1: 2}, {2: 15}, {3: 16}, {4: 5}, {20: 3, 5: 10}, {6: 7}]
    student = np.stack([_placing(n_docs, r, seed=i) for i, r in enumerate(student_ranks)])
    teacher = np.random.default_rng(9).normal(size=student.shape).astype(np.float32)
    for row, docs in enumerate(positives):
        teacher[row, docs[0]] = 10.0  # the teacher ranks a positive first ...
    teacher[4, int(np.argmax(student[4]))] = 20.0  # ... except on query 4, where the student's top negative wins
    teacher[6, 6] = -10.0  # ... and on query 6, where every student negative beats it
    ids = [f"q{i}" for i in range(7)]
    stats = {}
    rows, negatives = mine_student_failures(
        MatrixScorer(ids, student, "student"),
        MatrixScorer(ids, teacher, "teacher"),
        ids,
        ids,
        positives,
        np.arange(7),
        k,
        max_rank,
        PairScoreStore(tmp_path / "t.npz", n_docs),
        stats,
    )
    assert rows.tolist() == [1, 2, 5]  # ranks 2, 15 and 3 (first positive); not 1, 16, or teacher-wrong ones
    for row, negs in zip(rows, negatives, strict=True):
        expected = [d for d in np.argsort(-student[row], kind="stable").tolist() if d not in positives[row]][:k]
        assert negs.tolist() == expected
    empty_rows, empty_negs = mine_student_failures(
        None, None, ids, ids, positives, np.zeros(0, np.int64), k, max_rank, None, {}
    )
    assert empty_rows.shape == (0,) and empty_negs.shape == (0, k)


def test_build_training_data_with_fake_scorers(tmp_path):
    n_docs, n_queries, k = 30, 8, 4
    rng = np.random.default_rng(1)
    corpus = Corpus(ids=[f"d{j}" for j in range(n_docs)], texts=[f"text {j}" for j in range(n_docs)])
    ids = [str(i) for i in range(n_queries)]
    qrels = {q: {f"d{i}": 1, **({f"d{i + 10}": 1} if i == 0 else {})} for i, q in enumerate(ids)}
    split = Split("train", ids, [f"query {i}" for i in range(n_queries)], qrels)
    assistants = [MatrixScorer(ids, rng.normal(size=(n_queries, n_docs)), name) for name in ("a", "b")]
    teacher = MatrixScorer(ids, rng.normal(size=(n_queries, n_docs)), "teacher")
    eval_mask = np.zeros(n_queries, bool)
    eval_mask[[2, 5]] = True
    data = build_training_data(
        split, corpus, assistants, teacher, k=k, rrf_c=60, eval_mask=eval_mask, work_dir=tmp_path
    )
    assert data.query_rows.tolist() == [0, 1, 3, 4, 6, 7]
    assert data.candidates.shape == (6, 2 + k)  # widest positive list (2) + k hard negatives
    positives = split.positives(corpus)
    for r, row in enumerate(data.query_rows):
        cand = data.candidates[r]
        assert cand[: len(positives[row])].tolist() == positives[row]
        assert data.is_positive[r].tolist() == [c >= 0 for c in cand[:2]] + [False] * k
        hard = cand[2:]
        assert not set(hard.tolist()) & set(positives[row]) and (hard >= 0).all()
        valid = cand >= 0
        np.testing.assert_allclose(data.teacher_scores[r][valid], teacher.matrix[row, cand[valid]])
        for a, scorer in enumerate(assistants):
            np.testing.assert_allclose(data.assistant_scores[a, r][valid], scorer.matrix[row, cand[valid]])
    assert data.assistant_names == ["a", "b"] and data.origin.tolist() == [0] * 6
    # a second build finds every pair in the stores
    before = teacher.pairs_scored
    again = build_training_data(
        split, corpus, assistants, teacher, k=k, rrf_c=60, eval_mask=eval_mask, work_dir=tmp_path
    )
    assert teacher.pairs_scored == before and again.stats["pairs_scored"] == 0
    np.testing.assert_array_equal(again.candidates, data.candidates)


# --- storage -----------------------------------------------------------------------------------


def test_training_data_round_trip_and_corruption(tmp_path):
    data, _ = make_training_data(n_queries=6, n_docs=20, k=4, m=2)
    data.stats["note"] = "x"
    data.save(tmp_path / "d")
    loaded = TrainingData.load(tmp_path / "d")
    assert loaded is not None
    for name in TrainingData.ARRAYS:
        np.testing.assert_array_equal(np.asarray(getattr(loaded, name)), getattr(data, name))
        assert getattr(loaded, name).dtype == getattr(data, name).dtype
    assert isinstance(loaded.candidates, np.memmap)
    assert loaded.query_ids == data.query_ids and loaded.query_texts == data.query_texts
    assert loaded.assistant_names == data.assistant_names and loaded.stats == data.stats
    assert len(loaded) == 6

    path = tmp_path / "d" / "teacher_scores.npy"
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0x01
    path.write_bytes(bytes(raw))
    assert TrainingData.load(tmp_path / "d") is None
    assert TrainingData.load(tmp_path / "missing") is None


def test_first_non_positives_skips_each_querys_own_positives_and_padding():
    from mta4dpr_core.method.construction import first_non_positives

    ranked = np.array([[5, 1, 7, 2, 9, -1], [3, 4, -1, -1, -1, -1]])
    out = first_non_positives(ranked, [[1, 2], [4]], k=3)
    assert out.tolist() == [[5, 7, 9], [3, -1, -1]]
