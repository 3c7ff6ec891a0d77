"""The runner's side-by-side notebooks: which go together, and the ETA that counts them as one."""

from __future__ import annotations

import pytest

from mta4dpr_core.runner import SIDE_BY_SIDE, ProgressMonitor, notebook_groups, notebook_names

ALL = notebook_names()  # the seven notebooks of notebooks/, in order


def params(schedule):
    return {"output": {"schedule": schedule}}


def test_profile_schedule_runs_04_to_06_side_by_side_after_03():
    assert len(ALL) == 7 and ALL[2] == "03_selection_study"
    groups = notebook_groups(ALL, params("profile"))
    assert groups == [(n,) for n in ALL[:3]] + [SIDE_BY_SIDE] + [("07_summary",)]
    assert [n for group in groups for n in group] == ALL  # the order is kept


@pytest.mark.parametrize(
    "names, schedule, notebooks",
    [
        (ALL, "stage", True),  # each notebook computes its own runs: one after the other
        (ALL, "profile", False),  # --no-notebooks: the stages run in this process
        (ALL[3:6], "profile", True),  # --only 04 05 06: 03 did not run first, the runs may be missing
    ],
)
def test_one_after_the_other_otherwise(names, schedule, notebooks):
    assert notebook_groups(names, params(schedule), notebooks) == [(n,) for n in names]


def test_eta_counts_side_by_side_notebooks_as_the_longest():
    previous = {"03_selection_study": 100.0, "04_training": 50.0, "05_ablations": 30.0, "07_summary": 20.0}
    names = ["03_selection_study", "04_training", "05_ablations", "07_summary"]
    alone = ProgressMonitor("p", names, previous, log=lambda line: None)
    together = ProgressMonitor(
        "p", names, previous, log=lambda line: None, side_by_side=["04_training", "05_ablations"]
    )
    assert alone.eta() == 200.0
    assert together.eta() == 170.0  # 100 + max(50, 30) + 20
