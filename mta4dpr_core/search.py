"""Exact inner-product search with FAISS: all GPUs (sharded) when present, CPU otherwise."""
from __future__ import annotations

import numpy as np


def _faiss():
    import faiss

    return faiss


def gpu_count() -> int:
    try:
        return _faiss().get_num_gpus()
    except Exception:  # a CPU-only build has no GPU API
        return 0


def build_index(doc_embeddings: np.ndarray, use_gpu="auto"):
    """An exact ``IndexFlatIP``; on several GPUs the corpus is sharded across them."""
    faiss = _faiss()
    embeddings = np.ascontiguousarray(doc_embeddings, dtype=np.float32)
    index = faiss.IndexFlatIP(embeddings.shape[1])
    if (use_gpu == "auto" and gpu_count() > 0) or use_gpu is True:
        options = faiss.GpuMultipleClonerOptions()
        options.shard = True
        index = faiss.index_cpu_to_all_gpus(index, co=options)
    index.add(embeddings)
    return index


def exact_search(query_embeddings, doc_embeddings=None, k=100, index=None, use_gpu="auto"):
    """Top-``k`` by inner product: (scores float32 [nq, k], indices int64 [nq, k]).

    Ties are broken by document index (ascending) so results are reproducible.
    """
    if index is None:
        index = build_index(doc_embeddings, use_gpu)
    k = min(k, index.ntotal)
    queries = np.ascontiguousarray(query_embeddings, dtype=np.float32)
    scores, indices = index.search(queries, k)
    # stable tie order: score descending, then document index ascending
    order = np.lexsort((indices, -scores), axis=1) if scores.size else None
    if order is not None:
        scores = np.take_along_axis(scores, order, 1)
        indices = np.take_along_axis(indices, order, 1)
    return scores.astype(np.float32), indices.astype(np.int64)


def numpy_search(query_embeddings, doc_embeddings, k):
    """Brute-force reference used by the tests."""
    scores = np.asarray(query_embeddings, np.float32) @ np.asarray(doc_embeddings, np.float32).T
    k = min(k, scores.shape[1])
    indices = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, indices, 1), indices
