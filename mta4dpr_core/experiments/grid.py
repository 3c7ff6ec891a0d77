"""The runs each notebook needs, scheduled over worker processes.

A static student trains with one thread (``training.train_student``), so on a 2-core
machine two runs side by side take about the time of one. Each stage first runs the
missing runs of its plan (``catalog.planned_runs``) here; its tables then read the stored results (a finished
run is never recomputed). Which process first fills a shared cache can still move a run at the float level:
two cold NFCorpus runs scheduled differently agreed on every quality table but Table 5's RBO row (0.01 nDCG@10).

Workers are forked from the process that holds the prepared :class:`Setup` (scorers,
encodings, indexes), so they start at once; each sets one intra-op thread.
``output.workers``: 0 = automatic (2 for a static student on a CPU machine with at least
2 cores, else 1), 1 = in this process, n = n workers. A transformer student's step gains about
1.2x in throughput from two one-thread workers over one two-thread process on 2 cores
(bench/student_precision.py run twice side by side), which ``mini_transformer`` takes.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time

import torch

from ..config.kinds import one_thread_student
from ..config.progress import report as progress_report
from ..config.threads import one_thread_per_process
from .iteration import run_mta4dpr
from .runs import stored_run

log = logging.getLogger(__name__)
_SETUP = None  # the forked workers' Setup (inherited, never pickled)


def default_workers(setup) -> int:
    configured = int(setup.config.output.workers or 0)
    if configured:
        return configured

    static = one_thread_student(setup.config.models.student)
    return 2 if static and not torch.cuda.is_available() and (os.cpu_count() or 1) >= 2 else 1


def _run_arguments(job) -> dict:
    keys = ("seed", "variant", "overrides", "assistant_subset", "student_spec")
    return {key: job[key] for key in keys}


def _run(job):
    return run_mta4dpr(_SETUP, **_run_arguments(job), evaluate_test=job["evaluate_test"]).variant


def run_grid(setup, jobs: list[dict], workers: int | None = None, report=None):
    """Run every job (finished ones return at once from their stored result)."""
    global _SETUP
    workers = default_workers(setup) if workers is None else workers
    if report is None:
        report = progress_report
    # a later notebook finds its runs stored: it then builds no starting student (a static one tokenises the
    # training texts for its vocabulary, seconds each) and forks no workers
    jobs = [job for job in jobs if stored_run(setup, **_run_arguments(job)) is None]
    if not jobs:
        return
    started = time.perf_counter()
    _SETUP = setup
    if workers <= 1 or len(jobs) <= 1:
        for index, job in enumerate(jobs, 1):
            _run(job)
            report(
                f"run {index}/{len(jobs)} done ({job['variant']}, seed {job['seed']}; {time.perf_counter() - started:.0f} s)"
            )
        return
    # Every starting student is built once here, with all the cores, before the workers fork: a static
    # student's vocabulary (7 s) and a transformer's [CLS] warm start (minutes, cached) would otherwise be
    # computed by every worker at once.
    for spec in {repr(job["student_spec"]): job["student_spec"] for job in jobs}.values():
        setup.new_student(jobs[0]["seed"], spec)
    # the longest runs first (the main run evaluates every iteration; one-iteration KD encodes once), so
    # that no long run starts last while the other worker has nothing left
    jobs = sorted(jobs, key=lambda job: (job["evaluate_test"] != "all", job["variant"] == "one_iteration_kd"))
    context = multiprocessing.get_context("fork")
    with context.Pool(workers, initializer=one_thread_per_process) as pool:
        for index, variant in enumerate(pool.imap_unordered(_run, jobs), 1):
            elapsed = time.perf_counter() - started
            eta = elapsed / index * (len(jobs) - index)
            report(f"run {index}/{len(jobs)} done ({variant}; {elapsed:.0f} s, about {eta:.0f} s left)")
