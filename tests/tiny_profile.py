"""The tiny profile of the determinism and crash-resume tests, and helpers to run the runner CLI on it.

Derived from ``params/smoke.yaml``: 40 train / 20 test queries over 150 passages, no extra test
sets, 8 training steps (a checkpoint every 4), 2 iterations, selection study [random, kl], no
student sizes, no assistant combinations. ``construction.eval_fraction`` is 0.3 (12 eval queries
instead of 5) so that the student beats an assistant after iteration 1 and replaces it: a resumed
run then has to restore a pool holding a student snapshot.

Runs and results go to a fresh directory per run; the cache directory (encodings, the distilled
model2vec model) is shared: ``$MTA4DPR_TEST_CACHE`` or the repository's ``.cache``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from mta4dpr_core.config.params import REPO_ROOT

PROFILE = "tiny"
TIMING = re.compile(r"seconds|second\b|hours|share of training", re.IGNORECASE)
# cost bookkeeping in a run's history: a resumed run reuses cached pair scores, so these differ by design
BOOKKEEPING = {
    "construction_seconds",
    "training_seconds",
    "select_seconds",
    "step_seconds",
    "pairs_scored",
    "pairs_cached",
}


def cache_dir() -> Path:
    return Path(os.environ.get("MTA4DPR_TEST_CACHE", REPO_ROOT / ".cache"))


def tiny_params(directory: Path) -> dict:
    params = yaml.safe_load((REPO_ROOT / "params" / "smoke.yaml").read_text())
    params["profile"] = PROFILE
    params["data"].update(max_train_queries=40, max_test_queries=20, max_corpus=150, extra_test=[])
    params["construction"]["eval_fraction"] = 0.3
    params["training"].update(steps=8, checkpoint_every=4)
    params["iterations"] = {"count": 2}
    params["study"].update(selection_methods=["random", "kl"], student_sizes=[], assistant_combinations=False)
    # one process: a kill point stops the runner itself (STOPPING_RUNNER), not a forked worker
    params["output"] = {
        "runs_dir": str(directory / "runs"),
        "results_dir": str(directory / "results"),
        "cache_dir": str(cache_dir()),
        "workers": 1,
    }
    return params


def write_tiny_profile(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_params(directory), sort_keys=False))
    return path


def runner_command(profile: Path, stages) -> list:
    return [sys.executable, "-m", "mta4dpr_core.runner", "--profile", str(profile), "--no-notebooks", "--only", *stages]


def runner_env() -> dict:
    return {
        **os.environ,
        "MTA4DPR_PROGRESS": "0",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


def run_to_completion(directory: Path, stages, timeout=600) -> float:
    """Run the runner on the tiny profile in ``directory``; return its wall time (asserts exit 0)."""
    profile = write_tiny_profile(directory)
    started = time.perf_counter()
    with open(directory / "runner.log", "ab") as log:
        result = subprocess.run(
            runner_command(profile, stages), cwd=REPO_ROOT, env=runner_env(), stdout=log, stderr=log, timeout=timeout
        )
    assert result.returncode == 0, (directory / "runner.log").read_text(errors="replace")[-4000:]
    return time.perf_counter() - started


# The runner, with every atomic write checked against $MTA4DPR_TEST_STOP_AT (a glob relative to
# $MTA4DPR_TEST_ROOT): right after the first matching file is renamed into place the process stops
# itself (SIGSTOP), so the kill lands exactly there however busy the machine is, and a file that
# lives only briefly (a mid-iteration checkpoint, removed once the iteration is stored) is not missed.
STOPPING_RUNNER = """
import fnmatch, os, runpy, signal, sys
from pathlib import Path
import mta4dpr_core.store.atomic as atomic
root, pattern = Path(os.environ["MTA4DPR_TEST_ROOT"]).resolve(), os.environ["MTA4DPR_TEST_STOP_AT"]
write = atomic.atomic_write_bytes
def stopping_write(path, data, **options):
    result = write(path, data, **options)
    try:
        relative = Path(path).resolve().relative_to(root).as_posix()
    except ValueError:
        return result
    if fnmatch.fnmatchcase(relative, pattern):
        os.kill(os.getpid(), signal.SIGSTOP)
    return result
