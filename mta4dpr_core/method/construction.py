"""Per-iteration training data (paper 3.2.1), stored as arrays on disk.

Steps, each a function::

    negatives = retrieve_negatives(assistant, queries, positives, k)       # per assistant
    merged    = merge_candidates([negatives of each assistant])              # union per query
    scores    = score_with_cache(assistant, merged)                          # every assistant scores every pair
    hard      = reciprocal_rank_fusion(scores, c=60) -> top k                 # re-rank merged negatives
    teacher   = score_with_cache(teacher, positives + hard)                   # raw logits, cached across iterations
    eval/train split (seeded, fixed for a run)
    mined     = mine_student_failures(...)                                    # iteration >= 2

Rows hold one query each: ``candidates`` [N, P + k] (positives first, -1 padding),
``is_positive`` [N, P + k], ``teacher_scores`` [N, P + k] and ``assistant_scores``
[m, N, P + k]. At MS MARCO scale (500k x 101 x 5 float32 = 1 GB) these are
``.npy`` files opened with ``mmap_mode="r"``.
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..config.errors import CacheError

if TYPE_CHECKING:  # annotations only: the method layer runs on any object with these methods
    from ..retrieval.data import Corpus, Split
    from ..retrieval.scorers import Scorer
from ..store.atomic import atomic_write_json, code_digest, content_hash, save_array, save_npz, sha256_file, try_load_npz

log = logging.getLogger(__name__)


def first_non_positives(ranked: np.ndarray, positives: Sequence[set], k: int) -> np.ndarray:
    """Per row of ``ranked`` (passage indices, best first, -1 padding), its first ``k`` passages that
    are not a positive of that query: int64 [Q, k] (-1 padding)."""
    out = np.full((len(ranked), k), -1, dtype=np.int64)
    for row, docs in enumerate(ranked):
        # one set per query: NFCorpus has queries with 1,358 positives and searches 1,388 deep
        excluded = set(positives[row])
        keep = [d for d in docs.tolist() if d >= 0 and d not in excluded][:k]
        out[row, : len(keep)] = keep
    return out


def retrieve_negatives(
    scorer: Scorer, query_ids: Sequence[str], query_texts: Sequence[str], positives: Sequence[set], k: int
) -> np.ndarray:
    """Each query's top-``k`` passages by ``scorer``, positives excluded: int64 [Q, k] (-1 padding)."""
    max_positives = max((len(p) for p in positives), default=0)
    _, retrieved = scorer.search(query_ids, query_texts, k + max_positives)
    return first_non_positives(retrieved, positives, k)


def merge_candidates(rankings: Sequence[np.ndarray]) -> np.ndarray:
    """Union of several [Q, k] candidate arrays per query, in first-seen order: [Q, <= m*k] (-1 padding)."""
    stacked = np.concatenate(rankings, axis=1)
    rows = []
    for row in stacked:
        _, first = np.unique(row[row >= 0], return_index=True)
        rows.append(row[row >= 0][np.sort(first)])
    width = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), max(width, 1)), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def reciprocal_rank_fusion(scores: np.ndarray, c: int = 60) -> np.ndarray:
    """RRF over the rankings the m scorers induce on each query's candidates.

    ``scores`` [m, Q, D] (NaN = padding / not ranked). Returns [Q, D] with
    ``RRF(p) = sum_r 1 / (c + r(p))``, r 1-based; a passage a scorer did not rank
    (NaN) gets no credit from it; padding gets -inf.
    """
    filled = np.where(np.isnan(scores), -np.inf, scores)
    order = np.argsort(-filled, axis=-1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, scores.shape[-1] + 1), axis=-1)
    contribution = np.where(np.isnan(scores), 0.0, 1.0 / (c + ranks))
    fused = contribution.sum(0)
    return np.where(np.all(np.isnan(scores), axis=0), -np.inf, fused)


