"""Algorithm 1 of the paper: iterate data construction, training and assistant replacement.

    for iteration in 1..T:
        data      = build_training_data(pool, teacher, previous student)      # 3.2.1
        choice    = choose_assistant_for_iteration(...)  (rewrite option)     # else per batch, 3.2.3
        record    = train_student(student, data)                              # 3.2.4
        pool      = replace_worst_assistant(pool, student, eval metrics)      # lines 8-12

The student's weights carry over from one iteration to the next. The eval set
(``construction.eval_fraction`` of the training queries, seeded) is fixed for a run.
Finished iterations are stored (student weights, pool, history), so a rerun
continues after the last finished one.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from ..config import progress
from ..config.precision import autocast_dtype, dtype_name
from ..config.typed import typed
from ..method.construction import TrainingData, eval_query_mask
from ..method.fusion import assistant_names, candidate_distributions, fused_assistant_subsets, softmax
from ..method.training import TrainConfig, train_student
from ..retrieval.encoders import default_device
from ..retrieval.metrics import evaluate, run_from_arrays
from ..store.atomic import atomic_write_json, read_json, save_torch, try_load_torch
from .experiment import Setup, seed_everything
from .runs import (  # noqa: F401 (the run store's read side, re-exported for the writers)
    MATCHED_WEIGHT,
    SAME_TOTAL_STEPS,
    VARIANTS,
    IterationRecord,
    RunResult,
    deep_update,
    load_run_result,
    run_plan,
    stored_run,
    variant_overrides,
)
from .training_inputs import fitted_temperatures, train_config

log = logging.getLogger(__name__)


def assistants_replaced_by_teacher(data: TrainingData, config: TrainConfig) -> TrainingData:
    """The ``assistants_are_teacher`` control: every assistant's training distribution is the teacher's (its
    scores and its temperature), so KL(assistant || student) = KL(teacher || student) and the loss is
    ``alpha CL + (beta + gamma) KL(teacher || student)`` through MTA4DPR's selection and fusion. Negatives,
    mining and replacement are untouched: what MTA4DPR gains over this run is the assistants' own scores.

    >>> import numpy as np
    >>> data = TrainingData([], [], np.zeros(2, int), np.zeros((2, 3), int), np.zeros((2, 3), bool),
    ...                     np.arange(6.0).reshape(2, 3), np.zeros((2, 2, 3)), ["a", "b"], np.zeros(2, int))
    >>> config = TrainConfig(steps=1, assistant_temperatures=[0.5, 2.0], teacher_temperature=1.0)
    >>> out = assistants_replaced_by_teacher(data, config)
    >>> bool((out.assistant_scores == data.teacher_scores).all()), config.assistant_temperatures
    (True, [1.0, 1.0])
    """
    m = data.assistant_scores.shape[0]
    config.assistant_temperatures = [config.teacher_temperature] * m
    teacher = np.broadcast_to(np.asarray(data.teacher_scores, dtype=np.float32), data.assistant_scores.shape)
    return dataclasses.replace(data, assistant_scores=np.ascontiguousarray(teacher))


def assistants_mixed_with_teacher(data: TrainingData, config: TrainConfig, weight: float) -> TrainingData:
    """The dose-response sweep (``loss.teacher_mix`` = lambda): each assistant's training logits become the
    log-linear pool ``lambda * teacher / tau_t + (1 - lambda) * assistant / tau_a`` at temperature 1, so lambda = 0
    is the assistant's own distribution and lambda = 1 the teacher's (the ``assistants_are_teacher`` control).
    Each side is over its own fitted temperature, which puts the two on the scale they are trained at: this is
    the z-scoring the mix needs. Negatives, mining and replacement are untouched.

    >>> import numpy as np
    >>> data = TrainingData([], [], np.zeros(1, int), np.zeros((1, 2), int), np.zeros((1, 2), bool),
    ...                     np.array([[2.0, 0.0]]), np.array([[[0.0, 4.0]]]), ["a"], np.zeros(1, int))
    >>> config = TrainConfig(steps=1, assistant_temperatures=[2.0], teacher_temperature=1.0)
    >>> assistants_mixed_with_teacher(data, config, 0.25).assistant_scores.tolist(), config.assistant_temperatures
    ([[[0.5, 1.5]]], [1.0])
    """
    m = data.assistant_scores.shape[0]
    temps = np.asarray(config.assistant_temperatures or [1.0] * m, dtype=np.float64)[:, None, None]
    teacher = np.asarray(data.teacher_scores, dtype=np.float64)[None] / config.teacher_temperature
    mixed = weight * teacher + (1.0 - weight) * np.asarray(data.assistant_scores, dtype=np.float64) / temps
    config.assistant_temperatures = [1.0] * m
    return dataclasses.replace(data, assistant_scores=np.ascontiguousarray(mixed, dtype=np.float32))


def candidate_ranking_quality(data: TrainingData, config: TrainConfig, doc_ids, metric="nDCG@10") -> dict:
    """``metric`` (percent) of the teacher's and each assistant's ranking of the training candidates, as trained
    (after any teacher mix), against the rows' positives: how close each training distribution is to the
    teacher's in retrieval terms, on training queries only (the x of the dose-response figure). Mined rows repeat
    a query, so only the base rows count.

    >>> import numpy as np
    >>> data = TrainingData(["q"], [""], np.zeros(1, int), np.array([[0, 1, 2]]), np.array([[True, False, False]]),
    ...                     np.array([[3.0, 1.0, 0.0]]), np.array([[[0.0, 1.0, 2.0]]]), ["a"], np.zeros(1, int))
    >>> quality = candidate_ranking_quality(data, TrainConfig(steps=1), ["d0", "d1", "d2"])
    >>> quality["teacher"], quality["a"]
    (100.0, 50.0)
    """
    base = np.where(np.asarray(data.origin) == 0)[0]
    ids = [f"r{row}" for row in base]
    qrels = {
        q: {
            doc_ids[j]: 1
            for j, positive in zip(data.candidates[row], data.is_positive[row], strict=True)
            if positive and j >= 0
        }
        for q, row in zip(ids, base, strict=True)
    }

    def quality(scores):
        run = run_from_arrays(ids, doc_ids, scores[base], data.candidates[base])
        return 100.0 * evaluate(run, qrels, names=(metric,))[metric]

    out = {"teacher": quality(np.asarray(data.teacher_scores))}
    for name, scores in zip(data.assistant_names, data.assistant_scores, strict=True):
        out[name] = quality(np.asarray(scores))
    return out


def choose_assistant_for_iteration(data: TrainingData, config: TrainConfig, eval_rows=None) -> int:
    """The rewrite's per-iteration selection: the original or fused assistant whose
    distribution ranks the positives best (MRR over each row's candidate list)."""
    m = data.assistant_scores.shape[0]
    rows = np.arange(len(data)) if eval_rows is None else eval_rows
    scores = np.asarray(data.assistant_scores[:, rows])
    temps = np.asarray(config.assistant_temperatures, dtype=np.float64)[:, None, None]
    probs = softmax(scores / temps)
    subsets = fused_assistant_subsets(m) if config.fusion and m >= 2 else []
    candidates = candidate_distributions(probs, subsets, config.fusion_weights)
    positive = np.asarray(data.is_positive[rows])
    order = np.argsort(-candidates, axis=-1, kind="stable")
    hits = np.take_along_axis(np.broadcast_to(positive, candidates.shape), order, -1)
    first = np.where(hits.any(-1), hits.argmax(-1) + 1, np.inf)
    mrr = np.where(first <= 10, 1.0 / first, 0.0).mean(-1)
    return int(np.argmax(mrr))


def replace_worst_assistant(pool, pool_metrics: dict, student_scorer, student_metric: float):
    """If the student beats the worst assistant on the eval set, it takes that assistant's place."""
    worst = min(range(len(pool)), key=lambda i: (pool_metrics[pool[i].name], i))
    if student_metric > pool_metrics[pool[worst].name]:
        new_pool = list(pool)
        replaced = pool[worst].name
        new_pool[worst] = student_scorer
        return new_pool, replaced
    return pool, None


def run_mta4dpr(  # noqa: C901 (Algorithm 1's loop, kept in one piece to read beside the paper's pseudo-code)
    setup: Setup,
    seed: int,
    variant: str = "mta4dpr",
    overrides: dict | None = None,
    assistant_subset=None,
    student_spec=None,
    evaluate_test="all",
) -> RunResult:
    """Run Algorithm 1 for one (variant, seed); returns and stores the per-iteration history."""
    params, pool, run_key, run_dir = run_plan(setup, seed, variant, overrides, assistant_subset, student_spec)
    result_path = run_dir / "result.json"
    stored = load_run_result(result_path)
    if stored is not None:
        return stored
    profile = typed(params)  # the run's own profile (its variant's overrides applied)
    count = profile.iterations.count

    seed_everything(seed)
    student = setup.new_student(seed, student_spec)
    split, corpus = setup.train, setup.collection.corpus
    construction = params["construction"]
    eval_mask = eval_query_mask(split, construction, seed)
    metric = profile.evaluation.metric
    history, selections, previous, start = [], [], None, 1
    # evaluate_test: "all" (the untrained student and every iteration), "final" (last iteration only), "none"
    initial = (
        setup.evaluate_all(setup.student_scorer(student, "student@init", f"{run_key}-init"))
        if evaluate_test == "all"
        else {}
    )

    # resume after the last finished iteration: weights in state.pt (loaded with weights_only=True),
    # history and pool names in state.json, written after the weights
    temperatures = {}
    for iteration in range(profile.iterations.count, 0, -1):
        meta = read_json(run_dir / f"iteration{iteration}" / "state.json")
        state = try_load_torch(run_dir / f"iteration{iteration}" / "state.pt") if meta is not None else None
        if state is not None:
            try:
                student.load_state_dict(state["model"])
            except (RuntimeError, KeyError) as error:  # written by an incompatible student (code changed): start afresh
                log.warning(
                    "%s: stored iteration %d does not fit this student, rerunning the run (%s)",
                    run_dir,
                    iteration,
                    str(error).splitlines()[0],
                )
                student = setup.new_student(seed, student_spec)
                break
            history = [
                IterationRecord.from_json(entry, run_dir / f"iteration{iteration}" / "state.json")
                for entry in meta["history"]
            ]
            selections, temperatures = meta["selections"], meta.get("temperatures", {})
            names = meta["pool"]
            by_name = {a.name: a for a in setup.assistants}
            # a student in the pool keeps the pair-score cache name it had when it joined (``{run_key}-<iteration>``)
            pool = [
                by_name.get(n)
                or setup.student_scorer(
                    _load_snapshot(setup, run_dir, n, student_spec), n, f"{run_key}-{n.rsplit('@', 1)[-1]}"
                )
                for n in names
            ]
            previous = setup.student_scorer(student, f"student@{iteration}", f"{run_key}-{iteration}")
            start = iteration + 1
            break

    for iteration in range(start, count + 1):
        iteration_dir = run_dir / f"iteration{iteration}"
        progress.report(f"{variant} seed {seed} iteration {iteration}/{count}: building training data")
        t0 = time.perf_counter()
        data = setup.training_data(pool, eval_mask, construction, previous_student=previous)
        construction_seconds = time.perf_counter() - t0
        if iteration == 1 and not temperatures:
            # fitted once per run on its iteration-1 training rows (build_training_data leaves the eval queries out)
            temperatures = fitted_temperatures(params, data, pool)
        config = train_config(params, pool, seed, temperatures=temperatures)
        if profile.loss.assistant_scores == "teacher":
            data = assistants_replaced_by_teacher(data, config)
        elif profile.loss.teacher_mix > 0:
            data = assistants_mixed_with_teacher(data, config, profile.loss.teacher_mix)
        training_ranking = (
            candidate_ranking_quality(data, config, corpus.ids)
            if iteration == 1 and len(data.assistant_names)
            else None
        )
        fixed = None
        if profile.selection.method == "validation" or profile.selection.per_iteration:
            fixed = choose_assistant_for_iteration(data, config)
            config.fixed_assistant = fixed
        progress.report(f"{variant} seed {seed} iteration {iteration}/{count}: training {config.steps} steps")
        t1 = time.perf_counter()
        # the trained student goes to state.pt below, and the checkpoints are then deleted: none after the last step
        record = train_student(
            student,
            data,
            corpus.texts,
            config,
            checkpoint_dir=iteration_dir / "checkpoints",
            iteration=iteration,
            final_checkpoint=False,
        )
        training_seconds = time.perf_counter() - t1
        names = assistant_names(
            [a.name for a in pool], fused_assistant_subsets(len(pool)) if config.fusion and len(pool) >= 2 else []
        )
        selections.extend(
            {
                "iteration": iteration,
                "step": r["step"],
                "assistant": names[r["assistant"]] if r["assistant"] >= 0 else None,
                "members": len(names[r["assistant"]].split("&")) if r["assistant"] >= 0 else 0,
                "select_seconds": r["select_seconds"],
                "step_seconds": r["step_seconds"],
                **{k: r[k] for k in ("total", "contrastive", "kl_teacher", "kl_assistant") if k in r},
            }
            for r in record
        )

        student_scorer = setup.student_scorer(student, f"student@{iteration}", f"{run_key}-{iteration}")
        eval_metrics = (
            {a.name: setup.evaluate(a, split, names=(metric,), query_mask=eval_mask)[metric] for a in pool}
            if eval_mask.any()
            else {}
        )
        student_eval = (
            setup.evaluate(student_scorer, split, names=(metric,), query_mask=eval_mask)[metric]
            if eval_mask.any()
            else float("nan")
        )
        replaced = None
        if profile.iterations.replace_worst and pool and eval_mask.any():
            _save_snapshot(run_dir, student_scorer.name, student)
            pool, replaced = replace_worst_assistant(pool, eval_metrics, student_scorer, student_eval)
        evaluated = evaluate_test == "all" or (evaluate_test == "final" and iteration == profile.iterations.count)
        entry = IterationRecord(
            iteration=iteration,
            pool=[a.name for a in pool],
            replaced=replaced,
            eval_metric=metric,
            eval_student=student_eval,
            eval_assistants=eval_metrics,
            mined_queries=data.stats.get("mined_queries", 0),
            rows=data.stats.get("rows"),
            pairs_scored=data.stats.get("pairs_scored", 0),
            pairs_cached=data.stats.get("pairs_cached", 0),
            construction_seconds=construction_seconds,
            training_seconds=training_seconds,
            select_seconds=float(sum(r["select_seconds"] for r in record)),
            final_loss=record[-1]["total"] if record else None,
            test=setup.evaluate_all(student_scorer) if evaluated else None,
            training_ranking=training_ranking,
        )
        history.append(entry)
        log.info(
            "seed %d %s iteration %d: eval %s %.4f, replaced %s",
            seed,
            variant,
            iteration,
            metric,
            student_eval,
            replaced,
        )
        previous = student_scorer
        save_torch(iteration_dir / "state.pt", {"model": student.state_dict()})
        atomic_write_json(
            iteration_dir / "state.json",
            {
                "history": [entry.to_json() for entry in history],
                "selections": selections,
                "pool": [a.name for a in pool],
                "temperatures": temperatures,
                "student_spec": student_spec or profile.models.student,
            },
        )
        # the finished iteration is stored: its mid-training checkpoints are no longer needed
        shutil.rmtree(iteration_dir / "checkpoints", ignore_errors=True)

    result = RunResult(
        variant=variant,
        seed=seed,
        assistants=[
            a.name
            for a in (
                [setup.assistants[i] for i in assistant_subset] if assistant_subset is not None else setup.assistants
            )
        ],
        initial=initial,
        history=tuple(history),
        selections=selections,
        temperatures=temperatures,
        final=history[-1].test if history else None,
        params=params,
        student_spec=student_spec or profile.models.student,
        training_precision=dtype_name(autocast_dtype(profile.training.amp, default_device())),
    )
    atomic_write_json(result_path, result.to_json())
    return result


def _save_snapshot(run_dir: Path, name: str, student):
    save_torch(run_dir / "snapshots" / f"{name}.pt", student.state_dict())


def _load_snapshot(setup: Setup, run_dir: Path, name: str, student_spec):
    student = setup.new_student(0, student_spec)
    state = try_load_torch(run_dir / "snapshots" / f"{name}.pt")
    if state is None:
        raise RuntimeError(f"{run_dir}: snapshot of {name} is missing; delete {run_dir} to restart this run")
    student.load_state_dict(state)
    return student
