"""Where the student sits: a ladder table and an assistant-gap figure (report only).

Reads the tables a profile has already written (``table1.csv``, ``table6.csv``, ``table7.csv`` in
``results/<profile>/``) and writes nothing else but its own outputs; it trains and evaluates nothing
(no torch import).

* :func:`student_ladder` -- one row per rung (teacher, each assistant, BM25, the untrained student,
  the no-assistant student, MTA4DPR) with our score on the profile's primary metric, sorted from the
  best down, beside the paper's analogue and the paper's own MRR@10 for it (MS MARCO dev).
* :func:`gap_points` -- for every assistant combination (Table 7) and every student size (Table 6):
  how far the assistants sit above (or below) the student they teach, against what they did for it.
* :func:`plot_gap` -- that figure; :func:`write_ladder_and_gap` writes the lot for one profile and
  :func:`cross_profile_gap` pools the points of several profiles.

The paper's regime is a student that ends up between its assistants and below its teacher (MS MARCO dev
MRR@10: MTA4DPR 41.1 between CotMAE 39.4 and RetroMAE 41.6, teacher 43.7): the ladder shows whether ours is
in that regime, the gap figure where the assistants help the student and where they hurt it.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..config.errors import ParamsError
from ..config.params import load_params, profile_path
from ..config.typed import typed
from . import tables as R  # row ids (tables.py)
from .plots import PALETTE, Plot
from .tables import collection_label, write_table

SINGLE = "single assistant − none"
SUBSET = "assistant subset − none"
ALL = "MTA4DPR − none"
LADDER_COLUMNS = ["rung", "model", "paper analogue", "paper MRR@10"]
GAP_COLUMNS = ["id", "profile", "source", "label", "kind", "gap", "delta", "low", "high", "metric"]
GAP_DEFINITION = (
    "gap = (the assistant's own test score on the metric, from table1.csv; for a subset or MTA4DPR (all assistants), the "
    "mean of its assistants' scores) − (the no-assistant student's score in the same grid: Table 7's 'none' row; for a "
    "Table 6 size, that size's MTA4DPR score − its Δ vs no assistant); delta, low, high = the table's Δ vs none (Table 7) "
    "or Δ vs no assistant (Table 6) with its 95% interval over seeds × queries; all in percentage points"
)


# ---- reading ------------------------------------------------------------------------------------


def number(value) -> float:
    """A cell as a float: floats pass through, ``"56.84 ± 0.42"`` gives 56.84, blanks and dashes give NaN."""
    if value is None:
        return math.nan
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    match = re.match(r"\s*([-+−]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)", str(value))
    return float(match.group(1).replace("−", "-")) if match else math.nan


def primary_metric(params) -> str:
    """The profile's ``study.primary_metric`` (the schema's default where a partial mapping leaves it out)."""
    return typed(params or {}).study.primary_metric


def _read(results_dir, name) -> pd.DataFrame | None:
    path = Path(results_dir) / f"{name}.csv"
    return pd.read_csv(path, keep_default_na=True) if path.is_file() else None


def _table1(results_dir) -> pd.DataFrame:
    table1 = _read(results_dir, "table1")
    if table1 is None:
        raise FileNotFoundError(
            f"{Path(results_dir) / 'table1.csv'} is missing: run notebook 04 (training) for this profile first"
        )
    if R.ID not in table1:
        raise ValueError(
            f"{Path(results_dir) / 'table1.csv'} has no {R.ID!r} column (written before rows had ids): rows are "
            "joined by id, never by label; rerun notebook 04 for this profile"
        )
    return table1


def _text(series) -> pd.Series:
    return series.fillna("").astype(str).str.strip()


# Table 1's student row ids (tables.py) -> their rungs; a student row not listed is not on the ladder
STUDENT_RUNGS = {
    R.UNTRAINED_STUDENT: "student:untrained",
    R.NO_ASSISTANTS: "student:no-assistant",
    R.MTA4DPR: "student:mta4dpr",
}


def _rung(model: str, role: str, row_id: str = "") -> str | None:
    """The ladder's stable id for a Table 1 row, None for rows that are not on the ladder. Student rows go by
    Table 1's row id (``id``), never by their label."""
    if role == "student":
        return STUDENT_RUNGS.get(row_id)
    if role == "teacher":
        return "teacher"
    if role == "assistant":
        return f"assistant:{model}"
    if role == "baseline":
        return "bm25" if "bm25" in model.lower() else f"baseline:{model}"
    return None


