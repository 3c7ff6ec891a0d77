"""Stable row ids (mta4dpr_core/report/tables.py): labels are display only, so rewording one breaks nothing."""

from __future__ import annotations

import copy

import pandas as pd
import pytest

from mta4dpr_core.report import ladder
from mta4dpr_core.report import paper as P
from mta4dpr_core.report import studies as S
from mta4dpr_core.report import tables as R


@pytest.fixture
def reworded_paper(monkeypatch):
    """The paper's numbers with every display label reworded."""
    document = copy.deepcopy(P.load())
    for table in document["tables"].values():
        for row in table["rows"].values():
            row["label"] = f"reworded {row.get('label')}"
    monkeypatch.setattr(P, "load", lambda: document)
    return document


def test_paper_numbers_survive_reworded_labels(reworded_paper):
    assert P.value("table8", R.NO_ASSISTANTS, "training hours") == 7.12
    assert R.paper_values("table8", R.MTA4DPR) == {"paper training hours": 7.53, "paper construction hours": 12.9}
    assert P.value("table3", R.NO_ASSISTANTS, "MRR@10") == 39.9
    assert P.value("table5", "selection_rbo", "MRR@10") == 40.9
    assert P.value("table7", R.letters_id(["R", "C"]), "MRR@10") == 40.6
    found = P.claim_delta("mta4dpr-vs-no-assistant", "MRR@10")
    assert found["delta"] == pytest.approx(1.2) and found["rows"].startswith("reworded")
    assert P.claim_delta("iteration-2-to-3", "MRR@10")["delta"] == pytest.approx(0.4)
    assert P.letters() == {"cotmae": "C", "simlm": "S", "retromae": "R", "m2dpr": "M"}


def test_label_is_not_a_metric():
    with pytest.raises(KeyError):
        P.value("table1", "bm25", "label")
    assert "label" not in P.table("table1")["bm25"]


def test_every_paper_row_id_is_a_slug():
    for name, table in P.load()["tables"].items():
        for row in table["rows"]:
            assert row == R.slug(row), (name, row)


def test_ladder_keys_students_by_id_when_their_label_is_reworded(tmp_path, monkeypatch):
    monkeypatch.setattr(S, "NO_ASSISTANT", "the teacher-only baseline (reworded)")
    table1 = pd.DataFrame(
        [
            {"id": "teacher", "model": "teacher", "role": "teacher", "nDCG@10": 70.0, "paper MRR@10": 43.7},
            {"id": R.UNTRAINED_STUDENT, "model": "before", "role": "student", "nDCG@10": 48.0},
            {"id": R.NO_ASSISTANTS, "model": S.NO_ASSISTANT, "role": "student", "nDCG@10": 55.0, "paper MRR@10": 39.9},
            {"id": R.ONE_ITERATION_KD, "model": "one pass", "role": "student", "nDCG@10": 54.0},
            {"id": R.MTA4DPR, "model": "ours, reworded", "role": "student", "nDCG@10": 57.0, "paper MRR@10": 41.1},
        ]
    )
    table1.to_csv(tmp_path / "table1.csv", index=False)
    table = ladder.student_ladder(tmp_path, {"profile": "x", "data": {"test": "scifact/test"}, "study": {}})
    rungs = table.set_index("rung")
    assert rungs.loc["student:no-assistant", "paper MRR@10"] == pytest.approx(39.9)
    assert rungs.loc["student:mta4dpr", "id"] == R.MTA4DPR
    assert "student:untrained" in rungs.index and len(table) == 4
    assert list(table.columns)[0] == "id"


def test_paper_analogue_ids():
    assert S._paper_analogue_id("teacher", "SimLM-reranker (teacher)") == R.TEACHER
    assert S._paper_analogue_id("assistant", "CotMAE") == "cotmae" and S._paper_analogue_id("assistant", "") is None
    assert all(S._paper_analogue_id("assistant", P.label("table1", row)) == row for row in P.letters())


def test_with_ids_puts_a_unique_id_first():
    df = R.with_ids(pd.DataFrame({"model": ["a", "b"]}), ["x", "y"])
    assert list(df.columns) == ["id", "model"]
    with pytest.raises(ValueError):
        R.with_ids(pd.DataFrame({"model": ["a", "b"]}), ["x", "x"])
