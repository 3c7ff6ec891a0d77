"""Results tables: fixed column order, fixed float format, sorted rows, CSV + Markdown.

Metrics are shown in percent (as the paper prints them). For a quantity measured
over several seeds, ``X`` holds the mean and ``X ±`` the standard deviation
(sample std over seeds, ddof=1; blank for a single seed). Each table carries the paper's
figures beside ours in ``paper …`` columns (MS MARCO dev -> SciFact test, NQ recall ->
SciFact recall on the mini profile; see ``results/mini/README.md``). The DL pools are
zero-shot transfer of students trained on SciFact: they are never set beside the paper's
in-domain TREC DL numbers. The paper's numbers are data (``paper_numbers.yaml``).
"""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd

from ..store.atomic import atomic_write_text
from . import paper as _paper

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
            shown[column] = [
                _fmt(v) + (f" ± {_fmt(s)}" if isinstance(s, (int, float)) and not pd.isna(s) and not pd.isna(v) else "")
                for v, s in zip(values, std)
            ]
        else:
            shown[column] = [_fmt(v) for v in values]
    header = "| " + " | ".join(shown.columns) + " |"
    rule = "|" + "|".join("---" for _ in shown.columns) + "|"
    rows = ["| " + " | ".join(str(x) for x in row) + " |" for row in shown.itertuples(index=False)]
    return "\n".join([header, rule, *rows]) + "\n"


# display names of the collections the profiles use (the first component of data.test / data.train)
COLLECTION_LABELS = {"scifact": "SciFact", "nfcorpus": "NFCorpus"}


def collection_label(params, split: str = "test") -> str:
    """The display name of the profile's ``data.<split>`` collection, for captions: the first path component
    of ``params["data"][split]`` (``scifact/test`` -> SciFact, ``nfcorpus/test`` -> NFCorpus, ``msmarco*`` -> MS MARCO),
    otherwise that component as written."""
    name = str(params["data"][split]).strip("/").split("/")[0]
    if name.lower().startswith("msmarco"):
        return "MS MARCO"
    return COLLECTION_LABELS.get(name.lower(), name)


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
# The numbers live in paper_numbers.yaml, keyed by table, row id (row_ids.py) and metric; see mta4dpr_core/report/paper.py.
# These are the positional views the table builders read, keyed by the paper's row id, in each table's column order.
PAPER_TABLE1 = _paper.positional("table1")  # paper row id: (MRR@10, R@50, R@1k, DL19 nDCG@10, DL20 nDCG@10)
PAPER_TABLE2 = _paper.positional(
    "table2"
)  # paper row id (bm25, teacher, mta4dpr as in table1): (R@5, R@20, R@100) on NQ
PAPER_TABLE3 = _paper.positional("table3")  # variant id: (MRR@10, R@50, R@1k, NQ R@5, NQ R@20, NQ R@100)
PAPER_TABLE4 = _paper.positional("table4")  # iteration-<n>: (MRR@10, R@50, R@1k, NQ R@5)
PAPER_TABLE5 = _paper.positional("table5")  # variant id (mta4dpr = KL): (MRR@10, R@50, R@1k, NQ R@5, NQ R@20)
PAPER_TABLE6 = [  # row id, label, MRR@10, R@50, R@1k, (the paper's ↑ over its no-assistant student for each)
    (row, _paper.label("table6", row), v["MRR@10"], v["R@50"], v["R@1k"], (v["↑ MRR@10"], v["↑ R@50"], v["↑ R@1k"]))
    for row, v in _paper.table("table6").items()
]
PAPER_TABLE7 = _paper.positional("table7")  # letters id (none, c, c&s, ...): (MRR@10, R@50, R@1k, DL19, DL20)
PAPER_TABLE8 = _paper.positional("table8")  # variant id: hours training, data construction
PAPER_TABLE9 = [  # row id, label, index, #params, encoding seconds at bs 512, at bs 1024 (paper's text; none for 384-d)
    (row, _paper.label("table9", row), *values) for row, values in _paper.positional("table9").items()
]
PAPER_LETTERS = list(_paper.letters().values())  # CotMAE, SimLM, RetroMAE, M2DPR, weakest to strongest
