"""Figures for the notebooks (matplotlib, no pyplot state).

Every function returns a :class:`Plot`: the last expression of a cell displays it as a PNG
rendered with ``bbox_inches="tight"`` at a fixed dpi (titles and labels are never clipped,
whatever the backend), and ``plot.save(path)`` writes the same PNG.
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from ..store.atomic import atomic_write_bytes
from . import tables as R  # row ids (tables.py)
from .walkthrough import LOSS_LABELS, LOSS_TERMS

DPI = 100
ORIGINAL_COLOR = "#4C72B0"
FUSED_COLOR = "#DD8452"
TEACHER_COLOR = "#222222"
PALETTE = [
    "#4C72B0",
    "#55A868",
    "#C44E52",
    "#8172B2",
    "#937860",
    "#DA8BC3",
    "#8C8C8C",
    "#CCB974",
    "#64B5CD",
    "#DD8452",
    "#1B9E77",
    "#D95F02",
    "#7570B3",
    "#E7298A",
    "#66A61E",
    "#E6AB02",
]


class Plot:
    """A matplotlib Figure that displays itself as a tight PNG in notebooks."""

    def __init__(self, figure):
        self.figure = figure

    def png(self) -> bytes:
        buffer = io.BytesIO()
        self.figure.savefig(
            buffer, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.15, metadata={"Software": None}
        )
        return buffer.getvalue()

    def _repr_png_(self):
        return self.png()

    def save(self, path) -> Path:
        path = Path(path)
        atomic_write_bytes(path, self.png())
        return path


def _figure(width, height, rows=1, cols=1, **kwargs):
    from matplotlib.figure import Figure  # noqa: PLC0415 (lazy: matplotlib not loaded by this module)

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, **kwargs)
    return fig, axes


def _message(text, width=7, height=1.2) -> Plot:
    fig, axes = _figure(width, height)
    axes[0, 0].axis("off")
    axes[0, 0].text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=10)
    return Plot(fig)


def _wrap(text, width=60):
    return "\n".join(textwrap.wrap(str(text), width)) or str(text)


# ---- 02: distributions and KL ------------------------------------------------------------------


def distributions(frames, max_fused=1) -> Plot:
    """One panel per query (``walkthrough.query_distributions``): probability of each candidate
    (sorted by the teacher) under the teacher (black), each assistant, and the fused assistant
    closest to the teacher on that query (dashed, orange)."""
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415 (lazy: matplotlib not loaded by this module)

    if not frames:
        return _message("no queries to show")
    fig, axes = _figure(7.5, 2.9 * len(frames), rows=len(frames), cols=1)
    for ax, frame in zip(axes[:, 0], frames, strict=True):
        originals = frame.attrs.get("originals", 0)
        names = [c for c in frame.columns if c not in ("passage", "positive", "teacher")]
        kl = frame.attrs.get("kl", {})
        fused = sorted(names[originals:], key=lambda n: kl.get(n, np.inf))[:max_fused]
        x = np.arange(1, len(frame) + 1)
        ax.plot(x, frame["teacher"], color=TEACHER_COLOR, lw=2.4, marker="o", ms=4, label="teacher", zorder=5)
        for i, name in enumerate(names[:originals]):
            ax.plot(
                x,
                frame[name],
                color=PALETTE[(i + 1) % len(PALETTE)],
                lw=1.3,
                marker=".",
                label=f"{name} (KL {kl.get(name, np.nan):.2f})",
            )
        for name in fused:
            ax.plot(
                x, frame[name], color=FUSED_COLOR, lw=2, ls="--", label=f"fused {name} (KL {kl.get(name, np.nan):.2f})"
            )
        for position in np.where(frame["positive"].to_numpy())[0]:
            ax.axvline(position + 1, color="#2ca02c", alpha=0.25, lw=6)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True, min_n_ticks=2))
        ax.set_xlim(0.5, len(frame) + 0.5)
        ax.tick_params(axis="x", labelsize=8)
        ax.set_xlabel("candidate, ordered by teacher probability (green band = positive)")
        ax.set_ylabel("probability")
        ax.set_ylim(0, None)
        ax.set_title(
            _wrap(f"{frame.attrs.get('query_id', '')}: {frame.attrs.get('query', '')}", 80), fontsize=10, loc="left"
        )
        ax.legend(
            fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="KL(teacher ‖ ·) in nats", title_fontsize=8
        )
    fig.suptitle("Teacher, assistant and fused distributions over one query's candidates", fontsize=11)
    return Plot(fig)


def kl_heatmap(matrix: pd.DataFrame, title="Mean KL(row ‖ column) over training queries (nats)") -> Plot:
    """``walkthrough.kl_matrix``: KL between the teacher, the assistants and the fused assistants."""
    n = len(matrix)
    size = max(4.5, 0.6 * n + 2.5)
    fig, axes = _figure(size + 1.0, size)
    ax = axes[0, 0]
    values = matrix.to_numpy()
    image = ax.imshow(values, cmap="viridis_r")
    ax.set_xticks(range(n), matrix.columns, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), matrix.index, fontsize=8)
    ax.set_xlabel("Q (column)")
    ax.set_ylabel("P (row)")
    if n <= 16:
        threshold = np.nanmax(values) * 0.5 if np.isfinite(values).any() else 0
        for i in range(n):
            for j in range(n):
                ax.text(
                    j,
                    i,
                    f"{values[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if values[i, j] > threshold else "black",
                )
    fig.colorbar(image, ax=ax, label="KL(P ‖ Q) in nats", shrink=0.8)
    ax.set_title(_wrap(title, 60), fontsize=10)
    return Plot(fig)


# ---- 03: selection over training ------------------------------------------------------------


def selection_shares(shares: pd.DataFrame, title="Assistant chosen per batch over training (KL selection)") -> Plot:
    """``walkthrough.selection_shares``: stacked area of each assistant's share per window of steps;
    dotted lines mark the end of each iteration."""
    if shares is None or shares.empty:
        return _message("no batch selections recorded (no assistants, or γ = 0)")
    fig, axes = _figure(8, 4.2)
    ax = axes[0, 0]
    members = shares.attrs.get("members", {})
    colors = [PALETTE[i % len(PALETTE)] for i in range(len(shares.columns))]
    x = shares.index.to_numpy()
    ax.stackplot(
        x,
        shares.to_numpy().T,
        labels=[f"{n} (fused)" if members.get(n, 1) > 1 else n for n in shares.columns],
        colors=colors,
        alpha=0.9,
        step="pre" if len(x) < 3 else None,
    )
    for end in shares.attrs.get("iteration_ends", [])[:-1]:
        ax.axvline(end, color="black", ls=":", lw=1.2)
    ax.set_xlim(x.min(), x.max())
    ax.set_ylim(0, 100)
    ax.set_xlabel(
        f"training step, all iterations (window of {shares.attrs.get('window', '?')} steps; dotted = new iteration)"
    )
    ax.set_ylabel("share of batches in window (%)")
    ax.set_title(_wrap(title, 70), fontsize=11)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), title="assistant", title_fontsize=8)
    return Plot(fig)


# ---- 04: training curves --------------------------------------------------------------------


def loss_curves(terms: pd.DataFrame, final: pd.DataFrame | None = None, smooth=5) -> Plot:
    """``walkthrough.loss_terms``: each loss term per step (one panel each; thin = raw, thick = moving
    average of ``smooth`` steps; seeds averaged); dotted lines mark new iterations. Without recorded
    terms, falls back to each iteration's last-step loss (``walkthrough.final_losses``)."""

    if terms is None or terms.empty:
        if final is None or final.empty:
            return _message("no loss record in the stored runs")
        fig, axes = _figure(6, 3.2)
        ax = axes[0, 0]
        mean = final.groupby("iteration")["final loss"].mean()
        ax.plot(mean.index, mean.to_numpy(), marker="o")
        ax.set_xticks(mean.index)
        ax.set_xlabel("iteration")
        ax.set_ylabel("loss at the last step (weighted sum)")
        ax.set_title("Final training loss per iteration (per-step terms were not recorded)", fontsize=10)
        return Plot(fig)
    present = [t for t in LOSS_TERMS if t in terms.columns and terms[t].notna().any()]
    mean = terms.groupby("global step")[present + ["iteration"]].mean()
    ends = terms.groupby("iteration")["global step"].max().sort_index().tolist()
    fig, axes = _figure(8, 2.2 * len(present) + 0.6, rows=len(present), cols=1, sharex=True)
    for ax, name, color in zip(axes[:, 0], present, PALETTE, strict=False):
        ax.plot(mean.index, mean[name], color=color, lw=0.8, alpha=0.4)
        for _, part in mean.groupby("iteration"):  # the moving average restarts with each iteration
            ax.plot(part.index, part[name].rolling(smooth, min_periods=1).mean(), color=color, lw=2)
        for end in ends[:-1]:
            ax.axvline(end, color="black", ls=":", lw=1.2)
        ax.set_ylabel("loss (nats)", fontsize=9)
        ax.set_title(LOSS_LABELS.get(name, name), fontsize=10, loc="left")
    axes[-1, 0].set_xlabel("training step, all iterations (dotted = new iteration)")
    fig.suptitle(
        f"Loss terms per training step ({terms['seed'].nunique()} seed(s); thick = {smooth}-step moving average)",
        fontsize=11,
    )
    return Plot(fig)


