"""Every claim of the paper, tested on this profile: one declared family, Holm's correction, the paper's effect beside ours.

The claims are data: ``claims.yaml`` declares each one (its id and text, the runs it compares by run id, the table
that shows it, the paper's rows, whether it is a composite) or the family it is built from; :func:`build_specs`
reads it and nothing else defines a claim. Each claim is a comparison of two systems on the same test queries and
seeds, with a stable id
(``mta4dpr-vs-no-assistant``, ``kl-vs-random``, ``single-assistant-<name>``, ...) and the table that
shows it. A comparison that several of the paper's tables show (MTA4DPR against no assistant is
Table 1, Table 3's "w/o assistants" and Table 6's main student) is one claim, counted once, with the
other tables listed in ``also in``.

The rule (:mod:`statistics`):

* every comparison gets a 95% interval and a p-value from a t interval over seeds and test queries
  (Owen's variance of a crossed mean, Satterthwaite's df at the seed variance's upper bound; its
  coverage is simulated at the profiles' seed spread);
* **one family per profile**: the profile's quality claims on its primary metric
  (``study.primary_metric``, declared in the profile before any run; nDCG@10 by default). A claim
  is *confirmed* or *contradicted* only when its Holm-adjusted p over that family is below 0.05
  (in the paper's direction, or the other one); otherwise *inconclusive*;
* claims that are linear combinations of others (``Spec.composite``, checked on the data by
  :func:`linear_dependencies`) stay in the family (Holm holds under any dependence) and are marked,
  so the independent evidence is counted once;
* summary claims ("KL beats every other selection method", "every single assistant helps") are
  summaries of their parts' verdicts: not in the family, not in the counts;
* the other paper metrics (MRR@10, R@50, R@1k) are a secondary table (``claims_secondary.csv``),
  each metric its own Holm family over the same comparisons, with the disagreements named;
* the fused assistants' closeness to the teacher (KL on training queries) is a family of its own;
  the selection overhead is timing, not quality, and keeps its own interval rule.

Beside each claim: the paper's Δ and the table it comes from (the claim's ``paper`` rows in ``claims.yaml``, their
numbers in ``paper_numbers.yaml``), the effect
ratio and ΔRI as repro_eval defines them (Breuer et al., SIGIR 2020) on the paper's own metric (our
MRR@10 against its MRR@10, our nDCG@10 against its TREC DL nDCG@10), and the dataset mismatch. The per-seed, per-query metrics behind every comparison are written to
``per_query.csv.gz`` so anyone can recompute each interval.
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from ..config.ids import slug, student_id, student_label
from ..experiments.catalog import STAGE_TABLES, grid_seeds, runs_for
from ..experiments.runs import read_run
from ..store.atomic import atomic_write_bytes, atomic_write_text
from . import paper as P
from . import studies as S
from . import tables as R  # row ids (tables.py)
from . import tables as T
from .statistics import (
    ALPHA,
    METHOD,
    Comparison,
    compare_many,
    delta_relative_improvement,
    effect_ratio,
    family_verdicts,
    paired_interval,
    verdict,
)

METRIC = "nDCG@10"  # the default primary metric (study.primary_metric)
PAPER_METRICS = ("nDCG@10", "MRR@10", "R@50", "R@1000")  # the primary one and the secondary table
METRIC_LABELS = {"R@1000": "R@1k"}
# the paper's own overhead: (7.53 - 7.12) / 7.12 hours of training (Table 8)
PAPER_OVERHEAD = (
    P.value("table8", R.MTA4DPR, "training hours") - P.value("table8", R.NO_ASSISTANTS, "training hours")
) / P.value("table8", R.NO_ASSISTANTS, "training hours")
QUALITY = "quality"
COMPOSITE = "composite (summary of its parts; not counted)"
FUSION_FAMILY = "fusion KL (a family of its own)"
TIMING = "timing (not in the quality family)"
# the comparison's effect, its interval, its p before and after Holm, and the verdict
VERDICT_COLUMNS = ["effect", "low", "high", "p", "p (Holm)", "verdict"]
CLAIM_COLUMNS = [
    "id",
    "claim",
    "table",
    "also in",
    "paper Δ",
    "paper table",
    *VERDICT_COLUMNS,
    "combination of",
    "ours MRR@10 Δ",
    "effect ratio (MRR@10)",
    "ΔRI (MRR@10)",
    "paper DL nDCG@10 Δ",
    "effect ratio (nDCG@10 vs DL)",
    "ΔRI (nDCG@10 vs DL)",
    "seeds holding",
    "seeds",
    "seed std",
    "per-seed effect",
    "family",
    "comparison",
    "comparison id",
    "metric",
    "ours",
    "other",
    "queries",
    "df",
    "effect (unrounded)",
    "paper note",
    "steps",
]
SECONDARY_COLUMNS = [
    "id",
    "claim",
    "metric",
    *VERDICT_COLUMNS,
    "primary verdict",
    "agrees",
    "paper Δ",
    "effect ratio",
    "ΔRI",
    "seeds holding",
    "seeds",
]


@dataclass
class Spec:
    """One distinct comparison: ``systems(metric)`` gives the (ours, other) per-query matrices [seeds, queries]."""

    id: str
    claim: str
    table: str
    comparison: str
    systems: Callable[[str], tuple]
    also: list = field(default_factory=list)
    paper: dict | None = (
        None  # the paper's side: {table, advanced, baseline} rows, or {values: fn(column) -> (adv, base)}, or {note}
    )
    comparison_id: str = ""  # the row id (tables.py) of what ours is compared against, where it is one table row
    # declared a linear combination of other claims of the family (checked on the data: linear_dependencies)
    composite: bool = False
    note: str = ""  # shown beside the claim (e.g. the ordering behind "more assistants")


def _label(metric):
    return METRIC_LABELS.get(metric, metric)


def _finals(results):
    return [r.final for r in results]


def _seeds_text(n):
    return f"{n} seed" if n == 1 else f"{n} seeds"


P_FLOOR = 0.0001
# the paper prints one decimal: a paper Δ below twice its rounding gives no effect ratio or ΔRI
PAPER_ROUNDING = 0.1


def _p_text(p):
    """Four decimals, never scientific notation: a p below 0.0001 reads "< 0.0001" (an analytic t p has no
    floor; Holm's multiplier is already in an adjusted p)."""
    if p is None or (isinstance(p, float) and np.isnan(p)):
        return None
    return f"{p:.4f}" if p >= P_FLOOR else f"< {P_FLOOR}"


def _combine(verdicts):
    """A claim made of several comparisons (e.g. "KL beats every other method")."""
    verdicts = list(verdicts)
    if any(v == "contradicted" for v in verdicts):
        return "contradicted"
    if verdicts and all(v == "confirmed" for v in verdicts):
        return "confirmed"
    return "inconclusive"


def primary_metric(setup) -> str:
    return setup.config.study.primary_metric


# ---- the comparisons ------------------------------------------------------------------------------------


def run_index(setup) -> dict:
    """``{run id: [RunSpec per seed]}`` of every run the catalog lists for the profile's tables (seeds in catalog
    order): the runs a claim of ``claims.yaml`` may name."""
    index = {}
    for table in STAGE_TABLES["summary"]:
        for spec in runs_for(setup, table):
            specs = index.setdefault(spec.run_id, [])
            if spec not in specs:
                specs.append(spec)
    return index


class _Runs:
    """The per-query matrices of the run references of ``claims.yaml``: ``<run id>`` (each seed's last iteration),
    ``<run id>@iteration <n>``, or ``a - b`` (a difference of two references)."""

    def __init__(self, setup):
        self.setup, self.index, self.read = setup, run_index(setup), {}

    def results(self, run_id: str) -> list:
        if run_id not in self.read:
            if run_id not in self.index:
                raise KeyError(
                    f"{P.CLAIMS_PATH.name}: no run {run_id!r} in the run catalog of profile "
                    f"{self.setup.params['profile']!r} (experiments/catalog.py lists {sorted(self.index)})"
                )
            self.read[run_id] = [read_run(self.setup, spec) for spec in self.index[run_id]]
        return self.read[run_id]

    def evaluations(self, reference: str) -> list:
        run_id, _, iteration = reference.partition("@iteration ")
        results = self.results(run_id)
        return [r.history[int(iteration) - 1].test for r in results] if iteration else [r.final for r in results]

    def matrix(self, reference: str, metric: str) -> np.ndarray:
        first, *rest = reference.split(" - ")
        out = S.per_query_matrix(self.setup, self.evaluations(first), metric)
        for other in rest:
            out = out - S.per_query_matrix(self.setup, self.evaluations(other), metric)
        return out

    def matrix_of_evaluations(self, evaluations: list, metric: str) -> np.ndarray:
        return S.per_query_matrix(self.setup, evaluations, metric)

    def systems(self, advanced: str, baseline: str) -> Callable[[str], tuple]:
        return lambda metric: (self.matrix(advanced, metric), self.matrix(baseline, metric))


def _spec(entry: dict, runs: _Runs, fields: dict | None = None) -> Spec:
    """A claim of ``claims.yaml`` (a family member's with its placeholders filled)."""
    entry = P.fill({k: v for k, v in entry.items() if k not in ("family", "summary", "paper_notes")}, fields or {})
    paper = P.claim_source(entry["id"])
    return Spec(
        entry["id"],
        entry["text"],
        entry["table"],
        entry["comparison"],
        runs.systems(entry["advanced"], entry["baseline"]),
        also=list(entry.get("also", [])),
        paper=paper if paper is not None else {},
        comparison_id=entry.get("comparison_id", ""),
        composite=bool(entry.get("composite", False)),
    )


def _ablation_members(setup, runs, entry) -> list[dict]:
    """One member per ablation of the profile (``study.ablations``), without assistants aside (the headline)."""
    return [
        {
            "part": label.split(" (")[0][4:],
            "detail": " (1 iteration, same total steps)" if variant == "no_iterations" else "",
            "variant": variant,
            "label": label,
        }
        for label, variant in S.ablations(setup)[1:]
        if variant != "no_assistants"
    ]


def _selection_members(setup, runs, entry) -> list[dict]:
    return [{"method": m} for m in setup.config.study.selection_methods if m != "kl"]


def _iteration_members(setup, runs, entry) -> list[dict]:
    count = max(len(r.history) for r in runs.results("mta4dpr"))
    return [{"before": i, "after": i + 1} for i in range(1, count)]


def _student_members(setup, runs, entry) -> list[dict]:
    sizes = setup.config.study.student_sizes
    return [
        {"student": student_id(spec), "label": student_label(spec)}
        for spec in sizes
        if spec != setup.config.models.student
    ]


FAMILIES = {
    "ablations": _ablation_members,
    "selection": _selection_members,
    "iterations": _iteration_members,
    "student_sizes": _student_members,
}


def _selection_summary(entry: dict, members: list[dict], specs: list[Spec]) -> dict:
    """``kl-best-selection``: KL against every other method run here; incomplete where the paper compares more."""
    methods = [member["method"] for member in members]
    missing = [
        P.label("table5", x) for x in P.table("table5") if x != R.MTA4DPR and P.label("table5", x) not in methods
    ]
    text = P.fill(entry["summary"]["text"], {"methods": ", ".join(methods)})
    if missing:
        text += (
            f"; the paper also compares {', '.join(missing)}, not run here, so this cannot confirm the paper's claim"
        )
    return {
        "id": entry["summary"]["id"],
        "claim": text,
        "table": entry["table"],
        "parts": [s.id for s in specs],
        "incomplete": bool(missing),
    }


def build_specs(setup):
    """(specs of the distinct comparisons, composite claims) for this profile, as ``claims.yaml`` declares them."""
    runs = _Runs(setup)
    specs, composites, by_id = [], [], {}
    for entry in P.load_claims()["claims"]:
        family = entry.get("family")
        if family is None:
            if entry.get("requires") and entry["requires"] not in setup.config.study.ablations:
                continue
            specs.append(_spec(entry, runs))
        elif family == "assistant_combinations":
            if setup.config.study.assistant_combinations:
                combination_specs, combination_composites = _combination_specs(setup, runs.matrix_of_evaluations)
                specs.extend(combination_specs)
                composites.extend(combination_composites)
            continue
        else:
            members = FAMILIES[family](setup, runs, entry)
            built = [_spec(entry, runs, member) for member in members]
            specs.extend(built)
            if entry.get("summary") and built:
                composites.append(_selection_summary(entry, members, built))
            joins = entry.get("main_student_joins")
            if joins and setup.config.models.student in setup.config.study.student_sizes:
                by_id[joins].also.append(f"table6 ({student_label(setup.params['models']['student'])})")
        by_id.update((spec.id, spec) for spec in specs)
    return specs, composites


def _table7_mean(subsets, column):
    values = [P.value("table7", R.letters_id(s), column) for s in subsets]
    return None if not values or any(v is None for v in values) else float(np.mean(values))


def _combination_specs(setup, m):
    runs = S.combination_runs(setup)
    names = [a.name for a in setup.assistants]
    letters = S._paper_letters(setup)
    known = [letter in P.letters().values() for letter in letters]
    specs, singles = [], []
    for i, name in enumerate(names):
        if (i,) in runs:
            source = (
                {"table": "table7", "advanced": R.letters_id([letters[i]]), "baseline": R.letters_id([])}
                if known[i]
                else {"note": f"{name} has no paper analogue (study.paper_analogs)"}
            )
            singles.append(
                Spec(
                    f"single-assistant-{slug(name)}",
                    f"assistant {name} alone beats no assistant",
                    "table7",
                    "no assistant",
                    lambda metric, i=i: (m(runs[(i,)], metric), m(runs[()], metric)),
                    paper=source,
                    comparison_id=R.NO_ASSISTANTS,
                )
            )
    specs.extend(singles)
    composites = (
        [
            {
                "id": "every-single-assistant",
                "claim": "every single assistant beats no assistant",
                "table": "table7",
                "parts": [s.id for s in singles],
                "incomplete": False,
            }
        ]
        if singles
        else []
    )
    # more assistants: the mean over all subsets of size j + 1 against size j (per query and seed)
    sizes = sorted({len(s) for s in runs if s})
    for j, k in zip(sizes, sizes[1:], strict=False):
        big = [s for s in runs if len(s) == k]
        small = [s for s in runs if len(s) == j]
        if all(known):
            source = {
                "values": lambda column, big=big, small=small: (
                    _table7_mean([[letters[i] for i in s] for s in big], column),
                    _table7_mean([[letters[i] for i in s] for s in small], column),
                ),
                "table": "table7",
                "rows": f"mean of the {k}-assistant rows − mean of the {j}-assistant rows of {''.join(letters)}",
            }
        else:
            source = {"note": "an assistant has no paper analogue"}
        specs.append(
            Spec(
                f"more-assistants-{k}-vs-{j}",
                f"more assistants help: {k} vs {j} (mean over subsets)",
                "table7",
                f"{j} assistant(s)",
                lambda metric, big=big, small=small: (
                    np.mean([m(runs[s], metric) for s in big], axis=0),
                    np.mean([m(runs[s], metric) for s in small], axis=0),
                ),
                paper=source,
                composite=True,
                note=_ordering_note(runs, m, setup),
            )
        )
    # better assistants: the single assistant best on the training queries against the worst
    if len(singles) >= 2:
        quality = _eval_split_quality(setup)
        best = max(range(len(names)), key=lambda i: quality[names[i]])
        worst = min(range(len(names)), key=lambda i: quality[names[i]])
        source = (
            {"table": "table7", "advanced": R.letters_id([letters[best]]), "baseline": R.letters_id([letters[worst]])}
            if known[best] and known[worst]
            else {"note": "an assistant has no paper analogue"}
        )
        specs.append(
            Spec(
                "better-assistants",
                f"better assistants help: {names[best]} alone vs {names[worst]} alone (ranked on training queries)",
                "table7",
                f"{names[worst]} alone",
                lambda metric: (m(runs[(best,)], metric), m(runs[(worst,)], metric)),
                paper=source,
                comparison_id=S.subset_variant((worst,)),
                composite=True,
            )
        )
    return specs, composites


def _ordering_note(runs, m, setup) -> str:
    """The mean score by number of assistants (0 = no assistant), best first: "more assistants" compares two
    adjacent sizes, and this says where none sits beside them."""
    metric = primary_metric(setup)
    by_size = {}
    for subset, evaluations in runs.items():
        by_size.setdefault(len(subset), []).append(100 * float(np.mean(m(evaluations, metric))))
    means = {size: float(np.mean(values)) for size, values in by_size.items()}
    order = sorted(means, key=lambda size: -means[size])
    words = {0: "none"}
    return f"{_label(metric)} by number of assistants: " + " > ".join(
        f"{words.get(size, size)} {means[size]:.2f}" for size in order
    )


def linear_dependencies(specs, matrices, tolerance: float = 1e-9) -> dict:
    """``{claim id: {other claim id: coefficient}}`` for each spec declared ``composite`` whose per-(seed, query)
    differences are a linear combination of the non-composite claims' with the same shape (least squares, relative
    residual below ``tolerance``). A declared composite that is no such combination on this profile's data (e.g. its
    grid has fewer seeds) is left out: it is independent evidence here.

    >>> import types
    >>> a, b = np.arange(6.0).reshape(2, 3), np.ones((2, 3))
    >>> specs = [types.SimpleNamespace(id=i, composite=c) for i, c in (("a", False), ("b", False), ("a+b", True))]
    >>> linear_dependencies(specs, [a, b, a + b])
    {'a+b': {'a': 1.0, 'b': 1.0}}
    """
    out = {}
    for spec, d in zip(specs, matrices, strict=True):
        if not spec.composite:
            continue
        basis = [(s.id, x) for s, x in zip(specs, matrices, strict=True) if not s.composite and x.shape == d.shape]
        if not basis:
            continue
        matrix = np.stack([x.ravel() for _, x in basis], axis=1)
        coefficients, *_ = np.linalg.lstsq(matrix, d.ravel(), rcond=None)
        residual = np.linalg.norm(matrix @ coefficients - d.ravel())
        if residual <= tolerance * max(1.0, float(np.linalg.norm(d))):
            out[spec.id] = {
                i: round(float(c), 6) for (i, _), c in zip(basis, coefficients, strict=True) if abs(c) > 1e-6
            }
    return out


def _composite_text(relation: dict) -> str:
    terms = []
    for claim_id, coefficient in relation.items():
        sign = "−" if coefficient < 0 else "+"
        size = abs(coefficient)
        factor = "" if abs(size - 1) < 1e-6 else f"{size:g}·"
        terms.append(f"{sign} {factor}{claim_id}")
    text = " ".join(terms)
    return text[2:] if text.startswith("+ ") else text


def _eval_split_quality(setup):
    """Each assistant's `evaluation.metric` on the training queries (never the test set)."""
    metric = setup.config.evaluation.metric
    return {a.name: setup.evaluate(a, setup.train, names=(metric,))[metric] for a in setup.assistants}


# ---- the paper's side ------------------------------------------------------------------------------------


def paper_side(spec: Spec, metric: str, test: str) -> dict:
    """The paper's Δ for ``spec`` against our ``metric`` with its source, and the mismatch note."""
    column = P.paper_column(metric)
    source = spec.paper if spec.paper is not None else P.claim_source(spec.id)
    if source is not None and "values" in source:
        advanced, baseline = source["values"](column)
        out = {
            "delta": None if advanced is None or baseline is None else round(advanced - baseline, 6),
            "advanced": advanced,
            "baseline": baseline,
            "table": source["table"],
            "rows": source["rows"],
            "column": column,
            "note": None,
        }
    else:
        out = P.claim_delta(spec.id, metric, source)
    notes = [out["note"]] if out["note"] else []
    if out["delta"] is not None:
        dataset = P.load()["primary_dataset"]
        notes.append(
            f"metric mismatch: the paper's {column} on {dataset}, ours {_label(metric)} on {test}"
            if column != metric
            else f"dataset mismatch: the paper's {dataset}, ours {test}"
        )
    elif not notes:
        notes.append("no paper Δ")
    out["note"] = "; ".join(notes)
    out["where"] = f"{out['table']}: {out['rows']}, {column}" if out["delta"] is not None else None
    return out


def _ratio_and_ri(paper: dict, effect: float, ours: float, other: float) -> tuple[float, float]:
    """repro_eval's effect ratio and ΔRI of our effect against the paper's Δ in the same metric; both nan where the
    paper's Δ is below twice its rounding (a ratio to a rounded 0.1 means nothing)."""
    delta = paper.get("delta")
    if delta is None or abs(delta) < 2 * PAPER_ROUNDING:
        return float("nan"), float("nan")
    ri = delta_relative_improvement(paper["advanced"], paper["baseline"], ours, other)
    return effect_ratio(effect, delta), ri


def paper_dl_side(spec: Spec) -> dict:
    """The paper's TREC DL nDCG@10 Δ for ``spec`` (the mean over DL 2019 and 2020 where the paper gives both):
    ``{delta, advanced, baseline}``, None where the paper has no DL number for it. The one paper metric that is
    also ours: set against our nDCG@10."""
    source = spec.paper if spec.paper is not None else P.claim_source(spec.id)
    empty = {"delta": None, "advanced": None, "baseline": None}
    if source is None:
        return empty
    values = []
    for column in P.DL_COLUMNS:
        if "values" in source:
            advanced, baseline = source["values"](column)
        elif source.get("table") is not None:
            advanced, baseline = P.dl_values(source["table"], source["advanced"], source["baseline"], column)
        else:
            return empty
        if advanced is not None and baseline is not None:
            values.append((advanced, baseline))
    if not values:
        return empty
    advanced, baseline = (float(np.mean(side)) for side in zip(*values, strict=True))
    return {"delta": round(advanced - baseline, 6), "advanced": advanced, "baseline": baseline}


def _row(spec: Spec, result: Comparison, metric: str, test: str, family: str, mrr: Comparison, relation=None):
    paper = paper_side(spec, metric, test)
    paper_mrr = paper_side(spec, "MRR@10", test)
    paper_dl = paper_dl_side(spec)
    scale = 100.0
    ratio_mrr, ri_mrr = _ratio_and_ri(paper_mrr, scale * mrr.effect, scale * mrr.ours, scale * mrr.other)
    ratio_dl, ri_dl = (
        _ratio_and_ri(paper_dl, scale * result.effect, scale * result.ours, scale * result.other)
        if metric == "nDCG@10"
        else (float("nan"), float("nan"))
    )
    note = "; ".join(x for x in (paper["note"], spec.note) if x)
    return {
        "id": spec.id,
        "claim": spec.claim,
        "table": spec.table,
        "also in": "; ".join(spec.also) or None,
        "paper Δ": paper["delta"],
        "paper table": paper["where"],
        "effect": scale * result.effect,
        "low": scale * result.low,
        "high": scale * result.high,
        "p": _p_text(result.p),
        "p (Holm)": _p_text(result.p_holm),
        "verdict": result.verdict,
        "combination of": _composite_text(relation) if relation else None,
        "ours MRR@10 Δ": scale * mrr.effect,
        "effect ratio (MRR@10)": ratio_mrr,
        "ΔRI (MRR@10)": _ri_text(ri_mrr),
        "paper DL nDCG@10 Δ": paper_dl["delta"],
        "effect ratio (nDCG@10 vs DL)": ratio_dl,
        "ΔRI (nDCG@10 vs DL)": _ri_text(ri_dl),
        "seeds holding": result.seeds_holding,
        "seeds": result.seeds,
        "seed std": scale * result.seed_std,
        "per-seed effect": ", ".join(f"{scale * x:+.2f}" for x in result.per_seed),
        "family": family,
        "comparison": spec.comparison,
        "comparison id": spec.comparison_id or None,
        "metric": f"{_label(metric)} (%)",
        "ours": scale * result.ours,
        "other": scale * result.other,
        "queries": result.queries,
        "df": f"{result.df:.1f}",
        "effect (unrounded)": f"{scale * result.effect:.6f}",
        "paper note": note,
    }


def _ri_text(value):
    return None if np.isnan(value) else f"{value:+.3f}"


# ---- the tables -------------------------------------------------------------------------------------------


def check_claims(setup) -> pd.DataFrame:
    """The claims table (``claims.csv``/``claims.md``), the secondary-metric table (``claims_secondary.csv``/``.md``)
    and ``per_query.csv.gz``; the secondary table is also in the returned frame's ``attrs["secondary"]``."""
    primary = primary_metric(setup)
    metrics = [primary] + [x for x in PAPER_METRICS if x != primary]
    test = setup.config.data.test
    specs, composites = build_specs(setup)
    fusion = _fusion_pair(setup)

    pairs = [spec.systems(metric) for metric in metrics for spec in specs]
    flags = [True] * len(pairs)
    if fusion is not None:
        pairs.append(fusion[1])
        flags.append(False)  # lower KL is closer
    results = compare_many(pairs, flags)
    by_metric = {
        metric: family_verdicts(results[i * len(specs) : (i + 1) * len(specs)]) for i, metric in enumerate(metrics)
    }
    differences = [np.atleast_2d(ours - other) for ours, other in pairs[: len(specs)]]
    relations = linear_dependencies(specs, differences)
    mrr = by_metric.get("MRR@10", by_metric[primary])
    rows = [
        _row(spec, result, primary, test, QUALITY, mrr_result, relations.get(spec.id))
        for spec, result, mrr_result in zip(specs, by_metric[primary], mrr, strict=True)
    ]
    verdicts = {row["id"]: row["verdict"] for row in rows}
    for composite in composites:
        parts = composite["parts"]
        combined = _combine(verdicts[p] for p in parts)
        if composite["incomplete"] and combined == "confirmed":
            combined = "inconclusive"
        rows.append(
            {
                "id": composite["id"],
                "claim": composite["claim"] + f" (of: {', '.join(parts)})",
                "table": composite["table"],
                "verdict": combined,
                "family": COMPOSITE,
                "paper note": "a summary of its parts",
            }
        )
    if fusion is not None:
        rows.append(_fusion_row(fusion[0], results[-1]))
    else:
        rows.append(
            {
                "id": "fusion-closer-to-teacher",
                "claim": "fused assistants sit closer to the teacher (min KL)",
                "table": "fusion_kl",
                "verdict": "inconclusive",
                "family": FUSION_FAMILY,
                "paper note": "no fused assistant in this profile",
            }
        )
    rows.append(_overhead_claim(setup, S.run_over_seeds(setup, "mta4dpr")))
    df = pd.DataFrame(rows).reindex(columns=CLAIM_COLUMNS)
    df = _integer_columns(df, ("seeds holding", "seeds", "queries", "steps"))
    out = S.results_dir(setup.params)
    n = len(specs)
    T.write_table(
        df,
        out,
        "claims",
        f"The paper's claims on this profile: {n} comparisons on test {_label(primary)} (percent; effect = our Δ) form one "
        f"family, {n - len(relations)} of them linearly independent ('combination of': the claims each of the rest is a linear combination of). 95% "
        f"interval and p: {METHOD}; verdict from Holm's adjusted p over the family (< {ALPHA}). Paper Δ: the paper's "
        "MRR@10 on MS MARCO dev. Effect ratio and ΔRI as repro_eval defines them, each on the paper's own metric: our "
        "MRR@10 against its MRR@10, our nDCG@10 against its TREC DL nDCG@10 (mean of 2019 and 2020); blank where the "
        f"paper's Δ is below {2 * PAPER_ROUNDING:.1f}, twice its rounding",
    )

    secondary = []
    for metric in metrics[1:]:
        for spec, result in zip(specs, by_metric[metric], strict=True):
            paper = paper_side(spec, metric, test)
            # effect ratio and ΔRI only where the paper's column is this very metric
            same = P.paper_column(metric) == metric
            ratio, ri = (
                _ratio_and_ri(paper, 100 * result.effect, 100 * result.ours, 100 * result.other)
                if same
                else (float("nan"), float("nan"))
            )
            secondary.append(
                {
                    "id": spec.id,
                    "claim": spec.claim,
                    "metric": f"{_label(metric)} (%)",
                    "effect": 100 * result.effect,
                    "low": 100 * result.low,
                    "high": 100 * result.high,
                    "p": _p_text(result.p),
                    "p (Holm)": _p_text(result.p_holm),
                    "verdict": result.verdict,
                    "primary verdict": verdicts[spec.id],
                    "agrees": "yes" if result.verdict == verdicts[spec.id] else "no",
                    "paper Δ": paper["delta"],
                    "effect ratio": ratio,
                    "ΔRI": _ri_text(ri),
                    "seeds holding": result.seeds_holding,
                    "seeds": result.seeds,
                }
            )
    secondary = _integer_columns(pd.DataFrame(secondary, columns=SECONDARY_COLUMNS), ("seeds holding", "seeds"))
    T.write_table(
        secondary,
        out,
        "claims_secondary",
        f"The same {n} comparisons on the paper's other metrics (percent; each metric its "
        f"own Holm family; 'agrees': the same verdict as on the primary {_label(primary)}). Paper Δ in the same metric on "
        "MS MARCO dev",
    )
    write_per_query(setup)
    df.attrs["secondary"] = secondary
    return df


def _integer_columns(df, columns):
    for column in columns:
        if column in df:  # counts stay integers beside the rows that have none
            df[column] = pd.Series([None if pd.isna(v) else int(v) for v in df[column]], index=df.index, dtype=object)
    return df


def _fusion_pair(setup):
    """(names, (best fused, best original) per training query) or None. Lower KL is closer. The mean-KL
    version is no test: KL is convex in its second argument, so a mean of distributions is never
    further from the teacher than the mean of its members' divergences."""
    names, members, per_query = S.fusion_kl_per_query(setup)
    members = np.asarray(members)
    if (members > 1).sum() == 0:
        return None
    mean = per_query.mean(1)
    best_fused = int(np.where(members > 1, mean, np.inf).argmin())
    best_original = int(np.where(members == 1, mean, np.inf).argmin())
    return (names[best_fused], names[best_original]), (per_query[best_fused][None], per_query[best_original][None])


def _fusion_row(names, result: Comparison):
    fused, original = names
    return {
        "id": "fusion-closer-to-teacher",
        "claim": f"fused assistants sit closer to the teacher: best fused ({fused}) vs best original ({original})",
        "table": "fusion_kl",
        "effect": result.effect,
        "low": result.low,
        "high": result.high,
        "p": _p_text(result.p),
        "p (Holm)": _p_text(result.p_holm),
        "verdict": result.verdict,
        "seeds holding": result.seeds_holding,
        "seeds": result.seeds,
        "family": FUSION_FAMILY,
        "comparison": original,
        "metric": "KL (nats, training queries)",
        "ours": result.ours,
        "other": result.other,
        "queries": result.queries,
        "df": f"{result.df:.1f}",
        "paper note": P.claim_source("fusion-closer-to-teacher")["note"],
    }


def _overhead_claim(setup, main):
    """Selection's share of training time per step, against the paper's own overhead (Table 8). Not a quality
    claim: it keeps its one-level interval over training steps and is outside the Holm family."""
    base = {
        "id": "selection-overhead",
        "table": "table8",
        "family": TIMING,
        "paper note": P.claim_source("selection-overhead")["note"],
    }
    shares = np.asarray([s["select_seconds"] / max(s["step_seconds"], 1e-12) for r in main for s in r.selections])
    if len(shares) == 0:
        return {**base, "claim": "selection overhead is small", "verdict": "inconclusive"}
    low, high = paired_interval(shares)
    result = Comparison(
        ours=float(shares.mean()),
        other=PAPER_OVERHEAD,
        effect=float(shares.mean()) - PAPER_OVERHEAD,
        low=low - PAPER_OVERHEAD,
        high=high - PAPER_OVERHEAD,
        seed_std=float("nan"),
        seeds_holding=0,
        seeds=len(main),
        queries=len(shares),
        verdict=verdict(low - PAPER_OVERHEAD, high - PAPER_OVERHEAD, False),
    )
    return {
        **base,
        "claim": "selection overhead is small: its share of step time is below the paper's MTA4DPR overhead (5.8%)",
        "effect": 100 * result.effect,
        "low": 100 * result.low,
        "high": 100 * result.high,
        "verdict": result.verdict,
        "seeds": result.seeds,
        "comparison": "paper overhead",
        "metric": "share of step time (%)",
        "ours": 100 * result.ours,
        "other": 100 * result.other,
        "steps": len(shares),
    }


def write_per_query(setup) -> pd.DataFrame:
    """``per_query.csv.gz``: every run of the catalog (:func:`~mta4dpr_core.experiments.catalog.runs_for`), per seed,
    iteration and test query, keyed by run id (:attr:`RunSpec.run_id`). A run evaluated after every iteration (the
    main run) also gives its untrained student as iteration 0."""
    records = []

    def add(run_id, seed, iteration, evaluation):
        for block, metrics in (evaluation or {}).get("per_query", {}).items():
            for metric in ("nDCG@10", "MRR@10", "R@50", "R@1000", "R@100"):
                for query, value in metrics.get(metric, {}).items():
                    records.append((run_id, seed, iteration, block, query, metric, value))

    specs = dict.fromkeys(spec for table in STAGE_TABLES["summary"] for spec in runs_for(setup, table))
    for spec in specs:
        result = read_run(setup, spec)
        if spec.evaluate_test == "all":
            add(spec.run_id, result.seed, 0, result.initial)
            for number, record in enumerate(result.history, start=1):
                add(spec.run_id, result.seed, number, record.test)
        else:
            add(spec.run_id, result.seed, len(result.history), result.final)
    df = pd.DataFrame(records, columns=["run", "seed", "iteration", "test set", "query_id", "metric", "value"])
    df = (
        df.drop_duplicates()
        .sort_values(["run", "seed", "iteration", "test set", "metric", "query_id"])
        .reset_index(drop=True)
    )
    buffer = io.StringIO()
    df.to_csv(buffer, index=False, float_format="%.6g")
    # gzip with a fixed mtime: the file stays byte-identical run to run (pandas reads it as it is)
    atomic_write_bytes(
        S.results_dir(setup.params) / "per_query.csv.gz", gzip.compress(buffer.getvalue().encode(), mtime=0)
    )
    return df


# ---- FINDINGS.md ---------------------------------------------------------------------------------------------


def _fmt(value, digits=2):
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, (int, float, np.floating)) else str(value)


