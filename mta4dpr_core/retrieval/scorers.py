"""Scorers: anything that scores (query, passage) pairs and can retrieve.

Interface (all arrays are numpy; ``doc_idx`` are corpus row indices, -1 = padding)::

    scorer.prepare(corpus)                       # encode/index the corpus (cached on disk)
    scores, doc_idx = scorer.search(qids, qtexts, k)
    scores = scorer.score(qids, qtexts, doc_idx)  # [nq, c]; NaN where doc_idx < 0

Kinds: dense encoders (transformer, sentence-transformers, ONNX, static),
BM25 (bm25s), precomputed TREC runs, and a weighted ensemble of z-scored members.

Corpus encodings are cached under ``<cache>/encodings/<hash>.npy`` with a
checksum, keyed by the encoder identity, a digest of the texts and the max length.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..config import progress
from ..config.kinds import ENCODER_KINDS, KINDS
from ..config.models import default_cache_dir, resolve_model
from ..store.atomic import content_hash, save_array, texts_digest, try_load_array
from .data import Corpus, load_trec_run
from .encoders import build_encoder
from .search import build_index, exact_search

if TYPE_CHECKING:  # annotations only: transformers loads where a cross-encoder first scores
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)


class Scorer:
    name = "scorer"
    temperature = 1.0  # scores / temperature -> softmax over a query's candidates

    def prepare(self, corpus: Corpus) -> Scorer:
        self.corpus = corpus
        return self

    def search(self, query_ids: Sequence[str], query_texts: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores [Q, k], passage indices [Q, k]) of each query's top ``k`` passages of the prepared corpus."""
        raise NotImplementedError

    def score(self, query_ids: Sequence[str], query_texts: Sequence[str], doc_idx: np.ndarray) -> np.ndarray:
        """Scores [Q, c] of the passages ``doc_idx`` [Q, c] (indices below 0 are padding: NaN)."""
        raise NotImplementedError


def _gather(full_scores_fn, n_queries, doc_idx):
    out = np.full(doc_idx.shape, np.nan, dtype=np.float32)
    for row in range(n_queries):
        valid = doc_idx[row] >= 0
        out[row, valid] = full_scores_fn(row)[doc_idx[row, valid]]
    return out


