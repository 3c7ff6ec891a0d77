"""Does a finding on one collection hold on another? The claims of two profiles, side by side (report-only).

Each profile's claims notebook writes ``results/<profile>/claims.csv``: one row per claim with a stable
``id`` (``mta4dpr-vs-no-assistant``, ``kl-vs-random``, ...), our Δ (``effect``, in percent) with its 95%
interval (``low``, ``high``), the Holm-adjusted ``verdict`` and the mean scores of the two compared systems
(``ours`` = the advanced system, ``other`` = its baseline, both in percent). :func:`replication_table`
joins two such files **on the id** (never on the display text, which may change) and sets the original
(e.g. ``mini``, SciFact) beside the replication (e.g. ``nfcorpus``, NFCorpus, the same recipe and claim family):

* ``replicates`` compares the two verdicts (confirmed / contradicted are significant; inconclusive and
  borderline are not):

  - ``yes``: both sides reach the same significant verdict (confirmed on both, or contradicted on both);
  - ``no``: the two effects point in opposite directions and at least one side is significant
    (confirmed on one side and contradicted on the other, or significant on one side with the other
    side's Δ the other way or exactly 0);
  - ``same direction, not significant``: only one side is significant, and the other side's Δ points the
    same way without reaching significance;
  - ``both inconclusive``: neither side is significant (whatever the signs of the two Δ);
  - ``one inconclusive``: only one side is significant and the other has no Δ to give a direction
    (composite claims, which are summaries of their parts).

* ``effect ratio`` is repro_eval's Effect Ratio for a replication (Breuer et al., SIGIR 2020):
  ``ER = mean improvement of advanced over baseline in the replication / that in the original``, i.e.
  replication Δ / original Δ (each the mean per-(seed, query) difference; 1 = the same effect, 0 = none,
  < 0 = the other way). :func:`mta4dpr_core.report.statistics.effect_ratio`.
* ``ΔRI`` is repro_eval's Delta Relative Improvement: ``RI(original) − RI(replication)`` with
  ``RI = (advanced − baseline) / baseline`` on the mean scores of the compared systems (0 = the same
  relative improvement, > 0 = a smaller one in the replication).
  :func:`mta4dpr_core.report.statistics.delta_relative_improvement`. The baseline's and the advanced system's
  means come from ``claims.csv`` (``other``, ``ours``); only where a claims file lacks them are they
  recomputed from ``per_query.csv.gz`` (for the comparisons of named runs; see :func:`means_from_per_query`).

ER and ΔRI are given for comparisons of two systems' scores (the quality family and the fusion-KL
claim), only when both profiles measure the claim in the same metric; never for the composites
(no Δ of their own), the timing claim (a share of step time against a fixed figure of the paper) or
:data:`DIFFERENCE_CLAIMS`, whose compared values are themselves differences (ER is given there, ΔRI not:
a relative improvement over a difference means nothing).

No torch: this reads CSV files only.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..config.errors import Mta4dprError
from ..config.ids import slug
from ..store.atomic import atomic_write_text
from . import tables as T
from .statistics import delta_relative_improvement, effect_ratio

SIGNIFICANT = ("confirmed", "contradicted")
QUALITY = "quality"  # claims.QUALITY (claims.py imports the studies, and so torch)
FUSION_FAMILY = "fusion KL (a family of its own)"
TIMING = "timing (not in the quality family)"
SCORE_FAMILIES = (QUALITY, FUSION_FAMILY)  # the families whose rows compare two systems' scores
DIFFERENCE_CLAIMS = frozenset({"iterations-x-assistants"})  # ours/other are gains, not scores: no ΔRI
CATEGORIES = ("yes", "no", "same direction, not significant", "both inconclusive", "one inconclusive")
# claims.csv's display metric -> per_query.csv.gz's metric
_PER_QUERY_METRIC = {"R@1k": "R@1000"}


class MissingClaimsError(Mta4dprError, FileNotFoundError):
    """A profile's claims.csv (or the results directory) is not there; the message names the path."""


# ---- reading ---------------------------------------------------------------------------------------------


