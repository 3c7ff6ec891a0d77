"""The one rule that turns a name into an id (table rows, claims, runs, students).

>>> slug("MiniLM-L6 + MiniLM-L3 0.8/0.2")
'minilm-l6-+-minilm-l3-0.8-0.2'
>>> slug("static wordllama, 64-d")
'static-wordllama-64-d'
>>> student_id({"kind": "static", "model": "wordllama", "dim": 64})
'static-wordllama-64-d'
"""

from __future__ import annotations

import re

from .kinds import student_label


def slug(text) -> str:
    """A lowercase id from any name: runs of characters other than ``a-z 0-9 . & + @ _`` become one ``-``."""
    return re.sub(r"[^a-z0-9.&+@_]+", "-", str(text).lower()).strip("-")


def student_id(spec: dict) -> str:
    """A student spec's id (Table 6's rows, the student-size claims, the runs of other students)."""
    return slug(student_label(spec))
