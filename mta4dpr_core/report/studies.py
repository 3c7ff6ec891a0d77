"""The paper's tables and figures, one function per notebook.

Each function takes a :class:`~mta4dpr_core.experiments.experiment.Setup`, reads the stored MTA4DPR runs it
needs from the run store (:mod:`~mta4dpr_core.experiments.runs`; the notebook stage ran them first through the
grid), writes its tables into ``results/<profile>/`` and returns them as DataFrames. A run that is not stored is a
``MissingRunError`` naming the command that makes it: nothing here trains. The fixed scorers' evaluations, the
iteration-1 data and a student's encoding cost come from ``experiments/`` (stored under the code digest).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata as md
import io
import itertools
import logging
import os
import platform
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..config.ids import student_label
from ..config.models import student_specs
from ..config.params import resolve_path
from ..config.precision import autocast_dtype, describe, dtype_name
from ..config.typed import typed
from ..experiments.catalog import (
    dose_response_weights,
    grid_seeds,
    selection_variant,
    subset_variant,
    teacher_mix_variant,
)
from ..experiments.experiment import Setup
from ..experiments.fixed_scorers import baseline_scorer, evaluate_fixed, reference_run_evaluation
from ..experiments.runs import read_over_seeds
from ..experiments.student_cost import student_cost
from ..experiments.teacher_choice import candidate_label, choose_teacher, model_family, teacher_selection_records
from ..experiments.training_inputs import first_iteration_data, first_iteration_temperatures
from ..method.fusion import assistant_names, candidate_distributions, fused_assistant_subsets, softmax
from ..method.selection import kl_divergence
from ..method.warm_start import warm_start_report
from ..retrieval.encoders import default_device
from ..store.atomic import atomic_write_bytes, atomic_write_json
from . import paper as P
from . import tables as R  # row ids (tables.py)
from . import tables as T
from .statistics import compare

log = logging.getLogger(__name__)
DL_COLUMNS = {"msmarco-trecdl/dl19": "DL19 nDCG@10", "msmarco-trecdl/dl20": "DL20 nDCG@10"}
# the students train on the profile's collection (data.train): on the extra test sets (the DL pools on mini) they are
# zero-shot transfer, never set beside the paper's in-domain TREC DL numbers
ZERO_SHOT = " (zero-shot)"
# the collection's display name in every caption, from the profile's data.test (tables.COLLECTION_LABELS); defined in
# tables (no torch there, so report-only modules such as replication share it)
collection_label = T.collection_label


def has_extra_tests(params) -> bool:
    return bool(typed(params).data.extra_test)


def zero_shot_note(params) -> str:
    """The caption note on the extra test sets: zero-shot transfer from the training collection."""
    return (
        f"extra test sets (DL pools): zero-shot transfer from {collection_label(params, 'train')} training, not comparable with "
        "the paper's in-domain TREC DL numbers, which are not shown"
    )


def _zero_shot_suffix(params) -> str:
    """``"; <zero_shot_note>"`` where the profile has extra test sets, else nothing (for the end of a caption)."""
    return f"; {zero_shot_note(params)}" if has_extra_tests(params) else ""


def replacement_summary(replaced) -> str:
    """What replaced the worst assistant after an iteration, over seeds: ``none in 2 seeds, student@1 in 3 seeds``.

    >>> replacement_summary([None, "student@1", "student@1"])
    'none in 1 seed, student@1 in 2 seeds'
    """

    counts = Counter("none" if r is None else str(r) for r in replaced)
    return ", ".join(f"{name} in {n} seed{'s' if n != 1 else ''}" for name, n in sorted(counts.items()))


def results_dir(params) -> Path:
    config = typed(params)
    return resolve_path(config.output.results_dir) / config.profile


def run_over_seeds(setup, variant="mta4dpr", seeds=None, **kwargs):
    """The stored runs of ``variant`` over seeds (:func:`~mta4dpr_core.experiments.runs.read_over_seeds`): a
    missing run is a ``MissingRunError`` naming the command that makes it, never a training."""
    return read_over_seeds(setup, variant, seeds, **kwargs)


def _metric(block, name):
    return None if block is None or name not in block else T.percent(block[name])


def _extra_name(spec):
    return DL_COLUMNS.get(spec, f"{spec} nDCG@10")


def _row_from_evaluations(evaluations, columns):
    """``evaluations``: one evaluate_all() dict per seed -> {column: mean, column ±: std}."""
    row = {}
    for column, (block, metric) in columns.items():
        mean, std = T.mean_std([_metric(e.get(block), metric) for e in evaluations])
        row[column], row[f"{column} ±"] = mean, std if len(evaluations) > 1 else float("nan")
    return row


def _main_columns(setup):
    columns = {"MRR@10": ("test", "MRR@10"), "R@50": ("test", "R@50"), "R@1k": ("test", "R@1000")}
    for spec in setup.extra_tests:
        columns[_extra_name(spec) + ZERO_SHOT] = (spec, "nDCG@10")
    return columns


def _fixed_scorers(setup):
    """The teacher and assistants with their paper analogues, evaluated once (cached)."""
    analogs = setup.config.study.paper_analogs
    rows = []
    for role, scorer in [("teacher", setup.teacher)] + [("assistant", a) for a in setup.assistants]:
        key = f"{role}-{scorer.name}-{setup.params['profile']}"
        rows.append(
            (
                role,
                scorer,
                analogs.get(scorer.name if role == "assistant" else "teacher", ""),
                evaluate_fixed(setup, scorer, key),
            )
        )
    # baselines with a paper analogue (e.g. BM25) get a row of their own in Tables 1 and 2
    for spec in setup.config.study.baseline_models:
        if spec.get("paper_analogue"):
            scorer = baseline_scorer(setup, spec)
            rows.append(
                (
                    "baseline",
                    scorer,
                    spec["paper_analogue"],
                    evaluate_fixed(setup, scorer, f"baseline-{scorer.name}", spec),
                )
            )
    return rows


# ---- notebook 01: data preparation -----------------------------------------------------------


def baselines(setup: Setup):
    """BM25, every offline model and the candidate teachers on the profile's test set and the extra test sets (DL pools)."""
    rows = []
    seen = set()
    candidates = [("teacher", setup.teacher)] + [("assistant", a) for a in setup.assistants]
    for spec in setup.config.study.baseline_models:
        candidates.append((spec.get("role", "model"), baseline_scorer(setup, spec)))
    for role, scorer in candidates:
        if scorer.name in seen:
            continue
        seen.add(scorer.name)
        result = evaluate_fixed(
            setup,
            scorer,
            f"baseline-{scorer.name}-{setup.params['profile']}",
            {
                "name": scorer.name,
                "models": dataclasses.asdict(setup.config.models),
                "baselines": setup.config.study.baseline_models,
            },
        )
        row = {
            "model": scorer.name,
            "role": role,
            "nDCG@10": _metric(result["test"], "nDCG@10"),
            "MRR@10": _metric(result["test"], "MRR@10"),
            "R@100": _metric(result["test"], "R@100"),
        }
        for spec in setup.extra_tests:
            row[_extra_name(spec)] = _metric(result.get(spec), "nDCG@10")
        rows.append(row)
    for reference in setup.config.study.reference_runs:
        row = {"model": reference["name"], "role": "reference run", "nDCG@10": None, "MRR@10": None, "R@100": None}
        for spec, value in reference_run_evaluation(setup, reference).items():
            row[_extra_name(spec)] = T.percent(value)
        rows.append(row)
    df = pd.DataFrame(rows)
    order = {"teacher": 0, "teacher candidate": 1, "assistant": 2, "model": 3, "reference run": 4}
    df = df.sort_values(["role", "model"], key=lambda s: s.map(order) if s.name == "role" else s).reset_index(drop=True)
    df = R.with_ids(df, [R.scorer_id(role, model) for role, model in zip(df["role"], df["model"], strict=True)])
    extra = " and the TREC DL pools" if has_extra_tests(setup.params) else ""
    T.write_table(
        df, results_dir(setup.params), "baselines", f"Baselines: {collection_label(setup.params)} test{extra} (percent)"
    )
    return df


