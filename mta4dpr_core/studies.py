"""The paper's tables and figures, one function per notebook.

Each function takes a :class:`~mta4dpr_core.experiment.Setup`, runs (or reuses the
stored results of) the MTA4DPR runs it needs, writes its tables into
``results/<profile>/`` and returns them as DataFrames. Runs are cached per
(params, seed, variant), so notebooks share them and a rerun after a crash
continues where it stopped.
"""
from __future__ import annotations

import itertools
import json
import logging
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import tables as T
from .atomic import atomic_write_bytes, atomic_write_json, read_json
from .construction import build_training_data, split_eval_queries
from .experiment import Setup
from .fusion import assistant_names, candidate_distributions, fused_assistant_subsets, softmax
from .iteration import run_mta4dpr
from .params import resolve_path
from .scorers import RunScorer
from .selection import kl_divergence

log = logging.getLogger(__name__)
DL_COLUMNS = {"msmarco-trecdl/dl19": "DL19 nDCG@10", "msmarco-trecdl/dl20": "DL20 nDCG@10"}


def results_dir(params) -> Path:
    return resolve_path(params["output"]["results_dir"]) / params["profile"]


def _seeds(setup, limit=0):
    seeds = setup.params["seeds"]
    return seeds[:limit] if limit else seeds


def run_over_seeds(setup, variant="mta4dpr", seeds=None, **kwargs):
    """Runs of ``variant`` over seeds. The main run is evaluated on the test sets before training
    and after every iteration (Tables 1 and 4); the others only after their last iteration."""
    main = variant == "mta4dpr" and kwargs.get("assistant_subset") is None and kwargs.get("student_spec") is None
    kwargs.setdefault("evaluate_test", "all" if main else "final")
    return [run_mta4dpr(setup, seed, variant, **kwargs) for seed in (seeds or _seeds(setup))]


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
        columns[_extra_name(spec)] = (spec, "nDCG@10")
    return columns


def _evaluate_cached(setup, scorer, key):
    path = setup.work_dir / "evaluations" / f"{key}.json"
    stored = read_json(path)
    if stored is not None:
        return stored
    result = setup.evaluate_all(scorer)
    atomic_write_json(path, result)
    return result


def _fixed_scorers(setup):
    """The teacher and assistants with their paper analogues, evaluated once (cached)."""
    analogs = setup.params["study"].get("paper_analogs", {})
    rows = []
    for role, scorer in [("teacher", setup.teacher)] + [("assistant", a) for a in setup.assistants]:
        key = f"{role}-{scorer.name}-{setup.params['profile']}"
        rows.append((role, scorer, analogs.get(scorer.name if role == "assistant" else "teacher", ""), _evaluate_cached(setup, scorer, key)))
    return rows


# ---- notebook 01: data preparation -----------------------------------------------------------

def baselines(setup: Setup):
    """BM25, every offline model and the candidate teachers on SciFact test and the DL pools."""
    from .scorers import build_scorer

    rows = []
    seen = set()
    candidates = [("teacher", setup.teacher)] + [("assistant", a) for a in setup.assistants]
    for spec in setup.params["study"].get("baseline_models", []):
        candidates.append((spec.get("role", "model"), build_scorer(spec, setup.cache_dir, resolve_path(setup.params["data"]["root"])).prepare(setup.collection.corpus)))
    for role, scorer in candidates:
        if scorer.name in seen:
            continue
        seen.add(scorer.name)
        result = _evaluate_cached(setup, scorer, f"baseline-{scorer.name}-{setup.params['profile']}")
        row = {"model": scorer.name, "role": role, "nDCG@10": _metric(result["test"], "nDCG@10"),
               "MRR@10": _metric(result["test"], "MRR@10"), "R@100": _metric(result["test"], "R@100")}
        for spec in setup.extra_tests:
            row[_extra_name(spec)] = _metric(result.get(spec), "nDCG@10")
        rows.append(row)
    for reference in setup.params["study"].get("reference_runs", []):
        row = {"model": reference["name"], "role": "reference run", "nDCG@10": None, "MRR@10": None, "R@100": None}
        for spec, (collection, split) in setup.extra_tests.items():
            year = spec.rsplit("/", 1)[1]
            path = resolve_path(setup.params["data"]["root"]) / spec.split("/")[0] / "runs" / f"{year}.{reference['run']}.trec.gz"
            if path.exists():
                scorer = RunScorer([path], name=reference["name"]).prepare(collection.corpus)
                row[_extra_name(spec)] = _metric(setup.evaluate(scorer, split, collection, names=("nDCG@10",)), "nDCG@10")
        rows.append(row)
    df = pd.DataFrame(rows)
    order = {"teacher": 0, "teacher candidate": 1, "assistant": 2, "model": 3, "reference run": 4}
    df = df.sort_values(["role", "model"], key=lambda s: s.map(order) if s.name == "role" else s).reset_index(drop=True)
    T.write_table(df, results_dir(setup.params), "baselines", "Baselines: SciFact test and the TREC DL pools (percent)")
    return df


