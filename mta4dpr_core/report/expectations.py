"""Expected scores of a profile (``params/expected/<profile>.yaml``), checked with measured tolerances.

pyserini-2cr style: each condition names a table, a row, a column, the expected value and a
tolerance. The tolerances are not guesses: training takes another floating-point path on
another CPU kind (AVX2 vs AVX-512 kernels), so a chaotic student trajectory ends a little
elsewhere. ``tools/cpu_spread.py`` runs the profile under each CPU capability this machine
can force and records the largest difference per table and column
(``results/<profile>/cpu_spread.csv``); ``tools/make_smoke_expectations.py`` sets each
tolerance above it. A ``verdict`` condition checks a claim's verdict, and is only stored for
claims whose interval stays clear of 0 by more than the measured spread.

The notebooks' checked cells (``# NBVAL_CHECK_OUTPUT``) print the *outcome* of the check
(expected value, tolerance, ok), never the raw metric, so their stored output is the same
on every CPU; a value outside its tolerance prints ``OUT`` and the measured value, and
nbval fails on the difference.

>>> import pandas as pd
>>> table = pd.DataFrame({"model": ["MTA4DPR"], "nDCG@10": [70.31]})
>>> condition = {"id": "m", "table": "table1", "row": {"model": "MTA4DPR"}, "column": "nDCG@10",
...              "expected": 70.8, "tolerance": 1.0}
>>> print(check_condition(table, condition))
MTA4DPR · nDCG@10 = 70.80 ± 1.00: ok
>>> print(check_condition(table, {**condition, "tolerance": 0.1}))
MTA4DPR · nDCG@10 = 70.80 ± 0.10: OUT (measured 70.31)
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from ..config.errors import DataError
from ..config.params import REPO_ROOT

EXPECTED_DIR = REPO_ROOT / "params" / "expected"


def expected_path(profile: str) -> Path:
    return EXPECTED_DIR / f"{profile}.yaml"


def load_expectations(profile: str) -> list[dict] | None:
    """The profile's conditions, or None when it has no expectations file."""
    path = expected_path(profile)
    if not path.exists():
        return None
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise DataError(path, f"not valid YAML ({error})") from error
    conditions = (document or {}).get("conditions")
    if not isinstance(conditions, list):
        raise DataError(path, "expected a top-level `conditions:` list")
    for number, condition in enumerate(conditions, 1):
        required = {"id", "table", "row", "column"} | (
            {"verdict"} if "verdict" in condition else {"expected", "tolerance"}
        )
        missing = sorted(required - set(condition))
        if missing:
            raise DataError(path, f"condition {number} ({condition.get('id', '?')}): missing key(s) {missing}")
    return conditions


def select_row(table: pd.DataFrame, row: dict) -> pd.Series | None:
    rows = table
    for column, value in row.items():
        if column not in rows:
            return None
        rows = rows[rows[column].astype(str) == str(value)]
    return rows.iloc[0] if len(rows) == 1 else None


def check_condition(table: pd.DataFrame, condition: dict) -> str:
    """One line: the row, the column, the expected value with its tolerance (or verdict), and the outcome."""
    name = " / ".join(str(v) for v in condition["row"].values())
    found = select_row(table, condition["row"])
    if "verdict" in condition:
        label = f"{name} · verdict {condition['verdict']}"
        if found is None or condition["column"] not in found:
            return f"{label}: MISSING row"
        measured = str(found[condition["column"]])
        return f"{label}: ok" if measured == condition["verdict"] else f"{label}: OUT (measured {measured})"
    label = f"{name} · {condition['column']} = {condition['expected']:.2f} ± {condition['tolerance']:.2f}"
    if found is None or condition["column"] not in found or pd.isna(found[condition["column"]]):
        return f"{label}: MISSING row"
    measured = float(found[condition["column"]])
    # a small epsilon: the table's stored precision must not turn a value on the boundary into a failure
    if abs(measured - condition["expected"]) <= condition["tolerance"] + 1e-9:
        return f"{label}: ok"
    return f"{label}: OUT (measured {measured:.2f})"


def check_tables(profile: str, tables: dict[str, pd.DataFrame]) -> str:
    """Every condition of ``profile`` on the given tables (name -> frame), one line each."""
    conditions = load_expectations(profile)
    if conditions is None:
        known = sorted(path.stem for path in EXPECTED_DIR.glob("*.yaml"))
        return (
            f"Profile {profile} has no regression expectations: these tables are not compared with stored scores "
            f"(profiles with expectations: {', '.join(known) or 'none'})."
        )
    lines = [
        f"{len([c for c in conditions if c['table'] in tables])} conditions of params/expected/{profile}.yaml "
        "(tolerances above the measured cross-CPU spread):"
    ]
    for condition in conditions:
        if condition["table"] in tables:
            lines.append("  " + check_condition(tables[condition["table"]], condition))
    return "\n".join(lines)


def spread_of_row(rows_spread: pd.DataFrame, table: str, key) -> pd.DataFrame:
    """The rows of ``cpu_spread_rows.csv`` for ``table``'s row ``key`` (a table keyed by several text
    columns stores its row as a tuple, e.g. ``('teacher', 'teacher', nan)``)."""
    key = str(key)
    return rows_spread[
        (rows_spread["table"] == table) & rows_spread["row"].map(lambda r: r == key or r.startswith(f"({key!r},"))
    ]
