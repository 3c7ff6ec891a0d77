"""mta4dpr_core.report.ladder on small synthetic results tables (the real tables' column names)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from mta4dpr_core.report import ladder
from mta4dpr_core.report.tables import collection_label

NO_ASSISTANT = "no assistant (teacher-only KD, same iterations and steps)"


def _params(test="scifact/test", profile="synthetic", metric="nDCG@10"):
    return {"profile": profile, "data": {"test": test}, "study": {"primary_metric": metric}}


def _write_tables(folder, with_table6=True):
    folder.mkdir(parents=True, exist_ok=True)
    table1 = pd.DataFrame(
        [
            {
                "model": "teacher",
                "role": "teacher",
                "paper analogue": "SimLM-reranker (teacher)",
                "nDCG@10": 70.0,
                "nDCG@10 ±": None,
                "MRR@10": 66.0,
                "paper MRR@10": 43.7,
            },
            {
                "model": "alpha",
                "role": "assistant",
                "paper analogue": "CotMAE",
                "nDCG@10": 50.0,
                "nDCG@10 ±": None,
                "MRR@10": 45.0,
                "paper MRR@10": 39.4,
            },
            {
                "model": "beta",
                "role": "assistant",
                "paper analogue": "RetroMAE",
                "nDCG@10": 62.0,
                "nDCG@10 ±": None,
                "MRR@10": 58.0,
                "paper MRR@10": 41.6,
            },
            {
                "model": "bm25",
                "role": "baseline",
                "paper analogue": "BM25",
                "nDCG@10": 66.0,
                "nDCG@10 ±": None,
                "MRR@10": 61.0,
                "paper MRR@10": 18.7,
            },
            {
                "model": "student before training",
                "role": "student",
                "paper analogue": None,
                "nDCG@10": 48.0,
                "nDCG@10 ±": 0.0,
                "MRR@10": 44.0,
                "paper MRR@10": None,
            },
            {
                "model": NO_ASSISTANT,
                "role": "student",
                "paper analogue": "No assistant",
                "nDCG@10": 55.0,
                "nDCG@10 ±": 0.4,
                "MRR@10": 51.0,
                "paper MRR@10": 39.9,
            },
            {
                "model": "teacher-only KD, 1 iteration, same total steps",
                "role": "student",
                "paper analogue": None,
                "nDCG@10": 54.0,
                "nDCG@10 ±": 0.3,
                "MRR@10": 50.0,
                "paper MRR@10": None,
            },
            {
                "model": "MTA4DPR",
                "role": "student",
                "paper analogue": "MTA4DPR",
                "nDCG@10": 57.0,
                "nDCG@10 ±": 0.2,
                "MRR@10": 52.0,
                "paper MRR@10": 41.1,
            },
        ]
    )
    # the row ids as studies.main_study writes them: rows are joined by id, never by label
    table1.insert(
        0,
        "id",
        ["teacher", "alpha", "beta", "bm25", "untrained-student", "no_assistants", "one_iteration_kd", "mta4dpr"],
    )
    table1["Δ vs no assistant nDCG@10"] = [None] * 7 + [2.0]
    table1["Δ vs no assistant low"] = [None] * 7 + [1.0]
    table1["Δ vs no assistant high"] = [None] * 7 + [3.0]
    table1.to_csv(folder / "table1.csv", index=False)
    table7 = pd.DataFrame(
        {
            "id": ["no_assistants", "assistants_0", "assistants_1", "mta4dpr"],
            "assistants": ["none", "alpha", "beta", "alpha&beta"],
            "paper letters": ["/", "C", "R", "C&R"],
            "nDCG@10": [55.0, 53.5, 56.0, 57.0],
            "nDCG@10 ±": [0.4, 0.3, 0.2, 0.2],
            "paper MRR@10": [39.9, 40.2, 40.6, 40.7],
            "Δ vs none nDCG@10": [None, -1.5, 1.0, 2.0],
            "Δ vs none low": [None, -2.5, 0.1, 1.0],
            "Δ vs none high": [None, -0.5, 1.9, 3.0],
        }
    )
    table7.to_csv(folder / "table7.csv", index=False)
    if with_table6:
        table6 = pd.DataFrame(
            {
                "source": ["ours", "ours", "paper (MS MARCO dev, SimLM-base student)"],
                "student": ["static s, 64-d", "static s, full-d", "6 layers, 768-d, 66M"],
                "seeds": [3, 3, None],
                "nDCG@10": [40.0, 57.0, None],
                "nDCG@10 ±": [0.5, 0.2, None],
                "MRR@10": [36.0, 52.0, 41.1],
                "Δ vs no assistant nDCG@10": [-3.0, 2.0, None],
                "Δ vs no assistant low": [-4.0, 1.0, None],
                "Δ vs no assistant high": [-2.0, 3.0, None],
            }
        )
        table6.to_csv(folder / "table6.csv", index=False)
    return folder


def test_ladder_order_and_rungs(tmp_path):
    folder = _write_tables(tmp_path / "synthetic")
    table = ladder.student_ladder(folder, _params())
    assert list(table.columns) == ["id", "rung", "model", "ours nDCG@10", "paper analogue", "paper MRR@10"]
    assert list(table.rung) == [
        "teacher",
        "bm25",
        "assistant:beta",
        "student:mta4dpr",
        "student:no-assistant",
        "assistant:alpha",
        "student:untrained",
    ]  # the one-iteration KD row is not a rung
    assert list(table["ours nDCG@10"]) == sorted(table["ours nDCG@10"], reverse=True)
    row = table.set_index("rung").loc["student:no-assistant"]
    assert (
        row.model == NO_ASSISTANT
        and row["paper analogue"] == "No assistant"
        and row["paper MRR@10"] == pytest.approx(39.9)
    )
    assert math.isnan(table.set_index("rung").loc["student:untrained", "paper MRR@10"])


def test_ladder_reads_mean_pm_std_strings(tmp_path):
    folder = _write_tables(tmp_path / "synthetic")
    table1 = pd.read_csv(folder / "table1.csv")
    table1["nDCG@10"] = [f"{v:.2f} ± 0.10" for v in table1["nDCG@10"]]
    table1.to_csv(folder / "table1.csv", index=False)
    table = ladder.student_ladder(folder, _params())
    assert table.set_index("rung").loc["student:mta4dpr", "ours nDCG@10"] == pytest.approx(57.0)
    assert ladder.number("−1.50 ± 0.2") == pytest.approx(-1.5) and math.isnan(ladder.number("–"))


def test_gap_points_by_hand(tmp_path):
    folder = _write_tables(tmp_path / "synthetic")
    points = ladder.gap_points(folder, _params()).set_index(["source", "label"])
    assert len(points) == 5
    # one assistant: its own score (Table 1) − Table 7's "none" row; y is Table 7's Δ with its interval
    alpha = points.loc[("table7", "alpha")]
    assert alpha.kind == ladder.SINGLE and alpha.gap == pytest.approx(50.0 - 55.0)
    assert (alpha.delta, alpha.low, alpha.high) == pytest.approx((-1.5, -2.5, -0.5))
    assert points.loc[("table7", "beta"), "gap"] == pytest.approx(62.0 - 55.0)
    # all assistants: the mean of their scores − "none"
    both = points.loc[("table7", "alpha&beta")]
    assert (
        both.kind == ladder.ALL
        and both.gap == pytest.approx((50.0 + 62.0) / 2 - 55.0)
        and both.delta == pytest.approx(2.0)
    )
    # a Table 6 size: mean of the assistants − (the size's MTA4DPR score − its Δ vs no assistant); paper rows skipped
    small = points.loc[("table6", "static s, 64-d")]
    assert small.kind == ladder.ALL and small.gap == pytest.approx(56.0 - (40.0 - (-3.0)))
    assert (small.delta, small.low, small.high) == pytest.approx((-3.0, -4.0, -2.0))
    assert set(points.metric) == {"nDCG@10"} and set(points.profile) == {"synthetic"}


def test_caption_names_the_collection_and_writes_outputs(tmp_path):
    folder = _write_tables(tmp_path / "nf", with_table6=False)
    params = _params(test="nfcorpus/test", profile="nf")
    assert collection_label(params) == "NFCorpus"
    assert collection_label(_params(test="scifact/test")) == "SciFact"
    table, points = ladder.write_ladder_and_gap(folder, params)
    markdown = (folder / "ladder.md").read_text()
    assert "NFCorpus" in markdown.splitlines()[0] and "SciFact" not in markdown
    assert (folder / "ladder.csv").is_file() and (folder / "gap_points.csv").is_file()
    assert (folder / "gap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(points) == 3 and set(points.source) == {"table7"}
    assert pd.read_csv(folder / "ladder.csv").rung.tolist() == table.rung.tolist()


def test_cross_profile_skips_missing(tmp_path):
    _write_tables(tmp_path / "a")
    points = ladder.cross_profile_gap(
        tmp_path, {"a": _params(profile="a"), "b": _params(profile="b", test="nfcorpus/test")}
    )
    assert set(points.profile) == {"a"} and len(points) == 5
    assert "skipped (no Table 1 with Table 6/7): b" in (tmp_path / "assistant_gap.md").read_text()
    assert (tmp_path / "assistant_gap.png").is_file() and (tmp_path / "assistant_gap.csv").is_file()


def test_gap_plot_names_its_points_in_a_key_not_beside_them():
    """Issue 33: the point labels overlapped into unreadable clusters; each point now carries a number and the
    key beside the plot names it."""
    import pandas as pd

    from mta4dpr_core.report.ladder import plot_gap

    points = pd.DataFrame(
        {
            "profile": ["mini"] * 3,
            "source": ["table7", "table7", "table6"],
            "label": ["a", "b", "c"],
            "kind": ["single assistant − none", "MTA4DPR − none", "MTA4DPR − none"],
            "gap": [0.0, 0.1, 0.2],
            "delta": [-1.0, -1.0, -1.1],
            "low": [-2.0, -2.0, -2.0],
            "high": [0.0, 0.0, 0.0],
            "metric": ["nDCG@10"] * 3,
        }
    )
    figure = plot_gap(points).figure
    plot_axes, key_axes = figure.axes[:2]
    assert sorted(t.get_text() for t in plot_axes.texts) == ["1", "2", "3"]
    assert [t.get_text().split()[-1] for t in key_axes.texts] == ["a", "b", "(T6)"]
