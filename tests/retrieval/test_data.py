"""Loaders on the real shared data (BEIR layout, TREC DL), TREC runs, subsampling, MS MARCO TSV layout."""

from __future__ import annotations

import pytest

from mta4dpr_core.config.errors import DataError
from mta4dpr_core.retrieval.data import (
    Corpus,
    Split,
    load_collection,
    load_trec_run,
    resolve_split,
    restrict_split,
    subsample_corpus,
    subsample_split,
)

# --- SciFact (BEIR layout), counts from PROVENANCE.md / the BEIR statistics ---------------------


def test_scifact_counts(scifact):
    assert scifact.name == "scifact"
    assert len(scifact.corpus) == 5183
    assert len(set(scifact.corpus.ids)) == 5183
    assert set(scifact.splits) == {"train", "test"}
    train, test = scifact.splits["train"], scifact.splits["test"]
    assert len(train) == 809 and len(test) == 300
    assert sum(len(docs) for docs in train.qrels.values()) == 919
    assert sum(len(docs) for docs in test.qrels.values()) == 339
    assert train.relevance_level == 1 and test.relevance_level == 1
    assert not set(train.query_ids) & set(test.query_ids)
    # query texts line up with their ids, and every query has a relevant passage in the corpus
    assert len(test.query_texts) == len(test.query_ids) and all(test.query_texts)
    assert all(len(p) >= 1 for p in test.positives(scifact.corpus))


def test_scifact_passage_text_is_title_then_abstract(scifact):
    text = scifact.corpus.texts[scifact.corpus.index["4983"]]
    assert text.startswith("Microstructural development of human newborn cerebral white matter")
    assert "Alterations of the architecture of cerebral white matter in the developing human brain" in text


def test_positives_are_corpus_indices_of_relevant_passages(scifact):
    test = scifact.splits["test"]
    positives = test.positives(scifact.corpus)
    for query_id, rows in zip(test.query_ids[:50], positives[:50], strict=True):
        assert sorted(scifact.corpus.ids[i] for i in rows) == sorted(test.qrels[query_id])


def test_query_ids_in_natural_order(scifact):
    ids = scifact.splits["train"].query_ids
    assert [int(q) for q in ids] == sorted(int(q) for q in ids)


# --- TREC DL (BEIR layout with graded judgments) ----------------------------------------------


def test_trecdl_counts_and_relevance_level(trecdl):
    assert len(trecdl.corpus) == 40873
    assert set(trecdl.splits) == {"dl19", "dl20"}
    dl19, dl20 = trecdl.splits["dl19"], trecdl.splits["dl20"]
    assert len(dl19) == 43 and len(dl20) == 54
    assert sum(len(d) for d in dl19.qrels.values()) == 9260
    assert sum(len(d) for d in dl20.qrels.values()) == 11386
    assert dl19.relevance_level == 2 and dl20.relevance_level == 2


def test_trecdl_positives_use_grade_two_and_up(trecdl):
    dl19 = trecdl.splits["dl19"]
    positives = dl19.positives(trecdl.corpus)
    expected = sum(1 for docs in dl19.qrels.values() for g in docs.values() if g >= 2)
    assert sum(len(p) for p in positives) == expected == 1804 + 697  # grades 2 and 3 (PROVENANCE.md)


def test_resolve_split(data_root, scifact):
    collection, split = resolve_split(data_root, "scifact/test")
    assert collection is scifact  # cached per process
    assert split is scifact.splits["test"]
    with pytest.raises(DataError, match="split 'dev' not found"):
        resolve_split(data_root, "scifact/dev")
    with pytest.raises(DataError, match="must look like"):
        resolve_split(data_root, "scifact")


# --- TREC runs ---------------------------------------------------------------------------------


def test_load_trec_run_dl19_bm25(trecdl_dir, trecdl):
    run = load_trec_run(trecdl_dir / "runs" / "dl19.BM25.trec.gz")
    assert set(run) == set(trecdl.splits["dl19"].query_ids)
    assert sum(len(docs) for docs in run.values()) == 4300
    top = run["264014"]
    assert top["5611210"] == pytest.approx(15.780599594116211)
    assert max(top, key=top.get) == "5611210"


def test_load_trec_run_plain_text(tmp_path):
    path = tmp_path / "run.trec"
    path.write_text("q1 Q0 d1 1 2.5 tag\nq1 Q0 d2 2 1.5 tag\nq2 Q0 d1 1 -0.5 tag\n")
    assert load_trec_run(path) == {"q1": {"d1": 2.5, "d2": 1.5}, "q2": {"d1": -0.5}}


