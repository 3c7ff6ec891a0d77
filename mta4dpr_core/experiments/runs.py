"""The run store's read side: what a finished run is, where it is stored, and how a report reads it.

A run of Algorithm 1 (one variant of the profile, one seed) is stored as ``<work>/seed<seed>/<variant>-<key>/result.json``
(:class:`RunResult`); its key hashes the parameters that change it and the core's code digest
(:func:`run_plan`). ``experiments/iteration.py`` writes runs; the tables, claims and figures of ``report/``
only read them here. A run that is not stored is a :class:`MissingRunError` naming the run and the command
that makes it: a report never trains.

Example::

    >>> deep_update({"loss": {"beta": 1.0, "gamma": 15.0}}, {"loss": {"gamma": 0.0}})
    {'loss': {'beta': 1.0, 'gamma': 0.0}}
    >>> variant_overrides("kd_matched_weight", {"loss": {"beta": 1.0, "gamma": 15.0}})
    {'loss': {'gamma': 0.0, 'beta': 16.0}}
"""

from __future__ import annotations

import copy
import difflib
import logging
from dataclasses import MISSING, dataclass, fields

from ..config.errors import DataError
from ..config.typed import typed
from ..store.atomic import code_digest, content_hash, read_json
from .catalog import RunSpec

log = logging.getLogger(__name__)

# Ablations and studies are named overrides of the profile (paper Tables 3, 5, 7). Every variant gets the
# same optimiser steps: a one-iteration variant trains ``iterations.count`` times as many steps
# (see :func:`variant_overrides`), and "no_assistants" builds the same data as MTA4DPR.
VARIANTS = {
    "mta4dpr": {},
    # the paper's "No assistant" row: teacher-only KD, same iterations, steps and data construction
    "no_assistants": {"loss": {"gamma": 0.0}},
    # the controls at MTA4DPR's total distillation weight (beta + gamma): teacher-only KD whose teacher KL carries
    # both weights (its beta is set in variant_overrides, from the profile), and MTA4DPR's loss, selection and
    # schedule with every assistant's training distribution replaced by the teacher's
    "kd_matched_weight": {"loss": {"gamma": 0.0}},
    "assistants_are_teacher": {"loss": {"assistant_scores": "teacher"}},
    # teacher-only KD in one iteration of the same total steps (no mining: there is no previous student)
    "one_iteration_kd": {"loss": {"gamma": 0.0}, "iterations": {"count": 1}, "construction": {"mining": False}},
    "no_fusion": {"fusion": {"enabled": False}},
    "no_iterations": {"iterations": {"count": 1}},
}
SAME_TOTAL_STEPS = {"one_iteration_kd", "no_iterations"}
MATCHED_WEIGHT = {"kd_matched_weight"}  # teacher-only KD whose teacher KL weight is the profile's beta + gamma


