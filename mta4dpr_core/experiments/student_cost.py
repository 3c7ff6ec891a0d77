"""A student's size and the cost of encoding the corpus with it (Table 9), measured once and stored.

The untrained student of ``spec`` (seed 0) encodes the profile's corpus; its parameter count, dimension, index
size and encoding time are stored under a hash of the spec, the data, the passage length and the core code, so
that Table 9 reads a measurement instead of making one. The time is this machine's, at the time of the first
measurement.
"""

from __future__ import annotations

import time

from ..store.atomic import atomic_write_json, code_digest, content_hash, read_json


def student_cost(setup, spec: dict) -> dict:
    """``{"dim", "params", "index_bytes", "encoding_seconds", "passages"}`` of the student ``spec``."""
    max_length = setup.config.training.max_passage_length
    key = content_hash(spec, setup.params["data"], max_length, code_digest())
    path = setup.work_dir / "costs" / f"student-{key}.json"
    stored = read_json(path)
    if stored is not None:
        return stored
    student = setup.new_student(0, spec)
    started = time.perf_counter()
    vectors = student.encode(setup.collection.corpus.texts, max_length=max_length)
    cost = {
        "dim": int(student.dim),
        "params": int(sum(p.numel() for p in student.parameters())),
        "index_bytes": int(vectors.nbytes),
        "encoding_seconds": time.perf_counter() - started,
        "passages": len(setup.collection.corpus),
    }
    atomic_write_json(path, cost)
    return cost