def teacher_selection(setup: Setup):
    """Every offline scorer and hybrid measured on the *training* queries (the test set is not touched):
    the teacher is the strongest candidate that shares no member with any assistant, and the paper's
    assistants are mapped to ours by their rank there. Cached like the other fixed evaluations."""
    stored = teacher_selection_records(setup)
    df = pd.DataFrame(stored)
    if df.empty:
        return df
    # a fixed column order: records read back from the JSON cache come with sorted keys
    metrics = [f"train {m}" for m in ("nDCG@10", "MRR@10", "R@100") if f"train {m}" in df.columns]
    df = df[["candidate", "role", "family", *metrics]]
    assistants = setup.config.models.assistants
    chosen = choose_teacher(df, assistants)
    profile_teacher = candidate_label(setup.config.models.teacher)
    assistant_labels = {candidate_label(a) for a in assistants}
    df["role"] = ["assistant" if c in assistant_labels else "" for c in df["candidate"]]
    df["independent of the assistants"] = [
        not (set(f.split("+")) & set().union(*(model_family(a) for a in assistants))) for f in df["family"]
    ]
    df["chosen by the rule"] = df["candidate"] == chosen
    df["profile's teacher"] = df["candidate"] == profile_teacher
    df = df.sort_values(["train nDCG@10", "candidate"], ascending=[False, True]).reset_index(drop=True)
    df = R.with_ids(df, [R.slug(c) for c in df["candidate"]])
    T.write_table(
        df,
        results_dir(setup.params),
        "teacher_selection",
        f"Teacher and assistant candidates on {collection_label(setup.params, 'train')} training queries "
        + (f"({len(setup.train)}; " if setup.train.labelled is None else f"({setup.train.labelled} labelled; ")
        + "percent; never the test set). "
        f"The rule picks the strongest candidate independent of the assistants: {chosen}",
    )
    return df


def dataset_statistics(setup: Setup):
    data, eval_mask = first_iteration_data(setup)
    negatives = (np.asarray(data.candidates) >= 0) & ~np.asarray(data.is_positive)
    stats = [
        ("corpus passages", len(setup.collection.corpus)),
        ("training queries", int((~eval_mask).sum())),
        ("eval queries", int(eval_mask.sum())),
        ("test queries", len(setup.test)),
        ("assistants", len(setup.assistants)),
        ("fused assistants", len(fused_assistant_subsets(len(setup.assistants)))),
        ("hard negatives per query (k)", setup.config.construction.k),
        ("mean hard negatives kept", float(negatives.sum(1).mean())),
        ("mean positives per query", float(np.asarray(data.is_positive).sum(1).mean())),
        # scored now or read from the pair-score cache: the same on a rerun, after a crash, or after other notebooks
        (
            "pairs scored (teacher and assistants)",
            int(data.stats.get("pairs_scored", 0) + data.stats.get("pairs_cached", 0)),
        ),
        ("data construction seconds", float(data.stats.get("seconds", 0.0))),
    ]
    for spec, (collection, split) in setup.extra_tests.items():
        stats.append((f"{spec} queries / passages", f"{len(split)} / {len(collection.corpus)}"))
    df = pd.DataFrame(stats, columns=["statistic", "value"])
    df["value"] = df["value"].map(lambda v: f"{v:.2f}" if isinstance(v, float) else str(v))
    df = R.with_ids(df, [R.slug(s) for s in df["statistic"]])
    T.write_table(df, results_dir(setup.params), "data_statistics", "Iteration-1 data construction")
    return df


