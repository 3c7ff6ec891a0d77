"""Determinism: the same params and seed give byte-identical results tables on CPU.

The tiny profile (``tests/tiny_profile.py``, derived from ``params/smoke.yaml``) runs notebook 04's
stage twice with the runner CLI (``--no-notebooks --only 04``), each time into fresh runs and
results directories (the encoding cache is shared); the CSV and Markdown tables must be equal byte
for byte, every run's history bit-identical, and the seed recorded in ``manifest.json``.
"""

from __future__ import annotations

import json

from tiny_profile import assert_same_results, results_of, run_to_completion


def test_same_params_and_seed_give_identical_tables(tmp_path, scifact_dir):  # the tiny profile is a SciFact slice
    first, second = tmp_path / "first", tmp_path / "second"
    run_to_completion(first, ["04"])
    run_to_completion(second, ["04"])

    assert sorted(p.name for p in results_of(first).glob("*.csv")) == ["table1.csv", "table2.csv", "table4.csv"]
    assert_same_results(first, second)
    for table in results_of(first).glob("*.md"):
        assert table.read_bytes() == (results_of(second) / table.name).read_bytes(), table.name

    for directory in (first, second):
        manifest = json.loads((results_of(directory) / "manifest.json").read_text())
        assert manifest["seeds"] == [13]
        assert manifest["params"]["seeds"] == [13]
        assert manifest["profile"] == "tiny" and manifest["notebooks"] is False
