"""Every claim of the paper, tested on this profile with a paired 95% interval.

Each claim is a comparison of two systems on the same test queries and seeds
(:func:`statistics.compare`), traced to the table that shows it. The verdict rule is
in :mod:`statistics`: *confirmed* when the interval excludes 0 in the paper's direction,
*contradicted* when it excludes 0 the other way, *inconclusive* otherwise.

The per-seed, per-query metrics behind every comparison are written to
``per_query.csv.gz`` so anyone can recompute each ± and interval.
"""
from __future__ import annotations

import gzip
import itertools
import io

import numpy as np
import pandas as pd

from . import studies as S
from . import tables as T
from .atomic import atomic_write_bytes, atomic_write_text
from .statistics import Comparison, compare, verdict

METRIC = "nDCG@10"
# the paper's own overhead: (7.53 - 7.12) / 7.12 hours of training (Table 8)
PAPER_OVERHEAD = (7.53 - 7.12) / 7.12


def _row(claim, table, comparison_label, result: Comparison, scale=100.0, unit="nDCG@10 (%)"):
    return {"claim": claim, "table": table, "comparison": comparison_label, "metric": unit,
            "ours": scale * result.ours, "other": scale * result.other, "effect": scale * result.effect,
            "low": scale * result.low, "high": scale * result.high, "seed std": scale * result.seed_std,
            "seeds holding": result.seeds_holding, "seeds": result.seeds, "queries": result.queries, "verdict": result.verdict}


def _finals(results):
    return [r["final"] for r in results]


def _combine(verdicts):
    """A claim made of several comparisons (e.g. "KL beats every other method")."""
    if any(v == "contradicted" for v in verdicts):
        return "contradicted"
    return "confirmed" if verdicts and all(v == "confirmed" for v in verdicts) else "inconclusive"


def check_claims(setup) -> pd.DataFrame:
    """The claims table (``claims.csv``/``claims.md``) and ``per_query.csv.gz``."""
    m = lambda evaluations: S.per_query_matrix(setup, evaluations, METRIC)  # noqa: E731
    main = S.run_over_seeds(setup, "mta4dpr")
    final = _finals(main)
    no_assistant = _finals(S.run_over_seeds(setup, "no_assistants"))
    rows = []

    rows.append(_row("MTA4DPR beats no assistant (same iterations and steps)", "table1", S.NO_ASSISTANT, compare(m(final), m(no_assistant))))
    rows.append(_row("MTA4DPR beats teacher-only KD in one iteration of the same total steps", "table1", S.ONE_ITERATION_KD,
                     compare(m(final), m(_finals(S.run_over_seeds(setup, "one_iteration_kd"))))))
    for label, variant in S.ABLATIONS[1:]:
        rows.append(_row(f"removing {label.split(' (')[0][4:]} drops quality", "table3", label,
                         compare(m(final), m(_finals(S.run_over_seeds(setup, variant))))))

    selection_rows = []
    for method in setup.params["study"]["selection_methods"]:
        if method != "kl":
            selection_rows.append(_row(f"KL selection beats {method}", "table5", f"{method} selection",
                                       compare(m(final), m(_finals(S.selection_runs(setup, method))))))
    if selection_rows:
        rows.append({"claim": "KL is the best selection method (all of the below)", "table": "table5",
                     "verdict": _combine([r["verdict"] for r in selection_rows])})
        rows.extend(selection_rows)

    if setup.params["study"]["assistant_combinations"]:
        rows.extend(_combination_claims(setup, m))

    for i in range(1, max(len(r["history"]) for r in main)):
        rows.append(_row(f"quality rises from iteration {i} to {i + 1}", "table4", f"iteration {i}",
                         compare(m([r["history"][i]["test"] for r in main]), m([r["history"][i - 1]["test"] for r in main]))))

    rows.extend(_student_size_claims(setup, m))
    rows.append(_fusion_claim(setup))
    rows.append(_overhead_claim(setup, main))
    df = pd.DataFrame(rows)
    for column in ("seeds holding", "seeds", "queries", "steps"):
        if column in df:  # counts stay integers beside the rows that have none
            df[column] = df[column].map(lambda v: None if pd.isna(v) else int(v)).astype(object)
    T.write_table(df, S.results_dir(setup.params), "claims", f"The paper's claims on this profile (test {METRIC} in percent unless "
                  "the metric column says otherwise; 95% paired-bootstrap interval over test queries, seeds averaged per query)")
    write_per_query(setup)
    return df


