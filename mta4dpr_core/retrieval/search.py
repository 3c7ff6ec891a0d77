"""Exact inner-product search with FAISS: all GPUs (sharded) when present, CPU otherwise.

Without FAISS (say, a GPU machine whose CUDA has no faiss-gpu wheel) the same exact search
runs in torch, on the GPU when there is one (:class:`TorchFlatIndex`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # annotations only: faiss loads where an index is built
    import faiss

log = logging.getLogger(__name__)
_warned = False


def _faiss():
    try:
        import faiss  # noqa: PLC0415 (lazy: faiss not loaded by this module)
    except ImportError:
        return None
    return faiss


def gpu_count() -> int:
    try:
        return _faiss().get_num_gpus()
    except Exception:  # a CPU-only build has no GPU API; no FAISS at all has none either
        return 0


class TorchFlatIndex:
    """An exact inner-product index in torch with FAISS's ``add``/``search``/``ntotal``.

    Queries are scored in chunks (``chunk`` x corpus floats at a time) and ``torch.topk``
    keeps the best ``k``; ties are ordered by :func:`exact_search` as for FAISS.
    """

    def __init__(self, dim: int, device=None, chunk: int = 1024):
        import torch  # noqa: PLC0415 (lazy: torch not loaded by this module)

        from .encoders import default_device  # noqa: PLC0415 (lazy: numba, torch not loaded by this module)

        self.dim, self.chunk = dim, chunk
        self.device = torch.device(device) if device else default_device()
        self.vectors = torch.zeros((0, dim), dtype=torch.float32, device=self.device)

    @property
    def ntotal(self) -> int:
        return self.vectors.shape[0]

    def add(self, embeddings: np.ndarray) -> None:
        import torch  # noqa: PLC0415 (lazy: torch not loaded by this module)

        added = torch.as_tensor(np.ascontiguousarray(embeddings, dtype=np.float32), device=self.device)
        self.vectors = torch.cat([self.vectors, added])

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        import torch  # noqa: PLC0415 (lazy: torch not loaded by this module)

        queries = torch.as_tensor(np.ascontiguousarray(queries, dtype=np.float32), device=self.device)
        scores, indices = [], []
        for start in range(0, queries.shape[0], self.chunk):
            top = torch.topk(queries[start : start + self.chunk] @ self.vectors.T, k, dim=1)
            scores.append(top.values.cpu())
            indices.append(top.indices.cpu())
        if not scores:
            return np.zeros((0, k), np.float32), np.zeros((0, k), np.int64)
        return torch.cat(scores).numpy(), torch.cat(indices).numpy()


def build_index(doc_embeddings: np.ndarray, use_gpu: str | bool = "auto") -> faiss.Index | TorchFlatIndex:
    """An exact ``IndexFlatIP``; on several GPUs the corpus is sharded across them.
    Without FAISS installed, a :class:`TorchFlatIndex` (GPU when there is one)."""
    global _warned
    faiss = _faiss()
    embeddings = np.ascontiguousarray(doc_embeddings, dtype=np.float32)
    if faiss is None:
        index = TorchFlatIndex(embeddings.shape[1])
        if not _warned:
            log.warning("FAISS is not installed: exact search runs in torch on %s", index.device)
            _warned = True
        index.add(embeddings)
        return index
    index = faiss.IndexFlatIP(embeddings.shape[1])
    if (use_gpu == "auto" and gpu_count() > 0) or use_gpu is True:
        options = faiss.GpuMultipleClonerOptions()
        options.shard = True
        index = faiss.index_cpu_to_all_gpus(index, co=options)
    index.add(embeddings)
    return index


def exact_search(
    query_embeddings: np.ndarray,
    doc_embeddings: np.ndarray | None = None,
    k: int = 100,
    index: faiss.Index | TorchFlatIndex | None = None,
    use_gpu: str | bool = "auto",
) -> tuple[np.ndarray, np.ndarray]:
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


def numpy_search(query_embeddings: np.ndarray, doc_embeddings: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force reference used by the tests."""
    scores = np.asarray(query_embeddings, np.float32) @ np.asarray(doc_embeddings, np.float32).T
    k = min(k, scores.shape[1])
    indices = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, indices, 1), indices
