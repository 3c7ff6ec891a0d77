"""Atomic, verified outputs: a corrupted or truncated cache is detected (checksum), reported (a logged
warning) and rebuilt, never silently used; every write goes through a temporary file and a rename.

Caches covered: corpus encodings (``<cache_dir>/encodings/<key>.npy``), the pair-score store
(``.npz``), training checkpoints (``last.pt``), iteration states (``state.pt``) and the
``TrainingData`` arrays. Everything is tiny and synthetic (conftest's static encoder and data).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import MatrixScorer, make_training_data, tiny_static_encoder, tiny_train_config

from mta4dpr_core.method import training as training_module
from mta4dpr_core.method.construction import PairScoreStore, TrainingData, score_with_cache
from mta4dpr_core.method.training import train_student
from mta4dpr_core.report.tables import write_table
from mta4dpr_core.retrieval.data import Corpus
from mta4dpr_core.retrieval.scorers import DenseScorer
from mta4dpr_core.store import atomic
from mta4dpr_core.store.atomic import (
    load_array,
    read_checksummed,
    save_array,
    save_npz,
    save_torch,
    try_load_npz,
    try_load_torch,
)

# ---------------------------------------------------------------------------------------------
# Ways to damage a cache file (each must be detected)
# ---------------------------------------------------------------------------------------------


def flip_a_byte(path: Path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path: Path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def empty(path: Path):
    path.write_bytes(b"")


def append_garbage(path: Path):
    with open(path, "ab") as handle:
        handle.write(b"\x00garbage")


def delete_sidecar(path: Path):
    Path(str(path) + ".sha256").unlink()


def wrong_sidecar(path: Path):
    Path(str(path) + ".sha256").write_text("0" * 64 + "\n")


DAMAGE = [flip_a_byte, truncate, empty, append_garbage, delete_sidecar, wrong_sidecar]
damage_ids = [d.__name__ for d in DAMAGE]


def rejected(caplog, path) -> bool:
    """A WARNING was logged naming ``path``."""
    return any(r.levelno == logging.WARNING and str(path) in r.getMessage() for r in caplog.records)


def verifies(path) -> bool:
    try:
        read_checksummed(path)
        return True
    except Exception:
        return False


# ---------------------------------------------------------------------------------------------
# Corpus encodings
# ---------------------------------------------------------------------------------------------


def _counting_scorer(cache_dir):
    encoder = tiny_static_encoder(4, 30, dim=8, seed=0)
    calls = {"n": 0}
    real = encoder.encode

    def encode(*args, **kwargs):
        calls["n"] += 1
        return real(*args, **kwargs)

    encoder.encode = encode
    return DenseScorer(encoder, "tiny", max_query_length=8, max_passage_length=8, cache_dir=cache_dir), calls


CORPUS = Corpus(ids=[str(j) for j in range(30)], texts=[f"d{j}" for j in range(30)])


@pytest.mark.parametrize("damage", DAMAGE, ids=damage_ids)
def test_corrupted_encoding_cache_is_rejected_and_rebuilt(damage, tmp_path, caplog):
    scorer, calls = _counting_scorer(tmp_path)
    scorer.prepare(CORPUS)
    files = sorted((tmp_path / "encodings").glob("*.npy"))
    assert len(files) == 1 and calls["n"] == 1 and verifies(files[0])
    path, good = files[0], files[0].read_bytes()
    expected = scorer.doc_embeddings.copy()

    again, calls = _counting_scorer(tmp_path)
    again.prepare(CORPUS)
    assert calls["n"] == 0  # an intact cache is used
    np.testing.assert_array_equal(again.doc_embeddings, expected)

    damage(path)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        rebuilt, calls = _counting_scorer(tmp_path)
        rebuilt.prepare(CORPUS)
    assert calls["n"] == 1, "a damaged encoding cache was used instead of re-encoding"
    assert rejected(caplog, path)
    np.testing.assert_array_equal(rebuilt.doc_embeddings, expected)
    assert path.read_bytes() == good and verifies(path)  # rewritten, and verifies again


# ---------------------------------------------------------------------------------------------
# The pair-score store
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", DAMAGE, ids=damage_ids)
def test_corrupted_pair_score_store_is_rejected_and_rebuilt(damage, tmp_path, caplog):
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(5, 20)).astype(np.float32)
    query_ids = [str(i) for i in range(5)]
    texts = [f"q{i}" for i in range(5)]
    doc_idx = np.stack([rng.permutation(20)[:6] for _ in range(5)])
    doc_idx[0, -1] = -1
    path = tmp_path / "scores" / "fake.npz"

    scorer = MatrixScorer(query_ids, matrix)
    store = PairScoreStore(path, 20)
    first = score_with_cache(scorer, query_ids, texts, np.arange(5), doc_idx, store)
    store.save()
    assert scorer.pairs_scored == 29 and verifies(path)

    cached = MatrixScorer(query_ids, matrix)
    again = score_with_cache(cached, query_ids, texts, np.arange(5), doc_idx, PairScoreStore(path, 20))
    assert cached.pairs_scored == 0  # an intact store is used
    np.testing.assert_array_equal(again, first)

    damage(path)
    caplog.clear()
    fresh = MatrixScorer(query_ids, matrix)
    with caplog.at_level(logging.WARNING):
        store = PairScoreStore(path, 20)
    assert rejected(caplog, path)
    assert len(store.keys) == 0
    rebuilt = score_with_cache(fresh, query_ids, texts, np.arange(5), doc_idx, store)
    assert fresh.pairs_scored == 29, "a damaged pair-score store was used instead of rescoring"
    np.testing.assert_array_equal(rebuilt, first)
    store.save()
    assert verifies(path) and len(try_load_npz(path)["keys"]) == 29


# ---------------------------------------------------------------------------------------------
# Training checkpoints (last.pt) and iteration states (state.pt)
# ---------------------------------------------------------------------------------------------


def _config(**overrides):
    return tiny_train_config(**{"checkpoint_every": 3, **overrides})


@pytest.mark.parametrize("damage", DAMAGE, ids=damage_ids)
def test_corrupted_training_checkpoint_is_rejected_and_training_restarts(damage, tmp_path, caplog, monkeypatch):
    data, passages = make_training_data(n_queries=12, n_docs=30, k=5, m=3)
    checkpoints = tmp_path / "checkpoints"
    straight = tiny_static_encoder(12, 30, seed=1)
    train_student(straight, data, passages, _config(), checkpoint_dir=checkpoints)
    path = checkpoints / "last.pt"
    assert verifies(path) and try_load_torch(path)["step"] == 6

    damage(path)
    steps_run = {"n": 0}
    real_sample = training_module.sample_batch

    def counting(*args, **kwargs):
        steps_run["n"] += 1
        return real_sample(*args, **kwargs)

    monkeypatch.setattr(training_module, "sample_batch", counting)
    caplog.clear()
    student = tiny_static_encoder(12, 30, seed=1)
    with caplog.at_level(logging.WARNING):
        record = train_student(student, data, passages, _config(), checkpoint_dir=checkpoints)
    assert rejected(caplog, path)
    assert steps_run["n"] == 6, "a damaged checkpoint was resumed from instead of training from step 0"
    assert [r["step"] for r in record] == list(range(1, 7))
    for name, tensor in straight.state_dict().items():
        assert torch.equal(tensor, student.state_dict()[name]), name
    assert verifies(path) and try_load_torch(path)["step"] == 6  # rebuilt


@pytest.mark.parametrize("damage", DAMAGE, ids=damage_ids)
def test_corrupted_iteration_state_is_rejected(damage, tmp_path, caplog):
    path = tmp_path / "iteration1" / "state.pt"
    save_torch(
        path,
        {"model": {"w": torch.arange(1000.0)}, "history": [{"iteration": 1}], "selections": [], "pool": ["a", "b"]},
    )
    assert try_load_torch(path)["pool"] == ["a", "b"]
    damage(path)
    with caplog.at_level(logging.WARNING):
        assert try_load_torch(path) is None
    assert rejected(caplog, path)


# ---------------------------------------------------------------------------------------------
# TrainingData arrays
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("array", ["candidates", "teacher_scores", "assistant_scores", "query_rows"])
@pytest.mark.parametrize("damage", DAMAGE, ids=damage_ids)
def test_corrupted_training_data_is_rejected_and_rebuilt(array, damage, tmp_path, caplog):
    data, _ = make_training_data(n_queries=10, n_docs=30, k=5, m=3)
    directory = tmp_path / "data"
    data.save(directory)
    loaded = TrainingData.load(directory)
    np.testing.assert_array_equal(np.asarray(loaded.candidates), data.candidates)
    del loaded

    path = directory / f"{array}.npy"
    damage(path)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert TrainingData.load(directory) is None
    assert rejected(caplog, path)

    data.save(directory)  # the caller rebuilds and saves again
    rebuilt = TrainingData.load(directory)
    for name in TrainingData.ARRAYS:
        np.testing.assert_array_equal(np.asarray(getattr(rebuilt, name)), getattr(data, name))


# ---------------------------------------------------------------------------------------------
# Writes go through a temporary file in the same directory and a rename
# ---------------------------------------------------------------------------------------------


class CrashingOs:
    """``os`` as seen by mta4dpr_core.store.atomic, with ``replace`` failing (a crash before the rename),
    optionally only from the ``fail_from``-th call on."""

    def __init__(self, fail_from=1):
        self.calls, self.fail_from = [], fail_from

    def __getattr__(self, name):
        return getattr(os, name)

    def replace(self, source, target):
        self.calls.append((Path(source), Path(target)))
        if len(self.calls) >= self.fail_from:
            raise OSError("simulated crash before the rename")
        return os.replace(source, target)


def _snapshot(directory: Path):
    return {p.relative_to(directory): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


WRITERS = {
    "save_array": lambda d, v: save_array(d / "x.npy", np.full(100, v, np.float32)),
    "save_npz": lambda d, v: save_npz(d / "x.npz", keys=np.arange(10) + v, values=np.ones(10, np.float32)),
    "save_torch": lambda d, v: save_torch(d / "last.pt", {"step": v, "model": {"w": torch.full((10,), float(v))}}),
    "atomic_write_json": lambda d, v: atomic.atomic_write_json(d / "result.json", {"value": v}),
    "write_table": lambda d, v: write_table(pd.DataFrame({"a": [v, v + 1]}), d, "table1", "t"),
    "training_data": lambda d, v: make_training_data(n_queries=4, n_docs=10, k=3, m=2, seed=v)[0].save(d / "data"),
    "pair_store": lambda d, v: _store_with(d, v).save(),
}


def _store_with(directory, value):
    store = PairScoreStore(directory / "scores.npz", 10)
    store.add(np.arange(5) + value, np.ones(5, np.float32))
    return store


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_a_crash_before_the_rename_leaves_the_target_untouched(writer, tmp_path, monkeypatch):
    WRITERS[writer](tmp_path, 1)
    before = _snapshot(tmp_path)
    crashing = CrashingOs()
    monkeypatch.setattr(atomic, "os", crashing)
    with pytest.raises(OSError, match="simulated crash"):
        WRITERS[writer](tmp_path, 2)
    monkeypatch.undo()
    assert _snapshot(tmp_path) == before  # old contents intact, no temporary file left behind
    source, target = crashing.calls[0]
    assert source.parent == target.parent and source.name.startswith(f".{target.name}.") and source.suffix == ".tmp"


def test_a_crash_between_the_data_and_its_checksum_is_detected(tmp_path, monkeypatch, caplog):
    """``write_checksummed`` renames the data, then its sidecar: a crash in between leaves new data
    with the old checksum, which the reader rejects rather than trusts."""
    path = save_array(tmp_path / "x.npy", np.zeros(100, np.float32))
    monkeypatch.setattr(atomic, "os", CrashingOs(fail_from=2))
    with pytest.raises(OSError, match="simulated crash"):
        save_array(path, np.ones(100, np.float32))
    monkeypatch.undo()
    with caplog.at_level(logging.WARNING):
        assert atomic.try_load_array(path) is None
    assert rejected(caplog, path)
    with pytest.raises(atomic.CacheError, match="checksum mismatch"):
        load_array(path)


def test_a_reader_between_another_writers_two_renames_waits_for_its_checksum(tmp_path, monkeypatch):
    """Two processes saving one store: the reader can find one's new data beside the old sidecar for a moment.
    It reads again after a short wait and takes the data once data and sidecar agree; it never takes bytes
    whose digest does not match."""
    path = save_array(tmp_path / "x.npy", np.zeros(100, np.float32))
    ones = np.ones(100, np.float32)
    staged = tmp_path / "staged.npy"
    save_array(staged, ones)
    atomic.atomic_write_bytes(path, staged.read_bytes())  # the other writer's data is in place, its sidecar not yet
    waits = []

    def other_writer_finishes(seconds):
        waits.append(seconds)
        atomic.atomic_write_bytes(Path(str(path) + ".sha256"), Path(str(staged) + ".sha256").read_bytes())

    monkeypatch.setattr(atomic.time, "sleep", other_writer_finishes)
    np.testing.assert_array_equal(load_array(path), ones)
    assert waits == [atomic.CHECKSUM_RETRY_SECONDS[0]]
    # a file that stays torn fails every read, after every wait
    path.write_bytes(path.read_bytes()[:-8])
    waits.clear()
    monkeypatch.setattr(atomic.time, "sleep", waits.append)
    with pytest.raises(atomic.CacheError, match="checksum mismatch"):
        load_array(path)
    assert waits == list(atomic.CHECKSUM_RETRY_SECONDS)


def test_editing_report_code_keeps_every_run_key(tmp_path):
    """A caption or colour edit in a report module must not retrain runs or re-score pairs; an edit in a
    computing module must."""
    import shutil

    from mta4dpr_core.store.atomic import REPORT_MODULES, code_digest

    package = Path(__file__).resolve().parents[2] / "mta4dpr_core"
    copy = tmp_path / "mta4dpr_core"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    compute, full = code_digest(root=copy), code_digest(include_report=True, root=copy)
    assert {"plots", "studies", "tables", "claims"} <= REPORT_MODULES
    (copy / "report" / "plots.py").write_text((copy / "report" / "plots.py").read_text() + "\n# a caption edit\n")
    (copy / "report" / "studies.py").write_text(
        (copy / "report" / "studies.py").read_text().replace("Table 8", "Table 8 (edited)")
    )
    assert code_digest(root=copy) == compute  # runs and caches reused
    assert code_digest(include_report=True, root=copy) != full  # the notebooks rerun
    (copy / "method" / "losses.py").write_text(
        (copy / "method" / "losses.py").read_text() + "\n# a change to the method\n"
    )
    assert code_digest(root=copy) != compute