# ---- notebook 02: fusion --------------------------------------------------------------------


def fitted_temperatures(setup: Setup, seed=None) -> dict:
    """The assistants' temperatures as the seed's run fits them (iteration-1 training rows)."""
    return first_iteration_temperatures(setup, seed)


def fusion_kl_per_query(setup: Setup):
    """KL(teacher || candidate) per training query for every original and fused assistant:
    (names, member counts, array [candidates, queries]), with the fitted temperatures."""
    data, _ = first_iteration_data(setup)
    teacher = softmax(np.asarray(data.teacher_scores) / setup.config.models.teacher.get("temperature", 1.0))
    fitted = fitted_temperatures(setup)
    temps = np.asarray([fitted[a.name] for a in setup.assistants])[:, None, None]
    probs = softmax(np.asarray(data.assistant_scores) / temps)
    subsets = fused_assistant_subsets(len(setup.assistants))
    candidates = candidate_distributions(probs, subsets, setup.config.fusion.weights)
    names = assistant_names([a.name for a in setup.assistants], subsets)
    per_query = np.stack(
        [kl_divergence(teacher[i : i + 1], candidates[:, i : i + 1]) for i in range(len(data))], axis=1
    )
    return names, [len(n.split("&")) for n in names], per_query


def fusion_closeness(setup: Setup):
    """KL(teacher || assistant) over every training query's full candidate list, for the
    original and fused assistants (the paper: fused ones sit closer to the teacher)."""
    names, members, per_query = fusion_kl_per_query(setup)
    fitted = fitted_temperatures(setup)
    df = pd.DataFrame(
        {
            "assistant": names,
            "members": members,
            "temperature": [fitted.get(n, float("nan")) for n in names],
            "KL(teacher ‖ assistant)": per_query.mean(1),
            "KL(teacher ‖ assistant) ±": per_query.std(1, ddof=1),
            "queries where closest": [(per_query.argmin(0) == i).mean() * 100 for i in range(len(names))],
        }
    )
    df = df.sort_values(["KL(teacher ‖ assistant)", "assistant"]).reset_index(drop=True)
    df = R.with_ids(df, [R.slug(a) for a in df["assistant"]])
    T.write_table(
        df,
        results_dir(setup.params),
        "fusion_kl",
        "KL divergence of each original and fused assistant to the teacher "
        "(training queries; ± = std over queries; temperatures fitted on training rows)",
    )
    return df


def plot_fusion(df, path):
    import matplotlib  # noqa: PLC0415 (lazy: matplotlib not loaded by this module)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415 (lazy: matplotlib not loaded by this module)

    fig, ax = plt.subplots(figsize=(7, 0.35 * len(df) + 1.2))
    colors = ["#4C72B0" if m == 1 else "#DD8452" for m in df["members"]]
    err = df.get("KL(teacher ‖ assistant) ±")
    err = pd.to_numeric(err, errors="coerce").fillna(0).to_numpy() if err is not None else None
    ax.barh(df["assistant"], df["KL(teacher ‖ assistant)"], xerr=err, capsize=3, ecolor="#333333", color=colors)
    ax.invert_yaxis()
    ax.set_xlabel(
        "mean KL(teacher || assistant) over training queries (lower = closer)"
        + ("\nerror bars: ± sample std over training queries" if err is not None else "")
    )
    ax.set_title("Original (blue) and fused (orange) assistants")
    fig.tight_layout()
    _save_figure(fig, path)
    return fig


def _save_figure(fig, path):
    buffer = io.BytesIO()
    # bbox_inches="tight": long tick labels and axis titles are never clipped
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None, "Creation Time": None})
    atomic_write_bytes(path, buffer.getvalue())


# ---- comparisons with intervals ----------------------------------------------------------------


def per_query_matrix(setup: Setup, evaluations, metric="nDCG@10", block="test") -> np.ndarray:
    """Per-query values [seeds, queries] of ``metric`` on ``block`` ("test" or an extra test set)."""
    split = setup.test if block == "test" else setup.extra_tests[block][1]
    return np.asarray(
        [[e["per_query"][block][metric][q] for q in split.query_ids] for e in evaluations], dtype=np.float64
    )


def delta_columns(setup: Setup, ours, other, metric="nDCG@10", prefix="Δ") -> dict:
    """``ours`` minus ``other`` on test ``metric`` (percent) with its 95% interval over seeds and queries (the
    t interval of :mod:`statistics`, as in the claims table)."""
    result = compare(per_query_matrix(setup, ours, metric), per_query_matrix(setup, other, metric))
    return {
        f"{prefix} {metric}": 100 * result.effect,
        f"{prefix} low": 100 * result.low,
        f"{prefix} high": 100 * result.high,
    }


STUDENT_COLUMNS = {
    "nDCG@10": ("test", "nDCG@10"),
    "MRR@10": ("test", "MRR@10"),
    "R@50": ("test", "R@50"),
    "R@1k": ("test", "R@1000"),
}


# ---- notebook 03: selection study -----------------------------------------------------------


