"""The notebooks' display helpers (notebook.show, notebook.caption_of), the worked selection batch
(walkthrough.kl_batch_table, walkthrough.worked_batch) and the notebook generator (tools/make_notebooks.py).

Everything here is cheap: synthetic frames and arrays, the smoke profile's params without its data,
and the generator's notebooks built in memory."""

from __future__ import annotations

import importlib.util
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from mta4dpr_core.config.params import REPO_ROOT
from mta4dpr_core.config.typed import typed
from mta4dpr_core.method.selection import kl_divergence
from mta4dpr_core.report import walkthrough
from mta4dpr_core.report.notebook import caption_of, show


def _frame():
    return pd.DataFrame(
        {
            "model": ["a", "b", "c"],
            "seeds": [5.0, 5.0, 3.0],
            "tiny": [1e-05, 2e-06, 0.0],
            "empty": [np.nan, np.nan, np.nan],
            "nDCG@10": [50.123, 51.0, 49.5],
            "nDCG@10 ±": [0.2, np.nan, 0.31],
            "Δ": [-0.001, 0.5, -1.254],
        },
        index=[101, 202, 303],
    )


def test_show_hides_the_index():
    table = show(_frame())
    html = table.to_html()
    assert "row_heading" not in html and ">101<" not in html and ">202<" not in html
    assert list(table.text.index) == [0, 1, 2]
    assert not repr(table).splitlines()[0].lstrip().startswith("0")


def test_show_drops_all_nan_columns():
    table = show(_frame())
    assert "empty" not in table.text.columns
    assert "empty" not in table.to_html()


def test_show_prints_integer_valued_floats_as_integers():
    table = show(_frame())
    assert table.text["seeds"].tolist() == ["5", "5", "3"]


def test_show_never_uses_scientific_notation():
    table = show(_frame())
    assert table.text["tiny"].tolist() == ["0.000010", "0.000002", "0.000000"]
    html, text = table.to_html(), repr(table)
    for rendered in (html, text):
        assert not re.search(r"\de[-+]?\d", rendered)
    # fixed decimals elsewhere, no negative zero, mean ± std merged as in the results' Markdown
    assert table.text["Δ"].tolist() == ["0.00", "0.50", "-1.25"]
    assert table.text["nDCG@10"].tolist() == ["50.12 ± 0.20", "51.00", "49.50 ± 0.31"]
    assert "nDCG@10 ±" not in table.text.columns


def test_show_caption_above_and_truncation_note(tmp_path):
    table = show(_frame(), caption="Table X: data, seeds, metric", max_rows=2, file=tmp_path / "x.csv")
    assert len(table.text) == 2
    assert table.note == f"first 2 of 3 rows; full table in {tmp_path / 'x.csv'}"
    html = table.to_html()
    assert html.index("<caption>") < html.index("<thead>")
    assert "Table X: data, seeds, metric" in html and "first 2 of 3 rows" in html and "caption-side: top" in html
    lines = repr(table).splitlines()
    assert lines[0] == "Table X: data, seeds, metric" and lines[-1].startswith("first 2 of 3 rows")
    assert show(_frame(), max_rows=2).note == "first 2 of 3 rows"
    assert show(_frame(), max_rows=5).note is None


def test_show_of_a_missing_table():
    assert "not computed" in repr(show(None, "Table 7"))


def test_caption_of_reads_the_markdown_caption(tmp_path):
    (tmp_path / "table1.md").write_text("## Table 1: main results (percent; 5 seeds)\n\n| a |\n|---|\n| 1 |\n")
    (tmp_path / "plain.md").write_text("| a |\n|---|\n")
    assert caption_of(tmp_path, "table1") == "Table 1: main results (percent; 5 seeds)"
    assert caption_of(tmp_path, "plain") is None
    assert caption_of(tmp_path, "missing") is None


def _distributions(rng, batch=5, count=6, candidates=4):
    teacher = rng.dirichlet(np.ones(count), size=batch)
    others = rng.dirichlet(np.ones(count), size=(candidates, batch))
    return teacher, others


