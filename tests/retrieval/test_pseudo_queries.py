"""Pseudo-queries on real SciFact: never a test query's text, never (with the flag) a test positive's passage,
no duplicates, and each one's positive is the passage it was cut from."""

from __future__ import annotations

from pathlib import Path

import pytest

from mta4dpr_core.config.errors import ParamsError
from mta4dpr_core.config.params import load_params, profile_path, resolve_path
from mta4dpr_core.retrieval.data import load_collection
from mta4dpr_core.retrieval.pseudo_queries import normalise, pseudo_query_split, with_pseudo_queries

ROOT = resolve_path(load_params(profile_path("smoke"))["data"]["root"])
pytestmark = pytest.mark.skipif(not (Path(ROOT) / "scifact").is_dir(), reason="no shared SciFact")


@pytest.fixture(scope="module")
def scifact():
    return load_collection(Path(ROOT) / "scifact")


def _test_positives(split):
    return {d for q in split.query_ids for d, g in split.qrels[q].items() if g >= split.relevance_level}


def test_every_kind_is_cut_from_its_positive_and_nothing_repeats(scifact):
    corpus = scifact.corpus
    split = pseudo_query_split(corpus, ["title", "sentence", "span"], seed=1, max_queries=600)
    assert len(split) == 600 and len(set(map(normalise, split.query_texts))) == 600
    kinds = {q.split("-")[1] for q in split.query_ids}
    assert kinds == {"title", "sentence", "span"}
    for query_id, text in zip(split.query_ids, split.query_texts, strict=True):
        (doc_id,) = split.qrels[query_id]
        assert normalise(text) in normalise(corpus.texts[corpus.index[doc_id]])


def test_no_test_query_text_and_with_the_flag_no_test_positive(scifact):
    test = scifact.splits["test"]
    positives = _test_positives(test)
    kept = pseudo_query_split(
        scifact.corpus, ["title", "sentence"], exclude_texts=test.query_texts, exclude_passages=positives
    )
    sources = {d for q in kept.query_ids for d in kept.qrels[q]}
    assert not sources & positives
    assert not {normalise(t) for t in kept.query_texts} & {normalise(t) for t in test.query_texts}
    # the flag off: the test positives' passages are sources too (transductive), and the split only grows
    transductive = pseudo_query_split(scifact.corpus, ["title", "sentence"], exclude_texts=test.query_texts)
    assert {d for q in transductive.query_ids for d in transductive.qrels[q]} & positives
    assert len(transductive) > len(kept)


def test_the_same_seed_gives_the_same_split_and_another_seed_another(scifact):
    a = pseudo_query_split(scifact.corpus, ["span"], seed=3, max_queries=50)
    b = pseudo_query_split(scifact.corpus, ["span"], seed=3, max_queries=50)
    c = pseudo_query_split(scifact.corpus, ["span"], seed=4, max_queries=50)
    assert a.query_texts == b.query_texts and a.query_texts != c.query_texts


def test_merged_after_the_labelled_queries(scifact):
    train = scifact.splits["train"]
    merged = with_pseudo_queries(train, pseudo_query_split(scifact.corpus, ["title"], max_queries=10))
    assert merged.query_ids[: len(train)] == train.query_ids and len(merged) == len(train) + 10
    assert merged.labelled == len(train)  # eval queries are drawn from these alone
    with pytest.raises(ParamsError, match="kinds"):
        pseudo_query_split(scifact.corpus, ["question"])


def test_a_profile_with_pseudo_queries_trains_on_more_queries():
    from mta4dpr_core.config.params import apply_overrides
    from mta4dpr_core.experiments.experiment import Setup

    base = load_params(profile_path("smoke"))
    params = apply_overrides(
        load_params(profile_path("smoke")), ["data.pseudo_queries.kinds=[title]", "data.pseudo_queries.max_queries=25"]
    )
    plain, more = Setup.from_params(base, prepare=False), Setup.from_params(params, prepare=False)
    assert more.train.query_ids[: len(plain.train)] == plain.train.query_ids
    assert len(more.train) == len(plain.train) + 25
    assert all(q.startswith("pseudo-title-") for q in more.train.query_ids[len(plain.train) :])
    from mta4dpr_core.method.construction import eval_query_mask

    construction = more.params["construction"]
    assert (
        eval_query_mask(more.train, construction, 13)[: len(plain.train)]
        == eval_query_mask(plain.train, construction, 13)
    ).all()
    assert not eval_query_mask(more.train, construction, 13)[len(plain.train) :].any()
