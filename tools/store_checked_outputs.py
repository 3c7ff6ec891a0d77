"""Copy the outputs of the cells nbval checks (``# NBVAL_CHECK_OUTPUT``) from executed notebooks
(``runs/smoke/notebooks/``) into the source notebooks, so ``pytest --nbval-lax`` compares against them."""

import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
executed_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "runs" / "smoke" / "notebooks"
for source_path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
    executed = nbformat.read(executed_dir / source_path.name, as_version=4)
    outputs = {cell.source: cell.get("outputs", []) for cell in executed.cells if cell.cell_type == "code"}
    notebook = nbformat.read(source_path, as_version=4)
    count = 0
    for cell in notebook.cells:
        if cell.cell_type == "code":
            count += 1
            checked = "NBVAL_CHECK_OUTPUT" in cell.source
            cell.outputs = outputs.get(cell.source, []) if checked else []
            # nbval refuses stored outputs of a cell that was never run
            cell.execution_count = count if checked else None
            for output in cell.outputs:
                if "execution_count" in output:
                    output["execution_count"] = count
    nbformat.write(notebook, source_path)
    print("stored checked outputs in", source_path.name)