def selection_study(setup: Setup):
    """Table 5: the student's test quality under each selection method (KL is the main run);
    Δ is each method minus KL, with its 95% interval."""
    methods = setup.config.study.selection_methods
    rows = []
    columns = {**STUDENT_COLUMNS, "R@5": ("test", "R@5"), "R@20": ("test", "R@20")}
    kl = [r.final for r in run_over_seeds(setup, "mta4dpr")]
    for method in methods:
        results = [r.final for r in selection_runs(setup, method)]
        row = {"id": selection_variant(method), "selection": method, **_row_from_evaluations(results, columns)}
        row.update(delta_columns(setup, results, kl, prefix="Δ vs KL") if method != "kl" else {})
        row.update(T.paper_values("table5", row["id"]))
        rows.append(row)
    df = pd.DataFrame(rows)
    T.write_table(
        df,
        results_dir(setup.params),
        "table5",
        f"Table 5: selection methods (percent; {collection_label(setup.params)} test; "
        f"{len(kl)} seeds; Δ vs KL = this method minus KL, with its paired-bootstrap 95% interval)",
    )
    return df


def selection_runs(setup, method):
    if method == "kl":
        return run_over_seeds(setup, "mta4dpr")
    return run_over_seeds(setup, selection_variant(method), overrides={"selection": {"method": method}})


def selection_composition(setup: Setup):
    """Figure 2's data: how often each (original or fused) assistant was selected, over all
    batches, iterations and seeds of the main run."""
    counts = {}
    total = 0
    for result in run_over_seeds(setup, "mta4dpr"):
        for entry in result.selections:
            if entry["assistant"] is None:
                continue
            counts[entry["assistant"]] = counts.get(entry["assistant"], 0) + 1
            total += 1
    df = pd.DataFrame(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])), columns=["assistant", "batches"])
    df["share"] = df["batches"] / max(total, 1) * 100
    df["members"] = df["assistant"].map(lambda n: len(n.split("&")))
    df = R.with_ids(df, [R.slug(a) for a in df["assistant"]])
    T.write_table(
        df,
        results_dir(setup.params),
        "figure2_data",
        "Figure 2 data: assistants selected per batch (percent of batches, all "
        "seeds and iterations). Paper (Figure 2, MS MARCO): the fused RetroMAE & M2DPR assistant is chosen in nearly 50% "
        "of batches",
    )
    return df


def plot_composition(df, path):
    import matplotlib  # noqa: PLC0415 (lazy: matplotlib not loaded by this module)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415 (lazy: matplotlib not loaded by this module)

    shown = df.head(12)
    fig, ax = plt.subplots(figsize=(7.5, 0.38 * len(shown) + 1.4))
    colors = ["#4C72B0" if m == 1 else "#DD8452" for m in shown["members"]]
    ax.barh(shown["assistant"], shown["share"], color=colors)
    ax.invert_yaxis()
    for y, value in enumerate(shown["share"]):
        ax.text(value, y, f" {value:.1f}%", va="center", fontsize=8)
    ax.set_xlabel("share of training batches (%)")
    ax.set_xlim(0, float(shown["share"].max()) * 1.15 + 1)
    ax.set_title("Figure 2: assistant chosen per batch (KL; orange = fused)")
    fig.tight_layout()
    _save_figure(fig, path)
    return fig


# ---- notebook 04: training --------------------------------------------------------------------

NO_ASSISTANT = "no assistant (teacher-only KD, same iterations and steps)"


def _paper_analogue_id(role: str, analogue) -> str | None:
    """The paper's Table 1 row a fixed scorer stands for: its teacher, or the paper model named by
    ``study.paper_analogs`` / a baseline's ``paper_analogue`` (``CotMAE`` -> ``cotmae``); None without one."""
    if not analogue:
        return None
    return R.TEACHER if role == "teacher" else R.slug(analogue)


def split_table1(df: pd.DataFrame):
    """Table 1 in two compact views for the notebook: (ours, paper). ``ours`` = model, role, nDCG@10
    (and its ± column) and the Δ vs no assistant columns; ``paper`` = model, paper analogue and the
    paper's MRR@10 / R@50 / R@1k. Columns absent from ``df`` are skipped; the full table is unchanged."""
    ours = [
        R.ID,
        "model",
        "role",
        "nDCG@10",
        "nDCG@10 ±",
        "Δ vs no assistant nDCG@10",
        "Δ vs no assistant low",
        "Δ vs no assistant high",
    ]
    paper = [R.ID, "model", "paper analogue", "paper MRR@10", "paper R@50", "paper R@1k"]
    return df[[c for c in ours if c in df.columns]].copy(), df[[c for c in paper if c in df.columns]].copy()


ONE_ITERATION_KD = "teacher-only KD, 1 iteration, same total steps"
KD_MATCHED_WEIGHT = "teacher-only KD at MTA4DPR's total KL weight (β + γ)"
ASSISTANTS_ARE_TEACHER = "MTA4DPR with every assistant replaced by the teacher"


