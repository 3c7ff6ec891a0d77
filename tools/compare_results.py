"""Compare two results directories of one profile: per table, the largest difference of a quality column, and
every claim whose verdict changed. Timing columns (seconds, steps/s...) are left out: they measure the machine.

Tables are compared row by row in file order after checking that both have the same rows (their non-numeric
columns equal); a table whose rows differ is reported as such. Exit status 1 when a verdict changed.

    .venv/bin/python tools/compare_results.py results/mini /path/to/fresh/clone/results/mini
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

TIMING_WORDS = ("second", "time", "hours", "minutes", "ms", "overhead", "share", "steps/s", "wall")


def _text(column: pd.Series) -> pd.Series:
    return column.astype(object).where(column.notna(), "").astype(str)


def compare_table(old: pd.DataFrame, new: pd.DataFrame) -> dict:
    """{largest difference, column, row} over the quality columns, or a note when the rows differ. The first
    column labels the rows; text columns holding numbers (p-values, a statistic's value) count as numbers."""
    if old.shape[0] != new.shape[0] or list(old.columns) != list(new.columns):
        return {"largest difference": None, "column": "", "row": "", "note": "rows or columns differ"}
    label = old.columns[0]
    if not _text(old[label]).equals(_text(new[label])):
        return {"largest difference": None, "column": "", "row": "", "note": "row labels differ"}
    worst = {"largest difference": 0.0, "column": "", "row": "", "note": ""}
    text_changes = []
    # rows that time the machine (the claims' selection overhead, data construction seconds)
    quality = ~_text(old[label]).str.contains("|".join(TIMING_WORDS[:3] + ("overhead",)), case=False)
    old, new = old[quality].reset_index(drop=True), new[quality].reset_index(drop=True)
    for column in old.columns[1:]:
        if any(word in column.lower() for word in TIMING_WORDS) or pd.api.types.is_bool_dtype(old[column]):
            continue
        a, b = pd.to_numeric(old[column], errors="coerce"), pd.to_numeric(new[column], errors="coerce")
        difference = (a - b).abs()
        if difference.notna().any() and float(difference.max()) > worst["largest difference"]:
            index = int(difference.idxmax())
            worst.update(
                {"largest difference": float(difference.max()), "column": column, "row": str(old.loc[index, label])}
            )
        text = a.isna() & b.isna() & (_text(old[column]) != _text(new[column]))
        if text.any():
            text_changes.append(f"{column} ({int(text.sum())} cells)")
    if text_changes:
        worst["note"] = "text differs: " + ", ".join(text_changes)
    return worst


def verdict_changes(old: pd.DataFrame, new: pd.DataFrame) -> list[str]:
    if "verdict" not in old or "claim" not in old:
        return []
    if len(old) != len(new) or not old["claim"].astype(str).equals(new["claim"].astype(str)):
        return [f"the claims differ ({len(old)} against {len(new)} rows)"]
    return [
        f"{claim}: {a} -> {b}"
        for claim, a, b in zip(old["claim"], old["verdict"], new["verdict"], strict=True)
        if str(a) != str(b)
    ]


def compare(old_dir: Path, new_dir: Path) -> tuple[pd.DataFrame, list[str]]:
    rows, changes = [], []
    for path in sorted(old_dir.glob("*.csv")):
        other = new_dir / path.name
        if not other.exists():
            rows.append({"table": path.stem, "largest difference": None, "note": "missing in the new results"})
            continue
        old, new = pd.read_csv(path), pd.read_csv(other)
        rows.append({"table": path.stem, **compare_table(old, new)})
        changes += verdict_changes(old, new)
    return pd.DataFrame(rows), changes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    args = parser.parse_args(argv)
    table, changes = compare(args.old, args.new)
    print(table.to_markdown(index=False, floatfmt=".4f"))
    print()
    print("verdicts changed: " + ("; ".join(changes) if changes else "none"))
    return 1 if changes else 0


if __name__ == "__main__":
    sys.exit(main())