def test_kl_batch_table_chooses_the_argmin():
    rng = np.random.default_rng(3)
    teacher, candidates = _distributions(rng)
    candidates[2] = 0.9 * teacher + 0.1 / teacher.shape[1]  # clearly the closest
    names = ["a", "b", "c", "a&b"]
    table = walkthrough.kl_batch_table(teacher, candidates, names)
    kl = table[walkthrough.KL_COLUMN]
    assert table["chosen"].sum() == 1
    assert table.loc[table["chosen"], "assistant"].item() == table.loc[kl.idxmin(), "assistant"] == "c"
    expected = dict(zip(names, kl_divergence(teacher, candidates), strict=True))
    assert np.allclose([expected[n] for n in table["assistant"]], kl)
    assert table["members"].tolist() == [len(n.split("&")) for n in table["assistant"]]
    with pytest.raises(ValueError):
        walkthrough.kl_batch_table(teacher, candidates, names[:3])


def _synthetic_setup():
    from mta4dpr_core.config.params import load_params, profile_path
    from mta4dpr_core.method.construction import TrainingData

    rng = np.random.default_rng(0)
    rows, width, m = 12, 7, 3
    candidates = np.tile(np.arange(width), (rows, 1))
    candidates[0, -1] = -1
    positive = np.zeros((rows, width), bool)
    positive[:, 0] = True
    teacher = rng.normal(size=(rows, width)).astype(np.float32)
    assistants = np.stack([teacher + rng.normal(scale=s, size=teacher.shape) for s in (0.3, 1.0, 2.0)]).astype(
        np.float32
    )
    names = ["a", "b", "c"][:m]
    data = TrainingData(
        [f"q{i}" for i in range(rows)],
        [f"query text {i}" for i in range(rows)],
        np.arange(rows),
        candidates,
        positive,
        teacher,
        assistants,
        names,
        np.zeros(rows, np.int8),
    )
    params = load_params(profile_path("smoke"))
    setup = SimpleNamespace(
        params=params,
        config=typed(params),
        assistants=[SimpleNamespace(name=n, temperature=1.0, temperature_given=False) for n in names],
    )
    return setup, data


def test_worked_batch_on_synthetic_data():
    setup, data = _synthetic_setup()
    table = walkthrough.worked_batch(setup, data, batch_size=4)
    kl = table[walkthrough.KL_COLUMN]
    assert len(table) == 2**3 - 1  # 3 originals and 4 fused
    assert table["chosen"].sum() == 1 and bool(table.loc[kl.idxmin(), "chosen"])
    assert len(table.attrs["queries"]) == 4 and table.attrs["step"] == 1
    assert table.attrs["same_as_run"] is False  # another batch size than training's
    assert list(walkthrough.batch_queries(table).columns) == ["query id", "query"]
    again = walkthrough.worked_batch(setup, data, batch_size=4)
    assert again.attrs["queries"] == table.attrs["queries"]  # the trainer's seeded generator: the same batch
    runs = [_run(table.attrs["seed"], [{"iteration": 1, "step": 1, "assistant": table.attrs["chosen"]}])]
    assert walkthrough.recorded_choice(runs, table.attrs["seed"]) == table.attrs["chosen"]
    assert "not comparable" in walkthrough.check_worked_batch(table, runs)


def _run(seed, selections):
    """A stored run with only a seed and its per-step selections."""
    from mta4dpr_core.experiments.iteration import RunResult

    empty = dict(variant="mta4dpr", assistants=[], initial={}, history=(), temperatures={}, final=None, params={})
    return RunResult(seed=seed, selections=selections, student_spec={}, training_precision="float32", **empty)


