"""Executed notebooks keep no progress bars (issue 33: 92 "Encoding tokens" outputs in 01), and keep warnings."""

import json

from mta4dpr_core.runner import strip_progress_outputs


def test_progress_bars_are_removed_and_warnings_kept(tmp_path):
    bar = {"output_type": "stream", "name": "stderr", "text": ["\r", "Encoding tokens:   0%|          | 0/29525"]}
    widget = {"output_type": "display_data", "data": {"application/vnd.jupyter.widget-view+json": {}}, "metadata": {}}
    warning = {"output_type": "stream", "name": "stderr", "text": ["UserWarning: 12 queries have no judgment\n"]}
    table = {"output_type": "stream", "name": "stdout", "text": ["10/10 seeds agree\n"]}
    notebook = {"cells": [{"cell_type": "code", "outputs": [bar, widget, warning, table], "source": ""}], "nbformat": 4}
    path = tmp_path / "n.ipynb"
    path.write_text(json.dumps(notebook))
    assert strip_progress_outputs(path) == 2
    assert json.loads(path.read_text())["cells"][0]["outputs"] == [warning, table]
