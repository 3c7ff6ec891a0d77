"""The regime map: where MTA4DPR helps, against how close its assistants are to the teacher (report only).

Reads what the profiles have written (``teacher_selection.csv``, ``ladder.csv``, ``claims.csv``,
``dose_response.csv`` in ``results/<profile>/``) and the paper's numbers (``paper_numbers.yaml``); it trains and
evaluates nothing.

One point per profile:

* **x** -- the teacher's relative lead over the best assistant on *training* queries:
  ``(teacher - best assistant) / teacher`` on the profile's primary metric (percent); the CSV also has the
  lead over the weakest assistant;
* **y** -- Δ(MTA4DPR - teacher-only KD at the same total KL weight) on test, with its 95% interval and verdict
  (the claim ``mta4dpr-vs-kd-matched-weight``);
* **student** -- where the teacher-only student ends against the assistants' band on test: ``below``,
  ``inside`` or ``above`` (the marker), and its relative position in the band (0 = the weakest assistant,
  1 = the best).

The paper's MS MARCO and NQ settings are points too, from its published tables: their gaps are on its
evaluation sets (the paper reports no training-query scores) and their y is the paper's own comparison
(MTA4DPR - w/o assistants, whose loss weights differ), without an interval; they are drawn hollow.

The dose-response sweeps (``dose_response.csv``) go in a second panel: their x is measured differently (the
teacher's lead over the best assistant on re-ranking the training candidates), so they are not put on the
first panel's axis.

>>> position(50.0, [40.0, 60.0]), position(30.0, [40.0, 60.0]), position(61.0, [40.0, 60.0])
('inside', 'below', 'above')
>>> round(relative_gap(43.7, 42.0), 2)
3.89
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import paper as P
from .ladder import number
from .plots import Plot
from .tables import write_table

MATCHED_CLAIM = "mta4dpr-vs-kd-matched-weight"
PAPER_CLAIM = "mta4dpr-vs-no-assistant"
COLUMNS = [
    "id",
    "source",
    "setting",
    "metric",
    "gap to best assistant (%)",
    "gap to weakest assistant (%)",
    "gap measured on",
    "student vs band",
    "student position in band",
    "Δ",
    "low",
    "high",
    "verdict",
    "Δ is",
]
# the paper's settings: (id, setting, the table and column of its scores, its assistants' rows, its teacher row,
# the rows of MTA4DPR and of its teacher-only student)
PAPER_SETTINGS = (
    ("paper:msmarco", "paper, MS MARCO dev", "table1", "MRR@10", ("cotmae", "simlm", "retromae", "m2dpr"), "teacher"),
    ("paper:nq", "paper, NQ test", "table2", "R@20", ("rocketqav1", "pair"), "teacher"),
)
PAPER_STUDENT_ROWS = {
    "table1": ("table1", "mta4dpr", "no_assistants", "MRR@10"),
    "table2": ("table3", "mta4dpr", "no_assistants", "NQ R@20"),
}


def relative_gap(teacher: float, assistant: float) -> float:
    """The teacher's relative lead over an assistant, in percent."""
    return 100.0 * (teacher - assistant) / teacher


def position(student: float, band) -> str:
    """Where ``student`` ends against the assistants' scores ``band``."""
    low, high = min(band), max(band)
    return "below" if student < low else "above" if student > high else "inside"


def _point(point_id, source, metric, teacher, assistants, measured_on, student, band, delta, delta_is, setting=None):
    """One point of the map: the teacher's lead over its best and weakest assistant, where the teacher-only
    student ends against the assistants' ``band``, and ``delta`` = (Δ, low, high, verdict) of MTA4DPR."""
    effect, low, high, verdict = delta
    return {
        "id": point_id,
        "source": source,
        "setting": setting or point_id,
        "metric": metric,
        "gap to best assistant (%)": relative_gap(teacher, max(assistants)),
        "gap to weakest assistant (%)": relative_gap(teacher, min(assistants)),
        "gap measured on": measured_on,
        "student vs band": position(student, band),
        "student position in band": (student - min(band)) / (max(band) - min(band)) if len(band) > 1 else np.nan,
        "Δ": effect,
        "low": low,
        "high": high,
        "verdict": verdict,
        "Δ is": delta_is,
    }


def _read(folder: Path, name: str) -> pd.DataFrame | None:
    path = folder / f"{name}.csv"
    return pd.read_csv(path) if path.is_file() else None


def profile_point(folder, profile: str, metric: str = "nDCG@10") -> dict | None:
    """The profile's point (None when one of its tables is missing)."""
    folder = Path(folder)
    selection, ladder, claims = (_read(folder, n) for n in ("teacher_selection", "ladder", "claims"))
    if selection is None or ladder is None or claims is None or MATCHED_CLAIM not in set(claims["id"]):
        return None
    column = f"train {metric}"
    teacher = float(selection.loc[selection["profile's teacher"].astype(bool), column].iloc[0])
    assistants = selection.loc[selection["role"].fillna("") == "assistant", column].astype(float).tolist()
    rungs = ladder.set_index("rung")
    score = rungs[[c for c in ladder.columns if c.startswith("ours ")][0]].map(number)
    band = [score[r] for r in score.index if str(r).startswith("assistant:")]
    student = score["student:no-assistant"]
    claim = claims.set_index("id").loc[MATCHED_CLAIM]
    return _point(
        profile,
        "profile",
        metric,
        teacher,
        assistants,
        "training queries (full retrieval)",
        student,
        band,
        (float(claim["effect"]), float(claim["low"]), float(claim["high"]), claim["verdict"]),
        "MTA4DPR − teacher-only KD at the same total KL weight (test)",
    )