def test_step_trace_and_its_file(tmp_path):
    runs = [
        _run(
            seed,
            [
                {
                    "iteration": it,
                    "step": st,
                    "assistant": "a",
                    "members": 1,
                    "select_seconds": 0.0,
                    "step_seconds": 0.1,
                    "total": 1.5,
                    "contrastive": 2.5,
                    "kl_teacher": 0.25,
                    "kl_assistant": 0.0125,
                }
                for it in (1, 2)
                for st in range(1, 21)
            ],
        )
        for seed in (13, 42)
    ]
    trace = walkthrough.step_trace(runs)
    assert len(trace) == 80 and trace["global step"].max() == 40
    walkthrough.write_step_trace(trace, tmp_path, {"loss": {"alpha": 0.2, "beta": 1.0, "gamma": 15.0}})
    assert len(pd.read_csv(tmp_path / "step_trace.csv")) == 80
    table = show(trace, caption_of(tmp_path, "step_trace"), max_rows=15, file=tmp_path / "step_trace.csv")
    assert len(table.text) == 15 and table.note.startswith("first 15 of 80 rows; full table in")
    assert table.caption.startswith("Per-step trace")


# ---- the notebook generator ---------------------------------------------------------------------------------


def _generator():
    spec = importlib.util.spec_from_file_location("make_notebooks", REPO_ROOT / "tools" / "make_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _has_magic(source: str) -> bool:
    return any(line.lstrip().startswith(("%", "!")) for line in source.splitlines())


def test_generator_builds_valid_notebooks_with_valid_code():
    nbformat = pytest.importorskip("nbformat")
    notebooks = _generator().build_notebooks()
    assert sorted(notebooks) == [
        "01_data_prep",
        "02_fusion",
        "03_selection_study",
        "04_training",
        "05_ablations",
        "06_scale_and_cost",
        "07_summary",
    ]
    for name, nb in notebooks.items():
        nbformat.validate(nb)
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "code" and not _has_magic(cell.source):
                compile(cell.source, f"{name} cell {index}", "exec")


def test_generator_content():
    notebooks = _generator().build_notebooks()

    def markdown(name):
        return "\n".join(c.source for c in notebooks[name].cells if c.cell_type == "markdown")

    def code(name):
        return "\n".join(c.source for c in notebooks[name].cells if c.cell_type == "code")

    for name in ("01_data_prep", "02_fusion", "03_selection_study", "04_training"):
        assert "## Method" in markdown(name), name
    assert r"\mathrm{RRF}" in markdown("01_data_prep") and r"\mathrm{softmax}" in markdown("02_fusion")
    assert r"\arg\min" in markdown("03_selection_study") and "walkthrough.worked_batch(setup, data)" in code(
        "03_selection_study"
    )
    assert 'params["loss"]' in code("04_training") and "student@k" in markdown("04_training")
    assert "max_rows=15" in code("04_training")
    for name in notebooks:
        assert not re.search(r"display\(out\[", code(name)), name  # every table through show()
    assert "Where the student sits" in markdown("07_summary")
    for name, needle in [
        ("03_selection_study", "Δ vs KL = "),
        ("04_training", "Δ vs no assistant = "),
        ("04_training", "Δ vs previous = "),
        ("05_ablations", "Δ vs MTA4DPR = "),
        ("05_ablations", "Δ vs none = "),
        ("06_scale_and_cost", "Δ vs no assistant = "),
    ]:
        assert needle in markdown(name), (name, needle)


def test_generator_writes_into_a_given_directory(tmp_path):
    paths = _generator().write_notebooks(tmp_path)
    assert len(paths) == 7 and all(p.parent == tmp_path and p.stat().st_size > 0 for p in paths)


def test_a_wide_table_gets_a_main_view_that_names_its_csv():
    """Issue 33: the claims table (28+ columns) ran off a 1,400-pixel page; the notebook shows main columns
    (each with its ± partner) and says where every column is."""
    import pandas as pd

    from mta4dpr_core.report.notebook import show

    frame = pd.DataFrame({"id": ["a"], "x": [1.5], "x ±": [0.1], "y": [2.0], "z": ["w"]})
    table = show(frame, columns=["id", "x", "missing"], file="results/mini/t.csv")
    assert list(table.text.columns) == ["id", "x"]
    assert table.text.loc[0, "x"] == "1.50 ± 0.10"
    assert table.note == "2 of 4 columns; every column in results/mini/t.csv"