def main_study(setup: Setup):
    """Tables 1, 2 and 4: MTA4DPR against the paper's "No assistant" row at equal budget, the
    one-iteration teacher-only KD at the same total steps, the untrained student and the fixed scorers."""
    main = run_over_seeds(setup, "mta4dpr")
    no_assistant = run_over_seeds(setup, "no_assistants")
    one_iteration = run_over_seeds(setup, "one_iteration_kd")
    matched = run_over_seeds(setup, R.KD_MATCHED_WEIGHT)
    as_teacher = run_over_seeds(setup, R.ASSISTANTS_ARE_TEACHER)
    columns = {"nDCG@10": ("test", "nDCG@10"), **_main_columns(setup)}
    fixed = _fixed_scorers(setup)
    rows = []
    paper_ids = []  # each row's paper row (table1 and table2 ids), or None
    for role, scorer, analog, result in fixed:
        rows.append(
            {
                R.ID: R.scorer_id(role, scorer.name),
                "model": scorer.name,
                "role": role,
                "paper analogue": analog,
                **_row_from_evaluations([result], columns),
            }
        )
        paper_ids.append(_paper_analogue_id(role, analog))
    # (row id, label, paper row id, evaluations)
    students = [
        (R.UNTRAINED_STUDENT, "student before training", None, [r.initial for r in main]),
        (R.NO_ASSISTANTS, NO_ASSISTANT, R.NO_ASSISTANTS, [r.final for r in no_assistant]),
        (R.ONE_ITERATION_KD, ONE_ITERATION_KD, None, [r.final for r in one_iteration]),
        (R.KD_MATCHED_WEIGHT, KD_MATCHED_WEIGHT, None, [r.final for r in matched]),
        (R.ASSISTANTS_ARE_TEACHER, ASSISTANTS_ARE_TEACHER, None, [r.final for r in as_teacher]),
        (R.MTA4DPR, "MTA4DPR", R.MTA4DPR, [r.final for r in main]),
    ]
    baseline = [r.final for r in no_assistant]
    for row_id, label, paper_id, evaluations in students:
        row = {
            R.ID: row_id,
            "model": label,
            "role": "student",
            "paper analogue": P.label("table1", paper_id) if paper_id else "",
            **_row_from_evaluations(evaluations, columns),
        }
        if row_id != R.NO_ASSISTANTS:
            row.update(delta_columns(setup, evaluations, baseline, prefix="Δ vs no assistant"))
        rows.append(row)
        paper_ids.append(paper_id)
    for row, paper_id in zip(rows, paper_ids, strict=True):
        row.update(T.paper_values("table1", paper_id, ("MRR@10", "R@50", "R@1k")))
    table1 = R.with_ids(pd.DataFrame(rows), [row[R.ID] for row in rows])
    out = results_dir(setup.params)
    pools = ", DL pools" if has_extra_tests(setup.params) else ""
    T.write_table(
        table1,
        out,
        "table1",
        f"Table 1: main results (percent; {collection_label(setup.params)} test in place of MS MARCO dev"
        f"{pools}; {len(main)} seeds, mean ± sample std; Δ vs no assistant = this row minus no assistant, with its 95% interval over "
        f"seeds × queries{_zero_shot_suffix(setup.params)})",
    )

    recall = {"R@5": ("test", "R@5"), "R@20": ("test", "R@20"), "R@100": ("test", "R@100")}
    rows2 = []
    # the NQ setting has its own teacher and assistants: a row's table2 analogue is the table2 row of the same id
    table2_ids = []
    for (role, scorer, _analog, result), paper_id in zip(fixed, paper_ids[: len(fixed)], strict=True):
        rows2.append(
            {
                R.ID: R.scorer_id(role, scorer.name),
                "model": scorer.name,
                "role": role,
                **_row_from_evaluations([result], recall),
            }
        )
        table2_ids.append(paper_id)
    for row_id, label, paper_id, evaluations in students[1:]:
        rows2.append({R.ID: row_id, "model": label, "role": "student", **_row_from_evaluations(evaluations, recall)})
        table2_ids.append(paper_id)
    for row, paper_id in zip(rows2, table2_ids, strict=True):
        shown = paper_id in P.table("table2")
        row["paper analogue"] = P.label("table2", paper_id) if shown else ""
        row.update(T.paper_values("table2", paper_id, prefix="paper NQ "))
    table2 = pd.DataFrame(rows2)
    table2 = R.with_ids(
        table2[
            [
                R.ID,
                "model",
                "role",
                "paper analogue",
                *[c for c in table2.columns if c not in (R.ID, "model", "role", "paper analogue")],
            ]
        ],
        table2[R.ID],
    )
    T.write_table(
        table2,
        out,
        "table2",
        f"Table 2: NQ-style recall (percent; {collection_label(setup.params)} test; each row beside its own "
        "paper analogue)",
    )

    rows4 = []
    iterations = max(len(r.history) for r in main)
    per_iteration_columns = {**columns, "R@5": ("test", "R@5")}
    for i in range(iterations):
        evaluations = [r.history[i].test for r in main if len(r.history) > i]
        row = {
            R.ID: R.iteration_id(i + 1),
            "iteration": i + 1,
            **_row_from_evaluations(evaluations, per_iteration_columns),
        }
        if i:
            row.update(delta_columns(setup, evaluations, [r.history[i - 1].test for r in main], prefix="Δ vs previous"))
        row["mined queries"] = float(np.mean([r.history[i].mined_queries for r in main if len(r.history) > i]))
        row["replaced"] = replacement_summary([r.history[i].replaced for r in main if len(r.history) > i])
        row.update(T.paper_values("table4", row[R.ID]))
        rows4.append(row)
    table4 = pd.DataFrame(rows4)
    T.write_table(
        table4,
        out,
        "table4",
        "Table 4: student quality after each iteration (percent; later iterations have also "
        "trained more steps; Δ vs previous = this iteration minus the previous one, with its 95% interval "
        f"over seeds × queries{_zero_shot_suffix(setup.params)})",
    )
    return table1, table2, table4


# ---- notebook 05: ablations ---------------------------------------------------------------------

ABLATIONS = [
    ("MTA4DPR", "mta4dpr"),
    ("w/o assistants", "no_assistants"),
    ("w/o fusion", "no_fusion"),
    ("w/o iterations (1 iteration, same total steps)", "no_iterations"),
]


