"""The typed run result: stored exactly as produced, a malformed stored one named and rerun, never misread."""

from __future__ import annotations

import json
import logging

import pytest

from mta4dpr_core.config.errors import DataError
from mta4dpr_core.experiments.iteration import IterationRecord, RunResult, load_run_result
from mta4dpr_core.store.atomic import atomic_write_json


def _result(test=None):
    record = IterationRecord(1, ["a", "b"], "b", "MRR@10", 0.5, {"a": 0.4, "b": 0.3}, 2, 8, 10, 0, 1.0, 2.0, 0.1, 3.0)
    last = IterationRecord(2, ["a", "student@1"], None, "MRR@10", 0.6, {"a": 0.4}, 0, 8, 4, 6, 1.0, 2.0, 0.1, 2.5, test)
    return RunResult(
        "mta4dpr",
        13,
        ["a", "b"],
        {},
        (record, last),
        [{"iteration": 1, "step": 1}],
        {"a": 1.5},
        test,
        {},
        {},
        "float32",
    )


def test_round_trip_keeps_the_stored_format():
    result = _result(test={"test": {"nDCG@10": 0.25}})
    stored = result.to_json()
    assert list(stored) == [
        "variant", "seed", "assistants", "initial", "history", "selections",
        "temperatures", "final", "params", "student_spec", "training_precision",
    ]  # fmt: skip
    assert "test" not in stored["history"][0] and stored["history"][1]["test"] == {"test": {"nDCG@10": 0.25}}
    assert RunResult.from_json(json.loads(json.dumps(stored))) == result


def test_a_malformed_stored_result_is_named_and_rerun(tmp_path, caplog):
    path = tmp_path / "result.json"
    stored = _result().to_json()
    del stored["history"][1]["final_loss"]
    atomic_write_json(path, stored)
    with pytest.raises(DataError, match=r"result.json: the stored IterationRecord lacks the key 'final_loss'"):
        RunResult.from_json(stored, path)
    with caplog.at_level(logging.WARNING):
        assert load_run_result(path) is None  # run_mta4dpr then reruns it (resuming from its iterations)
    assert "final_loss" in caplog.text and str(path) in caplog.text

    stored = _result().to_json()
    stored["finall"] = stored.pop("final")
    with pytest.raises(DataError, match=r"lacks the key 'final'"):
        RunResult.from_json(stored, path)
    stored["final"] = None
    with pytest.raises(DataError, match=r"unknown key 'finall' \(did you mean 'final'\?\)"):
        RunResult.from_json(stored, path)
    assert load_run_result(tmp_path / "missing.json") is None