def read_claims(directory) -> pd.DataFrame:
    """``<directory>/claims.csv``; :class:`MissingClaimsError` naming the file when it is absent."""
    path = Path(directory) / "claims.csv"
    if not path.is_file():
        raise MissingClaimsError(
            f"{path}: no claims.csv (run the profile's claims notebook first: "
            f"python -m mta4dpr_core.runner --profile {Path(directory).name})"
        )
    df = pd.read_csv(path)
    if "claim" not in df.columns or "verdict" not in df.columns:
        raise Mta4dprError(f"{path}: not a claims table (no `claim` / `verdict` column)")
    return df


def _number(value) -> float:
    """A float from a claims.csv cell (numbers, "+0.078"-style text, blanks and "–" as nan)."""
    if value is None:
        return float("nan")
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    try:
        return float(str(value).replace("−", "-"))
    except ValueError:
        return float("nan")


def _with_ids(df: pd.DataFrame, reference: pd.DataFrame | None) -> pd.DataFrame:
    """``df`` with an ``id`` column. A claims.csv written before claims had ids gets each id from the other
    profile's row with the same claim text (exact match); an unmatched row gets ``text:<slug>`` and so can
    only be listed as present on one side."""
    if "id" in df.columns:
        return df
    df = df.copy()
    by_text = (
        {}
        if reference is None or "id" not in reference.columns
        else dict(zip(reference["claim"].astype(str), reference["id"], strict=True))
    )
    df.insert(0, "id", [by_text.get(str(claim), f"text:{slug(claim)}") for claim in df["claim"]])
    df.attrs["ids from text"] = True
    return df


# ---- the means behind ΔRI, from per_query.csv.gz where claims.csv lacks them -----------------------------


def _per_query_runs(claim_id: str):
    """((advanced run, iteration), (baseline run, iteration)) in ``per_query.csv.gz`` for the comparisons of named
    runs; iteration None = each seed's last one. None where the claim is no such comparison."""
    final = None
    fixed = {
        "mta4dpr-vs-no-assistant": (("mta4dpr", final), ("no_assistants", final)),
        "mta4dpr-vs-one-iteration-kd": (("mta4dpr", final), ("one_iteration_kd", final)),
        "mta4dpr-vs-kd-matched-weight": (("mta4dpr", final), ("kd_matched_weight", final)),
        "mta4dpr-vs-assistants-are-teacher": (("mta4dpr", final), ("assistants_are_teacher", final)),
        "removing-fusion": (("mta4dpr", final), ("no_fusion", final)),
        "removing-iterations": (("mta4dpr", final), ("no_iterations", final)),
        "iterations-teacher-only-kd": (("no_assistants", final), ("one_iteration_kd", final)),
    }
    if claim_id in fixed:
        return fixed[claim_id]
    if claim_id.startswith("kl-vs-"):
        return ("mta4dpr", final), (f"selection_{claim_id[len('kl-vs-') :]}", final)
    match = re.fullmatch(r"iteration-(\d+)-to-(\d+)", claim_id)
    if match:
        return ("mta4dpr", int(match.group(2))), ("mta4dpr", int(match.group(1)))
    if claim_id.startswith("single-assistant-"):
        # files written before per_query.csv.gz was keyed by run id name the run by its assistants (resolved by
        # slug); newer claims.csv files carry the means themselves
        return ("assistants " + claim_id[len("single-assistant-") :], final), ("no_assistants", final)
    if claim_id.startswith("student-size-"):
        student = claim_id[len("student-size-") :]  # the student's id (config/ids.py)
        return (f"mta4dpr@{student}", final), (f"no_assistants@{student}", final)
    return None


def _legacy_key(name) -> str:
    """Letters and digits only: how a label of an older ``per_query.csv.gz`` meets the run id or claim id it stood for
    (not an id rule: ids are :func:`~mta4dpr_core.config.ids.slug`)."""
    return re.sub(r"[^a-z0-9]+", "", str(name).lower())