def ablations(setup: Setup) -> list[tuple[str, str]]:
    """Table 3's rows this profile runs: MTA4DPR, w/o assistants, and the ``study.ablations`` it keeps."""
    kept = set(setup.config.study.ablations)
    return [
        (label, variant) for label, variant in ABLATIONS if variant in ("mta4dpr", "no_assistants") or variant in kept
    ]


def ablation_study(setup: Setup):
    """Table 3 (without assistants, fusion, iterations; all at the same optimiser steps) and
    Table 7 (every combination of assistants)."""
    columns = {**STUDENT_COLUMNS, "R@5": ("test", "R@5"), "R@20": ("test", "R@20"), "R@100": ("test", "R@100")}
    main = [r.final for r in run_over_seeds(setup, "mta4dpr")]
    rows = []
    for label, variant in ablations(setup):
        evaluations = [r.final for r in run_over_seeds(setup, variant)]
        row = {R.ID: variant, "variant": label, **_row_from_evaluations(evaluations, columns)}
        if variant != "mta4dpr":
            row.update(delta_columns(setup, evaluations, main, prefix="Δ vs MTA4DPR"))
        row.update(T.paper_values("table3", variant))
        rows.append(row)
    table3 = pd.DataFrame(rows)
    out = results_dir(setup.params)
    T.write_table(
        table3,
        out,
        "table3",
        f"Table 3: ablations (percent; {collection_label(setup.params)} test; {len(main)} seeds; "
        "Δ vs MTA4DPR = this variant minus MTA4DPR, with its paired-bootstrap 95% interval)",
    )

    table7 = None
    if setup.config.study.assistant_combinations:
        table7 = pd.DataFrame(_combination_rows(setup))
        seeds = grid_seeds(setup)
        T.write_table(
            table7,
            out,
            "table7",
            f"Table 7: every combination of assistants (percent; {len(seeds)} seed(s); "
            "Δ vs none = this combination minus no assistant, with its 95% interval over seeds × queries"
            f"{_zero_shot_suffix(setup.params)})",
        )
    return table3, table7


DOSE_RESPONSE_CAPTION = (
    "Dose-response sweep (a mechanism test outside the claim family and outside the independence rule: at λ > 0 "
    "every assistant carries the teacher's scores). Each assistant's training logits are λ·teacher + (1 − λ)·its "
    "own; λ = 0 is MTA4DPR, λ = 1 the assistants-are-teacher control. Δ vs matched = this run minus teacher-only "
    "KD at the same total KL weight (test nDCG@10, points, 95% t interval over seeds × queries, not adjusted). "
    "Gap = (teacher − assistant) / teacher on re-ranking the iteration-1 training candidates (nDCG@10), mean "
    "over seeds"
)


def _training_gaps(runs) -> dict:
    """The teacher's lead over the best and the weakest assistant (relative, percent) on re-ranking the
    iteration-1 training candidates, as trained; mean over seeds (nan for runs stored without it)."""
    best, weakest = [], []
    for run in runs:
        ranking = run.history[0].training_ranking if run.history else None
        if not ranking:
            continue
        teacher = ranking["teacher"]
        assistants = [v for k, v in ranking.items() if k != "teacher"]
        best.append(100 * (teacher - max(assistants)) / teacher)
        weakest.append(100 * (teacher - min(assistants)) / teacher)
    return {
        "gap to best assistant (%)": float(np.mean(best)) if best else float("nan"),
        "gap to weakest assistant (%)": float(np.mean(weakest)) if weakest else float("nan"),
    }


def dose_response_study(setup: Setup):
    """The dose-response sweep: MTA4DPR with its assistants moved towards the teacher by lambda, each against
    the matched-weight control (``study.dose_response``; None when the profile runs no sweep)."""
    weights = dose_response_weights(setup)
    if not weights:
        return None
    seeds = grid_seeds(setup)
    control = [r.final for r in run_over_seeds(setup, "kd_matched_weight", seeds)]
    columns = {"nDCG@10": ("test", "nDCG@10")}
    rows = []
    for weight in weights:
        variant = teacher_mix_variant(weight)
        overrides = None if variant in ("mta4dpr", "assistants_are_teacher") else {"loss": {"teacher_mix": weight}}
        runs = run_over_seeds(setup, variant, seeds, overrides=overrides)
        evaluations = [r.final for r in runs]
        matrix = per_query_matrix(setup, evaluations) - per_query_matrix(setup, control)
        rows.append(
            {
                R.ID: variant,
                "λ": weight,
                **_row_from_evaluations(evaluations, columns),
                **delta_columns(setup, evaluations, control, prefix="Δ vs matched"),
                "seeds above the control": f"{int((matrix.mean(1) > 0).sum())}/{len(seeds)}",
                **_training_gaps(runs),
            }
        )
    table = pd.DataFrame(rows)
    T.write_table(table, results_dir(setup.params), "dose_response", DOSE_RESPONSE_CAPTION + f"; seeds {seeds}")
    return table


