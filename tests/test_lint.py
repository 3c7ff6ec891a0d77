"""The tree stays as `make lint` leaves it: ruff's checks pass and its formatter has nothing to change
(configuration: pyproject.toml, [tool.ruff])."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TREE = ["mta4dpr_core", "tests", "tools", "bench"]


def _ruff():
    found = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if not found:
        pytest.skip("ruff is not installed (requirements.txt installs it)")
    return found


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["check", "format"])
def test_ruff_is_clean_on_the_tree(command):
    result = subprocess.run([_ruff(), *command, *TREE], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_allowed_function_level_import_and_complex_function_says_why():
    """The core's PLC0415 and C901 exceptions are listed where they stand, each with its reason in parentheses."""
    import re

    bare = []
    for path in sorted((ROOT / "mta4dpr_core").rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            for code in ("PLC0415", "C901"):
                if f"noqa: {code}" in line and not re.search(rf"noqa: {code} \([^)]+\)", line):
                    bare.append(f"{path.relative_to(ROOT)}:{number}: {code} without a reason")
    assert bare == []


def _unannotated(path: Path, methods: bool) -> list[str]:
    import ast

    found = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef):
            functions = [node]
        elif methods and isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            functions = [f for f in node.body if isinstance(f, ast.FunctionDef)]
        else:
            functions = []
        for function in functions:
            if function.name.startswith("_"):
                continue
            arguments = [a for a in function.args.args + function.args.kwonlyargs if a.arg not in ("self", "cls")]
            if function.returns is None or any(a.annotation is None for a in arguments):
                found.append(f"{path.relative_to(ROOT)}:{function.lineno} {function.name}")
    return found


def test_the_public_functions_of_method_and_retrieval_are_annotated():
    """Every public function, and every public method of a public class, of method/ (the paper's algorithms) and of
    retrieval/ (its encoders, and its scorers, whose overrides take the Scorer base's types) says its types."""
    core = ROOT / "mta4dpr_core"
    missing = [x for path in sorted((core / "method").glob("*.py")) for x in _unannotated(path, methods=True)]
    missing += [x for path in sorted((core / "retrieval").glob("*.py")) for x in _unannotated(path, methods=True)]
    assert missing == []