def paper_points() -> list[dict]:
    """The paper's MS MARCO and NQ settings, from its published numbers."""
    points = []
    for point_id, setting, table, metric, assistant_rows, teacher_row in PAPER_SETTINGS:
        teacher = P.value(table, teacher_row, metric)
        assistants = [P.value(table, row, metric) for row in assistant_rows]
        student_table, mta, none, student_metric = PAPER_STUDENT_ROWS[table]
        student = P.value(student_table, none, student_metric)
        delta = P.value(student_table, mta, student_metric) - student
        points.append(
            _point(
                point_id,
                "paper",
                metric,
                teacher,
                assistants,
                "the paper's evaluation set (it reports no training-query scores)",
                student,
                assistants,
                (delta, np.nan, np.nan, ""),
                "the paper's MTA4DPR − w/o assistants (loss weights differ), no interval",
                setting=setting,
            )
        )
    return points


def sweep_points(results_root, profiles) -> pd.DataFrame:
    """Every profile's dose-response rows, with the profile's name."""
    frames = []
    for name in profiles:
        table = _read(Path(results_root) / name, "dose_response")
        if table is not None:
            frames.append(table.assign(profile=name))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


MARKERS = {"inside": "o", "below": "v", "above": "^"}


def plot_regime_map(points: pd.DataFrame, sweeps: pd.DataFrame, path=None):
    """Left: the profiles and the paper's settings; right: the dose-response sweeps. Returns a
    :class:`mta4dpr_core.report.plots.Plot`, saved atomically as PNG when ``path`` is given."""
    from matplotlib.figure import Figure  # noqa: PLC0415 (lazy: matplotlib not loaded by this module)

    fig = Figure(figsize=(12, 4.8), dpi=100, layout="constrained")
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.25, 1]})
    for _, p in points.iterrows():
        paper = p["source"] == "paper"
        marker = MARKERS[p["student vs band"]]
        color = "#C44E52" if paper else "#4C72B0"
        if not paper:
            left.errorbar(
                p["gap to best assistant (%)"],
                p["Δ"],
                yerr=[[p["Δ"] - p["low"]], [p["high"] - p["Δ"]]],
                fmt="none",
                ecolor="#888888",
                capsize=3,
            )
        # the assistants' spread: from the best assistant's gap to the weakest's
        left.hlines(
            p["Δ"], p["gap to best assistant (%)"], p["gap to weakest assistant (%)"], color=color, lw=1, alpha=0.4
        )
        left.scatter(
            p["gap to best assistant (%)"],
            p["Δ"],
            marker=marker,
            s=70,
            facecolors="none" if paper else color,
            edgecolors=color,
            zorder=3,
        )
        left.annotate(
            p["setting"],
            (p["gap to best assistant (%)"], p["Δ"]),
            xytext=(7, -3),
            textcoords="offset points",
            fontsize=8,
        )
    left.axhline(0, color="#333333", lw=0.8)
    left.axvspan(0, 10, color="#55A868", alpha=0.08)
    left.set_xlabel("teacher's lead over the best assistant (%, relative)")
    left.set_ylabel("Δ (points): filled = ours vs matched-weight KD;\nhollow = the paper's vs w/o assistants")
    left.set_title(
        "Profiles and the paper (marker: the best assistant; line: to the weakest; green: within 10%)", fontsize=9
    )
    for marker_name, marker in MARKERS.items():
        left.scatter(
            [], [], marker=marker, color="#666666", label=f"teacher-only student {marker_name} the assistants' band"
        )
    left.legend(fontsize=7, loc="lower left")

    if not sweeps.empty:
        for profile, group in sweeps.groupby("profile", sort=True):
            group = group.sort_values("λ")
            x, y = group["gap to best assistant (%)"], group["Δ vs matched nDCG@10"]
            err = np.vstack([y - group["Δ vs matched low"], group["Δ vs matched high"] - y])
            right.errorbar(x, y, yerr=err, fmt="o-", capsize=3, label=profile)
            for xi, yi, weight in zip(x, y, group["λ"], strict=True):
                right.annotate(f"{weight:g}", (xi, yi), xytext=(4, 5), textcoords="offset points", fontsize=7)
        right.legend(fontsize=8)
    right.axhline(0, color="#333333", lw=0.8)
    right.set_xlabel("teacher's lead over the best assistant on\nre-ranking the training candidates (%)")
    right.set_ylabel("Δ nDCG@10 vs matched-weight KD (points)")
    right.set_title("Dose-response sweeps (labels: λ; mechanism test)", fontsize=10)
    fig.suptitle("Where MTA4DPR helps: Δ against how far the assistants sit below the teacher", fontsize=11)
    plot = Plot(fig)
    if path is not None:
        plot.save(path)
    return plot


def write_regime_map(results_root, profiles, metric: str = "nDCG@10"):
    """``results_root/regime_map.{csv,md,png}`` from every listed profile with its tables, and the paper."""
    results_root = Path(results_root)
    found = [p for p in (profile_point(results_root / name, name, metric) for name in profiles) if p is not None]
    points = pd.DataFrame(found + paper_points(), columns=COLUMNS)
    skipped = sorted(set(profiles) - {p["id"] for p in found})
    sweeps = sweep_points(results_root, profiles)
    write_table(
        points,
        results_root,
        "regime_map",
        "Regime map: the teacher's relative lead over its best and weakest assistant, where the teacher-only student "
        "ends against the assistants' band (test), and Δ with its 95% interval (ours: MTA4DPR − teacher-only KD at "
        "the same total KL weight; the paper's: MTA4DPR − w/o assistants)"
        + (f"; skipped (tables missing): {', '.join(skipped)}" if skipped else ""),
    )
    figure = plot_regime_map(points, sweeps, results_root / "regime_map.png")
    return points, sweeps, figure