def plot_dose_response(df, path):
    """Δ vs the matched-weight control against the teacher's lead over the best assistant, one point per λ."""
    import matplotlib  # noqa: PLC0415 (lazy: matplotlib not loaded by this module)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415 (lazy: matplotlib not loaded by this module)

    fig, ax = plt.subplots(figsize=(6.5, 4))
    x, y = df["gap to best assistant (%)"], df["Δ vs matched nDCG@10"]
    err = np.vstack([y - df["Δ vs matched low"], df["Δ vs matched high"] - y])
    ax.errorbar(x, y, yerr=err, fmt="o-", color="#4C72B0", ecolor="#888888", capsize=3)
    for xi, yi, weight in zip(x, y, df["λ"], strict=True):
        ax.annotate(f"λ={weight:g}", (xi, yi), textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.axhline(0, color="#333333", lw=0.8)
    ax.set_xlabel("teacher's lead over the best assistant on training candidates (%, nDCG@10)")
    ax.set_ylabel("Δ nDCG@10 vs matched-weight control (points)")
    ax.set_title("Dose-response: assistants moved towards the teacher\n(mechanism test, outside the claim family)")
    fig.tight_layout()
    _save_figure(fig, path)
    return fig


def combination_runs(setup: Setup):
    """{subset (tuple of assistant indices, () = none): final evaluations over the grid seeds}."""
    m = len(setup.assistants)
    seeds = grid_seeds(setup)
    runs = {(): [r.final for r in run_over_seeds(setup, "no_assistants", seeds=seeds)]}
    for size in range(1, m + 1):
        for subset in itertools.combinations(range(m), size):
            if size == m:
                results = run_over_seeds(setup, "mta4dpr", seeds=seeds)
            else:
                results = run_over_seeds(
                    setup,
                    subset_variant(subset),
                    overrides={},
                    seeds=seeds,
                    assistant_subset=list(subset),
                )
            runs[subset] = [r.final for r in results]
    return runs


def _paper_letters(setup):
    """Each assistant's paper letter from its analogue (C, S, R, M), else A, B, ..."""
    analogs = setup.config.study.paper_analogs
    letters = P.letters()  # {paper model id: letter}
    return [letters.get(R.slug(analogs.get(a.name, "")), chr(ord("A") + i)) for i, a in enumerate(setup.assistants)]


def _combination_rows(setup):
    runs = combination_runs(setup)
    letters = _paper_letters(setup)
    columns = {"nDCG@10": ("test", "nDCG@10"), **_main_columns(setup)}
    rows = []
    everyone = tuple(range(len(setup.assistants)))
    for subset, evaluations in runs.items():
        key = "&".join(sorted((letters[i] for i in subset), key=R.LETTER_ORDER.find))
        variant = R.NO_ASSISTANTS if not subset else R.MTA4DPR if subset == everyone else subset_variant(subset)
        row = {
            R.ID: variant,
            "assistants": "&".join(setup.assistants[i].name for i in subset) or "none",
            "paper letters": key or "/",
            **_row_from_evaluations(evaluations, columns),
        }
        if subset:
            row.update(delta_columns(setup, evaluations, runs[()], prefix="Δ vs none"))
        row.update(T.paper_values("table7", R.letters_id(letters[i] for i in subset), ("MRR@10", "R@50", "R@1k")))
        rows.append(row)
    return rows


# ---- notebook 06: student scale and cost --------------------------------------------------------


_student_label = student_label


def student_size_runs(setup: Setup, spec):
    """(MTA4DPR, no-assistant) final evaluations for one student size."""
    same_as_main = spec == setup.config.models.student
    # other sizes use the grid seeds (study.combination_seeds), like Table 7
    seeds = None if same_as_main else grid_seeds(setup)
    student_spec = None if same_as_main else spec
    main = run_over_seeds(setup, "mta4dpr", seeds=seeds, student_spec=student_spec)
    base = run_over_seeds(setup, "no_assistants", seeds=seeds, student_spec=student_spec)
    return [r.final for r in main], [r.final for r in base]


# the columns that say which row it is, first in every table that sets our rows beside the paper's
BESIDE_PAPER_KEY = [R.ID, "source", "student"]


def _beside_paper_rows(ours: list[dict], our_source: str, table: str, paper_source: str, columns) -> list[dict]:
    """Our rows labelled with their source, followed by the paper's rows of `table`, read by name
    (`columns` maps a paper row's values to this table's columns)."""
    paper_rows = [
        {R.ID: R.paper_row_id(row_id), "source": paper_source, "student": P.label(table, row_id), **columns(values)}
        for row_id, values in P.table(table).items()
    ]
    return [{**row, "source": our_source} for row in ours] + paper_rows


def scale_and_cost(setup: Setup):
    """Table 6 (student sizes; Δ against no assistant, as the paper's ↑), Table 8 (training and
    data construction time) and Table 9 (index size, parameters, corpus encoding time)."""
    out = results_dir(setup.params)
    sizes = setup.config.study.student_sizes or [setup.config.models.student]
    columns = {
        "nDCG@10": ("test", "nDCG@10"),
        "MRR@10": ("test", "MRR@10"),
        "R@50": ("test", "R@50"),
        "R@1k": ("test", "R@1000"),
    }
    rows6, rows9 = [], []
    for spec in sizes:
        main, base = student_size_runs(setup, spec)
        ours, plain = _row_from_evaluations(main, columns), _row_from_evaluations(base, columns)
        cost = student_cost(setup, spec)
        row = {
            R.ID: R.slug(_student_label(spec)),
            "student": _student_label(spec),
            "seeds": len(main),
            "dim": cost["dim"],
            "#params (M)": cost["params"] / 1e6,
            **ours,
        }
        for name in ("MRR@10", "R@50", "R@1k"):
            row[f"↑ {name} vs no assistant"] = ours[name] - plain[name]
        row.update(delta_columns(setup, main, base, prefix="Δ vs no assistant"))
        rows6.append(row)
        rows9.append(
            {
                R.ID: R.slug(_student_label(spec)),
                "student": _student_label(spec),
                "dim": cost["dim"],
                "index size (MB)": cost["index_bytes"] / 2**20,
                "#params (M)": cost["params"] / 1e6,
                "corpus encoding seconds": cost["encoding_seconds"],
                "passages per second": cost["passages"] / max(cost["encoding_seconds"], 1e-9),
            }
        )
    rows6 = _beside_paper_rows(
        rows6,
        "ours",
        "table6",
        "paper (MS MARCO dev, SimLM-base student)",
        lambda values: {
            **{name: values[name] for name in ("MRR@10", "R@50", "R@1k")},
            **{f"↑ {name} vs no assistant": values[f"↑ {name}"] for name in ("MRR@10", "R@50", "R@1k")},
        },
    )
    metric_columns = [c for name in columns for c in (name, f"{name} ±")] + [
        f"↑ {name} vs no assistant" for name in ("MRR@10", "R@50", "R@1k")
    ]
    table6 = pd.DataFrame(rows6).reindex(
        columns=[
            *BESIDE_PAPER_KEY,
            "seeds",
            "dim",
            "#params (M)",
            *metric_columns,
            "Δ vs no assistant nDCG@10",
            "Δ vs no assistant low",
            "Δ vs no assistant high",
        ]
    )
    T.write_table(
        table6,
        out,
        "table6",
        "Table 6: student sizes (percent; ↑ = MTA4DPR minus no assistant, as the paper's ↑; "
        "Δ vs no assistant = the same difference in nDCG@10, with its paired-bootstrap 95% interval; the main student over all seeds, "
        "other sizes over the grid seeds)",
    )
    rows9 = _beside_paper_rows(
        rows9,
        "ours (CPU)",
        "table9",
        "paper (8.8M passages, GPU)",
        lambda values: {
            "index size (MB)": float(values["index GB"]) * 1024,
            "#params (M)": float(values["params M"]),
            "corpus encoding seconds": values["seconds bs 512"],
            "corpus encoding seconds (bs 1024)": values["seconds bs 1024"],
        },
    )
    table9 = pd.DataFrame(rows9).reindex(
        columns=[
            *BESIDE_PAPER_KEY,
            "dim",
            "index size (MB)",
            "#params (M)",
            "corpus encoding seconds",
            "corpus encoding seconds (bs 1024)",
            "passages per second",
        ]
    )
    T.write_table(
        table9,
        out,
        "table9",
        "Table 9: index size, parameters and corpus encoding time (ours: CPU, our batch size; "
        "paper: bs 512, and bs 1024 where the paper's text gives it)",
    )

    rows8 = []
    for label, variant in [
        ("MTA4DPR", "mta4dpr"),
        (NO_ASSISTANT, "no_assistants"),
        (ONE_ITERATION_KD, "one_iteration_kd"),
        (KD_MATCHED_WEIGHT, R.KD_MATCHED_WEIGHT),
        (ASSISTANTS_ARE_TEACHER, R.ASSISTANTS_ARE_TEACHER),
    ]:
        results = run_over_seeds(setup, variant)
        training = [sum(h.training_seconds for h in r.history) for r in results]
        construction = [sum(h.construction_seconds for h in r.history) for r in results]
        selection = [sum(h.select_seconds for h in r.history) for r in results]
        row = {
            R.ID: variant,
            "method": label,
            "iterations": len(results[0].history),
            "steps": int(sum(1 for s in results[0].selections)),
        }
        row["training seconds"], row["training seconds ±"] = T.mean_std(training)
        row["data construction seconds"], row["data construction seconds ±"] = T.mean_std(construction)
        row["selection share of training (%)"] = 100 * float(np.sum(selection)) / max(float(np.sum(training)), 1e-9)
        row.update(T.paper_values("table8", variant))
        rows8.append(row)
    table8 = pd.DataFrame(rows8)
    T.write_table(
        table8,
        out,
        "table8",
        "Table 8: training and data construction time (seconds on this machine; timings vary; "
        "paper: MTA4DPR vs its teacher-only baseline)",
    )
    return table6, table8, table9


# ---- notebook 07: summary (the claims themselves: claims.py) -------------------------------------


def compute_device() -> str:
    """What the runs computed on: the GPU's name, or the CPU's core count."""

    if torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(0)} (torch {torch.__version__}, CUDA {torch.version.cuda})"
    return f"cpu: {os.cpu_count()} cores (torch {torch.__version__})"


