"""The core's layers (mta4dpr_core/config/layers.py): imports point down, no cycles, every module placed.

Imports are read from the source (``ast``), function-level ones included; an import under
``if TYPE_CHECKING:`` is for annotations only and is skipped.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from mta4dpr_core.config.layers import LAYER_OF, LAYERS, ORDER

PACKAGE = Path(__file__).resolve().parent.parent / "mta4dpr_core"


def _is_type_checking(node) -> bool:
    test = node.test
    return isinstance(node, ast.If) and (
        getattr(test, "id", None) == "TYPE_CHECKING" or getattr(test, "attr", None) == "TYPE_CHECKING"
    )


def _module_of(path: Path, package: Path) -> tuple[str | None, str]:
    """(subpackage, stem) of a source file: ``(None, "runner")`` for a top-level module."""
    parts = path.relative_to(package).parts
    return (parts[0] if len(parts) == 2 else None), path.stem


def package_imports(path: Path, modules: set[str], package: Path | None = None) -> set[str]:
    """The package modules (by name) that ``path`` imports: relative imports at any level and
    ``mta4dpr_core.`` imports, at any depth of the file (function-level ones included)."""
    found = set()
    here = _module_of(path, package)[0] if package is not None and package in path.parents else None

    def add(dotted: str, names):
        # a dotted path below the package ("report.studies", "report", "studies"): its last module part
        parts = [p for p in dotted.split(".") if p]
        if parts and parts[-1] in modules:
            found.add(parts[-1])
        else:  # from <subpackage> import a, b (or from . import a, b)
            found.update(alias.name for alias in names)

    def visit(node):
        if isinstance(node, ast.If) and _is_type_checking(node):
            return
        if isinstance(node, ast.ImportFrom):
            if node.level == 0 and (node.module or "").startswith("mta4dpr_core"):
                add((node.module or "").removeprefix("mta4dpr_core"), node.names)
            elif node.level >= 1:
                base = here if node.level == 1 else ""
                add(f"{base or ''}.{node.module or ''}", node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("mta4dpr_core."):
                    add(alias.name.removeprefix("mta4dpr_core"), [])
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), filename=str(path)))
    return found & modules


def source_files(package: Path) -> list[Path]:
    return [p for p in sorted(package.rglob("*.py")) if p.stem != "__init__"]


def import_graph(package: Path) -> dict[str, set[str]]:
    modules = {p.stem for p in source_files(package)}
    return {p.stem: package_imports(p, modules, package) - {p.stem} for p in source_files(package)}


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
    modules = {p.stem for p in source_files(PACKAGE)}
    placed = [m for layer in LAYERS.values() for m in layer]
    assert len(placed) == len(set(placed)), "a module is named in two layers"
    assert modules - set(placed) == set(), "modules no layer names: add them to mta4dpr_core/config/layers.py"
    assert set(placed) - modules == set(), "layers.py names modules that do not exist"


def test_the_folders_are_the_layers():
    """Each layer is a subpackage holding exactly its modules (the entry point stays at the top)."""
    for path in source_files(PACKAGE):
        folder, stem = _module_of(path, PACKAGE)
        assert (folder or "entry") == LAYER_OF[stem], f"{path.relative_to(PACKAGE)} is in the {LAYER_OF[stem]} layer"


def test_imports_point_down_only():
    assert upward_imports(import_graph(PACKAGE)) == []


def test_no_import_cycles():
    assert cycles(import_graph(PACKAGE)) == []


def test_a_planted_upward_import_and_cycle_are_caught(tmp_path):
    copy = tmp_path / "mta4dpr_core"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    losses = copy / "method" / "losses.py"
    # inside a function, as most of the core's late imports are
    losses.write_text(
        losses.read_text()
        + "\n\ndef _planted():\n    from ..report.studies import results_dir\n    return results_dir\n"
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