def top_by_rrf(candidates: np.ndarray, fused: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` candidates with the highest RRF score (ties: lower document index first)."""
    order = np.lexsort((np.where(candidates >= 0, candidates, np.iinfo(np.int64).max), -fused), axis=1)[:, :k]
    top = np.take_along_axis(candidates, order, 1)
    top = np.where(np.take_along_axis(fused, order, 1) == -np.inf, -1, top)
    if top.shape[1] < k:
        top = np.concatenate([top, np.full((top.shape[0], k - top.shape[1]), -1, dtype=np.int64)], axis=1)
    return top


class PairScoreStore:
    """Scores of (query row, passage) pairs, cached on disk across iterations.

    Keys are ``query_row * n_docs + doc`` (int64), kept sorted; lookups are
    vectorised with ``np.searchsorted``, so the store scales to 50M pairs.
    """

    def __init__(self, path, n_docs):
        self.path, self.n_docs = Path(path), n_docs
        data = try_load_npz(self.path)
        if data is not None and int(np.asarray(data["n_docs"]).reshape(-1)[0]) == n_docs:
            self.keys, self.values = data["keys"], data["values"]
        else:
            self.keys, self.values = np.zeros(0, np.int64), np.zeros(0, np.float32)

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos = np.searchsorted(self.keys, keys)
        pos_clipped = np.minimum(pos, max(len(self.keys) - 1, 0))
        found = (len(self.keys) > 0) & (self.keys[pos_clipped] == keys) if len(self.keys) else np.zeros(len(keys), bool)
        values = np.where(found, self.values[pos_clipped] if len(self.values) else 0.0, np.nan).astype(np.float32)
        return values, found

    def add(self, keys: np.ndarray, values: np.ndarray) -> None:
        keys, first = np.unique(keys, return_index=True)
        merged_keys = np.concatenate([self.keys, keys])
        merged_values = np.concatenate([self.values, values[first].astype(np.float32)])
        merged_keys, first = np.unique(merged_keys, return_index=True)
        self.keys, self.values = merged_keys, merged_values[first]

    def save(self) -> None:
        save_npz(self.path, keys=self.keys, values=self.values, n_docs=np.asarray(self.n_docs))


def score_with_cache(
    scorer: Scorer,
    query_ids: Sequence[str],
    query_texts: Sequence[str],
    query_rows: np.ndarray,
    doc_idx: np.ndarray,
    store: PairScoreStore | None,
    stats: dict | None = None,
) -> np.ndarray:
    """``scorer.score`` on [Q, c] pairs, computing only pairs the store has never seen."""
    doc_idx = np.asarray(doc_idx, np.int64)
    out = np.full(doc_idx.shape, np.nan, dtype=np.float32)
    valid = doc_idx >= 0
    if store is None:
        out[:] = scorer.score(query_ids, query_texts, doc_idx)
        return out
    keys = np.asarray(query_rows, np.int64)[:, None] * store.n_docs + np.where(valid, doc_idx, 0)
    cached, found = store.lookup(keys.ravel())
    cached, found = cached.reshape(doc_idx.shape), found.reshape(doc_idx.shape) & valid
    out[found] = cached[found]
    missing_rows = np.where((valid & ~found).any(1))[0]
    if len(missing_rows):
        sub = np.where(valid[missing_rows] & ~found[missing_rows], doc_idx[missing_rows], -1)
        fresh = scorer.score([query_ids[i] for i in missing_rows], [query_texts[i] for i in missing_rows], sub)
        block = out[missing_rows]
        block[sub >= 0] = fresh[sub >= 0]
        out[missing_rows] = block
        store.add(keys[missing_rows][sub >= 0], fresh[sub >= 0])
    if stats is not None:
        stats["pairs_scored"] = stats.get("pairs_scored", 0) + int((valid & ~found).sum())
        stats["pairs_cached"] = stats.get("pairs_cached", 0) + int(found.sum())
    return out


def _file_position(array):
    """Byte offset in its file of a read-only ``np.memmap``'s first element, or None."""
    handle, filename = getattr(array, "_mmap", None), getattr(array, "filename", None)
    if handle is None or filename is None or getattr(array, "mode", None) != "r" or not array.flags.c_contiguous:
        return None
    try:
        mapped_at = np.frombuffer(handle, np.uint8).__array_interface__["data"][0]
    except (TypeError, ValueError):  # closed mapping
        return None
    mapping_start = array.offset - array.offset % mmap.ALLOCATIONGRANULARITY
    return mapping_start + array.__array_interface__["data"][0] - mapped_at


_ROW_READERS = weakref.WeakKeyDictionary()  # mapping -> open descriptor of its file, closed with the mapping


def _descriptor(array) -> int:
    handle = array._mmap
    descriptor = _ROW_READERS.get(handle)
    if descriptor is None:
        descriptor = os.open(array.filename, os.O_RDONLY)
        weakref.finalize(handle, os.close, descriptor)
        _ROW_READERS[handle] = descriptor
    return descriptor


def take_rows(array: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``array[rows]`` along axis 0, as a fresh in-memory array.

    For a read-only memory-mapped array the rows are read with ``os.pread`` rather
    than through the mapping: a page fault maps a whole page-cache folio (up to
    2 MiB on recent kernels), so gathering one 64-query batch through the mapping
    makes ~0.5 GB of the files resident, and random batches drive resident memory
    towards the full file size. Reads keep it at the batch's own bytes
    (``bench/peak_memory.py``). Anything else is plain fancy indexing.
    """
    rows = np.asarray(rows, dtype=np.int64)
    position = _file_position(array) if rows.ndim == 1 and array.ndim >= 1 else None
    if position is None:
        return np.asarray(array[rows])
    count = array.shape[0]
    if rows.size and (rows.min() < -count or rows.max() >= count):
        raise IndexError(f"row index out of range for {count} rows")
    rows = np.where(rows < 0, rows + count, rows)
    row_bytes = array.strides[0] if array.ndim > 1 else array.itemsize
    descriptor = _descriptor(array)
    chunks = [os.pread(descriptor, row_bytes, position + row * row_bytes) for row in rows.tolist()]
    raw = b"".join(chunks)
    if len(raw) != row_bytes * len(rows):
        raise OSError(f"{array.filename}: short read")
    return np.frombuffer(raw, dtype=array.dtype).reshape((len(rows),) + array.shape[1:]).copy()


def split_eval_queries(
    n_queries: int, fraction: float, seed: int, minimum: int = 1, eligible: np.ndarray | None = None
) -> np.ndarray:
    """Boolean mask of the held-out eval queries: ``max(minimum, round(fraction * n))`` of them, seeded.

    ``eligible``: only the first ``eligible`` queries may be held out, and ``n`` counts them alone (the labelled
    queries, when pseudo-queries follow them: an eval query's judgment must be a real one). None: all."""
    pool = n_queries if eligible is None else int(eligible)
    if fraction <= 0:
        return np.zeros(n_queries, bool)
    count = min(pool - 1, max(minimum, int(round(fraction * pool))))
    mask = np.zeros(n_queries, bool)
    mask[np.random.default_rng([seed, 7]).permutation(pool)[:count]] = True
    return mask


def eval_query_mask(split: Split, construction: dict, seed: int) -> np.ndarray:
    """The run's eval queries over ``split`` (``construction.eval_fraction`` of its labelled queries, seeded)."""
    return split_eval_queries(
        len(split), construction["eval_fraction"], seed, construction["min_eval_queries"], split.labelled
    )


@dataclass
class TrainingData:
    query_ids: list
    query_texts: list
    query_rows: np.ndarray  # [N] index into the split's query list
    candidates: np.ndarray  # [N, P + k] doc indices, positives first, -1 padding
    is_positive: np.ndarray  # [N, P + k]
    teacher_scores: np.ndarray  # [N, P + k] raw teacher logits
    assistant_scores: np.ndarray  # [m, N, P + k]
    assistant_names: list
    origin: np.ndarray  # [N] 0 = base, 1 = mined from the previous student's failures
    stats: dict = field(default_factory=dict)

    def __len__(self):
        return len(self.query_rows)

    ARRAYS = ("query_rows", "candidates", "is_positive", "teacher_scores", "assistant_scores", "origin")

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        for name in self.ARRAYS:
            save_array(directory / f"{name}.npy", getattr(self, name))
        atomic_write_json(
            directory / "meta.json",
            {
                "query_ids": self.query_ids,
                "query_texts": self.query_texts,
                "assistant_names": self.assistant_names,
                "stats": self.stats,
            },
        )

    @classmethod
    def load(cls, directory: Path, mmap: bool = True) -> TrainingData | None:
        """Load verified arrays (memory-mapped); return None if anything is missing or corrupted."""
        directory = Path(directory)
        meta_path = directory / "meta.json"
        if not meta_path.exists():
            return None
        try:
            arrays = {}
            for name in cls.ARRAYS:
                path = directory / f"{name}.npy"
                sidecar = Path(str(path) + ".sha256")
                if not sidecar.exists() or sha256_file(path) != sidecar.read_text().strip():
                    raise CacheError(f"{path}: checksum mismatch or missing")
                arrays[name] = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
            meta = json.loads(meta_path.read_text())
        except (CacheError, OSError, ValueError) as error:
            log.warning("training data rejected, rebuilding: %s", error)
            return None
        return cls(
            meta["query_ids"],
            meta["query_texts"],
            assistant_names=meta["assistant_names"],
            stats=meta["stats"],
            **arrays,
        )


def _positive_matrix(positives, width):
    out = np.full((len(positives), width), -1, dtype=np.int64)
    for i, docs in enumerate(positives):
        out[i, : len(docs)] = docs[:width]
    return out


def mine_student_failures(
    student: Scorer,
    teacher: Scorer,
    query_ids: Sequence[str],
    query_texts: Sequence[str],
    positives: Sequence[set],
    rows: np.ndarray,
    k: int,
    max_rank: int,
    teacher_store: PairScoreStore | None,
    stats: dict,
) -> tuple[np.ndarray, np.ndarray]:
    """Queries the teacher gets right at top-1 but the previous student ranks at 2..``max_rank``.

    Returns (rows, negatives [R, k]): the student's own top-k negatives for those queries.
    """
    if not len(rows):
        return np.zeros(0, np.int64), np.zeros((0, k), np.int64)
    ids = [query_ids[i] for i in rows]
    texts = [query_texts[i] for i in rows]
    pos = [positives[i] for i in rows]
    width = max(len(p) for p in pos)
    # deep enough to see a positive at rank max_rank even when k + width is shallower
    _, retrieved = student.search(ids, texts, max(k + width, max_rank))
    pos_matrix = _positive_matrix(pos, width)
    student_rank = np.full(len(rows), np.inf)
    for r in range(len(rows)):
        hits = np.where(np.isin(retrieved[r], pos_matrix[r][pos_matrix[r] >= 0]))[0]
        if len(hits):
            student_rank[r] = hits[0] + 1
    negatives = first_non_positives(retrieved, pos, k)
    candidates = np.concatenate([pos_matrix, negatives], axis=1)
    teacher_scores = score_with_cache(teacher, ids, texts, rows, candidates, teacher_store, stats)
    top = np.nanargmax(np.where(candidates >= 0, teacher_scores, -np.inf), axis=1)
    teacher_right = top < width
    chosen = teacher_right & (student_rank >= 2) & (student_rank <= max_rank)
    return np.asarray(rows)[chosen], negatives[chosen]


def build_training_data(
    split: Split,
    corpus: Corpus,
    assistants: list[Scorer],
    teacher: Scorer,
    *,
    k: int,
    rrf_c: int,
    eval_mask: np.ndarray,
    work_dir: Path,
    previous_student: Scorer | None = None,
    mining: bool = True,
    mining_max_rank: int = 15,
    query_limit: int | None = None,
) -> TrainingData:
    """One iteration's dataset (paper 3.2.1) for the non-eval queries of ``split``."""
    started = time.perf_counter()
    stats = {}
    work_dir = Path(work_dir)
    positives = split.positives(corpus)
    rows = np.where(~eval_mask)[0]
    if query_limit:
        rows = rows[:query_limit]
    ids, texts = [split.query_ids[i] for i in rows], [split.query_texts[i] for i in rows]
    pos = [positives[i] for i in rows]
    width = max(1, max(len(p) for p in pos))
    # a store is valid for one scorer (its spec) over one corpus and one query list, under the code that scored it
    scope = content_hash(corpus.ids, split.query_ids, code_digest())
    stores = {
        s.name: PairScoreStore(
            work_dir / "scores" / f"{getattr(s, 'cache_name', s.name)}-{getattr(s, 'identity_digest', '')}-{scope}.npz",
            len(corpus),
        )
        for s in [teacher, *assistants]
    }

    per_assistant = [retrieve_negatives(a, ids, texts, pos, k) for a in assistants]
    merged = merge_candidates(per_assistant)
    merged_scores = np.stack([score_with_cache(a, ids, texts, rows, merged, stores[a.name], stats) for a in assistants])
    hard = top_by_rrf(merged, reciprocal_rank_fusion(merged_scores, rrf_c), k)
    candidates = np.concatenate([_positive_matrix(pos, width), hard], axis=1)
    origin = np.zeros(len(rows), np.int8)
    row_index = rows.copy()

    stats["mined_queries"] = 0
    if mining and previous_student is not None:
        mined_rows, mined_negatives = mine_student_failures(
            previous_student,
            teacher,
            split.query_ids,
            split.query_texts,
            positives,
            rows,
            k,
            mining_max_rank,
            stores[teacher.name],
            stats,
        )
        if len(mined_rows):
            mined_pos = _positive_matrix([positives[i] for i in mined_rows], width)
            candidates = np.concatenate([candidates, np.concatenate([mined_pos, mined_negatives], axis=1)])
            row_index = np.concatenate([row_index, mined_rows])
            origin = np.concatenate([origin, np.ones(len(mined_rows), np.int8)])
        stats["mined_queries"] = int(len(mined_rows))

    all_ids = [split.query_ids[i] for i in row_index]
    all_texts = [split.query_texts[i] for i in row_index]
    teacher_scores = score_with_cache(teacher, all_ids, all_texts, row_index, candidates, stores[teacher.name], stats)
    assistant_scores = (
        np.stack([score_with_cache(a, all_ids, all_texts, row_index, candidates, stores[a.name]) for a in assistants])
        if assistants
        else np.zeros((0,) + candidates.shape, np.float32)
    )
    for store in stores.values():
        store.save()
    is_positive = np.zeros(candidates.shape, bool)
    is_positive[:, :width] = candidates[:, :width] >= 0
    stats["seconds"] = round(time.perf_counter() - started, 3)
    stats["rows"] = int(len(row_index))
    stats["base_queries"] = int(len(rows))
    return TrainingData(
        list(split.query_ids),
        list(split.query_texts),
        row_index.astype(np.int64),
        candidates,
        is_positive,
        teacher_scores.astype(np.float32),
        assistant_scores.astype(np.float32),
        [a.name for a in assistants],
        origin,
        stats,
    )