def metrics_per_iteration(
    table: pd.DataFrame,
    title="Student test metrics after each iteration (iteration 0 = before training)",
    baseline=None,
) -> Plot:
    """``walkthrough.metrics_per_iteration``: each metric (percent) per iteration, ± std over seeds.

    ``baseline`` (optional, e.g. ``walkthrough.no_assistant_final(out['table1'])``): {metric: value in percent}
    of the no-assistant student's final score; each metric plotted here that has a finite value gets a
    horizontal dashed line in its colour, labelled "no assistant (final)". None (default) draws none."""
    if table is None or table.empty:
        return _message("no per-iteration test evaluations stored")
    metrics = [c for c in table.columns if c != "iteration" and not c.endswith(" ±")]
    fig, axes = _figure(7, 3.8)
    ax = axes[0, 0]
    for name, color in zip(metrics, PALETTE, strict=False):
        err = table.get(f"{name} ±")
        err = err.fillna(0).to_numpy() if err is not None else None
        ax.errorbar(table["iteration"], table[name], yerr=err, marker="o", capsize=3, color=color, label=name)
        value = (baseline or {}).get(name)
        if value is not None and np.isfinite(float(value)):
            ax.axhline(float(value), color=color, ls="--", lw=1.2, alpha=0.8, label=f"{name}: no assistant (final)")
    ax.set_xticks(table["iteration"].tolist())
    ax.set_xlabel("iteration (0 = untrained student)")
    ax.set_ylabel("test metric (%)")
    ax.set_title(_wrap(title, 70), fontsize=11)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return Plot(fig)