# --- subsampling -------------------------------------------------------------------------------


def test_subsample_split_is_seeded_and_consistent(scifact):
    train = scifact.splits["train"]
    a = subsample_split(train, 50, seed=1)
    b = subsample_split(train, 50, seed=1)
    c = subsample_split(train, 50, seed=2)
    assert len(a) == 50 and a.query_ids == b.query_ids and a.query_ids != c.query_ids
    assert set(a.query_ids) <= set(train.query_ids)
    # order of the original split is kept, texts and qrels follow their ids
    positions = [train.query_ids.index(q) for q in a.query_ids]
    assert positions == sorted(positions)
    for q, text in zip(a.query_ids, a.query_texts, strict=True):
        assert text == train.query_texts[train.query_ids.index(q)]
        assert a.qrels[q] == train.qrels[q]
    assert subsample_split(train, None) is train and subsample_split(train, 10_000) is train


def test_subsample_corpus_keeps_judged_passages(scifact):
    test = subsample_split(scifact.splits["test"], 20, seed=2)
    judged = {d for q in test.query_ids for d in test.qrels[q]}
    small = subsample_corpus(scifact.corpus, 100, judged, seed=3)
    assert len(small) == 100
    assert judged <= set(small.ids)
    assert len(set(small.ids)) == 100
    for doc_id, text in zip(small.ids, small.texts, strict=True):
        assert text == scifact.corpus.texts[scifact.corpus.index[doc_id]]
        assert small.ids[small.index[doc_id]] == doc_id
    again = subsample_corpus(scifact.corpus, 100, judged, seed=3)
    assert again.ids == small.ids
    assert subsample_corpus(scifact.corpus, None) is scifact.corpus


def test_restrict_split_drops_unjudged_and_empty_queries():
    corpus = Corpus(ids=["a", "b", "c"], texts=["x", "y", "z"])
    split = Split(
        "t",
        ["1", "2", "3"],
        ["one", "two", "three"],
        {"1": {"a": 1, "zz": 1}, "2": {"zz": 1}, "3": {"b": 0, "c": 2}},
        relevance_level=1,
    )
    out = restrict_split(split, corpus)
    assert out.query_ids == ["1", "3"]
    assert out.query_texts == ["one", "three"]
    assert out.qrels == {"1": {"a": 1}, "3": {"b": 0, "c": 2}}
    graded = restrict_split(
        Split("t", ["1", "3"], ["one", "three"], {"1": {"a": 1}, "3": {"c": 2}}, relevance_level=2), corpus
    )
    assert graded.query_ids == ["3"]  # query 1's only judgment is below the relevance level


# --- MS MARCO TSV layout -----------------------------------------------------------------------


def test_msmarco_tsv_layout(tmp_path):
    root = tmp_path / "tiny-msmarco"
    root.mkdir()
    (root / "collection.tsv").write_text(
        "0\tThe capital of France is Paris.\n1\tBerlin is in Germany.\n2\tRome is old.\n"
    )
    (root / "queries.train.tsv").write_text("100\twhat is the capital of france\n101\twhere is berlin\n")
    (root / "qrels.train.tsv").write_text("100\t0\t0\t1\n101\t0\t1\t1\n101\t0\t2\t0\n")
    collection = load_collection(root)
    assert collection.name == "tiny-msmarco"
    assert collection.corpus.ids == ["0", "1", "2"]
    assert collection.corpus.texts[0] == "The capital of France is Paris."
    train = collection.splits["train"]
    assert train.query_ids == ["100", "101"]
    assert train.query_texts == ["what is the capital of france", "where is berlin"]
    assert train.qrels == {"100": {"0": 1}, "101": {"1": 1, "2": 0}}
    assert train.positives(collection.corpus) == [[0], [1]]


def test_msmarco_tsv_qrels_naming_unknown_document(tmp_path):
    root = tmp_path / "bad"
    root.mkdir()
    (root / "collection.tsv").write_text("0\tA passage.\n")
    (root / "queries.train.tsv").write_text("1\ta query\n")
    (root / "qrels.train.tsv").write_text("1\t0\t0\t1\n1\t0\t7\t1\n")
    with pytest.raises(DataError, match=r"qrels\.train\.tsv:2: qrels name unknown document '7'"):
        load_collection(root)


def test_no_layout_found(tmp_path):
    with pytest.raises(DataError, match="no corpus.jsonl"):
        load_collection(tmp_path)
