"""Stable row ids: the first column (``id``) of every table the report layer writes.

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

import re

import pandas as pd

ID = "id"
# run variants (the run catalog's ids)
MTA4DPR = "mta4dpr"
NO_ASSISTANTS = "no_assistants"
ONE_ITERATION_KD = "one_iteration_kd"
# fixed slugs
TEACHER = "teacher"
UNTRAINED_STUDENT = "untrained-student"
# Table 7's paper letters, weakest to strongest assistant (CotMAE, SimLM, RetroMAE, M2DPR)
LETTER_ORDER = "CSRM"


def slug(text) -> str:
    """A lowercase id from any label: runs of characters other than ``a-z 0-9 . & + @ _`` become one ``-``."""
    return re.sub(r"[^a-z0-9.&+@_]+", "-", str(text).lower()).strip("-")


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
