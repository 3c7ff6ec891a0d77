"""Atomic, checksummed writes: nothing half written is ever trusted later.

Every output goes to a temporary file in the target directory and is renamed into
place (``os.replace`` is atomic on POSIX). Array and checkpoint files get a sidecar
``<file>.sha256``; readers verify it and treat a mismatch as a missing cache.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import pickle
import tempfile
import time
from pathlib import Path

import numpy as np

from ..config.errors import CacheError
from ..config.layers import NOT_COMPUTING

log = logging.getLogger(__name__)
_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path, data: bytes, durable: bool = True) -> Path:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``.

    ``durable``: flush it to the disk (fsync) before the rename, so that a crash cannot leave a renamed but
    empty file. :func:`write_checksummed` does without: its readers verify the checksum, and a file a crash
    left torn is then recomputed (the fsync of each checkpoint and encoding cost a run about a second)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path):
    """A JSON file written by :func:`atomic_write_json`, or None if missing or unreadable (then rebuilt)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as error:
        log.warning("%s: unreadable (%s); rebuilding it", path, error)
        return None


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def texts_digest(texts) -> str:
    """sha256 over texts, each followed by a NUL byte (so ["ab"] and ["a", "b"] differ)."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


def content_hash(*parts) -> str:
    """A short, stable hash of JSON-serialisable parts (model ids, params, text digests)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:20]


def write_checksummed(path, data: bytes) -> Path:
    """Write ``data`` and its sha256 sidecar, both atomically (data first). Not fsynced: a file torn by a crash
    fails :func:`read_checksummed`'s check and is recomputed, never trusted. The digest is computed before
    either rename, so that another process sees a new file without its sidecar for as short a time as can be."""
    path = Path(path)
    sidecar = (sha256_bytes(data) + "\n").encode()
    atomic_write_bytes(path, data, durable=False)
    atomic_write_bytes(Path(str(path) + ".sha256"), sidecar, durable=False)
    return path


# waits before reading a file again whose checksum did not match: another process may be between its two renames
CHECKSUM_RETRY_SECONDS = (0.05, 0.2)


def read_checksummed(path) -> bytes:
    """Read bytes written by :func:`write_checksummed`; raise CacheError if they do not verify.

    A mismatch is read again after a short wait (:data:`CHECKSUM_RETRY_SECONDS`): two grid workers that save one
    shared store (the teacher's pair scores) can leave, for a moment, one's data beside the other's sidecar,
    and a reader in that moment rejected a sound store and rebuilt it (two warnings in a cold run of mini on
    2026-12-07). Only bytes whose digest matches are returned; a torn file still fails every read."""
    path = Path(path)
    sidecar = Path(str(path) + ".sha256")
    for wait in (*CHECKSUM_RETRY_SECONDS, None):
        if not path.exists() or not sidecar.exists():
            raise CacheError(f"{path}: missing (or its checksum file is missing)")
        data = path.read_bytes()
        if sha256_bytes(data) == sidecar.read_text().strip():
            return data
        if wait is not None:
            time.sleep(wait)
    raise CacheError(f"{path}: checksum mismatch (file corrupted or truncated)")


def save_array(path, array: np.ndarray) -> Path:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return write_checksummed(path, buffer.getvalue())


def load_array(path) -> np.ndarray:
    return np.load(io.BytesIO(read_checksummed(path)), allow_pickle=False)


def _try_load(path, load, errors=(CacheError, ValueError, OSError)):
    """``load(path)`` of a verified file, or None (and say why) when it is missing or fails with one of ``errors``:
    a cache that is rejected is rebuilt, never half trusted."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return load(path)
    except errors as error:
        log.warning("cache rejected, rebuilding: %s", error)
        return None


def try_load_array(path):
    """Load a verified array, or return None (and say why) if it is missing or corrupted."""
    return _try_load(path, load_array)


def save_npz(path, **arrays) -> Path:
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.ascontiguousarray(v) for k, v in arrays.items()})
    return write_checksummed(path, buffer.getvalue())


def _load_npz(path) -> dict:
    with np.load(io.BytesIO(read_checksummed(path)), allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def try_load_npz(path):
    return _try_load(path, _load_npz)


# Modules that only present results (tables, figures, claims, statistics, notebooks, the runner's
# bookkeeping): editing them changes no run, no encoding and no score, so they stay out of the
# digest that keys runs and caches (layers.py declares them). A notebook's own done-marker uses the
# full digest.
REPORT_MODULES = NOT_COMPUTING


def code_digest(include_report: bool = False, root: Path | None = None) -> str:
    """SHA-256 of the core's computing source files: part of every run key and cache scope, so a run
    is reused only while the code that computes it is unchanged. ``include_report`` adds the modules
    in :data:`REPORT_MODULES` (what a rerun of a notebook depends on)."""
    digest = hashlib.sha256()
    root = root or Path(__file__).resolve().parents[1]  # the package, every layer's subpackage included
    for path in sorted(root.rglob("*.py")):
        if not include_report and path.stem in REPORT_MODULES:
            continue
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def save_torch(path, obj) -> Path:
    import torch  # noqa: PLC0415 (lazy: torch not loaded by this module)

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return write_checksummed(path, buffer.getvalue())


def try_load_torch(path):
    import torch  # noqa: PLC0415 (lazy: torch not loaded by this module)

    # weights_only: a swapped checkpoint cannot run code; metadata lives in JSON beside the weights
    return _try_load(
        path,
        lambda p: torch.load(io.BytesIO(read_checksummed(p)), map_location="cpu", weights_only=True),
        (CacheError, RuntimeError, OSError, EOFError, pickle.UnpicklingError),
    )
