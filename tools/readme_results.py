"""Print the README's results section from results/mini/ (paste it into README.md after a rerun)."""
import json
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
R = ROOT / "results" / "mini"


def cell(row, column):
    value, std = row.get(column), row.get(f"{column} ±")
    if value is None or pd.isna(value):
        return "–"
    return f"{value:.2f}" + (f" ± {std:.2f}" if std is not None and not pd.isna(std) else "")


table1 = pd.read_csv(R / "table1.csv")
columns = [c for c in ["MRR@10", "R@50", "R@1k", "DL19 nDCG@10", "DL20 nDCG@10"] if c in table1.columns]
lines = ["| model | role | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
for _, row in table1.iterrows():
    lines.append(f"| {row['model']} | {row['role']} | " + " | ".join(cell(row, c) for c in columns) + " |")
print("\n".join(lines))
print()
claims = pd.read_csv(R / "claims.csv")
for _, row in claims.iterrows():
    print(f"- {row['claim']}: **{row['verdict']}** ({cell(row, 'ours')} vs {cell(row, 'other')}, difference {cell(row, 'difference')})")
manifest = json.loads((R / "manifest.json").read_text())
print()
print("timings (s):", manifest.get("timings_seconds"))
