"""Results tables: fixed column order, fixed float format, sorted rows, CSV + Markdown.

Metrics are shown in percent (as the paper prints them). For a quantity measured
over several seeds, ``X`` holds the mean and ``X ±`` the standard deviation
(sample std over seeds, ddof=1; blank for a single seed). Each table carries the paper's
figures beside ours in ``paper …`` columns (MS MARCO dev -> SciFact test, NQ recall ->
SciFact recall on the mini profile; see ``docs/profiles.md``). The DL pools are
zero-shot transfer of students trained on SciFact: they are never set beside the paper's
in-domain TREC DL numbers. The paper's numbers are data (``paper_numbers.yaml``).

Stable row ids (the ``row ids`` section below): the first column (``id``) of every table the report layer
writes. They live here, not in a module of their own, so that no new file enters the run cache key.

A row id says *what* a row is, never how it is displayed: labels (``model``, ``variant``,
``method`` ...) may be reworded freely, every reader (paper numbers, claims, expected scores,
tools, tests) joins on ``id``. The scheme, one rule per kind of row:

* a **run variant** keeps the run catalog's variant id (:mod:`mta4dpr_core.experiments.catalog`),
  underscores and all: ``mta4dpr``, ``no_assistants``, ``one_iteration_kd``, ``no_fusion``,
  ``no_iterations``, ``selection_random`` (Table 5; KL is ``mta4dpr``), ``assistants_0_1``
  (Table 7; the empty subset is ``no_assistants``, the full set ``mta4dpr``);
* everything else is a **slug**: lowercase, runs of characters other than ``a-z 0-9 . & + @ _``
  become one ``-`` (:func:`slug`): the teacher is ``teacher``, an assistant or baseline its
  profile ``name`` (``minilm-l6``, ``bm25``), the untrained student ``untrained-student``, an
  iteration ``iteration-2``, a student size its label (``static-wordllama-64-d``), a fused
  assistant its name (``model2vec-minilm-l6&minilm-l6``), a statistic its name
  (``corpus-passages``), a training step ``seed-13-step-4``;
* a row of the **paper's** own numbers inside one of our tables (Tables 6 and 9) is
  ``paper-`` + the paper's row id (``paper-6-layers-768-d``);
* the paper's tables (``paper_numbers.yaml``) use the same ids where a row is one of ours
  (``mta4dpr``, ``no_assistants``, ``selection_rbo``, ``iteration-3``), the slug of the paper's
  model otherwise (``cotmae``, ``bm25``; its teacher is ``teacher``), and Table 7's rows the
  lowercase letters of their assistants (``none``, ``c``, ``c&s``; :data:`LETTER_ORDER`).

>>> slug("no assistant (teacher-only KD, same iterations and steps)")
'no-assistant-teacher-only-kd-same-iterations-and-steps'
>>> slug("static wordllama, 64-d")
'static-wordllama-64-d'
>>> letters_id(["S", "C"])
'c&s'
>>> letters_id([])
'none'
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..config.ids import slug  # noqa: F401 (the one slug rule, re-exported for the tables)
from ..config.typed import typed
from ..store.atomic import atomic_write_text
from . import paper as _paper

FLOAT_FORMAT = "%.2f"


def mean_std(values):
    """Mean and sample standard deviation over seeds (``ddof=1``; nan for a single value)."""
    from .statistics import mean_and_sample_std  # noqa: PLC0415 (lazy: scipy not loaded by this module)

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
                for v, s in zip(values, std, strict=True)
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
    of the profile's ``data.<split>`` (``scifact/test`` -> SciFact, ``nfcorpus/test`` -> NFCorpus, ``msmarco*`` -> MS MARCO),
    otherwise that component as written."""
    name = str(getattr(typed(params).data, split)).strip("/").split("/")[0]
    if name.lower().startswith("msmarco"):
        return "MS MARCO"
    return COLLECTION_LABELS.get(name.lower(), name)


