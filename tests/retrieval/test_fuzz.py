"""Texts real collections hold, through the scorers and the BEIR loaders (generated data, no model files).

Empty after tokenisation (``M&M's``, stopwords only), punctuation only, very long, non-Latin
scripts, emoji, control characters, duplicates; plus seeded random mixes of them. Also: queries with
hundreds of positives through construction and training, and ``evaluation.ignore_identical_ids``
for collections whose queries are also passages.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from conftest import MatrixScorer, tiny_static_encoder

from mta4dpr_core.retrieval.data import Corpus, Split, load_collection
from mta4dpr_core.retrieval.scorers import BM25Scorer, DenseScorer

ODD_TEXTS = [
    "M&M's",  # nothing left after stopwords and stemming
    "the and of to a",  # stopwords only
    "?!... --- ;;; ()[]{} ''",  # punctuation only
    "'",
    "x",  # shorter than a BM25 token
    "Ελληνικά κείμενα για την ανάκτηση",  # Greek
    "Поиск информации по запросу",  # Cyrillic
    "情報検索の研究",  # Japanese
    "استرجاع المعلومات",  # Arabic (right to left)
    "🙂🙂🙂 🚀",  # emoji only
    "cats 🐱 and dogs 🐶 living together",
    "tab\tseparated\u00a0nbsp\u200bzero-width",
    "aspirin " * 3000,  # very long
    "protein folding in cells",
    "protein folding in cells",  # duplicate text
    "PROTEIN Folding IN Cells",
    "e = mc^2 ∑∫√ ≤ ≥",
]


def _random_texts(n, seed):
    rng = np.random.default_rng(seed)
    pieces = [
        "the",
        "M&M's",
        "!!",
        "protein",
        "情報",
        "🙂",
        "ß",
        "naïve",
        "",
        " ",
        "a" * 50,
        "cells",
        "Поиск",
        "\u200b",
        "42",
    ]
    return [" ".join(rng.choice(pieces, size=rng.integers(1, 12)).tolist()).strip() or "?" for _ in range(n)]


# --- BM25 ------------------------------------------------------------------------------------------


def _bm25_warnings(caplog):
    return [
        r for r in caplog.records if r.name == "mta4dpr_core.retrieval.scorers" and "no BM25 token" in r.getMessage()
    ]


def test_bm25_query_without_tokens_scores_zero_with_one_warning(caplog):
    corpus = Corpus(
        [f"d{i}" for i in range(4)], ["candy like M&M's", "protein folding", "the cell", "folding proteins in cells"]
    )
    scorer = BM25Scorer().prepare(corpus)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mta4dpr_core.retrieval.scorers"):
        full = scorer.full_scores(["M&M's", "protein", "the of", "!!!", "protein"])
    assert full.shape == (5, 4) and np.all(full[[0, 2, 3]] == 0) and full[1].max() > 0
    warnings = _bm25_warnings(caplog)
    assert len(warnings) == 1 and "3 of 4 queries" in warnings[0].getMessage()
    scores, indices = scorer.search(["q"], ["M&M's"], 3)
    assert np.all(scores == 0) and indices.tolist() == [[0, 1, 2]]  # ties by document index
    assert np.array_equal(scorer.score(["q"], ["M&M's"], np.array([[1, -1]]))[0, :1], [0.0])


@pytest.mark.parametrize(
    "corpus_texts", [ODD_TEXTS, ["M&M's", "!!!"], _random_texts(40, 0)], ids=["odd", "no-token-at-all", "random"]
)
def test_bm25_fuzz(corpus_texts, caplog):
    corpus = Corpus([f"d{i}" for i in range(len(corpus_texts))], list(corpus_texts))
    scorer = BM25Scorer().prepare(corpus)
    queries = ODD_TEXTS + _random_texts(30, 1)
    full = scorer.full_scores(queries)
    assert full.shape == (len(queries), len(corpus)) and np.isfinite(full).all() and (full >= 0).all()
    scores, indices = scorer.search([str(i) for i in range(len(queries))], queries, 5)
    assert indices.shape == (len(queries), min(5, len(corpus))) and (indices >= 0).all()
    assert np.isfinite(scorer.score([], [], np.zeros((0, 2), np.int64))).all()


# --- a dense (static) encoder --------------------------------------------------------------------


def test_static_dense_scorer_fuzz(tmp_path):
    encoder = tiny_static_encoder(4, 8, dim=16)
    corpus_texts = ODD_TEXTS + ["d1 d2", "q0 d3"] + _random_texts(20, 2)
    corpus = Corpus([f"d{i}" for i in range(len(corpus_texts))], corpus_texts)
    scorer = DenseScorer(encoder, "static", max_query_length=32, max_passage_length=64, cache=False).prepare(corpus)
    queries = ODD_TEXTS + ["q0 d3", ""] + _random_texts(20, 3)
    vectors = scorer.encode_queries(queries)
    assert vectors.shape == (len(queries), 16) and np.isfinite(vectors).all()
    scores, indices = scorer.search([str(i) for i in range(len(queries))], queries, 7)
    assert np.isfinite(scores).all() and (indices >= 0).all()
    assert np.isfinite(scorer.score(queries, queries, indices)).all()
    # duplicates encode identically; the very long text is truncated, not an error
    assert np.array_equal(vectors[13], vectors[14])


# --- BEIR loaders ----------------------------------------------------------------------------------


def _write_beir(directory, doc_texts, query_texts):
    directory.mkdir(parents=True)
    with open(directory / "corpus.jsonl", "w", encoding="utf-8") as handle:
        for i, text in enumerate(doc_texts):
            handle.write(json.dumps({"_id": f"doc{i}", "title": "", "text": text}, ensure_ascii=i % 2 == 0) + "\n")
    with open(directory / "queries.jsonl", "w", encoding="utf-8") as handle:
        for i, text in enumerate(query_texts):
            handle.write(json.dumps({"_id": f"q{i}", "text": text}, ensure_ascii=False) + "\n")
    (directory / "qrels").mkdir()
    lines = ["query-id\tcorpus-id\tscore"] + [f"q{i}\tdoc{i % len(doc_texts)}\t1" for i in range(len(query_texts))]
    (directory / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("texts", [ODD_TEXTS, _random_texts(25, 4)], ids=["odd", "random"])
def test_beir_loader_keeps_odd_texts(texts, tmp_path):
    kept = [t for t in texts if t.strip()]
    _write_beir(tmp_path / "odd", kept, kept)
    collection = load_collection(tmp_path / "odd")
    assert collection.corpus.texts == [t.strip() for t in kept]
    split = collection.splits["test"]
    assert dict(zip(split.query_ids, split.query_texts, strict=True)) == {
        f"q{i}": t.strip() for i, t in enumerate(kept)
    }
    assert BM25Scorer().prepare(collection.corpus).full_scores(split.query_texts).shape == (len(kept), len(kept))


# --- hundreds of positives per query -------------------------------------------------------------


def test_hundreds_of_positives_per_query(tmp_path):
    from mta4dpr_core.method.construction import build_training_data
    from mta4dpr_core.method.training import TrainConfig, train_student

    n_docs, n_queries, k, many = 700, 6, 5, 300
    rng = np.random.default_rng(5)
    corpus = Corpus([f"d{j}" for j in range(n_docs)], [f"d{j}" for j in range(n_docs)])
    ids = [str(i) for i in range(n_queries)]
    qrels = {q: {f"d{(i * 50 + j) % n_docs}": 1 for j in range(many if i % 2 == 0 else 3)} for i, q in enumerate(ids)}
    split = Split("train", ids, [f"q{i}" for i in range(n_queries)], qrels)
    assistants = [MatrixScorer(ids, rng.normal(size=(n_queries, n_docs)), name) for name in ("a", "b")]
    teacher = MatrixScorer(ids, rng.normal(size=(n_queries, n_docs)), "teacher")
    eval_mask = np.zeros(n_queries, bool)
    eval_mask[1] = True
    data = build_training_data(
        split, corpus, assistants, teacher, k=k, rrf_c=60, eval_mask=eval_mask, work_dir=tmp_path
    )
    assert data.candidates.shape == (5, many + k)
    positives = split.positives(corpus)
    for r, row in enumerate(data.query_rows):
        assert data.is_positive[r].sum() == len(positives[row])
        hard = data.candidates[r][many:]
        assert (hard >= 0).all() and not set(hard.tolist()) & set(positives[row])
    # the previous student mines failures over the same many-positive rows
    student = MatrixScorer(ids, rng.normal(size=(n_queries, n_docs)), "student")
    mined = build_training_data(
        split,
        corpus,
        assistants,
        teacher,
        k=k,
        rrf_c=60,
        eval_mask=eval_mask,
        work_dir=tmp_path,
        previous_student=student,
        mining=True,
        mining_max_rank=400,
    )
    assert mined.candidates.shape[1] == many + k
    config = TrainConfig(
        steps=2,
        queries_per_batch=4,
        negatives_per_query=3,
        warmup_steps=0,
        learning_rate=1e-2,
        assistant_temperatures=[1.0, 1.0],
        amp="off",
        seed=0,
    )
    record = train_student(tiny_static_encoder(n_queries, n_docs), data, corpus.texts, config)
    assert len(record) == 2 and all(np.isfinite(r["total"]) for r in record)


# --- queries that are also passages ----------------------------------------------------------------


def test_drop_identical_ids():
    from mta4dpr_core.retrieval.metrics import drop_identical_ids, evaluate

    run = {"a": {"a": 3.0, "b": 2.0, "c": 1.0}, "b": {"c": 2.0, "b": 1.0}}
    qrels = {"a": {"b": 1}, "b": {"c": 1}}
    assert drop_identical_ids(run) == {"a": {"b": 2.0, "c": 1.0}, "b": {"c": 2.0}}
    assert evaluate(run, qrels, ("MRR@10",))["MRR@10"] == pytest.approx(0.75)
    assert evaluate(drop_identical_ids(run), qrels, ("MRR@10",))["MRR@10"] == pytest.approx(1.0)


@pytest.mark.parametrize("ignore", [False, True])
def test_setup_evaluate_ignores_identical_ids(ignore, tmp_path):
    from mta4dpr_core.config.params import from_mapping
    from mta4dpr_core.experiments.experiment import Setup
    from mta4dpr_core.retrieval.data import Collection

    ids = ["p0", "p1", "p2", "p3"]
    corpus = Corpus(ids, ["zero", "one", "two", "three"])
    split = Split("test", ["p0", "p1"], ["zero", "one"], {"p0": {"p2": 1}, "p1": {"p3": 1}})
    # each query ranks itself first, then its relevant passage
    matrix = np.array([[9.0, 0.0, 5.0, 1.0], [0.0, 9.0, 1.0, 5.0]])
    scorer = MatrixScorer(["p0", "p1"], matrix, "self").prepare(corpus)
    params = from_mapping({"evaluation": {"ignore_identical_ids": ignore}} if ignore else {})
    setup = Setup(params, Collection("self", corpus, {"test": split}), split, split, {}, scorer, [], tmp_path, tmp_path)
    assert setup.evaluate(scorer, names=("MRR@10",))["MRR@10"] == pytest.approx(1.0 if ignore else 0.5)