atomic.atomic_write_bytes = stopping_write
sys.argv = ["mta4dpr_core.runner", *sys.argv[1:]]
runpy.run_module("mta4dpr_core.runner", run_name="__main__", alter_sys=True)
"""


def _stopped(pid) -> bool:
    """Whether ``pid`` is stopped (SIGSTOP); True where /proc is not available."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] in ("T", "t")
    except OSError:
        return True


def run_and_kill(directory: Path, stages, marker: str, timeout=600) -> Path:
    """Start the runner, poll ``directory`` for ``marker`` (a glob), SIGKILL the whole process group as
    soon as it matches; return the matching path. Fails if the run ends before the marker appears.
    The runner stops itself right after writing the marker (see STOPPING_RUNNER), so the kill point
    is exact."""
    profile = write_tiny_profile(directory)
    deadline = time.monotonic() + timeout
    command = [sys.executable, "-c", STOPPING_RUNNER, *runner_command(profile, stages)[3:]]
    env = {**runner_env(), "MTA4DPR_TEST_ROOT": str(directory), "MTA4DPR_TEST_STOP_AT": marker}
    with open(directory / "runner.log", "ab") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=log, start_new_session=True)
        try:
            while time.monotonic() < deadline:
                hits = sorted(directory.glob(marker))
                if hits and _stopped(process.pid):
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
                    return hits[0]
                if process.poll() is not None:
                    raise AssertionError(
                        f"the run ended (exit {process.returncode}) before {marker} appeared:\n"
                        + (directory / "runner.log").read_text(errors="replace")[-4000:]
                    )
                time.sleep(0.02)
            raise AssertionError(f"{marker} did not appear within {timeout} s")
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def results_of(directory: Path) -> Path:
    return directory / "results" / PROFILE


def work_of(directory: Path) -> Path:
    return directory / "runs" / PROFILE / "work"


def comparable_rows(path: Path):
    """A results CSV without its timing columns and rows (wall-clock numbers vary run to run)."""
    rows = list(csv.reader(io.StringIO(path.read_text())))
    header = rows[0]
    keep = [i for i, name in enumerate(header) if not TIMING.search(name)]
    return [[row[i] for i in keep] for row in rows if not any(TIMING.search(cell) for cell in row)]


def has_timings(path: Path) -> bool:
    return any(TIMING.search(cell) for row in csv.reader(io.StringIO(path.read_text())) for cell in row)


def _strip(obj):
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in BOOKKEEPING and k != "params"}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def run_results(directory: Path) -> dict:
    """Every finished MTA4DPR run's result.json, keyed by (seed, variant), without timings and params
    (the params hold the output paths, which differ between directories)."""
    out = {}
    for path in work_of(directory).glob("seed*/*/result.json"):
        variant = path.parent.name.rsplit("-", 1)[0]
        out[(path.parent.parent.name, variant)] = _strip(json.loads(path.read_text()))
    return out


def score_store_names(directory: Path) -> set:
    """Pair-score store file names with each run key replaced by its variant name."""
    keys = {
        run.name.rsplit("-", 1)[1]: run.name.rsplit("-", 1)[0]
        for run in work_of(directory).glob("seed*/*")
        if run.is_dir()
    }
    names = set()
    for path in (work_of(directory) / "scores").glob("*.npz"):
        name = path.name
        for key, variant in keys.items():
            name = name.replace(key, variant)
        names.add(name)
    return names


def assert_same_results(expected: Path, actual: Path):
    """Results tables equal byte for byte (timing rows/columns excepted), run results bit-identical."""
    want, got = results_of(expected), results_of(actual)
    names = sorted(p.name for p in want.glob("*.csv"))
    assert names and names == sorted(p.name for p in got.glob("*.csv"))
    for name in names:
        if has_timings(want / name):
            assert comparable_rows(want / name) == comparable_rows(got / name), name
        else:
            assert (want / name).read_bytes() == (got / name).read_bytes(), (
                f"{name} differs:\n{(want / name).read_text()}\n---\n{(got / name).read_text()}"
            )
    expected_runs, actual_runs = run_results(expected), run_results(actual)
    assert expected_runs and sorted(expected_runs) == sorted(actual_runs)
    for key in expected_runs:
        assert expected_runs[key] == actual_runs[key], f"run {key} differs"