def _warm_starts(params) -> dict:
    """The [CLS] warm starts the profile's students were built from (time, cosine loss first and last steps)."""

    specs = [spec for _, spec in student_specs(params)]
    specs = [spec for index, spec in enumerate(specs) if spec.get("warm_start") and spec not in specs[:index]]
    reports = [warm_start_report(resolve_path(typed(params).output.cache_dir), spec) for spec in specs]
    return {"warm_starts": [report for report in reports if report]} if specs else {}


def _precision(params) -> dict:
    """The machine's CPU capability, whether it has native bf16, and the precision training actually used."""

    device = default_device()
    return {**describe(device), "training": dtype_name(autocast_dtype(typed(params).training.amp, device))}


def write_manifest(params, timings: dict | None = None, extra: dict | None = None):
    versions = {}
    for package in (
        "torch",
        "transformers",
        "sentence-transformers",
        "faiss-gpu",
        "ir-measures",
        "bm25s",
        "model2vec",
        "wordllama",
        "onnxruntime",
        "papermill",
        "nbval",
        "pandas",
        "numpy",
    ):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            versions[package] = None
    manifest = {
        "profile": typed(params).profile,
        "seeds": typed(params).seeds,
        "params": params,
        "versions": versions,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "device": compute_device(),
        "precision": _precision(params),
        "timings_seconds": timings or {},
        **_warm_starts(params),
        **(extra or {}),
    }
    path = results_dir(params) / "manifest.json"
    atomic_write_json(path, manifest)
    return manifest