def _signed(value):
    return "–" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:+.2f}"


def _present(value):
    return value is not None and not (isinstance(value, float) and np.isnan(value))


def _secondary_table(setup, claims_table):
    secondary = claims_table.attrs.get("secondary")
    if secondary is None:
        path = S.results_dir(setup.params) / "claims_secondary.csv"
        secondary = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=SECONDARY_COLUMNS)
    return secondary


def write_findings(setup, claims_table: pd.DataFrame) -> str:
    """``FINDINGS.md``: the rule, the counts of distinct comparisons, every claim with its verdict, interval, p-values
    and the paper's effect beside ours, and where the secondary metrics disagree (generated)."""
    seeds = setup.config.seeds
    grid = grid_seeds(setup)
    primary = _label(primary_metric(setup))
    test = setup.config.data.test
    rows = claims_table.to_dict("records")
    family = [r for r in rows if r.get("family") == QUALITY]
    counts = {v: sum(r["verdict"] == v for r in family) for v in ("confirmed", "contradicted", "inconclusive")}
    dependent = [r for r in family if _present(r.get("combination of"))]
    one_seed = len(seeds) == 1 or len(grid) == 1
    lines = [
        f"# Findings on the `{setup.params['profile']}` profile",
        "",
        f"Generated from `claims.csv` and `claims_secondary.csv` by the summary notebook. Primary metric: test {primary} on `{test}` "
        f"(declared in the profile, `study.primary_metric`), in percent. Main comparisons over {_seeds_text(len(seeds))} {seeds}, "
        f"Table 6/7 grids over {_seeds_text(len(grid))} {grid}. Every student variant trains the same optimiser steps; the per-query "
        "values are in `per_query.csv.gz`.",
        "",
        "How a verdict is reached:",
        "",
        "- **Interval and p over seeds and queries.** Each comparison's 95% interval and two-sided p come from a t interval over "
        "the crossed design: se² = var(per-seed effects) / seeds + var(per-query effects) / queries (Owen's variance of a crossed "
        "mean), with Welch–Satterthwaite's degrees of freedom taken at the seed variance's one-sided 95% upper bound, so a few "
        "seeds that agree by chance do not pass for many. Its coverage was simulated at this profile's measured seed spread "
        "(`docs/testing-and-reproducibility.md`; `tools/coverage_simulation.py`).",
        f"- **One declared family.** The {len(family)} quality comparisons on {primary} below form one family. A claim is "
        f"**confirmed** (the paper's direction) or **contradicted** (the other direction) only when its Holm-adjusted p over the "
        f"family is below {ALPHA}; otherwise **inconclusive**. Raw and adjusted p are both listed.",
        f"- **Independent evidence.** {len(dependent)} of the {len(family)} are exact linear combinations of others (marked "
        f"*combination of*, checked on the data), so the family holds {len(family) - len(dependent)} independent comparisons. They "
        "stay in the Holm family (Holm holds under any dependence).",
        "- **Counted once.** A comparison that several of the paper's tables show has one id and is counted once (its other tables "
        "are listed). Summary claims summarise their parts' verdicts and are not counted. The fusion-KL claim (training queries, "
        "KL) is a family of its own; the selection overhead is timing, outside the quality family.",
        "- **The paper's comparison and the controls.** The paper's *No assistant* row is teacher-only KD with β = 1, while "
        "MTA4DPR distils with β + γ: the headline mixes the assistants with a change in the loss's balance. Two controls at "
        "MTA4DPR's total KL weight separate them: teacher-only KD with β + γ on the teacher's KL, and MTA4DPR with every "
        "assistant's scores replaced by the teacher's.",
        "- **The paper's effect beside ours.** Paper Δ is the paper's difference for the same comparison in its primary metric, "
        "MRR@10 on MS MARCO dev. Effect ratio and ΔRI are repro_eval's (Breuer et al., SIGIR 2020), each on the paper's own "
        "metric: our MRR@10 Δ against its MRR@10 Δ, and our nDCG@10 Δ against its TREC DL nDCG@10 Δ (mean of 2019 and 2020) "
        f"where it gives one; blank where the paper's Δ is below {2 * PAPER_ROUNDING:.1f} (twice its rounding). Effect ratio = our "
        "mean improvement / the paper's (1 = the same effect, 0 = none, negative = the other way); ΔRI = RI(paper) − RI(ours), "
        "RI = (advanced − baseline) / baseline.",
    ]
    if one_seed:
        lines.append(
            "- **One seed.** Where a comparison has a single seed the interval has no seed part: it covers test-query sampling "
            "only and says nothing about seed-to-seed variation."
        )
    lines += [
        "",
        f"Summary: {len(family)} comparisons on {primary} ({len(family) - len(dependent)} independent): "
        + ", ".join(f"{counts[v]} {v}" for v in counts)
        + ".",
        "",
        f"## Claims on {primary} (one family, Holm)",
        "",
    ]
    for row in family:
        lines.append(_claim_line(row))
    composite_rows = [r for r in rows if r.get("family") == COMPOSITE]
    if composite_rows:
        lines += ["", "## Summary claims (of their parts' verdicts; not counted)", ""]
        lines += [f"- **{r['claim']}** [`{r['id']}`] ({r['table']}): **{r['verdict']}**." for r in composite_rows]
    other_rows = [r for r in rows if r.get("family") in (FUSION_FAMILY, TIMING)]
    if other_rows:
        lines += ["", "## Other claims (outside the quality family)", ""]
        for r in other_rows:
            if not _present(r.get("effect")):
                lines.append(
                    f"- **{r['claim']}** [`{r['id']}`] ({r['table']}): **{r['verdict']}** ({r.get('paper note') or ''})."
                )
                continue
            p = f"; p = {r['p']}" if _present(r.get("p")) else ""
            extra = (
                "; a one-level interval over training steps, not a quality comparison"
                if r.get("family") == TIMING
                else f"; over {_fmt(r.get('queries'), 0)} training queries, its own family"
            )
            lines.append(
                f"- **{r['claim']}** [`{r['id']}`] ({r['table']}): **{r['verdict']}**. {r['metric']}: ours {_fmt(r['ours'])} vs "
                f"{r['comparison']} {_fmt(r['other'])}; difference {_fmt(r['effect'])} [{_fmt(r['low'])}, {_fmt(r['high'])}]{p}"
                f"{extra}."
            )
    lines += _secondary_lines(setup, claims_table, primary)
    if getattr(setup, "extra_tests", None):
        lines += [
            "",
            "## The extra test sets",
            "",
            "The extra test sets (the TREC DL 2019/2020 pools on the mini profile) are **zero-shot transfer** of students trained on "
            f"`{setup.params['data']['train']}`: no claim is tested on them, and they are not set beside the paper's in-domain "
            "TREC DL numbers in any table.",
        ]
    lines += [
        "",
        "Why mean KL is no test of fusion: KL(p ‖ ·) is convex, so KL(p ‖ mean of q_i) ≤ mean of KL(p ‖ q_i) for any "
        "distributions; a fused assistant is never further from the teacher than its members are on average. Only the best "
        "fused assistant against the best original one can fail, so only that is checked.",
    ]
    text = "\n".join(lines) + "\n"
    atomic_write_text(S.results_dir(setup.params) / "FINDINGS.md", text)
    return text


