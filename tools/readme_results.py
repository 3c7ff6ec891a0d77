"""Print the README's results section from results/<profile>/ (paste it into README.md after a rerun).

python tools/readme_results.py [profile]
"""

import json
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
PROFILE = sys.argv[1] if len(sys.argv) > 1 else "mini"
R = ROOT / "results" / PROFILE


def cell(row, column):
    value, std = row.get(column), row.get(f"{column} ±")
    if value is None or pd.isna(value):
        return "–"
    return f"{value:.2f}" + (f" ± {std:.2f}" if std is not None and not pd.isna(std) else "")


def interval(row, prefix):
    effect = row.get(f"{prefix} nDCG@10")
    if effect is None or pd.isna(effect):
        return "–"
    return f"{effect:+.2f} [{row[f'{prefix} low']:+.2f}, {row[f'{prefix} high']:+.2f}]"


table1 = pd.read_csv(R / "table1.csv")
students = table1[table1["role"] == "student"]
# the students by row id (mta4dpr_core/report/tables.py), whatever their display labels
order = [
    "mta4dpr",
    "no_assistants",
    "kd_matched_weight",
    "assistants_are_teacher",
    "one_iteration_kd",
    "untrained-student",
]
students = students.set_index("id").loc[[i for i in order if i in set(students["id"])]].reset_index()
fixed = table1[table1["role"] != "student"]
columns = [
    c
    for c in ["nDCG@10", "MRR@10", "R@50", "R@1k", "DL19 nDCG@10 (zero-shot)", "DL20 nDCG@10 (zero-shot)"]
    if c in table1.columns
]
lines = [
    "| model | role | " + " | ".join(columns) + " | Δ nDCG@10 vs no assistant [95% CI] |",
    "|---|---|" + "---|" * (len(columns) + 1),
]
for frame in (students, fixed):
    for _, row in frame.iterrows():
        lines.append(
            f"| {row['model']} | {row['role']} | "
            + " | ".join(cell(row, c) for c in columns)
            + f" | {interval(row, 'Δ vs no assistant')} |"
        )
print("\n".join(lines))
print()
claims = pd.read_csv(R / "claims.csv")


def number(value, digits=2, signed=True):
    if value is None or pd.isna(value):
        return "–"
    if isinstance(value, str):  # already written for reading (p-values: "0.0002", "< 0.0001")
        return value
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


print(
    "| id | claim | paper Δ (table) | our Δ [95% CI, seeds × queries] | p (Holm) | verdict | effect ratio (MRR@10) | "
    "effect ratio (nDCG@10 vs DL) | combination of | seeds holding |"
)
print("|---|---|---|---|---|---|---|---|---|---|")
for _, row in claims.iterrows():
    if str(row.get("family", "")).startswith("composite"):
        continue
    paper = f"{number(row.get('paper Δ'))} ({row['paper table']})" if not pd.isna(row.get("paper Δ")) else "– (none)"
    ours = (
        f"{number(row['effect'])} [{number(row['low'])}, {number(row['high'])}]"
        if not pd.isna(row.get("effect"))
        else "–"
    )
    unit = (
        ""
        if str(row.get("metric", "")).startswith(("nDCG", "MRR")) or pd.isna(row.get("metric"))
        else f" ({row['metric']})"
    )
    holding = f"{int(row['seeds holding'])}/{int(row['seeds'])}" if not pd.isna(row.get("seeds holding")) else "–"
    print(
        f"| `{row['id']}` | {row['claim']} | {paper} | {ours}{unit} | {number(row.get('p (Holm)'), 3, False)} | **{row['verdict']}** | "
        f"{number(row.get('effect ratio (MRR@10)'), 2, False)} | {number(row.get('effect ratio (nDCG@10 vs DL)'), 2, False)} | "
        f"{'–' if pd.isna(row.get('combination of')) else row['combination of']} | {holding} |"
    )
manifest = json.loads((R / "manifest.json").read_text())
print()
print("timings (s):", manifest.get("timings_seconds"))