# counts that a missing cell (a paper row, a single seed) would otherwise turn into floats ("5.00 seeds")
INTEGER_COLUMNS = frozenset({"seeds", "dim", "steps", "layers", "iteration", "queries", "passages", "k"})


def with_integer_columns(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with every :data:`INTEGER_COLUMNS` column that holds whole numbers as a nullable integer column."""
    out = df.copy()
    for column in out.columns:
        values = out[column]
        if column in INTEGER_COLUMNS and pd.api.types.is_float_dtype(values):
            present = values.dropna()
            if len(present) and (present == present.round()).all():
                out[column] = values.astype("Int64")
    return out


def _fmt(value):
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, (float, np.floating)):
        return FLOAT_FORMAT % value
    return str(value)


def write_table(df: pd.DataFrame, directory, name: str, title: str = "") -> pd.DataFrame:
    """Write ``<name>.csv`` and ``<name>.md`` atomically (fixed float format)."""

    directory = Path(directory)
    df = with_integer_columns(df)
    buffer = io.StringIO()
    df.to_csv(buffer, index=False, float_format=FLOAT_FORMAT, na_rep="")
    atomic_write_text(directory / f"{name}.csv", buffer.getvalue())
    atomic_write_text(directory / f"{name}.md", (f"## {title}\n\n" if title else "") + markdown(df))
    return df


# ---- row ids (the scheme: this module's docstring) ------------------------------------------
ID = "id"
# run variants (the run catalog's ids)
MTA4DPR = "mta4dpr"
NO_ASSISTANTS = "no_assistants"
ONE_ITERATION_KD = "one_iteration_kd"
KD_MATCHED_WEIGHT = "kd_matched_weight"
ASSISTANTS_ARE_TEACHER = "assistants_are_teacher"
# fixed slugs
TEACHER = "teacher"
UNTRAINED_STUDENT = "untrained-student"
# Table 7's paper letters, weakest to strongest assistant (CotMAE, SimLM, RetroMAE, M2DPR)
LETTER_ORDER = "CSRM"


def iteration_id(number: int) -> str:
    return f"iteration-{int(number)}"


def paper_row_id(row_id: str) -> str:
    """A row of the paper's numbers shown inside one of our tables (Tables 6 and 9)."""
    return f"paper-{row_id}"


def scorer_id(role: str, name: str) -> str:
    """A fixed scorer's row: ``teacher`` for the teacher, else the slug of its profile name."""
    return TEACHER if role == "teacher" else slug(name)


def letters_id(letters) -> str:
    """Table 7's paper row for a set of assistant letters (``none`` for no assistant)."""
    ordered = sorted((str(x).upper() for x in letters), key=LETTER_ORDER.find)
    return "&".join(ordered).lower() or "none"


def with_ids(df: pd.DataFrame, ids) -> pd.DataFrame:
    """``df`` with ``ids`` as its first column ``id`` (replacing an existing one); ids must be unique."""
    ids = [str(x) for x in ids]
    if len(set(ids)) != len(ids):
        raise ValueError(f"row ids are not unique: {ids}")
    out = df.drop(columns=[ID], errors="ignore")
    out.insert(0, ID, ids)
    return out


# ---- the paper's figures (published EMNLP 2024 version), in percent -----------------
# The numbers live in paper_numbers.yaml, keyed by table, row id (the row ids above) and metric; see mta4dpr_core/report/paper.py.
# The table builders read them by row id and column name, never by position.
def paper_values(table: str, row_id: str, columns=None, prefix: str = "paper ") -> dict:
    """``{prefix + column: the paper's value or None}`` of row ``row_id`` of the paper's ``table``, read by column
    name (``columns``: the table's own by default); every column is None where the paper has no such row."""
    values = _paper.table(table).get(row_id, {})
    return {f"{prefix}{column}": values.get(column) for column in (columns or _paper.columns(table))}


PAPER_LETTERS = list(_paper.letters().values())  # CotMAE, SimLM, RetroMAE, M2DPR, weakest to strongest
