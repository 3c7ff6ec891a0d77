"""The regime map reads the profiles' tables and the paper's numbers; it computes gaps and positions only."""

from __future__ import annotations

import pandas as pd
import pytest

from mta4dpr_core.report.regime_map import MATCHED_CLAIM, paper_points, position, profile_point, write_regime_map


def _profile(folder, teacher=80.0, assistants=(72.0, 40.0), student=50.0, effect=-1.0):
    folder.mkdir(parents=True)
    rows = [{"id": "t", "role": None, "train nDCG@10": teacher, "profile's teacher": True}]
    rows += [
        {"id": f"a{i}", "role": "assistant", "train nDCG@10": a, "profile's teacher": False}
        for i, a in enumerate(assistants)
    ]
    pd.DataFrame(rows).to_csv(folder / "teacher_selection.csv", index=False)
    ladder = [{"rung": "teacher", "ours nDCG@10": 79.0}, {"rung": "student:no-assistant", "ours nDCG@10": student}]
    ladder += [{"rung": f"assistant:a{i}", "ours nDCG@10": a - 1} for i, a in enumerate(assistants)]
    pd.DataFrame(ladder).to_csv(folder / "ladder.csv", index=False)
    pd.DataFrame(
        [{"id": MATCHED_CLAIM, "effect": effect, "low": effect - 1, "high": effect + 1, "verdict": "inconclusive"}]
    ).to_csv(folder / "claims.csv", index=False)


def test_a_profile_point_is_its_training_gap_its_student_position_and_its_matched_claim(tmp_path):
    _profile(tmp_path / "p")
    point = profile_point(tmp_path / "p", "p")
    assert point["gap to best assistant (%)"] == pytest.approx(10.0)
    assert point["gap to weakest assistant (%)"] == pytest.approx(50.0)
    assert point["student vs band"] == "inside"
    assert point["student position in band"] == pytest.approx((50 - 39) / (71 - 39))
    assert (point["Δ"], point["low"], point["high"]) == (-1.0, -2.0, 0.0)


def test_the_paper_s_settings_come_from_its_tables():
    msmarco, nq = paper_points()
    # MS MARCO: teacher 43.7, assistants 39.4-42.0, no assistant 39.9, MTA4DPR 41.1 (MRR@10)
    assert msmarco["gap to best assistant (%)"] == pytest.approx(100 * (43.7 - 42.0) / 43.7)
    assert msmarco["gap to weakest assistant (%)"] == pytest.approx(100 * (43.7 - 39.4) / 43.7)
    assert msmarco["Δ"] == pytest.approx(1.2) and msmarco["student vs band"] == "inside"
    # NQ: teacher 85.3, assistants 82.7 and 83.5, no assistant 82.2, MTA4DPR 83.6 (R@20)
    assert nq["gap to best assistant (%)"] == pytest.approx(100 * (85.3 - 83.5) / 85.3)
    assert nq["Δ"] == pytest.approx(1.4) and nq["student vs band"] == "below"


def test_the_map_skips_a_profile_with_missing_tables_and_says_so(tmp_path):
    _profile(tmp_path / "p")
    (tmp_path / "q").mkdir()
    points, sweeps, _ = write_regime_map(tmp_path, ["p", "q"])
    assert list(points["id"]) == ["p", "paper:msmarco", "paper:nq"] and sweeps.empty
    assert "skipped (tables missing): q" in (tmp_path / "regime_map.md").read_text()
    assert (tmp_path / "regime_map.png").stat().st_size > 0


def test_position_against_the_band():
    assert [position(s, [1.0, 2.0]) for s in (0.5, 1.0, 1.5, 2.0, 2.5)] == [
        "below",
        "inside",
        "inside",
        "inside",
        "above",
    ]