def _assistant_scores(table1: pd.DataFrame, metric: str) -> dict:
    roles, models = _text(table1["role"]), _text(table1["model"])
    rows = table1[roles == "assistant"]
    return (
        {m: number(v) for m, v in zip(models[roles == "assistant"], rows[metric], strict=True)}
        if metric in table1
        else {}
    )


def _no_assistant_score(table1: pd.DataFrame, metric: str) -> float:
    rows = table1[_text(table1[R.ID]) == R.NO_ASSISTANTS]
    return number(rows[metric].iloc[0]) if len(rows) and metric in table1 else math.nan


def _delta_columns(df: pd.DataFrame, prefix: str, metric: str):
    """(metric, Δ column, low column, high column) of a table's ``<prefix> <metric>`` columns; the
    primary metric's when the table has it, else the one metric it carries; None when it has none."""
    low, high = f"{prefix} low", f"{prefix} high"
    if low not in df or high not in df:
        return None
    if f"{prefix} {metric}" in df:
        return metric, f"{prefix} {metric}", low, high
    for column in df.columns:
        if column.startswith(f"{prefix} ") and column not in (low, high):
            return column[len(prefix) + 1 :], column, low, high
    return None


# ---- the ladder ----------------------------------------------------------------------------------


def student_ladder(results_dir, params) -> pd.DataFrame:
    """One row per rung of Table 1: teacher, each assistant, BM25 (and any other baseline with a paper
    analogue), the student before training, the no-assistant student (teacher-only KD, same iterations
    and steps) and MTA4DPR; sorted by our score on the primary metric, best first (ties keep Table 1's
    order). ``paper MRR@10`` is the paper's own ladder (MS MARCO dev), blank where it has no such row."""
    metric = primary_metric(params)
    table1 = _table1(results_dir)
    if metric not in table1:
        raise KeyError(
            f"{Path(results_dir) / 'table1.csv'} has no {metric!r} column (the profile's study.primary_metric)"
        )
    rows = []
    for _, row in table1.iterrows():
        model = "" if pd.isna(row.get("model")) else str(row["model"]).strip()
        role = "" if pd.isna(row.get("role")) else str(row["role"]).strip()
        row_id = "" if R.ID not in table1 or pd.isna(row.get(R.ID)) else str(row[R.ID]).strip()
        rung = _rung(model, role, row_id)
        if rung is None:
            continue
        analogue = row.get("paper analogue")
        rows.append(
            {
                R.ID: row_id or rung,
                "rung": rung,
                "model": model,
                f"ours {metric}": number(row[metric]),
                "paper analogue": "" if analogue is None or pd.isna(analogue) else str(analogue),
                "paper MRR@10": number(row.get("paper MRR@10")),
            }
        )
    ladder = pd.DataFrame(rows, columns=[R.ID, "rung", "model", f"ours {metric}", "paper analogue", "paper MRR@10"])
    return ladder.sort_values(f"ours {metric}", ascending=False, kind="mergesort", na_position="last").reset_index(
        drop=True
    )


def ladder_caption(params, metric=None) -> str:
    metric = metric or primary_metric(params)
    return (
        f"Where the student sits ({collection_label(params)} test, {metric}, percent; profile {params.get('profile', '?')}): "
        f"teacher, assistants, BM25 and the students, best first; paper MRR@10 is the paper's own ladder on MS MARCO dev "
        f"for the row's analogue (blank where the paper has none)"
    )