def _claim_line(row):
    also = f"; also {row['also in']}" if _present(row.get("also in")) else ""
    seeds = int(row["seeds"])
    holding = f"holds on {int(row['seeds holding'])}/{_seeds_text(seeds)}" + (
        f" ({row['per-seed effect']})" if seeds > 1 else " (one seed: queries only)"
    )
    if _present(row.get("paper Δ")):
        paper = (
            f" Paper: Δ {_signed(row['paper Δ'])} ({row['paper table']}); on MRR@10 ours {_signed(row['ours MRR@10 Δ'])}, "
            f"effect ratio {_fmt(row['effect ratio (MRR@10)'])}, ΔRI {_fmt(row['ΔRI (MRR@10)'])}"
        )
        if _present(row.get("paper DL nDCG@10 Δ")):
            paper += (
                f"; its TREC DL nDCG@10 Δ {_signed(row['paper DL nDCG@10 Δ'])}, effect ratio "
                f"{_fmt(row['effect ratio (nDCG@10 vs DL)'])}, ΔRI {_fmt(row['ΔRI (nDCG@10 vs DL)'])}"
            )
        paper += f" ({row['paper note']})."
    else:
        paper = f" Paper: no Δ ({row['paper note']})."
    composite = f" *A linear combination of* {row['combination of']}." if _present(row.get("combination of")) else ""
    return (
        f"- **{row['claim']}** [`{row['id']}`] ({row['table']}{also}): **{row['verdict']}**.{composite} {row['metric']}: ours {_fmt(row['ours'])} "
        f"vs {row['comparison']} {_fmt(row['other'])}; our Δ {_signed(row['effect'])} [{_signed(row['low'])}, {_signed(row['high'])}], "
        f"p = {row['p']}, Holm p = {row['p (Holm)']}; {holding}.{paper}"
    )


