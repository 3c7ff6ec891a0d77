"""The core's layers (mta4dpr_core/layers.py): imports point down, no cycles, every module placed.

Imports are read from the source (``ast``), function-level ones included; an import under
``if TYPE_CHECKING:`` is for annotations only and is skipped.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from mta4dpr_core.layers import LAYER_OF, LAYERS, ORDER

PACKAGE = Path(__file__).resolve().parent.parent / "mta4dpr_core"


def _is_type_checking(node) -> bool:
    test = node.test
    return isinstance(node, ast.If) and (
        getattr(test, "id", None) == "TYPE_CHECKING" or getattr(test, "attr", None) == "TYPE_CHECKING"
    )


def package_imports(path: Path, modules: set[str]) -> set[str]:
    """The package modules that ``path`` imports (relative or ``mta4dpr_core.`` imports, at any depth)."""
    found = set()

    def visit(node):
        if isinstance(node, ast.If) and _is_type_checking(node):
            return
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 or (node.module or "").startswith("mta4dpr_core"):
                module = (
                    (node.module or "").removeprefix("mta4dpr_core").lstrip(".")
                    if node.level == 0
                    else (node.module or "")
                )
                head = module.split(".")[0]
                if head:
                    found.add(head)
                else:  # from . import a, b
                    found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("mta4dpr_core."):
                    found.add(alias.name.split(".")[1])
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), filename=str(path)))
    return found & modules


def import_graph(package: Path) -> dict[str, set[str]]:
    modules = {p.stem for p in package.glob("*.py") if p.stem != "__init__"}
    return {p.stem: package_imports(p, modules) - {p.stem} for p in package.glob("*.py") if p.stem != "__init__"}


def upward_imports(graph, layer_of=LAYER_OF) -> list[str]:
    return [
        f"{module} ({layer_of[module]}) imports {target} ({layer_of[target]})"
        for module, targets in sorted(graph.items())
        for target in sorted(targets)
        if ORDER[layer_of[target]] > ORDER[layer_of[module]]
    ]


def cycles(graph) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def strongconnect(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return found


def test_every_module_belongs_to_exactly_one_layer():
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    placed = [m for layer in LAYERS.values() for m in layer]
    assert len(placed) == len(set(placed)), "a module is named in two layers"
    assert modules - set(placed) == set(), "modules no layer names: add them to mta4dpr_core/layers.py"
    assert set(placed) - modules == set(), "layers.py names modules that do not exist"


def test_imports_point_down_only():
    assert upward_imports(import_graph(PACKAGE)) == []


def test_no_import_cycles():
    assert cycles(import_graph(PACKAGE)) == []


def test_a_planted_upward_import_and_cycle_are_caught(tmp_path):
    copy = tmp_path / "mta4dpr_core"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    losses = copy / "losses.py"
    # inside a function, as most of the core's late imports are
    losses.write_text(
        losses.read_text() + "\n\ndef _planted():\n    from .studies import results_dir\n    return results_dir\n"
    )
    graph = import_graph(copy)
    assert upward_imports(graph) == ["losses (method) imports studies (report)"]
    # studies reaches losses through iteration and training: the plant also closes a cycle
    assert any({"losses", "studies", "training"} <= set(c) for c in cycles(graph))


def test_type_checking_imports_are_not_counted(tmp_path):
    module = tmp_path / "losses.py"
    module.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .studies import x\n")
    assert package_imports(module, {"studies"}) == set()


@pytest.mark.parametrize("module", sorted(LAYERS["method"]))
def test_method_modules_load_no_report_or_experiment_code(module):
    assert all(ORDER[LAYER_OF[target]] <= ORDER["method"] for target in import_graph(PACKAGE)[module])
