"""Progress lines: off with MTA4DPR_PROGRESS=0, into the runner's file otherwise; the runner's ETA."""

from __future__ import annotations

import logging

from mta4dpr_core.config import progress
from mta4dpr_core.runner import ProgressMonitor, previous_timings


def test_report_goes_to_the_progress_file(tmp_path, monkeypatch):
    path = tmp_path / "progress.log"
    monkeypatch.setenv("MTA4DPR_PROGRESS", "1")
    monkeypatch.setenv("MTA4DPR_PROGRESS_FILE", str(path))
    progress.report("mta4dpr seed 13 iteration 1/2")
    assert path.read_text() == "mta4dpr seed 13 iteration 1/2\n"


def test_nothing_when_progress_is_off(tmp_path, monkeypatch, capsys):
    path = tmp_path / "progress.log"
    monkeypatch.setenv("MTA4DPR_PROGRESS", "0")
    monkeypatch.setenv("MTA4DPR_PROGRESS_FILE", str(path))
    progress.report("hidden")
    assert list(progress.progress_bar(range(3), desc="x", total=3)) == [0, 1, 2]
    assert not path.exists()
    assert capsys.readouterr().err == ""


def test_bar_close_reports_long_bars(tmp_path, monkeypatch):
    path = tmp_path / "progress.log"
    monkeypatch.setenv("MTA4DPR_PROGRESS", "1")
    monkeypatch.setenv("MTA4DPR_PROGRESS_FILE", str(path))
    monkeypatch.setattr(progress, "CLOSE_REPORT_SECONDS", 0.0)
    bar = progress.progress_bar(range(4), desc="train iteration 1", total=4)
    for _ in bar:
        bar.set_postfix({"total": "0.500"}, refresh=False)
    bar.close()
    assert "train iteration 1: 4/4 done" in path.read_text()


def test_core_info_logs_become_progress_lines(tmp_path, monkeypatch):
    path = tmp_path / "progress.log"
    monkeypatch.setenv("MTA4DPR_PROGRESS", "1")
    monkeypatch.setenv("MTA4DPR_PROGRESS_FILE", str(path))
    progress.route_logs("mta4dpr_core.test_progress_logger")
    logging.getLogger("mta4dpr_core.test_progress_logger").info("seed %d iteration %d", 13, 1)
    assert "seed 13 iteration 1" in path.read_text()


def test_eta_from_previous_timings_and_notebooks_done(tmp_path):
    (tmp_path / "01_a.done.json").write_text('{"key": "old", "seconds": 10.0}')
    previous = previous_timings(tmp_path, tmp_path, ["01_a", "02_b", "03_c"])
    assert previous == {"01_a": 10.0}
    lines = []
    monitor = ProgressMonitor("p", ["01_a", "02_b", "03_c"], previous, log=lines.append)
    assert monitor.eta() is None  # nothing known about 02_b and 03_c yet
    monitor.start("01_a", None)
    monitor.finish("01_a", 12.0)
    assert monitor.eta() == 24.0  # the two others guessed from the mean of notebooks run so far
    assert "1/3 done" in lines[-1] and "ETA" in lines[-1]