def _secondary_lines(setup, claims_table, primary):
    secondary = _secondary_table(setup, claims_table)
    if secondary is None or len(secondary) == 0:
        return []
    lines = ["", "## The paper's other metrics (secondary; each metric its own Holm family)", ""]
    metrics = list(dict.fromkeys(secondary["metric"]))
    lines.append("| id | " + " | ".join(metrics) + " |")
    lines.append("|---|" + "---|" * len(metrics))
    for claim_id, group in secondary.groupby("id", sort=False):
        cells = {
            r["metric"]: f"{_signed(r['effect'])} [{_signed(r['low'])}, {_signed(r['high'])}] {r['verdict']}"
            for r in group.to_dict("records")
        }
        lines.append(f"| `{claim_id}` | " + " | ".join(cells.get(x, "–") for x in metrics) + " |")
    disagreements = secondary[secondary["verdict"] != secondary["primary verdict"]]
    lines.append("")
    if len(disagreements) == 0:
        lines.append(f"Every secondary verdict agrees with the one on {primary}.")
    else:
        lines.append(f"Where a secondary metric disagrees with {primary} (the verdict depends on the metric):")
        lines.append("")
        for r in disagreements.to_dict("records"):
            lines.append(
                f"- `{r['id']}`: {primary} **{r['primary verdict']}**, but {r['metric'].replace(' (%)', '')} **{r['verdict']}** "
                f"({_signed(r['effect'])} [{_signed(r['low'])}, {_signed(r['high'])}], Holm p = {r['p (Holm)']})."
            )
    return lines