# ---- the gap points ------------------------------------------------------------------------------


def gap_points(results_dir, params) -> pd.DataFrame:
    """Points of the gap figure, one per assistant combination (Table 7) and per student size (Table 6).

    * ``gap`` (x, percentage points): the assistants' own test score on the metric (Table 1's assistant
      rows; for a combination of several assistants, the mean of their scores) minus the score of the
      no-assistant student of the same grid: Table 7's ``none`` row for the combinations; for a Table 6
      student size, that size's MTA4DPR score minus its ``Δ vs no assistant`` (the table carries the Δ,
      not the no-assistant score itself).
    * ``delta``, ``low``, ``high`` (y): the table's own Δ with its 95% interval (two-level bootstrap over
      seeds × queries): ``Δ vs none <metric>`` in Table 7, ``Δ vs no assistant <metric>`` in Table 6.
    * ``kind``: ``single assistant − none`` (one assistant), ``MTA4DPR − none`` (all assistants, and every
      Table 6 size), ``assistant subset − none`` (two or more but not all, with three or more assistants).
    * ``metric``: the primary metric (``study.primary_metric``) where the tables carry its Δ, else the
      metric of the Δ they carry (both axes always use the same metric).
    """
    profile = str((params or {}).get("profile", Path(results_dir).name))
    metric = primary_metric(params)
    table1 = _table1(results_dir)
    points = []

    table7 = _read(results_dir, "table7")
    usable = table7 is not None and {R.ID, "assistants"} <= set(table7.columns)
    found = _delta_columns(table7, "Δ vs none", metric) if usable else None
    if found:
        used, delta, low, high = found
        scores = _assistant_scores(table1, used)
        names = _text(table7["assistants"])
        none = table7[_text(table7[R.ID]) == R.NO_ASSISTANTS]
        base = number(none[used].iloc[0]) if len(none) and used in table7 else _no_assistant_score(table1, used)
        for label, (_, row) in zip(names, table7.iterrows(), strict=True):
            if row[R.ID] == R.NO_ASSISTANTS or not label:
                continue
            members = [m.strip() for m in label.split("&")] if label not in scores else [label]
            if not members or any(m not in scores for m in members):
                continue
            kind = SINGLE if len(members) == 1 else ALL if set(members) == set(scores) else SUBSET
            points.append(
                {
                    R.ID: f"{profile}:table7:{row[R.ID] if R.ID in table7 else R.slug(label)}",
                    "profile": profile,
                    "source": "table7",
                    "label": label,
                    "kind": kind,
                    "gap": float(np.mean([scores[m] for m in members])) - base,
                    "delta": number(row[delta]),
                    "low": number(row[low]),
                    "high": number(row[high]),
                    "metric": used,
                }
            )

    table6 = _read(results_dir, "table6")
    found = None if table6 is None or "student" not in table6 else _delta_columns(table6, "Δ vs no assistant", metric)
    if found:
        used, delta, low, high = found
        scores = _assistant_scores(table1, used)
        ours = (
            ~_text(table6[R.ID]).str.startswith(R.paper_row_id(""))
            if R.ID in table6
            else pd.Series(True, index=table6.index)
        )
        for _, row in table6[ours].iterrows():
            score, effect = number(row.get(used)), number(row[delta])
            if math.isnan(score) or math.isnan(effect) or not scores:
                continue
            points.append(
                {
                    R.ID: f"{profile}:table6:{row[R.ID] if R.ID in table6 else R.slug(row['student'])}",
                    "profile": profile,
                    "source": "table6",
                    "label": str(row["student"]),
                    "kind": ALL,
                    "gap": float(np.mean(list(scores.values()))) - (score - effect),
                    "delta": effect,
                    "low": number(row[low]),
                    "high": number(row[high]),
                    "metric": used,
                }
            )
    return pd.DataFrame(points, columns=GAP_COLUMNS)