def _run_values(per_query: pd.DataFrame, run: str, iteration) -> pd.Series:
    """Values of ``run`` indexed by (seed, query), at ``iteration`` or each seed's last. ``run`` is a run id; a file
    written before runs had ids names them by label, matched here by slug (``mta4dpr, static wordllama, 64-d`` for
    ``mta4dpr@static-wordllama-64-d``)."""
    names = per_query["run"].unique()
    name = run if run in names else next((n for n in names if _legacy_key(n) == _legacy_key(run)), None)
    if name is None:
        return pd.Series(dtype=float)
    rows = per_query[per_query["run"] == name]
    if iteration is None:
        rows = rows[rows["iteration"] == rows.groupby("seed")["iteration"].transform("max")]
    else:
        rows = rows[rows["iteration"] == iteration]
    return rows.set_index(["seed", "query_id"])["value"]


def means_from_per_query(directory, claim_id: str, metric: str = "nDCG@10", test_set: str = "test"):
    """(advanced mean, baseline mean) in percent from ``per_query.csv.gz`` over the (seed, query) pairs both runs
    have, for the comparisons of named runs (the headline, ablation, selection, iteration, teacher-only-KD,
    single-assistant and student-size claims); (nan, nan) for the others (more assistants, better assistants,
    the interaction, fusion KL, timing) and where the file, the runs or shared pairs are missing."""
    runs = _per_query_runs(claim_id)
    path = Path(directory) / "per_query.csv.gz"
    if runs is None or not path.is_file():
        return float("nan"), float("nan")
    metric = _PER_QUERY_METRIC.get(metric, metric)
    per_query = pd.read_csv(path)
    per_query = per_query[(per_query["metric"] == metric) & (per_query["test set"] == test_set)]
    advanced, baseline = (_run_values(per_query, run, iteration) for run, iteration in runs)
    shared = advanced.index.intersection(baseline.index)
    if len(shared) == 0:
        return float("nan"), float("nan")
    return 100.0 * float(advanced.loc[shared].mean()), 100.0 * float(baseline.loc[shared].mean())


def _unrounded_effect(row: dict) -> float:
    """Δ as computed (``effect (unrounded)``, six decimals), else the table's rounded ``effect``: a ratio of two
    effects rounded to 0.01 can be off by a factor where an effect is near 0."""
    value = _number(row.get("effect (unrounded)"))
    return value if not math.isnan(value) else _number(row.get("effect"))


def _means(row: dict, directory) -> tuple[float, float]:
    ours, other = _number(row.get("ours")), _number(row.get("other"))
    if (math.isnan(ours) or math.isnan(other)) and directory is not None:
        return means_from_per_query(directory, str(row["id"]), _metric_name(row.get("metric")))
    return ours, other


def _metric_name(metric) -> str:
    """``"nDCG@10 (%)"`` -> ``"nDCG@10"``."""
    return "nDCG@10" if not isinstance(metric, str) else metric.replace(" (%)", "").strip()


# ---- the comparison --------------------------------------------------------------------------------------------


def _significant(verdict) -> bool:
    return verdict in SIGNIFICANT


def _direction(verdict, effect) -> float:
    """+1 / −1 / 0 from the sign of Δ; from a significant verdict where there is no Δ (confirmed = the claim's
    direction); nan where there is neither."""
    if not math.isnan(effect):
        return float(np.sign(effect))
    if verdict == "confirmed":
        return 1.0
    if verdict == "contradicted":
        return -1.0
    return float("nan")


def replicates(original_verdict, original_effect, replication_verdict, replication_effect) -> str:
    """The agreement category of one claim (see the module docstring)."""
    a, b = _significant(original_verdict), _significant(replication_verdict)
    if a and b:
        return "yes" if original_verdict == replication_verdict else "no"
    if not a and not b:
        return "both inconclusive"
    direction_a = _direction(original_verdict, _number(original_effect))
    direction_b = _direction(replication_verdict, _number(replication_effect))
    if math.isnan(direction_a) or math.isnan(direction_b):
        return "one inconclusive"
    return "same direction, not significant" if direction_a == direction_b != 0 else "no"


