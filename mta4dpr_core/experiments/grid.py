"""The runs each notebook needs, scheduled over worker processes.

A static student trains with one thread (``training.train_student``), so on a 2-core
machine two runs side by side take about the time of one. Each stage first runs the
missing runs of its plan here; its tables then read the stored results (a finished
run is never recomputed, so the tables do not depend on how the runs were scheduled).

Workers are forked from the process that holds the prepared :class:`Setup` (scorers,
encodings, indexes), so they start at once; each sets one intra-op thread.
``output.workers``: 0 = automatic (2 for a static student on a CPU machine with at least
2 cores, else 1), 1 = in this process, n = n workers. A transformer student's step gains about
1.2x in throughput from two one-thread workers over one two-thread process on 2 cores
(bench/student_precision.py run twice side by side), which ``mini_transformer`` takes.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import time

from .iteration import run_mta4dpr

log = logging.getLogger(__name__)
_SETUP = None  # the forked workers' Setup (inherited, never pickled)


def seeds(setup, limit=0):
    """The profile's seeds, or its first ``limit`` (the grids of Tables 6 and 7)."""
    return setup.params["seeds"][:limit] if limit else setup.params["seeds"]


def test_evaluation(variant, assistant_subset=None, student_spec=None) -> str:
    """The main run is evaluated on the test sets before training and after every iteration
    (Tables 1 and 4); every other run after its last iteration only."""
    main = variant == "mta4dpr" and assistant_subset is None and student_spec is None
    return "all" if main else "final"


def _job(variant, seed, overrides=None, assistant_subset=None, student_spec=None):
    return {
        "variant": variant,
        "seed": seed,
        "overrides": overrides,
        "assistant_subset": assistant_subset,
        "student_spec": student_spec,
        "evaluate_test": test_evaluation(variant, assistant_subset, student_spec),
    }


def planned_runs(setup, stage: str) -> list[dict]:
    """The (variant, seed, ...) runs a notebook stage reads; the same keys as ``studies.run_over_seeds``."""
    study = setup.params["study"]
    main_seeds, grid = seeds(setup), seeds(setup, study.get("combination_seeds", 0))
    jobs = []
    if stage in ("selection", "training", "ablations", "summary"):
        jobs += [_job("mta4dpr", s) for s in main_seeds]
    if stage in ("selection", "summary"):
        jobs += [
            _job(f"selection_{m}", s, {"selection": {"method": m}})
            for m in study["selection_methods"]
            if m != "kl"
            for s in main_seeds
        ]
    if stage in ("training", "ablations", "scale_and_cost", "summary"):
        jobs += [_job(v, s) for v in ("no_assistants", "one_iteration_kd") for s in main_seeds]
    if stage in ("ablations", "summary"):
        jobs += [_job(v, s) for v in study["ablations"] for s in main_seeds]
        if study["assistant_combinations"]:
            m = len(setup.assistants)
            jobs += [_job("no_assistants", s) for s in grid]
            for size in range(1, m):
                for subset in itertools.combinations(range(m), size):
                    jobs += [_job(f"assistants_{'_'.join(map(str, subset))}", s, {}, list(subset)) for s in grid]
    if stage in ("scale_and_cost", "summary"):
        for spec in study["student_sizes"]:
            if spec != setup.params["models"]["student"]:
                jobs += [_job(v, s, student_spec=spec) for v in ("mta4dpr", "no_assistants") for s in grid]
    unique = {}
    for job in jobs:
        unique.setdefault(repr(sorted(job.items())), job)
    return list(unique.values())


def default_workers(setup) -> int:
    configured = int(setup.params["output"].get("workers", 0) or 0)
    if configured:
        return configured
    import torch

    static = setup.params["models"]["student"].get("kind") == "static"
    return 2 if static and not torch.cuda.is_available() and (os.cpu_count() or 1) >= 2 else 1


def _run(job):
    return run_mta4dpr(
        _SETUP,
        job["seed"],
        job["variant"],
        overrides=job["overrides"],
        assistant_subset=job["assistant_subset"],
        student_spec=job["student_spec"],
        evaluate_test=job["evaluate_test"],
    )["variant"]


def _init_worker():
    import torch

    torch.set_num_threads(1)


def run_grid(setup, jobs: list[dict], workers: int | None = None, report=None):
    """Run every job (finished ones return at once from their stored result)."""
    global _SETUP
    workers = default_workers(setup) if workers is None else workers
    if report is None:
        from ..config.progress import report
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
    with context.Pool(workers, initializer=_init_worker) as pool:
        for index, variant in enumerate(pool.imap_unordered(_run, jobs), 1):
            elapsed = time.perf_counter() - started
            eta = elapsed / index * (len(jobs) - index)
            report(f"run {index}/{len(jobs)} done ({variant}; {elapsed:.0f} s, about {eta:.0f} s left)")
