"""The runner's ETA on a cold start (issue 20, item 6).

A fresh clone has no ``runs/<profile>/work``: every notebook computes its runs from scratch. The ETA
must come from a cold run's timings (``cold_timings_seconds`` in the committed manifest), not from a
warm rerun's ``timings_seconds``, and a warm rerun must leave the cold timings alone. The runner is
driven for real (``run_profile``, no notebooks) with each stage replaced by a stub that creates the
work directory, as the real stages do, and sleeps a little.
"""

from __future__ import annotations

import json
import re
import shutil
import time

import pytest
import yaml

from mta4dpr_core import runner

NAMES = ["01_data_prep", "02_fusion"]
WARM = {"01_data_prep": 11.0, "02_fusion": 9.0}  # a warm rerun's timings: 20 s
COLD = {"01_data_prep": 600.0, "02_fusion": 1200.0}  # the cold run's: 30 min


@pytest.fixture
def profile(tmp_path, monkeypatch):
    from mta4dpr_core import pipeline
    from mta4dpr_core.config import models
    from mta4dpr_core.experiments import experiment

    path = tmp_path / "eta.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "profile": "eta",
                "models": {
                    "teacher": {"kind": "bm25", "name": "bm25"},
                    "student": {"kind": "static", "model": "wordllama"},
                },
                "output": {
                    "runs_dir": str(tmp_path / "runs"),
                    "results_dir": str(tmp_path / "results"),
                    "cache_dir": str(tmp_path / "cache"),
                },
            }
        )
    )
    work = tmp_path / "runs" / "eta" / "work"

    def stage(setup):
        work.mkdir(parents=True, exist_ok=True)
        (work / "something").write_text("cached")
        time.sleep(0.15)

    monkeypatch.setattr(pipeline, "STAGES", {name: stage for name in NAMES})
    monkeypatch.setattr(experiment.Setup, "from_params", classmethod(lambda cls, params, **kw: None))
    monkeypatch.setattr(models, "check_models_available", lambda params: None)
    return path, tmp_path


def _manifest(directory):
    return json.loads((directory / "results" / "eta" / "manifest.json").read_text())


def _write_manifest(directory, timings, cold=None):
    path = directory / "results" / "eta" / "manifest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    content = {"profile": "eta", "timings_seconds": {**timings, "total": sum(timings.values())}}
    if cold is not None:
        content["cold_timings_seconds"] = {**cold, "total": sum(cold.values())}
    path.write_text(json.dumps(content))


def _run(path, force=False):
    lines = []
    runner.run_profile(path, only=NAMES, notebooks=False, force=force, log=lines.append)
    return lines


def _first_eta(lines):
    """The ETA of the first notebook's "running" line (the estimate at the start of the run)."""
    line = next(line for line in lines if ": running" in line)
    return re.search(r"ETA (\S+)\]", line).group(1)


def test_fresh_clone_estimates_from_the_cold_timings(profile):
    """The issue's case: the committed manifest holds a warm rerun's timings and the cold run's. The old
    runner printed the warm sum (20s) for a cold start; the cold sum is 30m00s."""
    path, directory = profile
    _write_manifest(directory, WARM, COLD)
    lines = _run(path)
    assert _first_eta(lines) == "30m00s", lines
    assert "cold start" in lines[0] and "ETA 30m00s" in lines[0]
    assert "took 10m00s on the last cold run" in next(line for line in lines if "01_data_prep: running" in line)


def test_warm_start_estimates_from_the_last_timings(profile):
    path, directory = profile
    _write_manifest(directory, WARM, COLD)
    (directory / "runs" / "eta" / "work").mkdir(parents=True)
    (directory / "runs" / "eta" / "work" / "old-run").write_text("x")
    lines = _run(path)
    assert _first_eta(lines) == "20s" and "warm start" in lines[0], lines


def test_old_manifest_without_cold_timings_gives_a_lower_bound(profile):
    """A manifest written before cold timings were recorded: the warm sum is shown as a lower bound."""
    path, directory = profile
    _write_manifest(directory, WARM)
    lines = _run(path)
    assert _first_eta(lines) == ">=20s", lines
    assert "a cold run takes longer" in next(line for line in lines if "01_data_prep: running" in line)


def test_a_warm_rerun_keeps_the_cold_timings(profile):
    path, directory = profile
    _write_manifest(directory, WARM, COLD)
    _run(path)  # cold: no work directory yet
    cold = _manifest(directory)["cold_timings_seconds"]
    assert _manifest(directory)["cold_start"] is True
    assert set(cold) == {*NAMES, "total"} and all(0 < cold[n] < 60 for n in NAMES)  # this cold run's own timings
    markers = [json.loads((directory / "runs" / "eta" / "notebooks" / f"{n}.done.json").read_text()) for n in NAMES]
    assert all(m["cold"] is True for m in markers)

    _run(path, force=True)  # warm: the work directory holds the first run's files
    manifest = _manifest(directory)
    assert manifest["cold_start"] is False
    assert manifest["cold_timings_seconds"] == cold  # not overwritten by the warm rerun
    markers = [json.loads((directory / "runs" / "eta" / "notebooks" / f"{n}.done.json").read_text()) for n in NAMES]
    assert all(m["cold"] is False for m in markers)

    # a fresh clone of the committed results (no runs/): the estimate is the cold run's, not the warm one's
    manifest["timings_seconds"] = {**WARM, "total": 20.0}  # make the two kinds easy to tell apart
    (directory / "results" / "eta" / "manifest.json").write_text(json.dumps(manifest))
    shutil.rmtree(directory / "runs")
    lines = _run(path)
    expected = runner._format_seconds(cold["01_data_prep"] + cold["02_fusion"])
    assert _first_eta(lines) == expected != "20s", lines
    # and the second cold run replaces the first's cold timings (same kind), never with warm ones
    assert _manifest(directory)["cold_timings_seconds"]["02_fusion"] < 60


def test_previous_timings_cold_and_warm(tmp_path):
    """The estimate's sources: a cold marker beats the manifest's cold timing; a warm marker does not count cold."""
    (tmp_path / "01_a.done.json").write_text('{"key": "k", "seconds": 5.0, "cold": false}')
    (tmp_path / "02_b.done.json").write_text('{"key": "k", "seconds": 700.0, "cold": true}')
    (tmp_path / "manifest.json").write_text(
        json.dumps({"timings_seconds": {"03_c": 3.0}, "cold_timings_seconds": {"01_a": 100.0, "03_c": 300.0}})
    )
    names = ["01_a", "02_b", "03_c", "04_d"]
    assert runner.previous_timings(tmp_path, tmp_path, names) == {"01_a": 5.0, "02_b": 700.0, "03_c": 3.0}
    assert runner.timing_estimates(tmp_path, tmp_path, names, cold=True) == (
        {"01_a": 100.0, "02_b": 700.0, "03_c": 300.0},
        set(),
    )