def _combination_claims(setup, m):
    runs = S.combination_runs(setup)
    names = [a.name for a in setup.assistants]
    rows, singles = [], []
    for i, name in enumerate(names):
        if (i,) in runs:
            singles.append(_row(f"assistant {name} alone beats no assistant", "table7", "no assistant", compare(m(runs[(i,)]), m(runs[()]))))
    rows.append({"claim": "every single assistant beats no assistant (all of the below)", "table": "table7",
                 "verdict": _combine([r["verdict"] for r in singles])})
    rows.extend(singles)
    # more assistants: the mean over all subsets of size j + 1 against size j (per query and seed)
    sizes = sorted({len(s) for s in runs if s})
    for j, k in zip(sizes, sizes[1:]):
        bigger = np.mean([m(e) for s, e in runs.items() if len(s) == k], axis=0)
        smaller = np.mean([m(e) for s, e in runs.items() if len(s) == j], axis=0)
        rows.append(_row(f"more assistants help: {k} vs {j} (mean over subsets)", "table7", f"{j} assistant(s)", compare(bigger, smaller)))
    # better assistants: the single assistant best on the eval split against the worst
    quality = _eval_split_quality(setup)
    if len(singles) >= 2:
        best = max(range(len(names)), key=lambda i: quality[names[i]])
        worst = min(range(len(names)), key=lambda i: quality[names[i]])
        rows.append(_row(f"better assistants help: {names[best]} alone vs {names[worst]} alone (ranked on training queries)", "table7",
                         f"{names[worst]} alone", compare(m(runs[(best,)]), m(runs[(worst,)]))))
    return rows


def _eval_split_quality(setup):
    """Each assistant's `evaluation.metric` on the training queries (never the test set)."""
    metric = setup.params["evaluation"]["metric"]
    return {a.name: setup.evaluate(a, setup.train, names=(metric,))[metric] for a in setup.assistants}


def _student_size_claims(setup, m):
    rows = []
    for spec in setup.params["study"]["student_sizes"]:
        ours, base = S.student_size_runs(setup, spec)
        rows.append(_row(f"the gain holds for the {S._student_label(spec)} student", "table6", "no assistant, same student",
                         compare(m(ours), m(base))))
    return rows


def _fusion_claim(setup):
    """The best fused assistant against the best original one, per training query (lower KL is closer).
    The mean-KL version is no test: KL is convex in its second argument, so a mean of distributions is
    never further from the teacher than the mean of its members' divergences."""
    names, members, per_query = S.fusion_kl_per_query(setup)
    members = np.asarray(members)
    if (members > 1).sum() == 0:
        return {"claim": "fused assistants sit closer to the teacher (min KL)", "table": "fusion_kl", "verdict": "inconclusive"}
    mean = per_query.mean(1)
    best_fused = int(np.where(members > 1, mean, np.inf).argmin())
    best_original = int(np.where(members == 1, mean, np.inf).argmin())
    result = compare(per_query[best_fused][None], per_query[best_original][None], higher_is_better=False)
    return _row(f"fused assistants sit closer to the teacher: best fused ({names[best_fused]}) vs best original "
                f"({names[best_original]})", "fusion_kl", names[best_original], result, scale=1.0, unit="KL (nats, training queries)")


def _overhead_claim(setup, main):
    """Selection's share of training time per step, against the paper's own overhead (Table 8)."""
    shares = np.asarray([s["select_seconds"] / max(s["step_seconds"], 1e-12) for r in main for s in r["selections"]])
    if len(shares) == 0:
        return {"claim": "selection overhead is small", "table": "table8", "verdict": "inconclusive"}
    from .statistics import paired_interval

    low, high = paired_interval(shares)
    result = Comparison(ours=float(shares.mean()), other=PAPER_OVERHEAD, effect=float(shares.mean()) - PAPER_OVERHEAD,
                        low=low - PAPER_OVERHEAD, high=high - PAPER_OVERHEAD, seed_std=float("nan"), seeds_holding=0,
                        seeds=len(main), queries=len(shares), verdict=verdict(low - PAPER_OVERHEAD, high - PAPER_OVERHEAD, False))
    row = _row("selection overhead is small: its share of step time is below the paper's MTA4DPR overhead (5.8%)", "table8",
               "paper overhead", result, unit="share of step time (%)")
    row["queries"] = None
    row["steps"] = len(shares)
    return row


