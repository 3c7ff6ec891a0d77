"""Results tables: fixed column order, fixed float format, sorted rows, CSV + Markdown.

Metrics are shown in percent (as the paper prints them). For a quantity measured
over several seeds, ``X`` holds the mean and ``X ±`` the standard deviation
(sample std over seeds, ddof=1; blank for a single seed). Each table carries the paper's
figures beside ours in ``paper …`` columns (MS MARCO dev -> SciFact test, TREC DL
-> the DL pools, NQ recall -> SciFact recall on the mini profile; see
``results/mini/README.md``).
"""
from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd

from .atomic import atomic_write_text

FLOAT_FORMAT = "%.2f"


def mean_std(values):
    """Mean and sample standard deviation over seeds (``ddof=1``; nan for a single value)."""
    from .statistics import mean_and_sample_std

    return mean_and_sample_std([v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))])


def percent(value):
    return None if value is None else 100.0 * value


def markdown(df: pd.DataFrame) -> str:
    """Pipe table; ``X`` and ``X ±`` columns are shown together as ``mean ± std``."""
    shown = pd.DataFrame(index=df.index)
    for column in df.columns:
        if column.endswith(" ±"):
            continue
        values = df[column]
        if f"{column} ±" in df.columns:
            std = df[f"{column} ±"]
            shown[column] = [_fmt(v) + (f" ± {_fmt(s)}" if isinstance(s, (int, float)) and not pd.isna(s) and not pd.isna(v) else "")
                             for v, s in zip(values, std)]
        else:
            shown[column] = [_fmt(v) for v in values]
    header = "| " + " | ".join(shown.columns) + " |"
    rule = "|" + "|".join("---" for _ in shown.columns) + "|"
    rows = ["| " + " | ".join(str(x) for x in row) + " |" for row in shown.itertuples(index=False)]
    return "\n".join([header, rule, *rows]) + "\n"


def _fmt(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, (float, np.floating)):
        return FLOAT_FORMAT % value
    return str(value)


def write_table(df: pd.DataFrame, directory, name: str, title: str = "") -> pd.DataFrame:
    """Write ``<name>.csv`` and ``<name>.md`` atomically (fixed float format)."""
    from pathlib import Path

    directory = Path(directory)
    buffer = io.StringIO()
    df.to_csv(buffer, index=False, float_format=FLOAT_FORMAT, na_rep="")
    atomic_write_text(directory / f"{name}.csv", buffer.getvalue())
    atomic_write_text(directory / f"{name}.md", (f"## {title}\n\n" if title else "") + markdown(df))
    return df