def _interval_text(row) -> str:
    effect, low, high = (_number(row.get(k)) for k in ("effect", "low", "high"))
    if math.isnan(effect):
        return "–"
    if math.isnan(low) or math.isnan(high):
        return f"{effect:+.2f}"
    return f"{effect:+.2f} [{low:+.2f}, {high:+.2f}]"


def _text(value) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def replication_table(
    original_dir, replication_dir, original_name: str = "SciFact", replication_name: str = "NFCorpus"
) -> pd.DataFrame:
    """One row per claim id present in both ``<original_dir>/claims.csv`` and ``<replication_dir>/claims.csv``
    (in the original's order): id, claim, ``<original_name> Δ [95%]``, ``<original_name> verdict``, the same for
    the replication, ``replicates``, ``effect ratio``, ``ΔRI``, metric and family (definitions in the module
    docstring). Claims present on one side only are listed in ``attrs["only in <name>"]``."""
    if original_name == replication_name:
        raise ValueError(f"the two sides need different names (both {original_name!r}): they label the columns")
    original = read_claims(original_dir)
    replication = read_claims(replication_dir)
    original = _with_ids(original, replication)
    replication = _with_ids(replication, original)
    orig_rows = {str(r["id"]): r for r in original.to_dict("records")}
    repl_rows = {str(r["id"]): r for r in replication.to_dict("records")}

    rows = []
    for claim_id, o in orig_rows.items():
        if claim_id not in repl_rows:
            continue
        r = repl_rows[claim_id]
        family = o.get("family") if isinstance(o.get("family"), str) else r.get("family")
        family = family if isinstance(family, str) else None
        metric_o, metric_r = o.get("metric"), r.get("metric")
        same_metric = not (isinstance(metric_o, str) and isinstance(metric_r, str) and metric_o != metric_r)
        er = dri = float("nan")
        if family in SCORE_FAMILIES and same_metric:
            er = effect_ratio(_unrounded_effect(r), _unrounded_effect(o))
            if claim_id not in DIFFERENCE_CLAIMS:
                (o_adv, o_base), (r_adv, r_base) = _means(o, original_dir), _means(r, replication_dir)
                dri = delta_relative_improvement(o_adv, o_base, r_adv, r_base)
        claim = o.get("claim") if isinstance(o.get("claim"), str) else r.get("claim")
        rows.append(
            {
                "id": claim_id,
                "claim": claim,
                f"{original_name} Δ [95%]": _interval_text(o),
                f"{original_name} verdict": _text(o.get("verdict")),
                f"{replication_name} Δ [95%]": _interval_text(r),
                f"{replication_name} verdict": _text(r.get("verdict")),
                "replicates": replicates(o.get("verdict"), o.get("effect"), r.get("verdict"), r.get("effect")),
                "effect ratio": er,
                "ΔRI": dri,
                "metric": _text(metric_o) if same_metric else f"{metric_o} vs {metric_r}",
                "family": _text(family),
            }
        )
    columns = [
        "id",
        "claim",
        f"{original_name} Δ [95%]",
        f"{original_name} verdict",
        f"{replication_name} Δ [95%]",
        f"{replication_name} verdict",
        "replicates",
        "effect ratio",
        "ΔRI",
        "metric",
        "family",
    ]
    df = pd.DataFrame(rows, columns=columns)
    df.attrs["names"] = (original_name, replication_name)
    df.attrs[f"only in {original_name}"] = [i for i in orig_rows if i not in repl_rows]
    df.attrs[f"only in {replication_name}"] = [i for i in repl_rows if i not in orig_rows]
    df.attrs["ids from text"] = [
        name
        for name, side in ((original_name, original), (replication_name, replication))
        if side.attrs.get("ids from text")
    ]
    return df


