"""Run every notebook of a profile in order with papermill.

    python -m mta4dpr_core.runner --profile mini            # notebooks -> runs/mini/notebooks/
    python -m mta4dpr_core.runner --profile smoke --only 01_data_prep 02_fusion
    python -m mta4dpr_core.runner --profile mini --no-notebooks   # same stages, no Jupyter
    python -m mta4dpr_core.runner --profile mini --set profile=mine data.train=X/train data.test=X/test training.steps=10

``--set KEY=VALUE ...`` overrides any profile key (dotted; values parsed as YAML scalars or
lists, e.g. ``seeds=[1,2]``), validated exactly like the profile's own keys. Set ``profile=<name>``
too to keep the runs and results apart from the unmodified profile's.

Under ``output.schedule: profile`` notebook 03 computes every run of the profile, and notebooks 04, 05 and 06,
which then only read stored runs and evaluations on about one core each, run side by side, each in its own
kernel (:data:`SIDE_BY_SIDE`); their tables are the same as one after the other. ``manifest.json`` records the
invocation's ``wall_seconds`` beside each notebook's own seconds.

Tables and figures land in ``results/<profile>/``. A notebook that finished with
the same notebook source, params and core code is skipped on a rerun (its
``.done.json`` marker records a hash of the three), so rerunning after a crash
continues with the first unfinished notebook; inside a notebook, finished MTA4DPR
runs, iterations, training checkpoints, encodings and teacher scores are reused.

ETA. Each notebook's time is recorded in its marker and in ``results/<profile>/manifest.json``, in two
kinds. A run *starts cold* when the profile's work directory (``runs/<profile>/work``: the MTA4DPR runs,
pair scores and evaluations) is missing or empty when the runner starts, as on a fresh clone: every
notebook of that invocation computes its runs from scratch, and its time is a cold timing. Otherwise
the run is warm (finished runs and caches are reused) and its times are warm timings. The manifest keeps
the warm ones in ``timings_seconds`` (this invocation's notebooks) and the cold ones in
``cold_timings_seconds``, which only a cold run updates: a warm rerun never overwrites them. A cold
start estimates from cold timings (a notebook's cold marker, else the manifest's); where only a warm
timing is known it is used as a lower bound and the ETA shows ``>=``. A warm start estimates from the
last timings, as before. The proxy is deliberately simple: a shared model/encoding cache
(``output.cache_dir``) left from another profile does not make a run warm, and a work directory
emptied by hand makes it cold.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from .config import progress
from .config.errors import Mta4dprError
from .config.models import check_models_available
from .config.params import (
    REPO_ROOT,
    add_profile_arguments,
    apply_overrides,
    load_params,
    profile_path,
    resolve_path,
    with_results_dir_override,
)
from .config.typed import typed
from .store.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text, code_digest, read_json

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
KERNEL = os.environ.get("MTA4DPR_KERNEL", "python3")


def core_digest() -> str:
    return code_digest(include_report=True)


def notebook_names():
    return sorted(p.stem for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def _format_seconds(seconds) -> str:
    seconds = int(round(max(0.0, seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else (f"{minutes}m{secs:02d}s" if minutes else f"{secs}s")


def starts_cold(params) -> bool:
    """Whether a run of ``params`` starts cold: the profile's work directory (``runs/<profile>/work``:
    MTA4DPR runs, pair scores, evaluations) is missing or empty, as on a fresh clone."""
    config = typed(params)
    work = resolve_path(config.output.runs_dir) / config.profile / "work"
    try:
        return not any(work.iterdir())
    except OSError:  # missing (or unreadable): nothing to reuse
        return True


def _seconds(value):
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else None


def previous_timings(runs: Path, results: Path, names, cold=False) -> dict:
    """Seconds each notebook took last time, for the ETA; missing notebooks are left out.

    Warm (``cold=False``): its ``.done.json`` marker (even one of other code or params), else the
    manifest's ``timings_seconds``. Cold: a marker written by a cold run, else the manifest's
    ``cold_timings_seconds``; notebooks with no cold timing are left out (see :func:`timing_estimates`)."""
    return timing_estimates(runs, results, names, cold)[0]


def timing_estimates(runs: Path, results: Path, names, cold=False):
    """``(seconds by notebook, names whose seconds are only a lower bound)``.

    A cold start with no cold timing for a notebook falls back to its warm timing, marked as a lower
    bound (a warm rerun reuses runs and caches, so a cold one takes longer)."""
    manifest = read_json(results / "manifest.json") or {}
    warm_manifest, cold_manifest = manifest.get("timings_seconds") or {}, manifest.get("cold_timings_seconds") or {}
    out, lower = {}, set()
    for name in names:
        marker = read_json(runs / f"{name}.done.json") or {}
        warm = _seconds(marker.get("seconds")) or _seconds(warm_manifest.get(name))
        if not cold:
            seconds = warm or _seconds(cold_manifest.get(name))
        else:
            seconds = (_seconds(marker.get("seconds")) if marker.get("cold") else None) or _seconds(
                cold_manifest.get(name)
            )
            if seconds is None and warm is not None:
                seconds = warm
                lower.add(name)
        if seconds is not None:
            out[name] = seconds
    return out, lower


def cold_timings(results: Path, runs: Path, names, ran: dict, cold: bool) -> dict:
    """The manifest's ``cold_timings_seconds`` after this invocation: the previous ones, updated with the
    cold markers of notebooks skipped now and, when this invocation started cold, the notebooks it ran.
    A warm invocation changes none of them."""
    previous = (read_json(results / "manifest.json") or {}).get("cold_timings_seconds") or {}
    out = {name: seconds for name, seconds in previous.items() if name != "total" and _seconds(seconds)}
    for name in names:
        marker = read_json(runs / f"{name}.done.json") or {}
        if marker.get("cold") and _seconds(marker.get("seconds")):
            out[name] = float(marker["seconds"])
    if cold:
        out.update({name: seconds for name, seconds in ran.items() if _seconds(seconds)})
    if out:
        out["total"] = round(sum(out.values()), 1)
    return out


class ProgressMonitor:
    """Prints the core's progress lines (``MTA4DPR_PROGRESS_FILE``, appended by ``progress.report``
    and the bars inside the kernel) with the notebook, its position, elapsed time and an ETA;
    a heartbeat line when nothing was printed for ``heartbeat`` seconds."""

    def __init__(
        self,
        profile,
        names,
        previous: dict,
        log=print,
        heartbeat=45.0,
        poll=1.0,
        lower_bounds=(),
        cold=False,
        side_by_side=(),
    ):
        """``previous``: seconds by notebook (see :func:`timing_estimates`); ``lower_bounds``: notebooks whose
        seconds are only a lower bound (a warm timing on a cold start); ``cold``: the run starts cold;
        ``side_by_side``: notebooks that run at the same time (their ETA is the longest, not the sum)."""

        self.profile, self.names, self.previous = profile, list(names), dict(previous)
        self.side_by_side = set(side_by_side)
        lock = threading.Lock()

        def locked_log(line):  # whole lines from the notebooks' threads and the progress tail
            with lock:
                log(line)

        self.log = locked_log
        self.lower_bounds, self.cold = set(lower_bounds), cold
        self.heartbeat, self.poll = heartbeat, poll
        self.finished = {}  # name -> seconds of this run (0 for skipped ones)
        self.started_all = time.perf_counter()
        self.running = {}  # name -> when it started (several while notebooks run side by side)
        self.path = None
        self._thread, self._stop = None, None

    @property
    def current(self):
        return "+".join(self.running) or None

    @property
    def current_started(self):
        return min(self.running.values()) if self.running else None

    def estimate(self, name):
        if name in self.previous:
            return self.previous[name]
        ran = [s for n, s in self.finished.items() if s > 0]
        return sum(ran) / len(ran) if ran else None

    def eta(self):
        """Seconds left (None when nothing is known yet). Notebooks that run side by side count as the
        longest of their remaining times, not their sum."""
        alone, together = 0.0, [0.0]
        for name in self.names:
            if name in self.finished:
                continue
            guess = self.estimate(name)
            if guess is None:
                return None
            if name in self.running:
                guess = max(guess - (time.perf_counter() - self.running[name]), 0.0)
            if name in self.side_by_side:
                together.append(guess)
            else:
                alone += guess
        return alone + max(together)

    def eta_text(self):
        eta = self.eta()
        if eta is None:
            return "?"
        at_least = any(n in self.lower_bounds for n in self.names if n not in self.finished)
        return (">=" if at_least else "") + _format_seconds(eta)

    def prefix(self):
        done = len(self.finished)
        elapsed = time.perf_counter() - self.started_all
        where = f" {self.current}" if self.current else ""
        current = f", notebook {_format_seconds(time.perf_counter() - self.current_started)}" if self.current else ""
        return (
            f"[{self.profile} {done}/{len(self.names)} done{where} | elapsed {_format_seconds(elapsed)}{current}"
            f" | ETA {self.eta_text()}]"
        )

    def skipped(self, name, seconds):
        self.finished[name] = 0.0
        self.log(f"{self.prefix()} {name}: finished earlier ({seconds} s then), skipped")

    def start(self, name, progress_path: Path | None):
        self.running[name] = time.perf_counter()
        guess = self.estimate(name)
        if name not in self.previous:
            note = ""
        elif name in self.lower_bounds:
            note = f" (took {_format_seconds(guess)} on a warm run; a cold run takes longer)"
        else:
            note = f" (took {_format_seconds(guess)} {'on the last cold run' if self.cold else 'last time'})"
        self.log(f"{self.prefix()} {name}: running{note}")
        self.path = progress_path
        if progress_path is None or self._thread is not None:  # side by side: one tail for the shared file
            return

        progress_path.parent.mkdir(parents=True, exist_ok=True)
        progress_path.write_text("")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tail, args=(progress_path, self._stop), daemon=True)
        self._thread.start()

    def _tail(self, path: Path, stop):
        last_print = time.perf_counter()
        position = 0
        while True:
            stopping = stop.wait(self.poll)
            try:
                with open(path, encoding="utf-8", errors="replace") as handle:
                    handle.seek(position)
                    chunk = handle.read()
                    # only whole lines; a partial last line waits for the next poll
                    cut = chunk.rfind("\n") + 1
                    position += len(chunk[:cut].encode("utf-8", errors="replace"))
                    lines = chunk[:cut].splitlines()
            except OSError:
                lines = []
            for line in lines:
                if line.strip():
                    self.log(f"{self.prefix()} {line.strip()}")
                    last_print = time.perf_counter()
            if stopping:
                return
            if time.perf_counter() - last_print >= self.heartbeat:
                self.log(f"{self.prefix()} still working")
                last_print = time.perf_counter()

    def finish(self, name, seconds, failed=False):
        if self._thread is not None and set(self.running) <= {name}:
            self._stop.set()
            self._thread.join()
            self._thread = None
        self.running.pop(name, None)
        if failed:
            self.log(f"{self.prefix()} {name}: failed after {_format_seconds(seconds)}")
            return
        self.finished[name] = seconds
        self.log(f"{self.prefix()} {name}: done in {_format_seconds(seconds)}")


# Under ``output.schedule: profile`` notebook 03 computes every run of the profile; these three then only read
# stored runs and evaluations, each on about one core, so they run side by side (each in its own kernel).
SIDE_BY_SIDE = ("04_training", "05_ablations", "06_scale_and_cost")


def notebook_groups(names, params, notebooks=True) -> list[tuple[str, ...]]:
    """``names`` in order, as groups run one after the other; a group of several runs side by side.

    Only notebooks run in kernels (papermill) go side by side (``--no-notebooks`` runs the stages in this
    process, one at a time), and only after notebook 03 in the same invocation: ``--only 04 05`` on a work
    directory without the runs would have two kernels compute the same runs at once."""
    together = notebooks and typed(params).output.schedule == "profile" and "03_selection_study" in names
    groups, batch = [], [n for n in names if together and n in SIDE_BY_SIDE]
    for name in names:
        if name in batch:
            if name == batch[0]:
                groups.append(tuple(batch))
            continue
        groups.append((name,))
    return groups


_PROGRESS = re.compile(r"\r|\d+%\||\d+/\d+ \[\d")


def is_progress_output(output: dict) -> bool:
    """A progress bar written into a notebook: a tqdm line on stderr (third-party bars, e.g. model2vec's
    "Encoding tokens", draw with carriage returns) or a widget bar. Warnings and errors on stderr stay."""
    if output.get("output_type") == "display_data" and "application/vnd.jupyter.widget-view+json" in output.get(
        "data", {}
    ):
        return True
    text = output.get("text", "")
    text = "".join(text) if isinstance(text, list) else str(text)
    return output.get("output_type") == "stream" and output.get("name") == "stderr" and bool(_PROGRESS.search(text))


def strip_progress_outputs(path) -> int:
    """Remove progress-bar outputs from an executed notebook (rewritten atomically); returns how many."""
    path = Path(path)
    notebook = json.loads(path.read_text(encoding="utf-8"))
    removed = 0
    for cell in notebook.get("cells", []):
        outputs = cell.get("outputs")
        if outputs:
            kept = [o for o in outputs if not is_progress_output(o)]
            removed += len(outputs) - len(kept)
            cell["outputs"] = kept
    if removed:
        atomic_write_text(path, json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
    return removed


def run_profile(profile_file, only=None, notebooks=True, force=False, log=print):  # noqa: C901 (the runner's notebook loop with its resume, timing and progress lines)
    params = with_results_dir_override(load_params(profile_file))

    check_models_available(params)  # a missing local model (no public checkpoint) fails here, before any notebook
    config = typed(params)
    profile = config.profile
    runs = resolve_path(config.output.runs_dir) / profile / "notebooks"
    results = resolve_path(config.output.results_dir) / profile
    names = [n for n in notebook_names() if not only or n in only or n.split("_", 1)[0] in only]
    if only and not names:
        raise Mta4dprError(f"--only {only}: no such notebook; known: {notebook_names()}")
    timings, skipped = {}, set()
    code = core_digest()
    cold = starts_cold(params)
    previous, lower_bounds = timing_estimates(runs, results, names, cold)
    groups = notebook_groups(names, params, notebooks)
    side_by_side = [group for group in groups if len(group) > 1]
    monitor = ProgressMonitor(
        profile,
        names,
        previous,
        log=log,
        lower_bounds=lower_bounds,
        cold=cold,
        side_by_side=[name for group in side_by_side for name in group],
    )
    work = resolve_path(config.output.runs_dir) / profile / "work"
    log(
        f"[{profile}] {'cold' if cold else 'warm'} start ({work} {'is missing or empty' if cold else 'holds earlier runs'}); "
        f"ETA {monitor.eta_text()} from the {'last cold run' if cold else 'last run'}'s timings"
        + (" (a warm run's where no cold one is recorded: a lower bound)" if lower_bounds else "")
    )
    # the kernel inherits this: progress.report() and the bars append to it, the monitor prints it
    progress_path = runs / ".progress.log" if progress.enabled() else None
    saved_variable = os.environ.get(progress.FILE_VARIABLE)

    def execute(name):
        """Run notebook ``name`` unless its marker says it finished with this source, params and code."""
        source = NOTEBOOK_DIR / f"{name}.ipynb"
        key = hashlib.sha256(
            json.dumps([source.read_text(), params, code, notebooks], sort_keys=True, default=str).encode()
        ).hexdigest()
        marker = runs / f"{name}.done.json"
        done = read_json(marker)
        if not force and done is not None and done.get("key") == key:
            monitor.skipped(name, done.get("seconds"))
            timings[name] = done.get("seconds")
            skipped.add(name)
            return
        monitor.start(name, progress_path)
        started = time.perf_counter()
        try:
            if notebooks:
                import papermill  # noqa: PLC0415 (lazy: papermill not loaded by this module)

                runs.mkdir(parents=True, exist_ok=True)
                sections = {k: v for k, v in params.items()}
                papermill.execute_notebook(
                    str(source),
                    str(runs / f"{name}.ipynb"),
                    parameters=sections,
                    kernel_name=KERNEL,
                    cwd=str(NOTEBOOK_DIR),
                    progress_bar=False,
                    log_output=False,
                )
                strip_progress_outputs(runs / f"{name}.ipynb")
            else:
                from .experiments.experiment import Setup  # noqa: PLC0415 (lazy: ir_measures, numba, torch not loaded by this module)
                from .pipeline import STAGES  # noqa: PLC0415 (lazy: ir_measures, numba, scipy, torch not loaded by this module)

                progress.route_logs()  # as in the notebooks: the core's INFO lines are progress lines
                STAGES[name](Setup.from_params(params))
        except BaseException:
            monitor.finish(name, round(time.perf_counter() - started, 1), failed=True)
            raise
        seconds = round(time.perf_counter() - started, 1)
        monitor.finish(name, seconds)
        timings[name] = seconds
        atomic_write_json(marker, {"key": key, "seconds": seconds, "cold": cold})

    if progress_path is not None:
        os.environ[progress.FILE_VARIABLE] = str(progress_path)
    started_all = time.perf_counter()
    try:
        for group in groups:
            if len(group) == 1:
                execute(group[0])
                continue
            # each notebook in its own kernel process, on the cores a single one leaves idle

            with ThreadPoolExecutor(len(group)) as pool:
                futures = [pool.submit(execute, name) for name in group]
            for future in futures:
                future.result()  # the first failure, once every notebook of the group has ended
    finally:
        if saved_variable is None:
            os.environ.pop(progress.FILE_VARIABLE, None)
        else:
            os.environ[progress.FILE_VARIABLE] = saved_variable
    wall = round(time.perf_counter() - started_all, 1)
    from .report.studies import write_manifest  # noqa: PLC0415 (lazy: ir_measures, numba, scipy, torch not loaded by this module)

    if notebooks:
        # the executed notebooks beside the tables, so a reader sees every output without running anything

        for name in names:
            executed = runs / f"{name}.ipynb"
            if executed.exists():
                atomic_write_bytes(results / "notebooks" / f"{name}.ipynb", executed.read_bytes())
    total = round(sum(v for v in timings.values() if v), 1)
    ran = {name: seconds for name, seconds in timings.items() if name not in skipped}
    write_manifest(
        params,
        {**timings, "total": total},
        {
            "notebooks": notebooks,
            "cold_start": cold,
            "cold_timings_seconds": cold_timings(results, runs, names, ran, cold),
            "wall_seconds": wall,
            "side_by_side": [list(group) for group in side_by_side],
        },
    )
    log(f"[{profile}] all done in {_format_seconds(wall)} ({total} s of notebook time); results in {results}")
    return timings


def one_line(message) -> str:
    """A multi-line message (e.g. ModelNotFoundError's list of places tried) as one line."""
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_profile_arguments(
        parser, "override profile keys, e.g. data.train=X/train training.steps=10 seeds=[1,2] (values are YAML)"
    )
    parser.add_argument("--only", nargs="*", help="notebook names or numbers to run (default: all)")
    parser.add_argument("--no-notebooks", action="store_true", help="run the stages directly, without papermill")
    parser.add_argument("--force", action="store_true", help="rerun notebooks even if finished")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    path = Path(args.profile) if args.profile.endswith((".yaml", ".yml")) else profile_path(args.profile)
    scratch = None
    try:
        if args.overrides:  # the profile with the overrides, validated, as a profile file of its own
            params = apply_overrides(load_params(path), args.overrides)
            scratch = Path(tempfile.mkdtemp(prefix="mta4dpr-set-"))
            path = scratch / f"{params['profile']}.yaml"
            path.write_text(yaml.safe_dump(params, sort_keys=False))
        run_profile(path, args.only, notebooks=not args.no_notebooks, force=args.force)
    except Mta4dprError as error:
        print(f"error: {one_line(error)}", file=sys.stderr)
        return 2
    except Exception as error:  # papermill wraps notebook errors; show the cause, not a traceback
        name = type(error).__name__
        if name == "PapermillExecutionError":
            print(
                f"error: a notebook failed: {getattr(error, 'ename', '')}: {one_line(getattr(error, 'evalue', error))}",
                file=sys.stderr,
            )
            return 1
        raise
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