class DenseScorer(Scorer):
    """Dual encoder: inner product of query and passage vectors, exact FAISS search.

    Encodings are cached by the encoder's identity (model name, pooling, ...), not its
    weights: wrap a *trained* encoder in ``experiment.StudentScorer``, which adds a
    fingerprint of the weights to the key.
    """

    def __init__(
        self,
        encoder,
        name,
        max_query_length=32,
        max_passage_length=256,
        batch_size=64,
        temperature=0.05,
        cache_dir=None,
        cache=True,
    ):
        self.encoder, self.name = encoder, name
        self.max_query_length, self.max_passage_length, self.batch_size = (
            max_query_length,
            max_passage_length,
            batch_size,
        )
        self.temperature = temperature
        self.cache_dir = Path(cache_dir or default_cache_dir())
        self.cache = cache
        self._query_cache = {}

    def cache_key(self, texts: Sequence[str], max_length: int) -> str:
        return content_hash(self.encoder.identity(), texts_digest(texts), max_length)

    def _encode_cached(self, texts, max_length, desc):
        if not self.cache:
            return self.encoder.encode(texts, max_length=max_length, batch_size=self.batch_size, desc=desc)
        path = self.cache_dir / "encodings" / f"{self.cache_key(texts, max_length)}.npy"
        cached = try_load_array(path)
        if cached is not None and cached.shape[0] == len(texts):
            return cached
        vectors = self.encoder.encode(texts, max_length=max_length, batch_size=self.batch_size, desc=desc)
        save_array(path, vectors)
        return vectors

    def prepare(self, corpus: Corpus) -> Scorer:
        self.corpus = corpus
        self.doc_embeddings = self._encode_cached(corpus.texts, self.max_passage_length, f"{self.name}: corpus")
        self.index = build_index(self.doc_embeddings)
        return self

    def encode_queries(self, query_texts: Sequence[str]) -> np.ndarray:
        """Query vectors, cached per text: a later call with another list (a subset, the
        mined queries of the next iteration) encodes only the texts never seen."""
        texts = list(query_texts)
        missing = [t for t in dict.fromkeys(texts) if t not in self._query_cache]
        if missing:
            vectors = self._encode_cached(missing, self.max_query_length, f"{self.name}: queries")
            self._query_cache.update(zip(missing, vectors, strict=True))
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self._query_cache[t] for t in texts])

    def search(self, query_ids: Sequence[str], query_texts: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        return exact_search(self.encode_queries(query_texts), k=k, index=self.index)

    # passage vectors gathered at once by score(): the gather grows with queries x candidates (an ensemble's
    # z-score sample is 2,000 passages: with 5,660 training queries and 384-d vectors, 17 GB in one piece)
    _GATHER_BYTES = 64 << 20

    def score(self, query_ids: Sequence[str], query_texts: Sequence[str], doc_idx: np.ndarray) -> np.ndarray:
        queries = self.encode_queries(query_texts)
        safe = np.where(doc_idx >= 0, doc_idx, 0)
        scores = np.empty(doc_idx.shape, dtype=np.float32)
        # einsum sums each row on its own, so slicing the rows gives the same bits as one call
        rows = max(1, self._GATHER_BYTES // max(1, safe.shape[1] * self.doc_embeddings.shape[1] * 4))
        for start in range(0, len(safe), rows):
            part = slice(start, start + rows)
            scores[part] = np.einsum("qd,qcd->qc", queries[part], self.doc_embeddings[safe[part]])
        return np.where(doc_idx >= 0, scores, np.nan).astype(np.float32)


_BM25_INDEXES: dict = {}  # (corpus texts digest, k1, b) -> (retriever, passages without a token)


class BM25Scorer(Scorer):
    """BM25 through bm25s (English stopwords, Snowball stemmer)."""

    def __init__(self, name="bm25", k1=0.9, b=0.4, temperature=1.0, cache_bytes=512 << 20):
        self.name, self.k1, self.b, self.temperature = name, k1, b, temperature
        self.cache_bytes = cache_bytes  # bound of the per-query full-score cache
        self._full = {}

    def _tokenize(self, texts, return_ids=True):
        """Corpus and queries go through the same stopwords and stemmer."""
        import bm25s  # noqa: PLC0415 (lazy: bm25s not loaded by this module)
        import Stemmer  # noqa: PLC0415 (lazy: Stemmer not loaded by this module)

        progress.quiet_libraries()  # importing bm25s sets its logger to DEBUG
        return bm25s.tokenize(
            list(texts), stopwords="en", stemmer=Stemmer.Stemmer("english"), show_progress=False, return_ids=return_ids
        )

    def prepare(self, corpus: Corpus) -> Scorer:
        self.corpus = corpus
        self._full = {}
        # one index per corpus text and (k1, b) in a process: the teacher's BM25 member, the BM25 baseline and
        # the teacher candidate index the same corpus (seconds each for the 40,873-passage DL pool)
        key = (texts_digest(corpus.texts), self.k1, self.b)
        if key not in _BM25_INDEXES:
            _BM25_INDEXES[key] = self._index(corpus)
        self.retriever, empty = _BM25_INDEXES[key]
        if empty:
            log.warning(
                "%s: %d of %d passages have no BM25 token after stopwords and stemming; they score 0 for every query",
                self.name,
                empty,
                len(corpus),
            )
        return self

    def _index(self, corpus):
        """``(bm25s retriever or None, passages without a token)``; the retriever is only read afterwards."""
        import bm25s  # noqa: PLC0415 (lazy: bm25s not loaded by this module)

        progress.quiet_libraries()
        tokenized = self._tokenize(corpus.texts)
        empty = sum(1 for ids in tokenized.ids if len(ids) == 0)
        # a corpus without a single token (all stopwords/punctuation): bm25s cannot index it; everything scores 0
        retriever = bm25s.BM25(k1=self.k1, b=self.b) if empty < len(corpus) else None
        if retriever is not None:
            retriever.index(tokenized, show_progress=False)
        return retriever, empty

    def full_scores(self, query_texts: Sequence[str]) -> np.ndarray:
        texts = list(query_texts)
        missing = [t for t in dict.fromkeys(texts) if t not in self._full]
        if missing:
            tokens = self._tokenize(missing, return_ids=False)
            empty = 0
            for text, query_tokens in zip(missing, tokens, strict=True):
                if (
                    not query_tokens or self.retriever is None
                ):  # e.g. "M&M's": nothing left after stopwords and stemming (bm25s raises on [])
                    empty += 1
                    self._full[text] = np.zeros(len(self.corpus), np.float32)
                    continue
                self._full[text] = self.retriever.get_scores(query_tokens).astype(np.float32)
            if empty:
                log.warning(
                    "%s: %d of %d queries have no BM25 token after stopwords and stemming; they score 0 "
                    "against every passage",
                    self.name,
                    empty,
                    len(missing),
                )
        out = np.stack([self._full[t] for t in texts]) if texts else np.zeros((0, len(self.corpus)), np.float32)
        # per-text rows, oldest dropped beyond the memory bound (but never this call's)
        limit = max(len(set(texts)), int(self.cache_bytes // (4 * max(1, len(self.corpus)))))
        while len(self._full) > limit:
            self._full.pop(next(iter(self._full)))
        return out

    def search(self, query_ids: Sequence[str], query_texts: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        full = self.full_scores(query_texts)
        k = min(k, full.shape[1])
        order = np.argsort(-full, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(full, order, 1), order.astype(np.int64)

    def score(self, query_ids: Sequence[str], query_texts: Sequence[str], doc_idx: np.ndarray) -> np.ndarray:
        full = self.full_scores(query_texts)
        return _gather(lambda row: full[row], len(query_texts), doc_idx)


class RunScorer(Scorer):
    """Scores read from precomputed TREC run files (e.g. RepLLaMA, SPLADE++ on TREC DL).

    Rule for pairs the run did not score: they get the query's lowest run score
    minus 1, so they rank below every retrieved passage (ties among them broken by
    document index). Queries absent from the run score 0 everywhere.
    """

    def __init__(self, paths, name="run", temperature=1.0):
        self.name, self.temperature = name, temperature
        self.run = {}
        for path in paths if isinstance(paths, (list, tuple)) else [paths]:
            self.run.update(load_trec_run(path))

    def prepare(self, corpus: Corpus) -> Scorer:
        self.corpus = corpus
        return self

    def _row(self, query_id):
        full = np.zeros(len(self.corpus), dtype=np.float32)
        scored = self.run.get(query_id, {})
        if scored:
            full[:] = min(scored.values()) - 1.0
            for doc_id, score in scored.items():
                if doc_id in self.corpus.index:
                    full[self.corpus.index[doc_id]] = score
        return full

    def search(self, query_ids: Sequence[str], query_texts: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        rows = np.stack([self._row(q) for q in query_ids])
        k = min(k, rows.shape[1])
        order = np.argsort(-rows, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(rows, order, 1), order.astype(np.int64)

    def score(self, query_ids: Sequence[str], query_texts: Sequence[str], doc_idx: np.ndarray) -> np.ndarray:
        return _gather(lambda row: self._row(query_ids[row]), len(query_ids), doc_idx)


def _nbytes(values) -> int:
    """Bytes held by arrays, or tuples of arrays."""
    return sum(sum(a.nbytes for a in (v if isinstance(v, tuple) else (v,))) for v in values)


class EnsembleScorer(Scorer):
    """Weighted sum of z-scored members: ``s(q,p) = sum_i w_i (s_i(q,p) - mu_i(q)) / sigma_i(q)``.

    ``mu_i(q)`` and ``sigma_i(q)`` are each member's mean and standard deviation
    over a fixed sample of up to 2,000 corpus passages (seed 0), so scores do not
    depend on which candidates are being scored and the cost is bounded at any
    corpus size. Search takes the union of the members' top ``k * candidate_factor``
    and rescores it.
    """

    def __init__(self, members, weights, name="ensemble", temperature=1.0, candidate_factor=4, sample_size=2000):
        if len(members) != len(weights):
            raise ValueError("one weight per ensemble member")
        self.members, self.weights, self.name, self.temperature = members, list(weights), name, temperature
        self.candidate_factor, self.sample_size = candidate_factor, sample_size

    def prepare(self, corpus: Corpus) -> Scorer:
        self.corpus = corpus
        for member in self.members:
            if getattr(member, "corpus", None) is not corpus:  # a shared member is prepared once
                member.prepare(corpus)
        rng = np.random.default_rng(0)
        self.sample = np.sort(rng.choice(len(corpus), size=min(self.sample_size, len(corpus)), replace=False))
        return self

    def _member_stats(self, member_index, query_ids, query_texts):
        """Each query's (mean, std) under member ``member_index``, cached per (query id, text).

        The cache lives on the member, keyed by the corpus and the sample: hybrids that share a member
        (the teacher-choice grid builds 27 of them from three scorers) compute its statistics once.
        """
        member = self.members[member_index]
        stores = member.__dict__.setdefault("_zscore_stats", {})
        key = (id(self.corpus), len(self.corpus), self.sample_size)
        # the corpus is kept beside its statistics so that its id cannot be reused by another corpus
        corpus, cache = stores.get(key, (None, None))
        if corpus is not self.corpus:
            cache = {}
            stores[key] = (self.corpus, cache)
        keys = list(zip(query_ids, query_texts, strict=True))
        missing = list(dict.fromkeys(k for k in keys if k not in cache))
        if missing:
            sample = np.broadcast_to(self.sample, (len(missing), len(self.sample)))
            values = member.score([k[0] for k in missing], [k[1] for k in missing], np.ascontiguousarray(sample))
            for key, mean, std in zip(missing, values.mean(1), values.std(1).clip(min=1e-6), strict=True):
                cache[key] = (mean, std)
        mean = np.array([cache[k][0] for k in keys], dtype=np.float32).reshape(-1, 1)
        std = np.array([cache[k][1] for k in keys], dtype=np.float32).reshape(-1, 1)
        return mean, std

    # a member's last few searches and scorings, for the hybrids that share it
    _MEMO_ENTRIES, _MEMO_BYTES = 8, 256 << 20

    def _member_memo(self, member, kind, query_ids, query_texts, argument, compute):
        """``compute()`` (a member's search or pair scores), remembered on the member for its corpus.

        The teacher-choice grid builds 27 hybrids from three scorers (nine weights per pair): every weight of a
        pair searches and scores the same queries and candidates with the same members, and only the weighted
        sum differs. The stored arrays are the ones computed, so the scores are the same bit for bit."""
        if getattr(member, "corpus", None) is None:
            return compute()
        corpus, memo = member.__dict__.get("_ensemble_memo", (None, None))
        if corpus is not member.corpus:  # prepared on another corpus since: forget
            memo = {}
            member.__dict__["_ensemble_memo"] = (member.corpus, memo)
        digest = content_hash(list(query_ids), texts_digest(query_texts), kind, argument)
        if digest in memo:
            return memo[digest]
        value = memo[digest] = compute()
        # bounded in entries and bytes (NFCorpus searches 1,388 x 4 deep for 2,563 queries): oldest out first
        while len(memo) > 1 and (len(memo) > self._MEMO_ENTRIES or _nbytes(memo.values()) > self._MEMO_BYTES):
            memo.pop(next(iter(memo)))
        return value

    def _member_scores(self, member, query_ids, query_texts, doc_idx):
        doc_idx = np.ascontiguousarray(doc_idx)
        argument = (doc_idx.shape, str(doc_idx.dtype), hashlib.sha256(doc_idx.tobytes()).hexdigest())
        return self._member_memo(
            member, "score", query_ids, query_texts, argument, lambda: member.score(query_ids, query_texts, doc_idx)
        )

    def score(self, query_ids: Sequence[str], query_texts: Sequence[str], doc_idx: np.ndarray) -> np.ndarray:
        total = np.zeros(doc_idx.shape, dtype=np.float32)
        for i, (member, weight) in enumerate(zip(self.members, self.weights, strict=True)):
            mean, std = self._member_stats(i, query_ids, query_texts)
            total += weight * (self._member_scores(member, query_ids, query_texts, doc_idx) - mean) / std
        return np.where(doc_idx >= 0, total, np.nan).astype(np.float32)

    def search(self, query_ids: Sequence[str], query_texts: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        depth = min(len(self.corpus), k * self.candidate_factor)
        pools = [
            self._member_memo(
                member,
                "search",
                query_ids,
                query_texts,
                depth,
                lambda m=member: m.search(query_ids, query_texts, depth),
            )[1]
            for member in self.members
        ]
        width = sum(p.shape[1] for p in pools)
        candidates = np.full((len(query_ids), width), -1, dtype=np.int64)
        for row in range(len(query_ids)):
            union = np.unique(np.concatenate([p[row] for p in pools]))
            union = union[union >= 0]
            candidates[row, : len(union)] = union
        scores = self.score(query_ids, query_texts, candidates)
        scores = np.where(np.isnan(scores), -np.inf, scores)
        k = min(k, width)
        order = np.lexsort((candidates, -scores), axis=1)[:, :k]
        return np.take_along_axis(scores, order, 1).astype(np.float32), np.take_along_axis(candidates, order, 1)


class CrossEncoderScorer(Scorer):
    """A cross-encoder (e.g. the paper's teacher, intfloat/simlm-msmarco-reranker): scores pairs jointly.

    It cannot search on its own: ``search`` re-ranks the top ``rerank_depth`` of a
    first-stage scorer. Scores are the raw logits (the relevance class for
    two-class heads).
    """

    def __init__(
        self,
        model,
        first_stage=None,
        name="cross-encoder",
        max_length=192,
        batch_size=64,
        rerank_depth=200,
        temperature=1.0,
        cache_dir=None,
    ):
        self.resolved = resolve_model(model, cache_dir)
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.name, self.first_stage, self.max_length, self.batch_size = name, first_stage, max_length, batch_size
        self.rerank_depth, self.temperature = rerank_depth, temperature

    # loaded at the first pair scored: the teacher's pair scores are usually read from its store, and a notebook
    # kernel or runner process that only reads them never pays transformers' 5-7 s of imports
    @functools.cached_property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        from transformers import AutoTokenizer  # noqa: PLC0415 (lazy: transformers not loaded by this module)

        return AutoTokenizer.from_pretrained(str(self.resolved.path))

    @functools.cached_property
    def model(self) -> torch.nn.Module:
        from transformers import AutoModelForSequenceClassification  # noqa: PLC0415 (lazy: transformers not loaded by this module)

        return AutoModelForSequenceClassification.from_pretrained(str(self.resolved.path)).eval().to(self.device)

    def prepare(self, corpus: Corpus) -> Scorer:
        self.corpus = corpus
        if self.first_stage is not None:
            self.first_stage.prepare(corpus)
        return self

    def score(self, query_ids: Sequence[str], query_texts: Sequence[str], doc_idx: np.ndarray) -> np.ndarray:
        pairs = [(r, c) for r in range(doc_idx.shape[0]) for c in range(doc_idx.shape[1]) if doc_idx[r, c] >= 0]
        out = np.full(doc_idx.shape, np.nan, dtype=np.float32)
        with torch.inference_mode():
            starts = range(0, len(pairs), self.batch_size)
            for start in progress.progress_bar(
                starts, desc=f"{self.name}: score pairs", total=len(starts), disable=len(starts) <= 1, unit="batch"
            ):
                chunk = pairs[start : start + self.batch_size]
                batch = self.tokenizer(
                    [query_texts[r] for r, _ in chunk],
                    [self.corpus.texts[doc_idx[r, c]] for r, c in chunk],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(self.device)
                logits = self.model(**batch).logits.float()
                values = logits[:, -1] if logits.shape[-1] > 1 else logits[:, 0]
                for (r, c), v in zip(chunk, values.cpu().numpy(), strict=True):
                    out[r, c] = v
        return out

    def search(self, query_ids: Sequence[str], query_texts: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.first_stage is None:
            raise ValueError(f"cross-encoder {self.name!r} needs a `first_stage` scorer to search")
        _, candidates = self.first_stage.search(query_ids, query_texts, max(k, self.rerank_depth))
        # only the first stage's top `rerank_depth` are re-ranked (the paper: top 200); deeper
        # ranks (k > rerank_depth, e.g. R@1000) keep the first stage's order below them
        head, tail = candidates[:, : self.rerank_depth], candidates[:, self.rerank_depth : k]
        scores = self.score(query_ids, query_texts, head)
        scores = np.where(np.isnan(scores), -np.inf, scores)
        order = np.lexsort((head, -scores), axis=1)[:, :k]
        scores, head = np.take_along_axis(scores, order, 1).astype(np.float32), np.take_along_axis(head, order, 1)
        if tail.shape[1] == 0:
            return scores, head
        finite = np.where(np.isfinite(scores), scores, np.inf).min(1, keepdims=True)
        floor = np.where(np.isfinite(finite), finite, 0.0)
        tail_scores = (floor - 1.0 - np.arange(tail.shape[1], dtype=np.float32)).astype(np.float32)
        tail_scores = np.where(tail >= 0, tail_scores, -np.inf).astype(np.float32)
        return np.concatenate([scores, tail_scores], 1), np.concatenate([head, tail], 1)


def build_scorer(
    spec: dict, cache_dir: Path | None = None, runs_root: Path | None = None, shared: dict | None = None
) -> Scorer:
    """``shared``: a dict that keeps every scorer built with it by its spec, so a second request for the
    same spec (a member of another ensemble) returns the same, already prepared scorer with its caches:
    the teacher choice builds 27 hybrids of 3 members."""
    key = content_hash(spec) if shared is not None else None
    if key is not None and key in shared:
        return shared[key]
    scorer = _build_scorer(spec, cache_dir, runs_root, shared)
    if key is not None:
        shared[key] = scorer
    # a temperature set by hand overrides the fitted one (temperature.py)
    scorer.temperature_given = "temperature" in spec
    # what the scorer is, for caches of its scores: two scorers with one name (e.g. "teacher") but
    # different specs must never share stored pair scores
    scorer.identity_digest = content_hash(spec)
    return scorer


def _bm25(spec, name, temperature, cache_dir, runs_root, shared):
    return BM25Scorer(name=name, temperature=temperature)


def _run(spec, name, temperature, cache_dir, runs_root, shared):
    root = Path(runs_root or ".")
    return RunScorer([root / p for p in spec["paths"]], name=name, temperature=temperature)


def _cross_encoder(spec, name, temperature, cache_dir, runs_root, shared):
    first_stage = build_scorer(spec["first_stage"], cache_dir, runs_root) if spec.get("first_stage") else None
    return CrossEncoderScorer(
        spec["model"],
        first_stage,
        name=name,
        max_length=spec.get("max_length", 192),
        batch_size=spec.get("batch_size", 64),
        rerank_depth=spec.get("rerank_depth", 200),
        temperature=temperature,
        cache_dir=cache_dir,
    )


def _ensemble(spec, name, temperature, cache_dir, runs_root, shared):
    members = [build_scorer(m, cache_dir, runs_root, shared) for m in spec["members"]]
    return EnsembleScorer(members, spec.get("weights", [1.0] * len(members)), name=name, temperature=temperature)


def _dense(spec, name, temperature, cache_dir, runs_root, shared):
    return DenseScorer(
        build_encoder(spec, cache_dir=cache_dir, deferred=True),
        name,
        max_query_length=spec.get("max_query_length", 32),
        max_passage_length=spec.get("max_passage_length", 256),
        batch_size=spec.get("batch_size", 64),
        temperature=temperature,
        cache_dir=cache_dir,
    )


# every kind of config/kinds.py and the function that builds its scorer
SCORER_BUILDERS = {
    "bm25": _bm25,
    "run": _run,
    "cross_encoder": _cross_encoder,
    "ensemble": _ensemble,
    **{kind: _dense for kind in sorted(ENCODER_KINDS)},
}


def _build_scorer(spec: dict, cache_dir=None, runs_root=None, shared=None):
    """A scorer from a params spec: ``SCORER_BUILDERS[spec["kind"]]`` (the kinds: ``config/kinds.py``).

    ``{name, kind: hf|sentence_transformers|onnx|static, model, max_query_length, max_passage_length, temperature}``,
    ``{name, kind: bm25}``, ``{name, kind: run, paths: [...]}`` or
    ``{name, kind: ensemble, members: [spec, ...], weights: [...]}``.
    """
    kind = spec.get("kind")
    if kind not in SCORER_BUILDERS:
        raise ValueError(f"unknown scorer kind {kind!r}; expected one of {sorted(SCORER_BUILDERS)}")
    name = spec.get("name", kind)
    temperature = float(spec.get("temperature", KINDS[kind].temperature))
    return SCORER_BUILDERS[kind](spec, name, temperature, cache_dir, runs_root, shared)