def write_per_query(setup) -> pd.DataFrame:
    """``per_query.csv.gz``: every run behind a table, per seed, iteration and test query."""
    records = []

    def add(variant, results, iteration_of=lambda r: len(r["history"]), pick=lambda r: r["final"]):
        for r in results:
            evaluation = pick(r)
            for block, metrics in (evaluation or {}).get("per_query", {}).items():
                for metric in ("nDCG@10", "MRR@10", "R@50", "R@1000", "R@100"):
                    for query, value in metrics.get(metric, {}).items():
                        records.append((variant, r["seed"], iteration_of(r), block, query, metric, value))

    main = S.run_over_seeds(setup, "mta4dpr")
    add("student before training", main, lambda r: 0, lambda r: r["initial"])
    for i in range(max(len(r["history"]) for r in main)):
        add("mta4dpr", main, lambda r, i=i: i + 1, lambda r, i=i: r["history"][i].get("test"))
    for variant in ("no_assistants", "one_iteration_kd", "no_fusion", "no_iterations"):
        add(variant, S.run_over_seeds(setup, variant))
    for method in setup.params["study"]["selection_methods"]:
        if method != "kl":
            add(f"selection_{method}", S.selection_runs(setup, method))
    if setup.params["study"]["assistant_combinations"]:
        names = [a.name for a in setup.assistants]
        seeds = S._seeds(setup, setup.params["study"].get("combination_seeds", 0))
        for size in range(1, len(names)):
            for subset in itertools.combinations(range(len(names)), size):
                add("assistants " + "&".join(names[i] for i in subset),
                    S.run_over_seeds(setup, f"assistants_{'_'.join(map(str, subset))}", overrides={}, seeds=seeds, assistant_subset=list(subset)))
    for spec in setup.params["study"]["student_sizes"]:
        if spec != setup.params["models"]["student"]:
            ours, base = (S.run_over_seeds(setup, v, seeds=S._seeds(setup, setup.params["study"].get("combination_seeds", 0)), student_spec=spec)
                          for v in ("mta4dpr", "no_assistants"))
            add(f"mta4dpr, {S._student_label(spec)}", ours)
            add(f"no_assistants, {S._student_label(spec)}", base)
    df = pd.DataFrame(records, columns=["run", "seed", "iteration", "test set", "query_id", "metric", "value"])
    df = df.drop_duplicates().sort_values(["run", "seed", "iteration", "test set", "metric", "query_id"]).reset_index(drop=True)
    buffer = io.StringIO()
    df.to_csv(buffer, index=False, float_format="%.6g")
    # gzip with a fixed mtime: the file stays byte-identical run to run (pandas reads it as it is)
    atomic_write_bytes(S.results_dir(setup.params) / "per_query.csv.gz", gzip.compress(buffer.getvalue().encode(), mtime=0))
    return df


def _fmt(value, digits=2):
    return "–" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.{digits}f}"


def write_findings(setup, claims_table: pd.DataFrame) -> str:
    """``FINDINGS.md``: every claim with its verdict and 95% interval (generated)."""
    seeds = setup.params["seeds"]
    grid = S._seeds(setup, setup.params["study"].get("combination_seeds", 0))
    counts = claims_table["verdict"].value_counts().to_dict()
    lines = [f"# Findings on the `{setup.params['profile']}` profile", "",
             f"Generated from `claims.csv` by the summary notebook. Test nDCG@10 in percent unless stated; main comparisons "
             f"over {len(seeds)} seeds {seeds}, Table 6/7 grids over {len(grid)} seed(s) {grid}. Each interval is a 95% BCa "
             "bootstrap (scipy.stats.bootstrap) over test queries of the per-query difference averaged over seeds, paired by seed "
             "and query; a claim is **confirmed** when it excludes 0 in the paper's direction, **contradicted** when it excludes 0 "
             "the other way, **inconclusive** otherwise. Every student variant trains the same optimiser steps; the per-query "
             "values are in `per_query.csv.gz`.", "",
             "Summary: " + ", ".join(f"{counts.get(v, 0)} {v}" for v in ("confirmed", "contradicted", "inconclusive")) + ".", ""]
    for row in claims_table.to_dict("records"):
        if pd.isna(row.get("effect")):
            lines.append(f"- **{row['claim']}** ({row['table']}): **{row['verdict']}**.")
            continue
        seeds_note = f"; holds on {int(row['seeds holding'])}/{int(row['seeds'])} seeds" if row["table"] != "fusion_kl" and \
            row["table"] != "table8" else ""
        lines.append(f"- **{row['claim']}** ({row['table']}): **{row['verdict']}**. {row['metric']}: ours {_fmt(row['ours'])} vs "
                     f"{row['comparison']} {_fmt(row['other'])}; difference {_fmt(row['effect'])} "
                     f"[{_fmt(row['low'])}, {_fmt(row['high'])}]{seeds_note}.")
    lines += ["", "Why mean KL is no test of fusion: KL(p ‖ ·) is convex, so KL(p ‖ mean of q_i) ≤ mean of KL(p ‖ q_i) for any "
              "distributions; a fused assistant is never further from the teacher than its members are on average. Only the best "
              "fused assistant against the best original one can fail, so only that is checked."]
    text = "\n".join(lines) + "\n"
    atomic_write_text(S.results_dir(setup.params) / "FINDINGS.md", text)
    return text
