"""Reports only read runs (issue 33): no module of ``report/`` names a training entry point, and a table whose run
is not stored fails with an error that names the run and the command that makes it, without training it."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from tiny_profile import tiny_params

import mta4dpr_core
from mta4dpr_core.config.typed import typed
from mta4dpr_core.experiments import iteration
from mta4dpr_core.experiments.catalog import RunSpec
from mta4dpr_core.experiments.runs import MissingRunError, read_over_seeds
from mta4dpr_core.method import training

REPORT = Path(mta4dpr_core.__file__).parent / "report"
# the functions that train (or schedule training): Algorithm 1's run, the grid, the training loop, a student's
# construction (a warm start trains) and the pilot curve
TRAINING_ENTRY_POINTS = frozenset(
    {
        "run_mta4dpr",
        "run_grid",
        "planned_runs",
        "train_student",
        "new_student",
        "build_student",
        "warm_start",
        "warm_started",
        "pilot_learning_curve",
    }
)


def training_calls(source: str) -> list[str]:
    """Every name of a training entry point that ``source`` imports, calls or reads as an attribute."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.alias):
            names = [node.name.rsplit(".", 1)[-1], node.asname]
        elif isinstance(node, ast.Name):
            names = [node.id]
        elif isinstance(node, ast.Attribute):
            names = [node.attr]
        else:
            continue
        found += [f"line {node.lineno}: {name}" for name in names if name in TRAINING_ENTRY_POINTS]
    return found


@pytest.mark.parametrize("path", sorted(REPORT.glob("*.py")), ids=lambda p: p.name)
def test_no_report_module_names_a_training_entry_point(path):
    assert training_calls(path.read_text()) == [], f"{path.name} reaches a training entry point"


def test_a_planted_training_call_in_a_report_module_is_caught():
    planted = (REPORT / "studies.py").read_text() + (
        "\n\ndef planted(setup):\n"
        "    from ..experiments.iteration import run_mta4dpr\n\n"
        "    return run_mta4dpr(setup, 13, 'mta4dpr')\n"
    )
    assert len(training_calls(planted)) == 2
    assert training_calls("def f(setup):\n    return setup.new_student(13)\n") == ["line 2: new_student"]


class _Setup:
    """What the run store's read side needs of a Setup: its params, its assistants' names and its work directory."""

    def __init__(self, work_dir):
        self.params = tiny_params(work_dir)
        self.config = typed(self.params)
        self.assistants = [SimpleNamespace(name="minilm-l6"), SimpleNamespace(name="wordllama")]
        self.work_dir = work_dir


def test_a_missing_run_names_itself_and_its_command_and_trains_nothing(tmp_path, monkeypatch):
    def trained(*args, **kwargs):
        raise AssertionError("a report trained")

    monkeypatch.setattr(iteration, "run_mta4dpr", trained)
    monkeypatch.setattr(training, "train_student", trained)
    with pytest.raises(MissingRunError) as error:
        read_over_seeds(_Setup(tmp_path), "selection_rbo", overrides={"selection": {"method": "rbo"}})
    message = str(error.value)
    assert "'selection_rbo'" in message and "seed 13" in message and '"method": "rbo"' in message
    assert "make reproduce PROFILE=tiny" in message and str(tmp_path) in message
    assert error.value.spec == RunSpec.of("selection_rbo", 13, {"selection": {"method": "rbo"}})


# a table's rows are matched by id (report/tables.py), never by the text a reader sees: no text search on a column, no
# column compared with a display label (a literal with a capital or a space)
LABEL_JOINS = (
    re.compile(r"\.str\.(?:startswith|endswith|contains)\(\s*[\"']"),
    re.compile(r"[\])]\s*[=!]=\s*[\"'][^\"']*[A-Z ][^\"']*[\"']"),
)


def label_joins(source: str) -> list[str]:
    return [
        f"line {number}: {line.strip()}"
        for number, line in enumerate(source.splitlines(), start=1)
        if any(pattern.search(line) for pattern in LABEL_JOINS)
    ]


@pytest.mark.parametrize("path", sorted(REPORT.glob("*.py")), ids=lambda p: p.name)
def test_no_report_module_joins_rows_by_label(path):
    assert label_joins(path.read_text()) == []


def test_a_planted_label_join_is_caught():
    assert len(label_joins('rows = table[table["variant"] != "MTA4DPR"]\nx = t[t.model.str.startswith("no a")]')) == 2
    assert label_joins('rows = table[table["id"] != R.MTA4DPR]') == []