def _fields_from_json(cls, data, source) -> dict:
    """The keyword arguments of ``cls`` from its stored mapping; a :class:`DataError` naming ``source`` and
    the key when one is missing or unknown (a stored result is never half read)."""
    if not isinstance(data, dict):
        raise DataError(source, f"a stored {cls.__name__} must be a mapping, not {type(data).__name__}")
    declared = {f.name: f for f in fields(cls)}
    for name, spec in declared.items():
        if name not in data and spec.default is MISSING:
            raise DataError(source, f"the stored {cls.__name__} lacks the key {name!r}")
    unknown = sorted(set(data) - set(declared))
    if unknown:
        close = difflib.get_close_matches(unknown[0], declared, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise DataError(source, f"the stored {cls.__name__} has the unknown key {unknown[0]!r}{hint}")
    return dict(data)


@dataclass(frozen=True)
class IterationRecord:
    """One finished iteration of a run: an entry of ``history`` in ``result.json`` and ``state.json``."""

    iteration: int
    pool: list  # the pool's names after the replacement
    replaced: str | None  # the assistant the student replaced, if any
    eval_metric: str
    eval_student: float
    eval_assistants: dict  # {assistant name: eval metric} before the replacement
    mined_queries: int
    rows: int | None
    pairs_scored: int
    pairs_cached: int
    construction_seconds: float
    training_seconds: float
    select_seconds: float
    final_loss: float | None
    test: dict | None = None  # setup.evaluate_all of the student; absent from the JSON when not evaluated
    # nDCG@10 of the teacher's and each assistant's ranking of the training candidates, as trained (iteration 1)
    training_ranking: dict | None = None

    def to_json(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for optional in ("test", "training_ranking"):
            if out[optional] is None:
                del out[optional]
        return out

    @classmethod
    def from_json(cls, data: dict, source="a run's history") -> IterationRecord:
        return cls(**_fields_from_json(cls, data, source))


@dataclass(frozen=True)
class RunResult:
    """A finished run of Algorithm 1 (one variant, one seed), stored as its ``result.json``.

    >>> record = IterationRecord(1, ["a"], None, "MRR@10", 0.5, {"a": 0.4}, 0, 8, 10, 0, 1.0, 2.0, 0.1, 3.0)
    >>> result = RunResult("mta4dpr", 13, ["a"], {}, (record,), [], {}, None, {}, {}, "float32")
    >>> RunResult.from_json(result.to_json()) == result
    True
    >>> RunResult.from_json({"variant": "mta4dpr"}, "runs/x/result.json")
    Traceback (most recent call last):
    ...
    mta4dpr_core.config.errors.DataError: runs/x/result.json: the stored RunResult lacks the key 'seed'
    """

    variant: str
    seed: int
    assistants: list  # the names of the run's original assistants
    initial: dict  # the untrained student's evaluation ({} unless evaluate_test="all")
    history: tuple  # an IterationRecord per finished iteration
    selections: list  # a dict per training step: iteration, step, assistant, members, timings, losses
    temperatures: dict  # fitted assistant temperatures by name
    final: dict | None  # the last iteration's test evaluation (None when it was not evaluated)
    params: dict
    student_spec: dict
    training_precision: str  # the precision training actually used (amp: auto resolves per machine)

    def to_json(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["history"] = [entry.to_json() for entry in self.history]
        return out

    @classmethod
    def from_json(cls, data: dict, source="a stored run result") -> RunResult:
        values = _fields_from_json(cls, data, source)
        if not isinstance(values["history"], list):
            raise DataError(source, "the stored RunResult's 'history' must be a list")
        values["history"] = tuple(IterationRecord.from_json(entry, source) for entry in values["history"])
        return cls(**values)


def load_run_result(path) -> RunResult | None:
    """The run result stored at ``path``; None (rerun it) when missing, unreadable or malformed."""
    stored = read_json(path)
    if stored is None:
        return None
    try:
        return RunResult.from_json(stored, path)
    except DataError as error:
        log.warning("%s; rerunning the run", error)
        return None


def variant_overrides(variant: str, params: dict, overrides: dict | None = None) -> dict:
    """The overrides of ``variant``, with the steps of a one-iteration variant scaled to the same total budget."""
    out = copy.deepcopy(VARIANTS.get(variant, {}) if overrides is None else overrides)
    if variant in SAME_TOTAL_STEPS:
        total = typed(params).training.steps * typed(params).iterations.count
        out = deep_update(out, {"training": {"steps": total}})
    if variant in MATCHED_WEIGHT:
        loss = typed(params).loss
        out = deep_update(out, {"loss": {"beta": loss.beta + loss.gamma, "gamma": 0.0}})
    return out


def deep_update(base: dict, overrides: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        out[key] = deep_update(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def run_plan(setup, seed: int, variant: str, overrides=None, assistant_subset=None, student_spec=None):
    """``(params, assistant pool, run key, run directory)`` of one run: what its key is made of, in one place."""
    params = deep_update(setup.params, variant_overrides(variant, setup.params, overrides))
    pool = [setup.assistants[i] for i in assistant_subset] if assistant_subset is not None else list(setup.assistants)
    if len(pool) < 2:
        params["fusion"]["enabled"] = False
    # the study and output sections do not change a run: leave them out of its key
    relevant = {key: value for key, value in params.items() if key not in ("study", "output", "profile")}
    # the core code digest: a finished run is reused only while the code that produced it is unchanged
    run_key = content_hash(relevant, seed, [a.name for a in pool], student_spec, variant, code_digest())
    return params, pool, run_key, setup.work_dir / f"seed{seed}" / f"{variant}-{run_key}"


def stored_run(setup, seed: int, variant: str = "mta4dpr", overrides=None, assistant_subset=None, student_spec=None):
    """The stored result of a run (None when it has not finished), without running anything."""
    run_dir = run_plan(setup, seed, variant, overrides, assistant_subset, student_spec)[3]
    return load_run_result(run_dir / "result.json")


class MissingRunError(LookupError):
    """A report asked for a run the run store does not hold. Its message names the run and the command that
    makes it (reports never train)."""

    def __init__(self, setup, spec: RunSpec, path):
        profile = setup.params.get("profile", "?")
        described = [f"variant {spec.variant!r}", f"seed {spec.seed}"]
        if spec.assistant_subset is not None:
            described.append(f"assistants {list(spec.assistant_subset)}")
        if spec.overrides:
            described.append(f"overrides {spec.overrides_json}")
        if spec.student_spec:
            described.append(f"student {spec.student_spec_json}")
        self.spec, self.path = spec, path
        super().__init__(
            f"{profile}: the run ({', '.join(described)}) is not in the run store ({path}). Reports only read runs: "
            f"make it with `make reproduce PROFILE={profile}` (or `python -m mta4dpr_core.runner --profile {profile}`); "
            "a table that needs a run the catalog does not list must add it to experiments/catalog.py:runs_for"
        )


def read_run(setup, spec: RunSpec) -> RunResult:
    """The stored result of ``spec``; :class:`MissingRunError` when the store does not hold it."""
    path = run_plan(setup, spec.seed, spec.variant, spec.overrides, spec.assistant_subset, spec.student_spec)[3]
    result = load_run_result(path / "result.json")
    if result is None:
        raise MissingRunError(setup, spec, path / "result.json")
    return result


def read_over_seeds(setup, variant="mta4dpr", seeds=None, overrides=None, assistant_subset=None, student_spec=None):
    """The stored runs of ``variant`` over ``seeds`` (default: every seed of the profile), in seed order."""
    seeds = seeds if seeds is not None else setup.config.seeds
    return [read_run(setup, RunSpec.of(variant, seed, overrides, assistant_subset, student_spec)) for seed in seeds]
