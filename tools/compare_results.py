"""Compare the tables of two results directories (e.g. the same profile on CPU and on GPU).

    python tools/compare_results.py results/paper_tiny_cpu results/paper_tiny_gpu --tolerance 0.5 \
        --table-tolerance table1=5 table3=5

Every CSV present in both is read with pandas; rows are matched on the row id (``id``, see
mta4dpr_core/report/tables.py) where both sides have it, else on the text columns both share
(model, variant, ...) or, where those repeat, on the row's position, and every numeric column both share is compared; columns on one side only
(e.g. an ``id`` column added since) are listed, not compared. Prints, per table, the
largest absolute difference and where it is, and writes the comparison as Markdown with
``--markdown``. ``--quality-only`` leaves out timing columns and rows (seconds, steps/s, overheads: they measure
the machine); ``--ignore-columns`` names further columns not to compare (counts, degrees of freedom). A ``claims.csv`` present in both also gets the list of claims whose verdict differs. Exit status 1 when a table's largest difference exceeds its tolerance
(``--tolerance``, or ``--table-tolerance NAME=VALUE`` for that table), 2 when rows do not match.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from mta4dpr_core.store.atomic import atomic_write_text

TIMING_WORDS = ("second", "time", "hours", "minutes", " ms", "overhead", "share", "steps/s", "wall")


def without_timings(frame: pd.DataFrame) -> pd.DataFrame:
    """The table without timing columns, and without rows labelled as timings (a claim on the selection overhead)."""
    columns = [c for c in frame.columns if not any(word in c.lower() for word in TIMING_WORDS)]
    frame = frame[columns]
    label = frame.columns[0]
    timing_rows = frame[label].astype(str).str.contains("second|overhead", case=False, na=False)
    return frame[~timing_rows]


def verdict_changes(left: pd.DataFrame, right: pd.DataFrame) -> list[str]:
    """``claim: before -> after`` for every claim present in both whose verdict differs."""
    if not {"claim", "verdict"} <= set(left.columns) & set(right.columns):
        return []
    before = left.drop_duplicates("claim").set_index("claim")["verdict"]
    after = right.drop_duplicates("claim").set_index("claim")["verdict"]
    return [f"{c}: {before[c]} -> {after[c]}" for c in before.index if c in after.index and before[c] != after[c]]


def compare_table(left: pd.DataFrame, right: pd.DataFrame):
    """(max abs difference, its (row key, column), rows only on one side) over shared numeric columns."""

    def is_number(series):  # a true/false column (e.g. "chosen by the rule") labels rows; it is not a measurement
        return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)

    if "id" in left.columns and "id" in right.columns:
        keys = ["id"]
    else:
        keys = [c for c in left.columns if c in right.columns and not is_number(left[c])]
    numeric = [c for c in left.columns if c in right.columns and is_number(left[c]) and is_number(right[c])]
    if keys:
        left, right = left.set_index(keys), right.set_index(keys)
    if not (left.index.is_unique and right.index.is_unique):
        # the text columns do not name a row (e.g. a trace with repeated labels): match rows by position
        left, right = left.reset_index(drop=True), right.reset_index(drop=True)
    only = sorted(map(str, set(left.index) ^ set(right.index)))
    shared = [i for i in left.index if i in set(right.index)]
    worst, where = 0.0, None
    for column in numeric:
        a = pd.to_numeric(left.loc[shared, column], errors="coerce")
        b = pd.to_numeric(right.loc[shared, column], errors="coerce")
        difference = (a - b).abs()
        if difference.notna().any() and difference.max() > worst:
            worst, where = float(difference.max()), (difference.idxmax(), column)
    return worst, where, only, len(shared), len(numeric)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("left", type=Path)
    parser.add_argument("right", type=Path)
    parser.add_argument(
        "--tolerance", type=float, default=0.5, help="largest allowed absolute difference (table units)"
    )
    parser.add_argument("--table-tolerance", nargs="*", default=[], metavar="NAME=VALUE")
    parser.add_argument("--markdown", type=Path, default=None)
    parser.add_argument("--quality-only", action="store_true", help="leave out timing columns and rows")
    parser.add_argument(
        "--ignore-columns",
        nargs="*",
        default=[],
        metavar="COLUMN",
        help="columns never compared (e.g. counts or degrees of freedom beside the scores); listed below the table",
    )
    args = parser.parse_args(argv)
    tolerances = {}
    for item in args.table_tolerance:
        name, _, value = item.partition("=")
        tolerances[name] = float(value)

    lines = [
        "| table | rows compared | numeric columns | largest abs difference | where | tolerance | within |",
        "|---|---|---|---|---|---|---|",
    ]
    failed = mismatched = False
    changes = []
    for path in sorted(args.left.glob("*.csv")):
        other = args.right / path.name
        if not other.exists():
            continue
        left, right = pd.read_csv(path), pd.read_csv(other)
        changes += [f"{path.stem}: {change}" for change in verdict_changes(left, right)]
        if args.quality_only:
            left, right = without_timings(left), without_timings(right)
        ignored = [c for c in args.ignore_columns if c in left.columns or c in right.columns]
        left, right = left.drop(columns=ignored, errors="ignore"), right.drop(columns=ignored, errors="ignore")
        worst, where, only, rows, columns = compare_table(left, right)
        tolerance = tolerances.get(path.stem, args.tolerance)
        ok = worst <= tolerance
        failed |= not ok
        mismatched |= bool(only)
        place = f"{where[0]} / {where[1]}" if where else ""
        lines.append(
            f"| {path.stem} | {rows} | {columns} | {worst:.4g} | {place} | {tolerance:g} | {'yes' if ok else '**no**'} |"
        )
        removed = [c for c in left.columns if c not in right.columns]
        added = [c for c in right.columns if c not in left.columns]
        if removed or added:
            change = "; ".join(
                filter(
                    None,
                    [
                        f"added: {', '.join(added)}" if added else "",
                        f"removed: {', '.join(removed)}" if removed else "",
                    ],
                )
            )
            lines.append(f"| {path.stem}: columns on one side only | | {len(added) + len(removed)} | | {change} | | |")
        if only:
            lines.append(f"| {path.stem}: rows on one side only | {len(only)} | | | {'; '.join(only[:4])} | | **no** |")
    if args.ignore_columns:
        lines += ["", "Columns not compared: " + ", ".join(args.ignore_columns)]
    # one per line: a claim's own text may hold "; " or ": "
    lines += ["", f"Verdicts that differ: {len(changes) if changes else 'none'}", *(f"- {c}" for c in changes)]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        atomic_write_text(args.markdown, text + "\n")
    sys.exit(2 if mismatched else 1 if failed else 0)


if __name__ == "__main__":
    main()