def first_iteration_data(setup: Setup, seed=None):
    """Iteration-1 training data for ``seed`` (the first seed by default), using the score caches."""
    seed = seed if seed is not None else setup.params["seeds"][0]
    construction = setup.params["construction"]
    eval_mask = split_eval_queries(len(setup.train), construction["eval_fraction"], seed, construction["min_eval_queries"])
    return build_training_data(setup.train, setup.collection.corpus, setup.assistants, setup.teacher, k=construction["k"],
                               rrf_c=construction["rrf_c"], eval_mask=eval_mask, work_dir=setup.work_dir, mining=False), eval_mask


def dataset_statistics(setup: Setup):
    data, eval_mask = first_iteration_data(setup)
    negatives = (np.asarray(data.candidates) >= 0) & ~np.asarray(data.is_positive)
    stats = [
        ("corpus passages", len(setup.collection.corpus)), ("training queries", int((~eval_mask).sum())),
        ("eval queries", int(eval_mask.sum())), ("test queries", len(setup.test)),
        ("assistants", len(setup.assistants)), ("fused assistants", len(fused_assistant_subsets(len(setup.assistants)))),
        ("hard negatives per query (k)", setup.params["construction"]["k"]),
        ("mean hard negatives kept", float(negatives.sum(1).mean())),
        ("mean positives per query", float(np.asarray(data.is_positive).sum(1).mean())),
        # scored now or read from the pair-score cache: the same on a rerun, after a crash, or after other notebooks
        ("pairs scored (teacher and assistants)", int(data.stats.get("pairs_scored", 0) + data.stats.get("pairs_cached", 0))),
        ("data construction seconds", float(data.stats.get("seconds", 0.0))),
    ]
    for spec, (collection, split) in setup.extra_tests.items():
        stats.append((f"{spec} queries / passages", f"{len(split)} / {len(collection.corpus)}"))
    df = pd.DataFrame(stats, columns=["statistic", "value"])
    df["value"] = df["value"].map(lambda v: f"{v:.2f}" if isinstance(v, float) else str(v))
    T.write_table(df, results_dir(setup.params), "data_statistics", "Iteration-1 data construction")
    return df


# ---- notebook 02: fusion --------------------------------------------------------------------

def fusion_closeness(setup: Setup):
    """KL(teacher || assistant) over every training query's full candidate list, for the
    original and fused assistants (the paper: fused ones sit closer to the teacher)."""
    data, _ = first_iteration_data(setup)
    teacher = softmax(np.asarray(data.teacher_scores) / setup.params["models"]["teacher"].get("temperature", 1.0))
    temps = np.asarray([a.temperature for a in setup.assistants])[:, None, None]
    probs = softmax(np.asarray(data.assistant_scores) / temps)
    subsets = fused_assistant_subsets(len(setup.assistants))
    candidates = candidate_distributions(probs, subsets, setup.params["fusion"]["weights"])
    names = assistant_names([a.name for a in setup.assistants], subsets)
    per_query = np.stack([kl_divergence(teacher[i:i + 1], candidates[:, i:i + 1]) for i in range(len(data))], axis=1)
    df = pd.DataFrame({"assistant": names, "members": [len(n.split("&")) for n in names],
                       "KL(teacher ‖ assistant)": per_query.mean(1), "KL(teacher ‖ assistant) ±": per_query.std(1),
                       "queries where closest": [(per_query.argmin(0) == i).mean() * 100 for i in range(len(names))]})
    df = df.sort_values(["KL(teacher ‖ assistant)", "assistant"]).reset_index(drop=True)
    T.write_table(df, results_dir(setup.params), "fusion_kl", "KL divergence of each original and fused assistant to the teacher")
    return df