# ---- the figure ----------------------------------------------------------------------------------

KIND_MARKERS = {SINGLE: "o", SUBSET: "s", ALL: "D"}


def plot_gap(points: pd.DataFrame, path=None, title=None):
    """Scatter of ``gap`` (x) against ``delta`` (y) with its 95% interval, lines at x = 0 and y = 0; colour
    per profile, marker per kind (Table 6 sizes hollow). Saved atomically as PNG when ``path`` is given;
    returns a :class:`mta4dpr_core.report.plots.Plot` (displays itself in a notebook)."""
    from matplotlib.figure import Figure  # noqa: PLC0415 (lazy: matplotlib not loaded by this module)
    from matplotlib.lines import Line2D  # noqa: PLC0415 (lazy: matplotlib not loaded by this module)

    fig = Figure(figsize=(9.5, 5.0), dpi=100, layout="constrained")
    # the points' names go in a numbered key beside the plot: written next to the points they overlapped
    # into unreadable clusters (issue 33); a number is short enough to stay legible beside its marker
    ax, key = fig.subplots(1, 2, width_ratios=[3.0, 1.5])
    key.axis("off")
    if points is None or points.empty:
        ax.axis("off")
        ax.text(
            0.5,
            0.5,
            "no assistant combinations or student sizes in the results yet",
            ha="center",
            va="center",
            fontsize=10,
        )
    else:
        profiles = list(dict.fromkeys(points["profile"]))
        colours = {p: PALETTE[i % len(PALETTE)] for i, p in enumerate(profiles)}
        key_lines = []

        # points at the same place (MTA4DPR over every assistant is also Table 6's own student) share one label
        def place(point) -> tuple:
            return tuple(None if pd.isna(point[c]) else round(float(point[c]), 6) for c in ("gap", "delta"))

        places = {}
        for number, (_, p) in enumerate(points.iterrows(), 1):
            places.setdefault(place(p), []).append(number)
        for number, (_, p) in enumerate(points.iterrows(), 1):
            colour = colours[p["profile"]]
            y, low, high = p["delta"], p["low"], p["high"]
            yerr = None if pd.isna(low) or pd.isna(high) else [[max(y - low, 0.0)], [max(high - y, 0.0)]]
            hollow = p["source"] == "table6"
            ax.errorbar(
                [p["gap"]],
                [y],
                yerr=yerr,
                fmt=KIND_MARKERS.get(p["kind"], "o"),
                color=colour,
                ecolor=colour,
                elinewidth=0.9,
                capsize=2.5,
                markersize=6,
                alpha=0.9,
                markerfacecolor="white" if hollow else colour,
                markeredgecolor=colour,
            )
            label = p["label"] if p["source"] == "table7" else f"{p['label']} (T6)"
            together = places[place(p)]
            if number == together[0]:
                ax.annotate(
                    ",".join(map(str, together)),
                    (p["gap"], y),
                    xytext=(3, 2),
                    textcoords="offset points",
                    fontsize=6.5,
                    color=colour,
                )
            key_lines.append((number, f"{p['profile']}: {label}", colour))
        slots = max(len(key_lines), 24)  # up to 24 lines keep one spacing; more share the height
        for row, (number, text, colour) in enumerate(key_lines):
            key.text(
                0.0,
                1.0 - (row + 0.5) / slots,
                f"{number:>2}  {text}",
                fontsize=6.5,
                color=colour,
                va="center",
                ha="left",
                transform=key.transAxes,
                family="monospace",
            )
        ax.axhline(0, color="#444444", linewidth=0.8)
        ax.axvline(0, color="#444444", linewidth=0.8, linestyle="--")
        metrics = sorted(set(points["metric"].dropna()))
        metric = metrics[0] if len(metrics) == 1 else "metric"
        ax.set_xlabel(
            f"gap: assistants' own {metric} − no-assistant student's {metric} (points)\n"
            "(left of 0: the assistants sit below the student they teach)",
            fontsize=8,
        )
        ax.set_ylabel(f"Δ {metric} vs no assistant (points, 95% interval)", fontsize=8)
        ax.tick_params(labelsize=7)
        handles = [Line2D([], [], color=colours[p], marker="o", linestyle="", label=p) for p in profiles]
        kinds = [k for k in KIND_MARKERS if k in set(points["kind"])]
        handles += [Line2D([], [], color="#444444", marker=KIND_MARKERS[k], linestyle="", label=k) for k in kinds]
        if (points["source"] == "table6").any():
            handles.append(
                Line2D(
                    [],
                    [],
                    color="#444444",
                    marker="D",
                    markerfacecolor="white",
                    linestyle="",
                    label="student size (Table 6)",
                )
            )
        ax.legend(handles=handles, fontsize=7, loc="best", frameon=False)
    fig.suptitle(
        title or "Where the assistants help: Δ vs no assistant against the assistants' gap to the student",
        fontsize=9,
    )
    plot = Plot(fig)
    if path is not None:
        plot.save(path)
    return plot


