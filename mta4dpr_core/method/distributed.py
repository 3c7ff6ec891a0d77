"""Scale-out helpers: torch.distributed set-up, sharded corpus encoding, shard merging.

Training needs nothing from here beyond :func:`init_from_env`: under ``torchrun``
:func:`mta4dpr_core.method.training.train_student` detects the process group, every rank
draws the same global batch, encodes its slice, all-gathers the embeddings (its
own slice keeps the gradient) and DDP sums the ranks' gradients, so one step
equals a single-process step on the global batch (``tests/method/test_distributed.py``).

Corpus encoding is embarrassingly parallel: shard ``i`` of ``n`` is the contiguous
range ``[i*N//n, (i+1)*N//n)``; each shard is written atomically with a checksum
(``shard-00003-of-00008.npy`` + ``.sha256`` + ``.json``) and a finished shard is
skipped on a rerun, so a crashed job resumes. :func:`merge_shards` verifies every
shard (checksum, range, count, dimension, text digest) and concatenates them in
order, in memory or streamed into a checksummed ``.npy`` that
:class:`mta4dpr_core.retrieval.scorers.DenseScorer` reads as its corpus cache.

Command line (one process per GPU; rank 0 merges)::

    torchrun --nproc_per_node 8 -m mta4dpr_core.method.distributed encode \\
        --collection ../shared/data/scifact --kind hf --model all-MiniLM-L6-v2 \\
        --pooling mean --normalize --max-length 256 --batch-size 256 --out-dir runs/shards
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.distributed as dist

from ..config.errors import CacheError
from ..retrieval.data import load_collection
from ..store.atomic import atomic_write_json, atomic_write_text, load_array, save_array, sha256_file, texts_digest

if TYPE_CHECKING:  # annotations only: encoders load where a corpus is encoded
    from ..retrieval.encoders import Encoder
    from ..retrieval.scorers import DenseScorer

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- process group
def env_world() -> tuple:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) outside torchrun."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def default_backend() -> str:
    return "nccl" if torch.cuda.is_available() else "gloo"


def init_from_env(backend: str | None = None, timeout_minutes: float = 60.0) -> tuple:
    """Join the process group torchrun describes (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
    ``MASTER_ADDR``, ``MASTER_PORT``); return (rank, world, local_rank).

    NCCL on GPUs (each process pinned to ``cuda:LOCAL_RANK``), gloo on CPU. With
    ``WORLD_SIZE`` unset or 1 nothing is initialised and (0, 1, 0) is returned, so
    the same script runs with plain ``python``. Idempotent.
    """
    rank, world, local_rank = env_world()
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank % max(1, torch.cuda.device_count()))
    if world <= 1:
        return 0, 1, 0
    if not dist.is_initialized():
        backend = backend or default_backend()
        dist.init_process_group(
            backend,
            init_method="env://",
            rank=rank,
            world_size=world,
            timeout=datetime.timedelta(minutes=timeout_minutes),
        )
        log.info("rank %d/%d joined the %s process group", rank, world, backend)
    return dist.get_rank(), dist.get_world_size(), local_rank


def teardown() -> None:
    """Leave the process group (after a barrier, so no rank exits while others still talk)."""
    if dist.is_available() and dist.is_initialized():
        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()


@contextlib.contextmanager
def distributed_session(backend: str | None = None) -> Iterator[tuple]:
    """``with distributed_session() as (rank, world, local_rank): ...`` joins and always leaves."""
    info = init_from_env(backend)
    try:
        yield info
    finally:
        teardown()


def rank_world() -> tuple:
    """(rank, world size) of the current process group; (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    return rank_world()[0] == 0


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


# ---------------------------------------------------------------- sharded encoding
def shard_range(n_items: int, shard_id: int, num_shards: int) -> tuple:
    """Contiguous ``[start, stop)`` of shard ``shard_id``; sizes differ by at most one."""
    if num_shards < 1 or not 0 <= shard_id < num_shards:
        raise ValueError(f"shard {shard_id} of {num_shards} does not exist")
    return n_items * shard_id // num_shards, n_items * (shard_id + 1) // num_shards


def shard_path(out_dir: Path, shard_id: int, num_shards: int) -> Path:
    return Path(out_dir) / f"shard-{shard_id:05d}-of-{num_shards:05d}.npy"


def _identity(encoder) -> dict:
    identity = getattr(encoder, "identity", None)
    return identity() if callable(identity) else {"class": type(encoder).__name__}


def _meta_path(path: Path) -> Path:
    return path.with_suffix(".json")


def _read_shard_meta(path: Path):
    meta_path = _meta_path(path)
    if not meta_path.exists():
        return None
    try:
        return json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return None


def encode_corpus_sharded(
    encoder: Encoder,
    texts: Sequence[str],
    shard_id: int,
    num_shards: int,
    out_dir: Path,
    max_length: int = 256,
    batch_size: int = 64,
    overwrite: bool = False,
) -> Path:
    """Encode shard ``shard_id`` of ``num_shards`` of ``texts`` and write it atomically.

    The shard is the contiguous range :func:`shard_range` gives. The array goes
    through :func:`mta4dpr_core.store.atomic.save_array` (temporary file, rename, sha256
    sidecar); a JSON record (range, total, text digest, encoder identity, max length,
    checksum) is written after it. A shard whose record and checksum already match
    is not encoded again (unless ``overwrite``). Returns the shard's path.
    """
    texts = texts if isinstance(texts, list) else list(texts)
    start, stop = shard_range(len(texts), shard_id, num_shards)
    path = shard_path(out_dir, shard_id, num_shards)
    part = texts[start:stop]
    expected = {
        "shard_id": shard_id,
        "num_shards": num_shards,
        "start": start,
        "stop": stop,
        "total": len(texts),
        "texts_sha256": texts_digest(part),
        "max_length": max_length,
        "encoder": _identity(encoder),
    }
    if not overwrite:
        meta = _read_shard_meta(path)
        if meta is not None and all(meta.get(k) == v for k, v in expected.items()) and path.exists():
            sidecar = Path(str(path) + ".sha256")
            if sidecar.exists() and sidecar.read_text().strip() == meta.get("sha256") == sha256_file(path):
                log.info("shard %d/%d already encoded: %s", shard_id, num_shards, path)
                return path
    if part:
        vectors = np.asarray(
            encoder.encode(part, max_length=max_length, batch_size=batch_size, desc=f"shard {shard_id}/{num_shards}"),
            dtype=np.float32,
        )
    else:
        vectors = np.zeros((0, int(getattr(encoder, "dim", 0) or 0)), dtype=np.float32)
    if vectors.shape[0] != len(part):
        raise RuntimeError(f"encoder returned {vectors.shape[0]} vectors for {len(part)} texts")
    save_array(path, vectors)
    checksum = Path(str(path) + ".sha256").read_text().strip()
    atomic_write_json(
        _meta_path(path), {**expected, "rows": int(vectors.shape[0]), "dim": int(vectors.shape[1]), "sha256": checksum}
    )
    return path


def merge_shards(  # noqa: C901 (one pass that checks every shard against the others before merging)
    out_dir: Path,
    num_shards: int,
    expected_total: int | None = None,
    texts: Sequence[str] | None = None,
    out_path: Path | None = None,
) -> Path:
    """Verify and concatenate shards ``0..num_shards-1`` in order.

    Checks: every shard and its record exist; the checksum verifies; ranges are
    contiguous from 0 to the total; row counts and dimensions agree; every shard
    was written for the same total (and ``expected_total``, and the digest of
    ``texts[start:stop]`` when ``texts`` is given). Raises :class:`CacheError`
    naming the first bad shard.

    Without ``out_path`` returns the float32 array ``[total, dim]``. With it, the
    shards are streamed one at a time into ``out_path`` (a ``.npy`` plus its sha256
    sidecar, renamed into place atomically), so peak memory is one shard, and the
    path is returned.
    """
    out_dir = Path(out_dir)
    metas, cursor, dim, total = [], 0, None, None
    for shard_id in range(num_shards):
        path = shard_path(out_dir, shard_id, num_shards)
        meta = _read_shard_meta(path)
        if meta is None or not path.exists():
            raise CacheError(f"{path}: shard {shard_id} of {num_shards} is missing (or its record is)")
        if meta.get("num_shards") != num_shards or meta.get("shard_id") != shard_id:
            raise CacheError(f"{path}: record says shard {meta.get('shard_id')} of {meta.get('num_shards')}")
        total = meta["total"] if total is None else total
        if meta["total"] != total or (expected_total is not None and total != expected_total):
            raise CacheError(f"{path}: written for {meta['total']} texts, expected {expected_total or total}")
        if meta["start"] != cursor or meta["stop"] < meta["start"] or meta["rows"] != meta["stop"] - meta["start"]:
            raise CacheError(
                f"{path}: covers [{meta['start']}, {meta['stop']}) with {meta['rows']} rows; expected to start at {cursor}"
            )
        if meta["rows"] and dim is not None and meta["dim"] != dim:
            raise CacheError(f"{path}: dimension {meta['dim']}, other shards have {dim}")
        if meta["rows"]:
            dim = meta["dim"]
        if texts is not None and texts_digest(texts[meta["start"] : meta["stop"]]) != meta["texts_sha256"]:
            raise CacheError(f"{path}: encodes different texts than given")
        sidecar = Path(str(path) + ".sha256")
        if not sidecar.exists() or sidecar.read_text().strip() != meta.get("sha256"):
            raise CacheError(f"{path}: checksum record disagrees with the shard's sidecar")
        cursor = meta["stop"]
        metas.append((path, meta))
    if total is None or cursor != total:
        raise CacheError(f"{out_dir}: shards cover {cursor} of {total} texts")
    dim = dim or 0

    if out_path is None:
        out = np.empty((total, dim), dtype=np.float32)
        for path, meta in metas:
            out[meta["start"] : meta["stop"]] = _load_shard(path, meta, dim)
        return out

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        merged = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(total, dim))
        for path, meta in metas:
            merged[meta["start"] : meta["stop"]] = _load_shard(path, meta, dim)
        merged.flush()
        del merged
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        digest = sha256_file(tmp)
        os.replace(tmp, out_path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise

    atomic_write_text(Path(str(out_path) + ".sha256"), digest + "\n")
    return out_path


def _load_shard(path: Path, meta: dict, dim: int) -> np.ndarray:
    array = load_array(path)  # verifies the checksum, raises CacheError on a mismatch
    if (
        array.dtype != np.float32
        or array.ndim != 2
        or array.shape[0] != meta["rows"]
        or (meta["rows"] and array.shape[1] != dim)
    ):
        raise CacheError(
            f"{path}: array {array.dtype} {array.shape} disagrees with its record ({meta['rows']} x {dim})"
        )
    return array


def encode_corpus_distributed(
    encoder: Encoder,
    texts: Sequence[str],
    out_dir: Path,
    max_length: int = 256,
    batch_size: int = 64,
    out_path: Path | None = None,
) -> Path:
    """Every rank encodes its shard; after a barrier rank 0 merges (into ``out_path`` if given).

    Returns the merged array (or path) on rank 0 and None elsewhere. Works without a
    process group too (one shard).
    """
    rank, world = rank_world()
    encode_corpus_sharded(encoder, texts, rank, world, out_dir, max_length, batch_size)
    barrier()
    result = merge_shards(out_dir, world, expected_total=len(texts), out_path=out_path) if rank == 0 else None
    barrier()
    return result


def corpus_cache_path(scorer: DenseScorer, texts: Sequence[str]) -> Path:
    """Where :class:`mta4dpr_core.retrieval.scorers.DenseScorer` looks for its corpus encoding, so a merged
    sharded encoding written there is picked up by ``scorer.prepare(corpus)``."""
    return Path(scorer.cache_dir) / "encodings" / f"{scorer.cache_key(texts, scorer.max_passage_length)}.npy"


# ---------------------------------------------------------------- command line
def _encode_main(args):
    from ..retrieval.encoders import build_encoder  # noqa: PLC0415 (lazy: numba not loaded by this module)
    from ..retrieval.scorers import DenseScorer  # noqa: PLC0415 (lazy: numba not loaded by this module)

    rank, world, local_rank = init_from_env(args.backend)
    try:
        collection = load_collection(args.collection, splits=[])
        spec = {"kind": args.kind, "model": args.model, "pooling": args.pooling, "normalize": args.normalize}
        encoder = build_encoder(spec, cache_dir=args.cache_dir)
        if torch.cuda.is_available() and isinstance(encoder, torch.nn.Module):
            encoder.to(torch.device("cuda", torch.cuda.current_device()))
        texts = collection.corpus.texts
        out_path = None
        if args.into_cache:
            scorer = DenseScorer(encoder, args.model, max_passage_length=args.max_length, cache_dir=args.cache_dir)
            out_path = corpus_cache_path(scorer, texts)
        result = encode_corpus_distributed(encoder, texts, args.out_dir, args.max_length, args.batch_size, out_path)
        if rank == 0:
            shape = np.load(result, mmap_mode="r").shape if out_path is not None else result.shape
            print(f"encoded {len(texts)} passages on {world} rank(s): {shape} -> {out_path or args.out_dir}")
    finally:
        teardown()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mta4dpr_core.method.distributed")
    commands = parser.add_subparsers(dest="command", required=True)
    encode = commands.add_parser("encode", help="encode a corpus, one shard per rank, and merge on rank 0")
    encode.add_argument("--collection", required=True, help="a BEIR or MS MARCO TSV collection directory")
    encode.add_argument("--kind", default="hf", choices=["hf", "static", "sentence_transformers", "onnx"])
    encode.add_argument("--model", required=True)
    encode.add_argument("--pooling", default="mean")
    encode.add_argument("--normalize", action="store_true")
    encode.add_argument("--max-length", type=int, default=256)
    encode.add_argument("--batch-size", type=int, default=256)
    encode.add_argument("--out-dir", required=True)
    encode.add_argument("--cache-dir", default=None)
    encode.add_argument("--into-cache", action="store_true", help="merge into the DenseScorer corpus cache")
    encode.add_argument("--backend", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "encode":
        _encode_main(args)


if __name__ == "__main__":
    main()