def plot_fusion(df, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.35 * len(df) + 1.2))
    colors = ["#4C72B0" if m == 1 else "#DD8452" for m in df["members"]]
    ax.barh(df["assistant"], df["KL(teacher ‖ assistant)"], color=colors)
    ax.invert_yaxis()
    ax.set_xlabel("mean KL(teacher || assistant) over training queries (lower = closer)")
    ax.set_title("Original (blue) and fused (orange) assistants")
    fig.tight_layout()
    _save_figure(fig, path)
    return fig


def _save_figure(fig, path):
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None, "Creation Time": None})
    atomic_write_bytes(path, buffer.getvalue())


# ---- notebook 03: selection study -----------------------------------------------------------

def selection_study(setup: Setup):
    """Table 5: the student's test quality under each selection method (KL is the main run)."""
    methods = setup.params["study"]["selection_methods"]
    rows = []
    columns = {"MRR@10": ("test", "MRR@10"), "R@50": ("test", "R@50"), "R@1k": ("test", "R@1000"),
               "R@5": ("test", "R@5"), "R@20": ("test", "R@20")}
    for method in methods:
        variant = "mta4dpr" if method == "kl" else f"selection_{method}"
        overrides = {} if method == "kl" else {"selection": {"method": method}}
        results = run_over_seeds(setup, variant, overrides=overrides)
        row = {"selection": method, **_row_from_evaluations([r["final"] for r in results], columns)}
        paper = T.PAPER_TABLE5.get(method, (None,) * 5)
        row.update({"paper MRR@10": paper[0], "paper R@50": paper[1], "paper R@1k": paper[2], "paper NQ R@5": paper[3], "paper NQ R@20": paper[4]})
        rows.append(row)
    df = pd.DataFrame(rows)
    T.write_table(df, results_dir(setup.params), "table5", "Table 5: selection methods (percent; SciFact test)")
    return df


def selection_composition(setup: Setup):
    """Figure 2's data: how often each (original or fused) assistant was selected, over all
    batches, iterations and seeds of the main run."""
    counts = {}
    total = 0
    for result in run_over_seeds(setup, "mta4dpr"):
        for entry in result["selections"]:
            if entry["assistant"] is None:
                continue
            counts[entry["assistant"]] = counts.get(entry["assistant"], 0) + 1
            total += 1
    df = pd.DataFrame(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])), columns=["assistant", "batches"])
    df["share"] = df["batches"] / max(total, 1) * 100
    df["members"] = df["assistant"].map(lambda n: len(n.split("&")))
    T.write_table(df, results_dir(setup.params), "figure2_data", "Figure 2 data: assistants selected per batch (percent of batches)")
    return df