# ---- writing -------------------------------------------------------------------------------------


def write_ladder_and_gap(results_dir, params):
    """Write ``ladder.{csv,md}``, ``gap_points.{csv,md}`` and ``gap.png`` into ``results_dir``; return
    (ladder, gap points)."""
    results_dir = Path(results_dir)
    ladder = student_ladder(results_dir, params)
    write_table(ladder, results_dir, "ladder", ladder_caption(params))
    points = gap_points(results_dir, params)
    collection = collection_label(params)
    write_table(
        points,
        results_dir,
        "gap_points",
        f"Assistant gap against what the assistants did ({collection} test, profile {params.get('profile', '?')}): {GAP_DEFINITION}",
    )
    plot_gap(
        points,
        results_dir / "gap.png",
        title=f"{params.get('profile', '?')} ({collection}): Δ vs no assistant against the assistants' gap to the student",
    )
    return ladder, points


def cross_profile_gap(results_root, profiles) -> pd.DataFrame:
    """The gap points of every listed profile whose ``results_root/<profile>/`` has Table 1 and Table 6 or 7,
    pooled in ``results_root/assistant_gap.{csv,md,png}``; the caption and title name the profiles skipped.
    ``profiles``: names (their params are loaded from ``params/<name>.yaml`` for the primary metric and the
    collection) or a mapping name -> params."""
    results_root = Path(results_root)
    if isinstance(profiles, dict):
        items = list(profiles.items())
    else:
        items = [(name, _load_profile(name)) for name in profiles]
    frames, used, skipped = [], [], []
    for name, params in items:
        params = dict(params or {}, profile=(params or {}).get("profile", name))
        folder = results_root / name
        if not (folder / "table1.csv").is_file() or not any(
            (folder / f"{t}.csv").is_file() for t in ("table6", "table7")
        ):
            skipped.append(name)
            continue
        points = gap_points(folder, params)
        if points.empty:
            skipped.append(name)
            continue
        frames.append(points)
        used.append(f"{name} ({collection_label(params)})")
    points = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=GAP_COLUMNS)
    missing = f"; skipped (no Table 1 with Table 6/7): {', '.join(skipped)}" if skipped else ""
    write_table(
        points,
        results_root,
        "assistant_gap",
        f"Assistant gap across profiles ({', '.join(used) or 'none'}){missing}. {GAP_DEFINITION}",
    )
    plot_gap(
        points,
        results_root / "assistant_gap.png",
        title=f"Δ vs no assistant against the assistants' gap to the student: {', '.join(used) or 'no profile'}"
        + (f"\n(skipped: {', '.join(skipped)})" if skipped else ""),
    )
    return points


def _load_profile(name) -> dict:
    try:
        return load_params(profile_path(name))
    except ParamsError:
        return {"profile": name}