# ---- 05: intervals --------------------------------------------------------------------------


def interval_bars(
    df: pd.DataFrame,
    label: str,
    value: str,
    low: str | None = None,
    high: str | None = None,
    err: str | None = None,
    title="",
    xlabel=None,
    reference=None,
) -> Plot:
    """Horizontal bars of ``df[value]`` per ``df[label]`` with an interval: [``low``, ``high``]
    columns (e.g. a 95% interval) or ± ``err`` (e.g. std over seeds); ``reference`` draws a vertical line."""
    frame = df[[c for c in (label, value, low, high, err) if c]].copy()
    frame = frame[pd.to_numeric(frame[value], errors="coerce").notna()]
    if frame.empty:
        return _message(f"no values in column {value!r}")
    values = frame[value].astype(float).to_numpy()
    lower = upper = None
    if low and high and low in frame and high in frame:
        lower = np.clip(values - frame[low].astype(float).to_numpy(), 0, None)
        upper = np.clip(frame[high].astype(float).to_numpy() - values, 0, None)
    elif err and err in frame and frame[err].astype(float).notna().any():
        lower = upper = np.nan_to_num(frame[err].astype(float).to_numpy())
    fig, axes = _figure(7.5, 0.45 * len(frame) + 1.5)
    ax = axes[0, 0]
    y = np.arange(len(frame))
    colors = [ORIGINAL_COLOR if v >= 0 else "#C44E52" for v in values]
    ax.barh(
        y,
        values,
        color=colors,
        alpha=0.85,
        xerr=None if lower is None else np.vstack([np.nan_to_num(lower), np.nan_to_num(upper)]),
        capsize=4,
        error_kw={"elinewidth": 1.2, "ecolor": "black"},
    )
    ax.set_yticks(y, [str(v) for v in frame[label]])
    ax.invert_yaxis()
    span = np.nanmax(
        np.abs(
            np.concatenate(
                [
                    values + np.nan_to_num(upper if upper is not None else 0),
                    values - np.nan_to_num(lower if lower is not None else 0),
                ]
            )
        )
    )
    for i, (yi, v) in enumerate(zip(y, values, strict=True)):  # the value beyond the end of its interval
        end = (
            v + (np.nan_to_num(upper[i]) if upper is not None else 0)
            if v >= 0
            else v - (np.nan_to_num(lower[i]) if lower is not None else 0)
        )
        ax.text(end, yi, f"  {v:.2f}  ", va="center", ha="left" if v >= 0 else "right", fontsize=8)
    if reference is not None:
        ax.axvline(reference, color="black", lw=1)
    if (values < 0).any():
        ax.set_xlim(-span * 1.25, span * 1.25)
    else:
        ax.set_xlim(0, span * 1.2 if span > 0 else 1)
    ax.set_xlabel(xlabel or value)
    interval = (
        "95% interval"
        if lower is not None and low
        else ("± std over seeds" if lower is not None else "one seed: no interval")
    )
    ax.set_title(_wrap(f"{title} ({interval})" if title else interval, 70), fontsize=11)
    return Plot(fig)