def plot_composition(df, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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

def main_study(setup: Setup):
    """Tables 1, 2 and 4 from the main run, plain KD, the untrained student and the fixed scorers."""
    main = run_over_seeds(setup, "mta4dpr")
    plain = run_over_seeds(setup, "plain_kd")
    columns = _main_columns(setup)
    rows = []
    for role, scorer, analog, result in _fixed_scorers(setup):
        rows.append({"model": scorer.name, "role": role, "paper analogue": analog, **_row_from_evaluations([result], columns)})
    rows.append({"model": "student before training", "role": "student", "paper analogue": "",
                 **_row_from_evaluations([r["initial"] for r in main], columns)})
    rows.append({"model": "plain KD (teacher only, 1 iteration)", "role": "student", "paper analogue": "PROD (plain KD family)",
                 **_row_from_evaluations([r["final"] for r in plain], columns)})
    rows.append({"model": "MTA4DPR", "role": "student", "paper analogue": "MTA4DPR", **_row_from_evaluations([r["final"] for r in main], columns)})
    for row in rows:
        paper = T.PAPER_TABLE1.get(row["paper analogue"], (None,) * 5)
        row.update({"paper MRR@10": paper[0], "paper R@50": paper[1], "paper R@1k": paper[2], "paper DL19": paper[3], "paper DL20": paper[4]})
    table1 = pd.DataFrame(rows)
    out = results_dir(setup.params)
    T.write_table(table1, out, "table1", "Table 1: main results (percent; SciFact test in place of MS MARCO dev, DL pools)")

    recall = {"R@5": ("test", "R@5"), "R@20": ("test", "R@20"), "R@100": ("test", "R@100")}
    rows2 = []
    for role, scorer, analog, result in _fixed_scorers(setup):
        rows2.append({"model": scorer.name, "role": role, **_row_from_evaluations([result], recall)})
    rows2.append({"model": "plain KD", "role": "student", **_row_from_evaluations([r["final"] for r in plain], recall)})
    rows2.append({"model": "MTA4DPR", "role": "student", **_row_from_evaluations([r["final"] for r in main], recall)})
    table2 = pd.DataFrame(rows2)
    paper2 = T.PAPER_TABLE2["MTA4DPR"]
    table2["paper MTA4DPR R@5"], table2["paper MTA4DPR R@20"], table2["paper MTA4DPR R@100"] = paper2
    T.write_table(table2, out, "table2", "Table 2: NQ-style recall (percent; SciFact test)")

    rows4 = []
    iterations = max(len(r["history"]) for r in main)
    per_iteration_columns = dict(columns)
    per_iteration_columns["R@5"] = ("test", "R@5")
    for i in range(iterations):
        evaluations = [r["history"][i]["test"] for r in main if len(r["history"]) > i]
        row = {"iteration": i + 1, **_row_from_evaluations(evaluations, per_iteration_columns)}
        row["mined queries"] = float(np.mean([r["history"][i]["mined_queries"] for r in main if len(r["history"]) > i]))
        row["replaced"] = ", ".join(sorted({str(r["history"][i]["replaced"]) for r in main if len(r["history"]) > i}))
        paper = T.PAPER_TABLE4.get(i + 1, (None,) * 4)
        row.update({"paper MRR@10": paper[0], "paper R@50": paper[1], "paper R@1k": paper[2], "paper NQ R@5": paper[3]})
        rows4.append(row)
    table4 = pd.DataFrame(rows4)
    T.write_table(table4, out, "table4", "Table 4: student quality after each iteration (percent)")
    return table1, table2, table4


# ---- notebook 05: ablations ---------------------------------------------------------------------

def ablation_study(setup: Setup):
    """Table 3 (without assistants, fusion, iterations) and Table 7 (every combination of assistants)."""
    columns = {"MRR@10": ("test", "MRR@10"), "R@50": ("test", "R@50"), "R@1k": ("test", "R@1000"),
               "R@5": ("test", "R@5"), "R@20": ("test", "R@20"), "R@100": ("test", "R@100")}
    variants = [("MTA4DPR", "mta4dpr"), ("w/o assistants", "no_assistants"), ("w/o fusion", "no_fusion"), ("w/o iterations", "mta4dpr@1")]
    rows = []
    for label, variant in variants:
        if variant == "mta4dpr@1":
            # one iteration of the main run is exactly the w/o-iterations run (same data, seed, steps)
            evaluations = [r["history"][0]["test"] for r in run_over_seeds(setup, "mta4dpr")]
        else:
            evaluations = [r["final"] for r in run_over_seeds(setup, variant)]
        row = {"variant": label, **_row_from_evaluations(evaluations, columns)}
        paper = T.PAPER_TABLE3[label]
        row.update(dict(zip(["paper MRR@10", "paper R@50", "paper R@1k", "paper NQ R@5", "paper NQ R@20", "paper NQ R@100"], paper)))
        rows.append(row)
    table3 = pd.DataFrame(rows)
    out = results_dir(setup.params)
    T.write_table(table3, out, "table3", "Table 3: ablations (percent; SciFact test)")

    table7 = None
    if setup.params["study"]["assistant_combinations"]:
        m = len(setup.assistants)
        letters = T.PAPER_LETTERS if m == 4 else [chr(ord("A") + i) for i in range(m)]
        seeds = _seeds(setup, setup.params["study"].get("combination_seeds", 0))
        main_columns = _main_columns(setup)
        rows7 = []
        no_assistant = [r["final"] for r in run_over_seeds(setup, "no_assistants", seeds=seeds)]
        rows7.append({"assistants": "none", "paper letters": "/", **_row_from_evaluations(no_assistant, main_columns)})
        for size in range(1, m + 1):
            for subset in itertools.combinations(range(m), size):
                if size == m:
                    results = run_over_seeds(setup, "mta4dpr", seeds=seeds)
                else:
                    results = run_over_seeds(setup, f"assistants_{'_'.join(map(str, subset))}", overrides={}, seeds=seeds,
                                             assistant_subset=list(subset))
                rows7.append({"assistants": "&".join(setup.assistants[i].name for i in subset),
                              "paper letters": "&".join(letters[i] for i in subset),
                              **_row_from_evaluations([r["final"] for r in results], main_columns)})
        for row in rows7:
            key = "" if row["paper letters"] == "/" else row["paper letters"]
            paper = T.PAPER_TABLE7.get(key, (None,) * 5) if m == 4 else (None,) * 5
            row.update(dict(zip(["paper MRR@10", "paper R@50", "paper R@1k", "paper DL19", "paper DL20"], paper)))
        table7 = pd.DataFrame(rows7)
        T.write_table(table7, out, "table7", f"Table 7: every combination of assistants (percent; {len(seeds)} seed(s))")
    return table3, table7


# ---- notebook 06: student scale and cost --------------------------------------------------------

def _student_label(spec):
    if spec.get("kind") == "static":
        return f"static {spec.get('model', 'wordllama')}, {spec.get('dim') or 'full'}-d"
    return f"{spec.get('model')}, {spec.get('num_layers') or 'all'} layers"


def scale_and_cost(setup: Setup):
    """Table 6 (student sizes), Table 8 (training and data construction time against plain KD),
    Table 9 (index size, parameters, corpus encoding time)."""
    out = results_dir(setup.params)
    sizes = setup.params["study"]["student_sizes"] or [setup.params["models"]["student"]]
    columns = {"MRR@10": ("test", "MRR@10"), "R@50": ("test", "R@50"), "R@1k": ("test", "R@1000")}
    rows6, rows9 = [], []
    for spec in sizes:
        same_as_main = spec == setup.params["models"]["student"]
        # other sizes use the grid seeds (study.combination_seeds), like Table 7
        seeds = None if same_as_main else _seeds(setup, setup.params["study"].get("combination_seeds", 0))
        main = run_over_seeds(setup, "mta4dpr", seeds=seeds, student_spec=None if same_as_main else spec)
        plain = run_over_seeds(setup, "plain_kd", seeds=seeds, student_spec=None if same_as_main else spec)
        ours, base = _row_from_evaluations([r["final"] for r in main], columns), _row_from_evaluations([r["final"] for r in plain], columns)
        student = setup.new_student(0, spec)
        params_count = sum(p.numel() for p in student.parameters())
        row = {"student": _student_label(spec), "dim": student.dim, "#params (M)": params_count / 1e6, **ours}
        for name in columns:
            row[f"Δ {name} vs plain KD"] = ours[name] - base[name]
        rows6.append(row)
        started = time.perf_counter()
        vectors = student.encode(setup.collection.corpus.texts, max_length=setup.params["training"]["max_passage_length"])
        seconds = time.perf_counter() - started
        rows9.append({"student": _student_label(spec), "dim": student.dim, "index size (MB)": vectors.nbytes / 2**20,
                      "#params (M)": params_count / 1e6, "corpus encoding seconds": seconds,
                      "passages per second": len(setup.collection.corpus) / max(seconds, 1e-9)})
    for row in rows6:
        row["source"] = "ours"
    for label, mrr, r50, r1k in T.PAPER_TABLE6:
        rows6.append({"source": "paper (MS MARCO dev, SimLM-base student)", "student": label, "MRR@10": mrr, "R@50": r50, "R@1k": r1k})
    metric_columns = [c for name in columns for c in (name, f"{name} ±")] + [f"Δ {name} vs plain KD" for name in columns]
    table6 = pd.DataFrame(rows6).reindex(columns=["source", "student", "dim", "#params (M)", *metric_columns])
    T.write_table(table6, out, "table6", "Table 6: student sizes (percent; Δ = MTA4DPR minus plain KD; the main student over all "
                                         "seeds, other sizes over the grid seeds)")
    for row in rows9:
        row["source"] = "ours (CPU)"
    for label, index, count, seconds in T.PAPER_TABLE9:
        rows9.append({"source": "paper (8.8M passages, GPU, bs 512)", "student": label, "index size (MB)": float(index.rstrip("G")) * 1024,
                      "#params (M)": float(count.rstrip("M")), "corpus encoding seconds": seconds})
    table9 = pd.DataFrame(rows9)[["source", "student", "dim", "index size (MB)", "#params (M)", "corpus encoding seconds", "passages per second"]]
    T.write_table(table9, out, "table9", "Table 9: index size, parameters and corpus encoding time (timings depend on the machine)")

    rows8 = []
    for label, variant in [("MTA4DPR", "mta4dpr"), ("plain KD", "plain_kd"), ("teacher-only KD, same iterations", "no_assistants")]:
        results = run_over_seeds(setup, variant)
        training = [sum(h["training_seconds"] for h in r["history"]) for r in results]
        construction = [sum(h["construction_seconds"] for h in r["history"]) for r in results]
        selection = [sum(h["select_seconds"] for h in r["history"]) for r in results]
        row = {"method": label, "iterations": len(results[0]["history"])}
        row["training seconds"], row["training seconds ±"] = T.mean_std(training)
        row["data construction seconds"], row["data construction seconds ±"] = T.mean_std(construction)
        row["selection share of training (%)"] = 100 * float(np.sum(selection)) / max(float(np.sum(training)), 1e-9)
        paper = T.PAPER_TABLE8.get(label, (None, None))
        row["paper training hours"], row["paper construction hours"] = paper
        rows8.append(row)
    table8 = pd.DataFrame(rows8)
    T.write_table(table8, out, "table8", "Table 8: training and data construction time (seconds on this machine; timings vary)")
    return table6, table8, table9


# ---- notebook 07: summary ------------------------------------------------------------------------

def claims(setup: Setup):
    """Each claim of the paper, checked on this profile with mean ± std over seeds."""
    main = run_over_seeds(setup, "mta4dpr")
    metric = "nDCG@10"

    def values(results, pick):
        return [T.percent(pick(r)[metric]) for r in results]

    final = values(main, lambda r: r["final"]["test"])
    rows = []

    def add(claim, ours_values, other_values, other_label, higher_is_better=True):
        a, sa = T.mean_std(ours_values)
        b, sb = T.mean_std(other_values)
        diffs = [x - y for x, y in zip(ours_values, other_values)]
        d, sd = T.mean_std(diffs)
        holds = (d > 0) if higher_is_better else (d < 0)
        rows.append({"claim": claim, "ours": a, "ours ±": sa, "comparison": other_label, "other": b, "other ±": sb,
                     "difference": d, "difference ±": sd, "seeds where it holds": sum((x > 0) == higher_is_better for x in diffs),
                     "of seeds": len(diffs), "verdict": "confirmed" if holds and all((x > 0) == higher_is_better for x in diffs)
                     else ("mixed" if any((x > 0) == higher_is_better for x in diffs) else "not confirmed")})

    add("the student beats plain KD", final, values(run_over_seeds(setup, "plain_kd"), lambda r: r["final"]["test"]), "plain KD")
    for label, variant in [("removing assistants drops quality", "no_assistants"), ("removing fusion drops quality", "no_fusion")]:
        add(label, final, values(run_over_seeds(setup, variant), lambda r: r["final"]["test"]), variant)
    add("removing iterations drops quality", final, [T.percent(r["history"][0]["test"]["test"][metric]) for r in main], "iteration 1 only")
    if "random" in setup.params["study"]["selection_methods"]:
        add("KL selection beats random", final, values(run_over_seeds(setup, "selection_random", overrides={"selection": {"method": "random"}}),
                                                       lambda r: r["final"]["test"]), "random selection")
    for i in range(1, max(len(r["history"]) for r in main)):
        add(f"quality rises from iteration {i} to {i + 1}", [T.percent(r["history"][i]["test"]["test"][metric]) for r in main],
            [T.percent(r["history"][i - 1]["test"]["test"][metric]) for r in main], f"iteration {i}")
    fusion = fusion_closeness(setup)
    fused = fusion[fusion["members"] > 1]["KL(teacher ‖ assistant)"]
    originals = fusion[fusion["members"] == 1]["KL(teacher ‖ assistant)"]
    best_fused, best_original = float(fused.min()), float(originals.min())
    rows.append({"claim": "fused assistants sit closer to the teacher (min KL)", "ours": best_fused, "ours ±": float("nan"),
                 "comparison": "best original assistant", "other": best_original, "other ±": float("nan"),
                 "difference": best_fused - best_original, "difference ±": float("nan"), "seeds where it holds": None, "of seeds": None,
                 "verdict": "confirmed" if best_fused < best_original else "not confirmed"})
    rows.append({"claim": "fused assistants sit closer to the teacher (mean KL)", "ours": float(fused.mean()), "ours ±": float("nan"),
                 "comparison": "mean over original assistants", "other": float(originals.mean()), "other ±": float("nan"),
                 "difference": float(fused.mean() - originals.mean()), "difference ±": float("nan"), "seeds where it holds": None,
                 "of seeds": None, "verdict": "confirmed" if fused.mean() < originals.mean() else "not confirmed"})
    df = pd.DataFrame(rows)
    T.write_table(df, results_dir(setup.params), "claims", f"The paper's claims on this profile (test {metric}, percent; KL in nats)")
    return df


def write_manifest(params, timings: dict | None = None, extra: dict | None = None):
    import importlib.metadata as md

    versions = {}
    for package in ("torch", "transformers", "sentence-transformers", "faiss-gpu", "ir-measures", "bm25s", "model2vec", "wordllama",
                    "onnxruntime", "papermill", "nbval", "pandas", "numpy"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            versions[package] = None
    manifest = {"profile": params["profile"], "seeds": params["seeds"], "params": params, "versions": versions,
                "python": platform.python_version(), "machine": platform.machine(), "timings_seconds": timings or {}, **(extra or {})}
    path = results_dir(params) / "manifest.json"
    atomic_write_json(path, manifest)
    return manifest


def write_findings(setup: Setup, claims_table: pd.DataFrame) -> str:
    """``FINDINGS.md``: each claim of the paper, confirmed or not on this profile (generated)."""
    seeds = setup.params["seeds"]
    lines = [f"# Findings on the `{setup.params['profile']}` profile", "",
             f"Generated from `claims.csv` by the summary notebook; test nDCG@10 in percent, mean ± std over "
             f"{len(seeds)} seed(s) {seeds}. A claim is *confirmed* when it holds on every seed, *mixed* when on some.", ""]
    for row in claims_table.itertuples(index=False):
        ours = f"{row.ours:.2f}" + (f" ± {row[2]:.2f}" if not pd.isna(row[2]) else "")
        other = f"{row.other:.2f}" + (f" ± {row[5]:.2f}" if not pd.isna(row[5]) else "")
        diff = f"{row.difference:+.2f}" + (f" ± {row[7]:.2f}" if not pd.isna(row[7]) else "")
        held = f" (holds on {int(row[8])}/{int(row[9])} seeds)" if not pd.isna(row[9]) and row[9] else ""
        lines.append(f"- **{row.claim}**: {row.verdict}. Ours {ours} vs {row.comparison} {other}; difference {diff}{held}.")
    text = "\n".join(lines) + "\n"
    from .atomic import atomic_write_text

    atomic_write_text(results_dir(setup.params) / "FINDINGS.md", text)
    return text
