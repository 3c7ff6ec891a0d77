"""Training queries beyond the labelled split, cut out of the passages themselves.

Distillation needs only the teacher's scores, so any text that asks for a passage can be a training query.
Three kinds, each with its source passage as the contrastive positive (``data.pseudo_queries``):

* ``title`` -- the passage's title (BEIR layouts), at least ``min_words`` words;
* ``sentence`` -- one sentence of the passage: the inverse cloze task (Lee, Chang, Toutanova, ACL 2019). The
  sentence stays in the passage (the corpus is shared with evaluation and is never edited), which makes the
  task easier than ICT's 90% removal;
* ``span`` -- a random crop of ``span_words`` words (Contriever's cropping, Izacard et al., TMLR 2022).

Rules: texts are compared after lower-casing and collapsing white space; duplicates are dropped (the first
kept), every text equal to a test query is dropped, and with ``exclude_test_positives`` no passage judged
relevant to a test query is a source (so that the claims can be read with and without transduction).

>>> from mta4dpr_core.retrieval.data import Corpus
>>> corpus = Corpus(["d1", "d2"], ["Cats purr. They sleep all day long in the sun.", "Dogs bark at night."],
...                 titles=["On cats and their sleep", ""])
>>> split = pseudo_query_split(corpus, kinds=["title", "sentence"], seed=0, min_words=3)
>>> [(q, t) for q, t in zip(split.query_ids, split.query_texts)]
[('pseudo-title-d1', 'On cats and their sleep'), ('pseudo-sentence-d1', 'They sleep all day long in the sun.'), ('pseudo-sentence-d2', 'Dogs bark at night.')]
>>> split.qrels['pseudo-sentence-d2']
{'d2': 1}
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np

from ..config.errors import ParamsError
from .data import Corpus, Split

KINDS = ("title", "sentence", "span")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def normalise(text: str) -> str:
    return " ".join(str(text).lower().split())


def _title(corpus: Corpus, i: int, rng, min_words: int, span_words) -> str | None:
    title = corpus.titles[i] if corpus.titles else ""
    return title if len(title.split()) >= min_words else None


def _body(corpus: Corpus, i: int) -> str:
    title = corpus.titles[i] if corpus.titles else ""
    text = corpus.texts[i]
    return text[len(title) :].strip() if title and text.startswith(title) else text


def _sentence(corpus: Corpus, i: int, rng, min_words: int, span_words) -> str | None:
    sentences = [s for s in _SENTENCE.split(_body(corpus, i)) if len(s.split()) >= min_words]
    return sentences[int(rng.integers(len(sentences)))] if sentences else None


def _span(corpus: Corpus, i: int, rng, min_words: int, span_words) -> str | None:
    words = _body(corpus, i).split()
    low, high = span_words
    if len(words) < max(low, min_words):
        return None
    length = int(rng.integers(low, min(high, len(words)) + 1))
    start = int(rng.integers(0, len(words) - length + 1))
    return " ".join(words[start : start + length])


MAKERS = {"title": _title, "sentence": _sentence, "span": _span}


def pseudo_query_split(
    corpus: Corpus,
    kinds: Sequence[str],
    seed: int = 0,
    per_passage: int = 1,
    max_queries: int | None = None,
    exclude_texts: Iterable[str] = (),
    exclude_passages: Iterable[str] = (),
    min_words: int = 4,
    span_words: tuple[int, int] = (5, 20),
    name: str = "pseudo",
) -> Split:
    """A :class:`Split` of pseudo-queries over ``corpus``, each judged relevant (grade 1) to its source passage.
    Passages are visited in a fixed shuffle of ``seed``; ``max_queries`` caps the total (None: no cap)."""
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ParamsError("data.pseudo_queries.kinds", f"unknown kind {unknown[0]!r}; known: {list(KINDS)}")
    rng = np.random.default_rng(seed)
    banned = {normalise(t) for t in exclude_texts}
    excluded = set(exclude_passages)
    seen, ids, texts, qrels = set(), [], [], {}
    for i in rng.permutation(len(corpus)).tolist() if max_queries else range(len(corpus)):
        doc_id = corpus.ids[i]
        if doc_id in excluded:
            continue
        for kind in kinds:
            for n in range(per_passage if kind != "title" else 1):
                text = MAKERS[kind](corpus, i, rng, min_words, span_words)
                key = normalise(text) if text else None
                if not key or key in seen or key in banned:
                    continue
                seen.add(key)
                query_id = f"pseudo-{kind}-{doc_id}" + (f"-{n}" if n else "")
                ids.append(query_id)
                texts.append(text)
                qrels[query_id] = {doc_id: 1}
        if max_queries and len(ids) >= max_queries:
            break
    if max_queries:
        ids, texts = ids[:max_queries], texts[:max_queries]
        qrels = {q: qrels[q] for q in ids}
    return Split(name, ids, texts, qrels)


def with_pseudo_queries(train: Split, pseudo: Split) -> Split:
    """``train`` followed by ``pseudo`` (the labelled queries first, counted in ``labelled`` so that eval queries
    are drawn from them alone; ids never collide: pseudo ids are prefixed)."""
    clash = set(train.query_ids) & set(pseudo.query_ids)
    if clash:
        raise ParamsError("data.pseudo_queries", f"a pseudo-query id clashes with a training query: {sorted(clash)[0]}")
    return Split(
        train.name,
        list(train.query_ids) + list(pseudo.query_ids),
        list(train.query_texts) + list(pseudo.query_texts),
        {**train.qrels, **pseudo.qrels},
        train.relevance_level,
        labelled=len(train),
    )