# ---- the paper's figures (published EMNLP 2024 version), in percent -----------------
PAPER_TABLE1 = {  # model: (MRR@10, R@50, R@1k, DL19 nDCG@10, DL20 nDCG@10)
    "BM25": (18.7, 59.2, 85.7, 49.7, 48.7),
    "CotMAE": (39.4, 87.0, 98.7, None, 70.4),
    "SimLM": (41.1, 87.8, 98.7, 71.4, 69.7),
    "RetroMAE": (41.6, 88.6, 98.8, None, None),
    "M2DPR": (42.0, None, None, None, None),
    "SimLM-reranker (teacher)": (43.7, None, None, None, None),
    "PROD": (39.3, 87.0, 98.4, 73.3, None),
    "No assistant": (39.9, 86.8, 98.5, 69.2, 67.7),  # Table 7's teacher-only row (same recipe, no assistant)
    "MTA4DPR": (41.1, 88.4, 98.7, 71.2, 71.1),
}
PAPER_TABLE2 = {  # model: (R@5, R@20, R@100) on NQ
    "BM25": (None, 59.1, 73.7),
    "RocketQAv1": (74.0, 82.7, 88.5), "PAIR": (74.9, 83.5, 89.1), "ERNIE-Search (teacher)": (77.0, 85.3, 89.7),
    "MTA4DPR": (74.5, 83.6, 88.3),
}
# Table 1 analogue -> Table 2 (NQ) analogue: the NQ setting has its own teacher and assistants
TABLE2_ANALOGUE = {"BM25": "BM25", "SimLM-reranker (teacher)": "ERNIE-Search (teacher)", "MTA4DPR": "MTA4DPR"}
PAPER_TABLE3 = {  # variant: (MRR@10, R@50, R@1k, NQ R@5, NQ R@20, NQ R@100)
    "MTA4DPR": (41.1, 88.4, 98.7, 74.5, 83.6, 88.3),
    "w/o assistants": (39.9, 86.8, 98.5, 71.4, 82.2, 87.3),
    "w/o fusion": (40.8, 87.7, 98.7, 73.2, 83.4, 88.2),
    "w/o iterations": (40.1, 87.1, 98.6, 71.9, 82.7, 87.5),
}
PAPER_TABLE4 = {1: (40.1, 87.1, 98.6, 71.9), 2: (40.7, 87.9, 98.7, 73.1), 3: (41.1, 88.4, 98.7, 74.5)}  # MRR, R@50, R@1k, NQ R@5
PAPER_TABLE5 = {  # method: (MRR@10, R@50, R@1k, NQ R@5, NQ R@20)
    "random": (40.5, 87.6, 98.6, 72.8, 82.4), "footrule": (40.8, 87.7, 98.7, 74.3, 83.1),
    "rbo": (40.9, 87.9, 98.8, 74.1, 83.0), "kl": (41.1, 88.4, 98.7, 74.5, 83.6),
}
PAPER_TABLE6 = [  # student, MRR@10, R@50, R@1k, (the paper's ↑ over its no-assistant student for each)
    ("3 layers, 768-d, 45M", 39.4, 86.5, 98.4, (0.9, 1.1, 0.7)),
    ("6 layers, 768-d, 66M", 41.1, 88.4, 98.7, (1.2, 1.6, 0.3)),
    ("12 layers, 768-d, 110M", 41.8, 88.6, 98.8, (0.7, 0.8, 0.1)),
]
PAPER_TABLE7 = {  # assistants (C, S, R, M letters): (MRR@10, R@50, R@1k, DL19, DL20)
    "": (39.9, 86.8, 98.5, 69.2, 67.7), "C": (40.2, 87.3, 98.5, 69.8, 68.1), "S": (40.4, 87.3, 98.5, 70.0, 68.9),
    "R": (40.6, 87.7, 98.7, 70.0, 69.7), "M": (None, None, None, None, None),
    "C&S": (40.4, 87.3, 98.8, 70.2, 69.3), "C&R": (40.6, 87.3, 98.7, 69.6, 68.6), "C&M": (40.5, 87.6, 98.7, 70.0, 69.7),
    "S&R": (40.7, 87.3, 98.7, 69.2, 69.3), "S&M": (40.6, 87.7, 98.7, 70.1, 69.0), "R&M": (40.8, 87.8, 98.8, 70.3, 69.9),
    "C&S&R": (40.7, 87.6, 98.7, 70.8, 70.3), "C&S&M": (40.8, 87.7, 98.7, 70.1, 69.0), "C&R&M": (40.9, 88.0, 98.8, 70.3, 69.9),
    "S&R&M": (None, None, None, None, None), "C&S&R&M": (41.0, 88.0, 98.8, 70.6, 70.7),
}
PAPER_TABLE8 = {  # hours: training, data construction (MTA4DPR against its teacher-only baseline)
    "MTA4DPR": (7.53, 12.9), "no assistant (teacher-only KD, same iterations and steps)": (7.12, 8.2)}
PAPER_TABLE9 = [  # student, index, #params, encoding seconds at bs 512, at bs 1024 (from the paper's text; none for 384-d)
    ("6 layers, 768-d", "25.2G", "66M", 163.23, 87.86), ("12 layers, 384-d", "12.8G", "33M", 297.06, None),
    ("12 layers, 768-d", "25.2G", "110M", 304.30, 135.82)]
PAPER_LETTERS = ["C", "S", "R", "M"]  # CotMAE, SimLM, RetroMAE, M2DPR, weakest to strongest