def summary(df: pd.DataFrame) -> dict:
    """Counts over the distinct comparisons (the quality family; every row where neither file records families):
    ``distinct comparisons``, ``replicated`` (yes), ``contradicted direction`` (no), ``inconclusive`` (the rest:
    ``same direction, not significant`` + ``both inconclusive`` + ``one inconclusive``, also given one by one),
    and the ids present on one side only."""
    family = df["family"] if "family" in df else pd.Series(["–"] * len(df), index=df.index)
    counted = df[family == QUALITY] if (family == QUALITY).any() else df
    categories = counted["replicates"].value_counts()
    out = {
        "distinct comparisons": int(len(counted)),
        "replicated": int(categories.get("yes", 0)),
        "contradicted direction": int(categories.get("no", 0)),
    }
    out["inconclusive"] = out["distinct comparisons"] - out["replicated"] - out["contradicted direction"]
    for category in CATEGORIES[2:]:
        out[category] = int(categories.get(category, 0))
    for key, value in df.attrs.items():
        if key.startswith("only in "):
            out[key] = list(value)
    return out


def summary_text(df: pd.DataFrame) -> str:
    s = summary(df)
    original, replication = df.attrs.get("names", ("original", "replication"))
    lines = [
        f"Summary: {s['distinct comparisons']} distinct comparisons (the quality family) in both: {s['replicated']} replicated "
        f"(the same significant verdict), {s['contradicted direction']} contradicted direction, {s['inconclusive']} inconclusive "
        f"({s['same direction, not significant']} same direction but significant on one side only, {s['both inconclusive']} "
        f"inconclusive on both"
        + (f", {s['one inconclusive']} with no direction on one side" if s["one inconclusive"] else "")
        + ")."
    ]
    for name in (original, replication):
        only = s.get(f"only in {name}", [])
        lines.append(f"Only in {name}: " + (", ".join(f"`{i}`" for i in only) if only else "none") + ".")
    if df.attrs.get("ids from text"):
        lines.append(
            f"No id column in {' and '.join(df.attrs['ids from text'])}'s claims.csv (written before claims had ids): its "
            "ids come from the other side's claims with the same text; the rest are listed as only on one side."
        )
    return "\n".join(lines)


# ---- writing ------------------------------------------------------------------------------------------------


def _profile_label(results_root, profile: str) -> str:
    """The collection's display name from ``results/<profile>/manifest.json``'s params, else the profile name."""
    manifest = Path(results_root) / profile / "manifest.json"
    try:
        params = json.loads(manifest.read_text())["params"]
        return T.collection_label(params)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return profile


def write_replication(
    results_root,
    original: str = "mini",
    replication: str = "nfcorpus",
    name: str = "replication",
    heading: str = "Replication",
) -> pd.DataFrame:
    """``<results_root>/<name>.csv`` and ``.md`` (``replication`` by default) from ``<results_root>/<original>/claims.csv`` and
    ``<results_root>/<replication>/claims.csv``; returns the frame. Each side is labelled with its collection
    (SciFact, NFCorpus, from the profile's manifest), or with the profile names where the collections are the same.
    :class:`MissingClaimsError` names a missing claims.csv."""
    root = Path(results_root)
    names = _profile_label(root, original), _profile_label(root, replication)
    if names[0] == names[1]:
        names = (f"{names[0]} ({original})", f"{names[1]} ({replication})")
    df = replication_table(root / original, root / replication, *names)
    shown = df.copy()
    shown["effect ratio"] = [None if math.isnan(v) else f"{v:.2f}" for v in df["effect ratio"]]
    shown["ΔRI"] = [None if math.isnan(v) else f"{v:+.3f}" for v in df["ΔRI"]]
    title = (
        f"{heading}: the claims of `{original}` ({names[0]}) on `{replication}` ({names[1]}), joined on the claim id. "
        "Δ [95%]: our Δ in percent with its 95% interval; verdict: Holm-adjusted over each profile's own family. replicates: yes = "
        "the same significant verdict on both; no = opposite directions with at least one side significant; same direction, not "
        "significant = significant on one side only, the other's Δ the same way; both inconclusive = significant on neither. "
        f"Effect ratio = {names[1]} Δ / {names[0]} Δ and ΔRI = RI({names[0]}) − RI({names[1]}), RI = (advanced − baseline) / "
        "baseline on the mean scores, as repro_eval defines them for a replication"
    )
    T.write_table(shown, root, name, title)
    md = root / f"{name}.md"
    atomic_write_text(md, md.read_text() + "\n" + summary_text(df) + "\n")
    return df
