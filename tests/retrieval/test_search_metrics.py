"""Exact search, ir_measures evaluation against published anchors, run/ensemble/BM25 scorers."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import MatrixScorer

from mta4dpr_core.retrieval.data import Corpus, load_trec_run
from mta4dpr_core.retrieval.metrics import evaluate, run_from_arrays
from mta4dpr_core.retrieval.scorers import BM25Scorer, EnsembleScorer, RunScorer
from mta4dpr_core.retrieval.search import build_index, exact_search, numpy_search

# --- exact search ------------------------------------------------------------------------------


def test_faiss_exact_search_equals_numpy():
    rng = np.random.default_rng(0)
    docs = rng.normal(size=(500, 24)).astype(np.float32)
    queries = rng.normal(size=(17, 24)).astype(np.float32)
    scores, indices = exact_search(queries, docs, k=20, use_gpu=False)
    ref_scores, ref_indices = numpy_search(queries, docs, 20)
    assert scores.shape == indices.shape == (17, 20)
    assert scores.dtype == np.float32 and indices.dtype == np.int64
    np.testing.assert_array_equal(indices, ref_indices)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-5, atol=1e-4)
    # a prebuilt index gives the same answer; k above the corpus size is clipped
    index = build_index(docs[:8], use_gpu=False)
    s, i = exact_search(queries, k=50, index=index)
    assert i.shape == (17, 8)
    np.testing.assert_array_equal(i, numpy_search(queries, docs[:8], 8)[1])


def test_exact_search_breaks_ties_by_document_index():
    docs = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.5, 0.0], [1.0, 0.0]], np.float32)
    scores, indices = exact_search(np.array([[1.0, 0.0]], np.float32), docs, k=5, use_gpu=False)
    assert indices[0].tolist() == [0, 2, 4, 3, 1]
    assert scores[0].tolist() == [1.0, 1.0, 1.0, 0.5, 0.0]


@pytest.fixture
def without_faiss(monkeypatch):
    """build_index as on a machine with no FAISS installed."""
    from mta4dpr_core.retrieval import search

    monkeypatch.setattr(search, "_faiss", lambda: None)
    monkeypatch.setattr(search, "_warned", True)


def test_torch_index_without_faiss_equals_numpy_and_faiss(without_faiss):
    from mta4dpr_core.retrieval.search import TorchFlatIndex

    rng = np.random.default_rng(1)
    docs = rng.normal(size=(300, 16)).astype(np.float32)
    queries = rng.normal(size=(9, 16)).astype(np.float32)
    index = build_index(docs)
    assert isinstance(index, TorchFlatIndex) and index.ntotal == 300
    index.chunk = 4  # several query chunks
    scores, indices = exact_search(queries, k=25, index=index)
    ref_scores, ref_indices = numpy_search(queries, docs, 25)
    np.testing.assert_array_equal(indices, ref_indices)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-5, atol=1e-4)
    assert exact_search(queries, docs[:5], k=50)[1].shape == (9, 5)  # k clipped to the corpus


def test_torch_index_breaks_ties_by_document_index(without_faiss):
    docs = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.5, 0.0], [1.0, 0.0]], np.float32)
    scores, indices = exact_search(np.array([[1.0, 0.0]], np.float32), docs, k=5)
    assert indices[0].tolist() == [0, 2, 4, 3, 1]


# --- metrics -----------------------------------------------------------------------------------


@pytest.mark.parametrize("retriever, ndcg", [("BM25", 0.5058), ("SPLADEPP_ED", 0.7308)])
def test_dl19_published_ndcg(trecdl_dir, trecdl, retriever, ndcg):
    """Pyserini / RankLLM published DL19 nDCG@10 (PROVENANCE.md)."""
    run = load_trec_run(trecdl_dir / "runs" / f"dl19.{retriever}.trec.gz")
    split = trecdl.splits["dl19"]
    result = evaluate(run, split.qrels, ("nDCG@10", "MRR@10", "R@100"), split.relevance_level)
    assert result["nDCG@10"] == pytest.approx(ndcg, abs=5e-4)
    assert 0 < result["MRR@10"] <= 1 and 0 < result["R@100"] <= 1


def test_metrics_by_hand_with_relevance_level():
    qrels = {"q1": {"a": 1, "b": 2}, "q2": {"c": 2}, "q3": {"d": 1}}
    run = {"q1": {"x": 3.0, "a": 2.0, "b": 1.0}, "q2": {"y": 2.0, "z": 1.5, "c": 1.0}}  # q3 missing from the run
    binary = evaluate(run, qrels, ("MRR@10", "R@100"), relevance_level=1)
    assert binary["MRR@10"] == pytest.approx((1 / 2 + 1 / 3 + 0) / 3)
    assert binary["R@100"] == pytest.approx((1 + 1 + 0) / 3)
    graded = evaluate(run, qrels, ("MRR@10", "R@100"), relevance_level=2)
    assert graded["MRR@10"] == pytest.approx((1 / 3 + 1 / 3 + 0) / 3)  # q1's grade-1 "a" no longer counts
    assert graded["R@100"] == pytest.approx((1 + 1 + 0) / 3)  # q3 has no relevant passage: 0 (it is in the mean)
    ndcg = evaluate(run, qrels, ("nDCG@10",))["nDCG@10"]
    q1 = (1 / np.log2(3) + 2 / np.log2(4)) / (2 + 1 / np.log2(3))  # linear gains (trec_eval)
    q2 = (2 / np.log2(4)) / 2
    assert ndcg == pytest.approx((q1 + q2 + 0) / 3, abs=1e-6)
    per_query = evaluate(run, qrels, ("MRR@10",), per_query=True)["MRR@10"]
    assert per_query["q1"] == pytest.approx(0.5) and per_query["q2"] == pytest.approx(1 / 3)


def test_run_from_arrays_skips_padding():
    run = run_from_arrays(
        ["q1", "q2"], ["a", "b", "c"], np.array([[2.0, 1.0], [5.0, 0.0]]), np.array([[2, 0], [1, -1]])
    )
    assert run == {"q1": {"c": 2.0, "a": 1.0}, "q2": {"b": 5.0}}


@pytest.mark.parametrize("relevance_level", [1, 2])
def test_evaluate_equals_ir_measures_on_the_whole_run_with_ties(relevance_level):
    """``evaluate`` hands RR@10 the top of each ranking only (``top_of_run``): the values are ir_measures' on the
    whole run, bit for bit, also where scores tie across the tenth rank (scores here take 7 values)."""
    import ir_measures

    from mta4dpr_core.retrieval.metrics import NAMES, measure

    rng = np.random.default_rng(5)
    docs = [f"d{i}" for i in range(300)]
    qrels = {f"q{i}": {docs[j]: int(rng.integers(1, 3)) for j in rng.choice(300, 4, replace=False)} for i in range(40)}
    run = {
        q: {docs[j]: float(rng.integers(0, 7)) for j in rng.choice(300, int(rng.integers(5, 120)), replace=False)}
        for q in qrels
    }
    ours = evaluate(run, qrels, NAMES, relevance_level, per_query=True)
    for name in NAMES:
        expected = {m.query_id: m.value for m in ir_measures.iter_calc([measure(name, relevance_level)], qrels, run)}
        assert ours[name] == expected, name
    assert any(len(docs) > 10 for docs in run.values())
    ties = [
        q
        for q, d in run.items()
        if len(d) > 10 and sorted(d.values(), reverse=True)[9] == sorted(d.values(), reverse=True)[10]
    ]
    assert ties  # the case that matters: the tenth rank is a tie


def test_run_from_arrays_gives_the_floats_of_each_element():
    scores = np.random.default_rng(1).random((3, 50), dtype=np.float32)
    indices = np.random.default_rng(2).permutation(200)[:150].reshape(3, 50)
    indices[1, 7] = -1
    doc_ids = [f"d{i}" for i in range(200)]
    run = run_from_arrays(["a", "b", "c"], doc_ids, scores, indices)
    for row, query in enumerate("abc"):
        expected = {doc_ids[j]: float(s) for s, j in zip(scores[row], indices[row], strict=True) if j >= 0}
        assert list(run[query].items()) == list(expected.items())


# --- run scorer --------------------------------------------------------------------------------


def test_run_scorer_missing_pair_rule(tmp_path):
    path = tmp_path / "run.trec"
    path.write_text("q1 Q0 b 1 5.0 t\nq1 Q0 d 2 3.0 t\nq1 Q0 zz 3 -4.0 t\n")  # zz is not in the corpus
    corpus = Corpus(ids=["a", "b", "c", "d"], texts=["A", "B", "C", "D"])
    scorer = RunScorer([path]).prepare(corpus)
    scores = scorer.score(["q1", "q2"], ["", ""], np.array([[0, 1, 2, 3, -1], [0, 1, 2, 3, -1]]))
    lowest = -4.0 - 1.0  # the query's lowest run score minus 1 (the out-of-corpus entry still counts)
    np.testing.assert_array_equal(scores[0, :4], [lowest, 5.0, lowest, 3.0])
    np.testing.assert_array_equal(scores[1, :4], [0.0, 0.0, 0.0, 0.0])  # query absent from the run
    assert np.isnan(scores[:, 4]).all()
    top_scores, top = scorer.search(["q1"], [""], 3)
    assert top[0].tolist() == [1, 3, 0]  # retrieved first, then unscored by document index
    assert top_scores[0].tolist() == [5.0, 3.0, lowest]


# --- ensemble ----------------------------------------------------------------------------------


def test_ensemble_z_score_combination_by_hand():
    rng = np.random.default_rng(3)
    n_docs = 12
    corpus = Corpus(ids=[str(j) for j in range(n_docs)], texts=["x"] * n_docs)
    query_ids = ["q0", "q1"]
    a = rng.normal(5.0, 3.0, size=(2, n_docs))
    b = rng.normal(0.0, 0.1, size=(2, n_docs))
    ensemble = EnsembleScorer([MatrixScorer(query_ids, a, "a"), MatrixScorer(query_ids, b, "b")], [0.3, 0.7]).prepare(
        corpus
    )
    by_hand = np.zeros((2, n_docs))
    for r in range(2):
        for w, m in ((0.3, a[r]), (0.7, b[r])):
            mean = sum(m) / n_docs
            std = (sum((x - mean) ** 2 for x in m) / n_docs) ** 0.5
            by_hand[r] += w * (m - mean) / std
    doc_idx = np.array([[0, 5, 11, -1], [3, 3, 7, 1]])
    got = ensemble.score(query_ids, ["", ""], doc_idx)
    expected = np.where(doc_idx >= 0, np.take_along_axis(by_hand, np.where(doc_idx >= 0, doc_idx, 0), 1), np.nan)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    # search reranks the union of the members' top lists by the combined score
    scores, top = ensemble.search(query_ids, ["", ""], 4)
    np.testing.assert_array_equal(top, np.argsort(-by_hand, axis=1, kind="stable")[:, :4])
    np.testing.assert_allclose(scores, np.sort(by_hand, axis=1)[:, ::-1][:, :4], atol=1e-4)


def test_ensembles_sharing_a_member_compute_its_statistics_once():
    rng = np.random.default_rng(4)
    n_docs = 10
    corpus = Corpus(ids=[str(j) for j in range(n_docs)], texts=["x"] * n_docs)
    query_ids = ["q0", "q1", "q2"]
    a, b = rng.normal(size=(3, n_docs)), rng.normal(2.0, 5.0, size=(3, n_docs))

    class Counting(MatrixScorer):
        calls = 0

        def score(self, ids, texts, doc_idx):
            if doc_idx.shape[1] == n_docs:  # the statistics sample (the whole corpus here)
                type(self).calls += 1
            return super().score(ids, texts, doc_idx)

    shared_a, shared_b = Counting(query_ids, a, "a"), Counting(query_ids, b, "b")
    doc_idx = np.tile(np.arange(n_docs), (3, 1))[:, :7]
    for weight in (0.2, 0.5, 0.8):
        got = (
            EnsembleScorer([shared_a, shared_b], [weight, 1 - weight])
            .prepare(corpus)
            .score(query_ids, [""] * 3, doc_idx)
        )
        alone = EnsembleScorer([MatrixScorer(query_ids, a, "a"), MatrixScorer(query_ids, b, "b")], [weight, 1 - weight])
        np.testing.assert_array_equal(got, alone.prepare(corpus).score(query_ids, [""] * 3, doc_idx))
    assert Counting.calls == 2  # once per member, not once per member and hybrid
    # another corpus (even of the same size) gets its own statistics
    other = Corpus(ids=[str(j) for j in range(n_docs)], texts=["y"] * n_docs)
    EnsembleScorer([shared_a, shared_b], [0.5, 0.5]).prepare(other).score(query_ids, [""] * 3, doc_idx)
    assert Counting.calls == 4


# --- BM25 on real data -------------------------------------------------------------------------


def test_bm25_scifact_test(scifact):
    corpus, split = scifact.corpus, scifact.splits["test"]
    scorer = BM25Scorer().prepare(corpus)
    scores, top = scorer.search(split.query_ids, split.query_texts, 100)
    result = evaluate(run_from_arrays(split.query_ids, corpus.ids, scores, top), split.qrels, ("nDCG@10", "MRR@10"))
    assert result["nDCG@10"] > 0.65
    # score() agrees with the scores search returned
    again = scorer.score(split.query_ids[:5], split.query_texts[:5], top[:5, :10])
    np.testing.assert_allclose(again, scores[:5, :10], rtol=1e-6)
    assert (np.diff(scores, axis=1) <= 0).all()
