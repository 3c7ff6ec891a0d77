"""tools/compare_results.py: tables matched by their text columns, worst difference against a tolerance."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

TOOL = Path(__file__).resolve().parents[2] / "tools" / "compare_results.py"


def _run(left, right, *extra):
    return subprocess.run([sys.executable, str(TOOL), str(left), str(right), *extra], capture_output=True, text=True)


def test_compare_results_tolerance_and_row_matching(tmp_path):
    cpu, gpu = tmp_path / "cpu", tmp_path / "gpu"
    cpu.mkdir(), gpu.mkdir()
    pd.DataFrame({"model": ["a", "b"], "nDCG@10": [50.0, 60.0]}).to_csv(cpu / "table1.csv", index=False)
    # the same rows in another order, one value 0.3 off
    pd.DataFrame({"model": ["b", "a"], "nDCG@10": [60.3, 50.0]}).to_csv(gpu / "table1.csv", index=False)
    done = _run(cpu, gpu, "--tolerance", "0.5")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| table1 | 2 | 1 | 0.3 | b / nDCG@10 | 0.5 | yes |" in done.stdout
    assert _run(cpu, gpu, "--tolerance", "0.1").returncode == 1
    assert _run(cpu, gpu, "--tolerance", "0.1", "--table-tolerance", "table1=0.4").returncode == 0
    pd.DataFrame({"model": ["a", "c"], "nDCG@10": [50.0, 60.0]}).to_csv(gpu / "table1.csv", index=False)
    assert _run(cpu, gpu).returncode == 2  # rows on one side only


def test_a_true_false_column_labels_rows_instead_of_being_subtracted(tmp_path):
    left, right = tmp_path / "left", tmp_path / "right"
    left.mkdir(), right.mkdir()
    pd.DataFrame({"candidate": ["x", "y"], "chosen": [True, False], "score": [70.0, 60.0]}).to_csv(
        left / "selection.csv", index=False
    )
    pd.DataFrame({"candidate": ["y", "x"], "chosen": [False, True], "score": [60.0, 70.2]}).to_csv(
        right / "selection.csv", index=False
    )
    done = _run(left, right, "--tolerance", "0.5")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0.2" in done.stdout
    pd.DataFrame({"candidate": ["y", "x"], "chosen": [True, False], "score": [60.0, 70.0]}).to_csv(
        right / "selection.csv", index=False
    )
    assert _run(left, right).returncode == 2  # another row chosen: the rows no longer match


def test_compare_results_lists_verdict_changes_and_leaves_out_timings(tmp_path):
    before, after = tmp_path / "before", tmp_path / "after"
    before.mkdir(), after.mkdir()
    claims = {
        "id": ["a", "selection-overhead"],
        "claim": ["a; b: c", "selection-overhead"],  # a claim's text may hold "; " and ": "
        "effect": [1.0, -5.4],
        "verdict": ["confirmed", "confirmed"],
    }
    pd.DataFrame(claims).to_csv(before / "claims.csv", index=False)
    claims.update(effect=[1.1, -4.9], verdict=["inconclusive", "confirmed"])
    pd.DataFrame(claims).to_csv(after / "claims.csv", index=False)
    markdown = tmp_path / "comparison.md"
    done = _run(before, after, "--quality-only", "--tolerance", "0.2", "--markdown", str(markdown))
    assert "| claims | 1 | 1 | 0.1 | a / effect | 0.2 | yes |" in done.stdout  # the overhead row (0.5 off) left out
    assert "Verdicts that differ: 1\n- claims: a; b: c: confirmed -> inconclusive" in done.stdout
    # tools/cold_run.py reports both from the written comparison
    sys.path.insert(0, str(TOOL.parent))
    from cold_run import comparison_summary

    rows, verdicts = comparison_summary(markdown)
    assert rows[0].startswith("| table |") and "| claims | 1 | 1 | 0.1 | a / effect | 0.2 | yes |" in rows
    assert verdicts == ["claims: a; b: c: confirmed -> inconclusive"]


def test_ignored_columns_are_not_compared_and_are_listed(tmp_path):
    left, right = tmp_path / "left", tmp_path / "right"
    left.mkdir(), right.mkdir()
    pd.DataFrame({"id": ["x"], "effect": [1.0], "df": [40.0]}).to_csv(left / "claims.csv", index=False)
    pd.DataFrame({"id": ["x"], "effect": [1.2], "df": [176.0]}).to_csv(right / "claims.csv", index=False)
    assert _run(left, right).returncode == 1  # df moved by 136
    done = _run(left, right, "--ignore-columns", "df", "--markdown", str(tmp_path / "out" / "comparison.md"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| claims | 1 | 1 | 0.2 | x / effect | 0.5 | yes |" in done.stdout
    assert "Columns not compared: df" in (tmp_path / "out" / "comparison.md").read_text()
