"""The paper's numbers (``paper_numbers.yaml``): tables keyed by row id and metric, and where each claim's
paper Δ comes from.

Rows are keyed by stable row ids (:mod:`mta4dpr_core.report.tables`); each row's ``label`` is for display only.

>>> value("table3", "mta4dpr", "MRR@10")
41.1
>>> round(delta("table3", "mta4dpr", "no_assistants", "MRR@10"), 2)
1.2
>>> label("table3", "no_assistants")
'w/o assistants'
>>> letters()["retromae"]
'R'
>>> claim_delta("removing-fusion", "MRR@10")["delta"]
0.3
>>> claim_delta("mta4dpr-vs-one-iteration-kd", "MRR@10")["note"]
'the paper has no one-iteration teacher-only KD row'
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import yaml

PATH = Path(__file__).with_name("paper_numbers.yaml")
CLAIMS_PATH = Path(__file__).with_name("claims.yaml")


@functools.lru_cache(maxsize=1)
def load() -> dict:
    """The whole YAML document (cached; treat it as read-only)."""
    return yaml.safe_load(PATH.read_text(encoding="utf-8"))


def table(name: str) -> dict:
    """``{row id: {metric: value or None}}`` of one of the paper's tables (without the display labels)."""
    return {
        row: {metric: v for metric, v in values.items() if metric != "label"}
        for row, values in load()["tables"][name]["rows"].items()
    }


def label(table_name: str, row) -> str:
    """The display label of one of the paper's rows (its id where it has none)."""
    return str(load()["tables"][table_name]["rows"].get(row, {}).get("label", row))


def letters() -> dict:
    """``{paper model id: letter}`` of Table 7 (``cotmae: C`` ...), weakest to strongest: the one letter map."""
    return dict(load()["tables"]["table7"]["letters"])


def columns(name: str) -> list:
    return list(load()["tables"][name]["columns"])


def value(table_name: str, row, metric: str):
    """One number of the paper (percent), or None where the paper gives none."""
    if metric == "label":
        raise KeyError("'label' is a display column, not a metric")
    return load()["tables"][table_name]["rows"].get(row, {}).get(metric)


def delta(table_name: str, advanced, baseline, metric: str):
    """``advanced - baseline`` in one of the paper's tables (percent points), or None."""
    a, b = value(table_name, advanced, metric), value(table_name, baseline, metric)
    return None if a is None or b is None else round(a - b, 6)


# the paper's TREC DL columns: nDCG@10, the one paper metric that is also our primary one
DL_COLUMNS = ("DL19 nDCG@10", "DL20 nDCG@10")


def dl_values(table_name: str, advanced, baseline, column: str) -> tuple:
    """``(advanced, baseline)`` in a DL column: from ``table_name`` where it has the column, else from Table 1
    where both rows are there (Table 3's MTA4DPR and w/o assistants are Table 1's MTA4DPR and No assistant).

    >>> dl_values("table3", "mta4dpr", "no_assistants", "DL19 nDCG@10")
    (71.2, 69.2)
    >>> dl_values("table5", "mta4dpr", "selection_random", "DL19 nDCG@10")
    (None, None)
    """
    for name in (table_name, "table1"):
        if column in columns(name):
            rows = load()["tables"][name]["rows"]
            if advanced in rows and baseline in rows:
                return value(name, advanced, column), value(name, baseline, column)
    return None, None


def paper_column(metric: str) -> str:
    """The paper's column our ``metric`` is set against (nDCG@10 -> the paper's primary MRR@10)."""
    return load()["metric_columns"].get(metric, metric)


@functools.lru_cache(maxsize=1)
def load_claims() -> dict:
    """``claims.yaml``: the claims as this package tests them (cached; treat it as read-only)."""
    return yaml.safe_load(CLAIMS_PATH.read_text(encoding="utf-8"))


def template_fields(template: str, text: str) -> dict | None:
    """The placeholders of ``template`` that make ``text`` (``{"method": "rbo"}`` for ``kl-vs-{method}`` and
    ``kl-vs-rbo``), or None when ``text`` is not an instance of it.

    >>> template_fields("iteration-{before}-to-{after}", "iteration-2-to-3")
    {'before': '2', 'after': '3'}
    """
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>.+?)", re.escape(template))
    match = re.fullmatch(pattern, text)
    return match.groupdict() if match else None


def fill(template, fields: dict):
    """``template`` (a string, or a mapping or list of them) with its placeholders filled from ``fields``."""
    if isinstance(template, str):
        return template.format(**fields)
    if isinstance(template, dict):
        return {key: fill(value, fields) for key, value in template.items()}
    if isinstance(template, list):
        return [fill(value, fields) for value in template]
    return template


def claim_source(claim_id: str) -> dict | None:
    """The paper's side of ``claim_id`` in ``claims.yaml`` (its table, advanced and baseline rows, or a note):
    a claim's own entry, a family member's filled template, or a claim outside the family; None if unknown."""
    data = load_claims()
    for entry in data["claims"]:
        if "family" not in entry:
            if entry["id"] == claim_id:
                return entry.get("paper", {})
            continue
        fields = template_fields(entry["id"], claim_id) if "id" in entry else None
        if fields is not None:
            source = fill(entry.get("paper", {}), fields)
            notes = entry.get("paper_notes", {})
            for value in fields.values():
                if value in notes:
                    source = {**source, "note": notes[value]}
            return source
    other = data.get("other", {})
    return other[claim_id].get("paper", {}) if claim_id in other else None


def claim_delta(claim_id: str, metric: str, source: dict | None = None) -> dict:
    """The paper's Δ for ``claim_id`` against our ``metric``: ``{delta, advanced, baseline, table, column, rows, note}``.

    ``source`` (``{table, advanced, baseline}``, optionally ``note``) overrides the YAML entry; claims built per
    profile pass it. ``delta`` is None when the paper has no such comparison (``note`` says why)."""
    source = source if source is not None else (claim_source(claim_id) or {})
    column = paper_column(metric)
    out = {
        "delta": None,
        "advanced": None,
        "baseline": None,
        "table": source.get("table"),
        "column": column,
        "rows": None,
        "note": source.get("note"),
    }
    if source.get("table") is None:
        if out["note"] is None:
            out["note"] = "the paper reports no such comparison"
        return out
    advanced, baseline = source["advanced"], source["baseline"]
    a, b = value(source["table"], advanced, column), value(source["table"], baseline, column)
    out.update(advanced=a, baseline=b, rows=f"{label(source['table'], advanced)} − {label(source['table'], baseline)}")
    if a is None or b is None:
        out["note"] = "; ".join(
            filter(
                None,
                [
                    out["note"],
                    f"the paper gives no {column} for {label(source['table'], advanced if a is None else baseline)}",
                ],
            )
        )
        return out
    out["delta"] = round(a - b, 6)
    return out