def ablation_figure(table: pd.DataFrame, metric="MRR@10", label="variant") -> Plot:
    """Table 3: the difference to MTA4DPR with its 95% interval when the table has "Δ", "Δ low",
    "Δ high", else each variant's ``metric`` ± std over seeds."""
    if {"Δ", "Δ low", "Δ high"} <= set(table.columns):
        # MTA4DPR's own row (Δ = 0 by definition) is found by its row id, never by its label
        rows = table[table[R.ID] != R.MTA4DPR] if R.ID in table else table
        return interval_bars(
            rows,
            label,
            "Δ",
            low="Δ low",
            high="Δ high",
            reference=0,
            title="Ablations: difference to MTA4DPR",
            xlabel="Δ test metric vs MTA4DPR (percentage points)",
        )
    return interval_bars(
        table,
        label,
        metric,
        err=f"{metric} ±" if f"{metric} ±" in table.columns else None,
        title=f"Ablations: test {metric}",
        xlabel=f"test {metric} (%)",
    )


# ---- 07: every claim at a glance ------------------------------------------------------------------

VERDICT_COLORS = {"confirmed": "#55A868", "contradicted": "#C44E52", "inconclusive": "#8C8C8C", "borderline": "#CCB974"}


def claims_forest(
    claims: pd.DataFrame, title="Every claim: our Δ (95% interval, seeds × queries) and the paper's Δ"
) -> Plot:
    """A forest plot of ``claims.csv``: one row per distinct quality comparison, grouped by the paper
    table it comes from; the interval coloured by the Holm-adjusted verdict; the paper's Δ (in its own
    metric, MRR@10 on MS MARCO for most) as an open diamond. Composite and timing rows are left out."""
    frame = claims[pd.to_numeric(claims.get("effect"), errors="coerce").notna()].copy()
    if "family" in frame:
        frame = frame[frame["family"].astype(str) == "quality"]  # claims.QUALITY: the Holm family
    if frame.empty:
        return _message("no claims with an interval")
    frame = frame.sort_values("table", kind="stable").reset_index(drop=True)
    fig, axes = _figure(8.5, 0.38 * len(frame) + 1.6)
    ax = axes[0, 0]
    y = np.arange(len(frame))
    for i, row in frame.iterrows():
        color = VERDICT_COLORS.get(str(row["verdict"]), "#8C8C8C")
        ax.plot([row["low"], row["high"]], [i, i], color=color, lw=2.5, solid_capstyle="butt")
        ax.plot(row["effect"], i, "o", color=color, ms=5)
        paper = pd.to_numeric(pd.Series([row.get("paper Δ")]), errors="coerce").iloc[0]
        if not np.isnan(paper):
            ax.plot(paper, i, "D", mfc="none", mec="black", ms=6)
    labels = [f"{row['table']} · {_wrap(row.get('id', row['claim']), 48)}" for _, row in frame.iterrows()]
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="black", lw=1)
    for boundary in np.where(frame["table"].to_numpy()[1:] != frame["table"].to_numpy()[:-1])[0]:
        ax.axhline(boundary + 0.5, color="#DDDDDD", lw=0.8)
    from matplotlib.lines import Line2D  # noqa: PLC0415 (lazy: matplotlib not loaded by this module)

    handles = [
        Line2D([], [], color=c, lw=2.5, label=v) for v, c in VERDICT_COLORS.items() if v in set(frame["verdict"])
    ]
    handles.append(Line2D([], [], marker="D", mfc="none", mec="black", ls="", label="paper Δ (its own metric)"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    metric = str(frame["metric"].iloc[0]) if "metric" in frame else "primary metric"
    ax.set_xlabel(f"Δ {metric}, row minus its reference (percentage points)")
    # over the whole figure (labels, plot and legend), on one line: the axes alone wrapped it mid-phrase
    fig.suptitle(title, fontsize=11)
    return Plot(fig)
