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
order = ["MTA4DPR", "no assistant (teacher-only KD, same iterations and steps)", "teacher-only KD, 1 iteration, same total steps",
         "student before training"]
students = students.set_index("model").loc[[m for m in order if m in set(students["model"])]].reset_index()
fixed = table1[table1["role"] != "student"]
columns = [c for c in ["nDCG@10", "MRR@10", "R@50", "R@1k", "DL19 nDCG@10", "DL20 nDCG@10"] if c in table1.columns]
lines = ["| model | role | " + " | ".join(columns) + " | Δ nDCG@10 vs no assistant [95% CI] |",
         "|---|---|" + "---|" * (len(columns) + 1)]
for frame in (students, fixed):
    for _, row in frame.iterrows():
        lines.append(f"| {row['model']} | {row['role']} | " + " | ".join(cell(row, c) for c in columns)
                     + f" | {interval(row, 'Δ vs no assistant')} |")
print("\n".join(lines))
print()
claims = pd.read_csv(R / "claims.csv")
for _, row in claims.iterrows():
    if pd.isna(row.get("effect")):
        print(f"- {row['claim']}: **{row['verdict']}**")
        continue
    unit = "" if str(row["metric"]).startswith("nDCG") else f" ({row['metric']})"
    print(f"- {row['claim']}: **{row['verdict']}** ({row['effect']:+.2f} [{row['low']:+.2f}, {row['high']:+.2f}]{unit})")
manifest = json.loads((R / "manifest.json").read_text())
print()
print("timings (s):", manifest.get("timings_seconds"))
