"""tools/cold_run.py: what it reads from a finished run (CPU, per-notebook times, the comparison) and its report.

The run itself (a clone, an install, a profile's notebooks) takes minutes to an hour; it is not run here."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[2] / "tools"
sys.path.insert(0, str(TOOLS))

import cold_run  # noqa: E402

CPUINFO = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8488C
flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile
processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8488C
flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile
"""


def test_cpu_description_names_the_model_and_the_features_that_pick_kernels():
    cpu = cold_run.cpu_description(CPUINFO)
    assert cpu["model"] == "Intel(R) Xeon(R) Platinum 8488C"
    assert cpu["features"] == ["avx2", "avx512f", "avx512_bf16", "amx_bf16"]
    assert cold_run.cpu_description("model name : AMD EPYC\nflags : fpu avx2 fma\n")["features"] == ["avx2"]


def _manifest(path: Path, **extra) -> Path:
    timings = {"01_data_prep": 553.1, "02_fusion": 21.1, "total": 574.2}
    manifest = {"cold_start": True, "cold_timings_seconds": timings, "timings_seconds": {}, "wall_seconds": 580.0}
    manifest.update(extra)
    path.write_text(json.dumps(manifest))
    return path


def test_notebook_times_are_the_cold_timings_and_the_wall(tmp_path):
    times = cold_run.notebook_times(_manifest(tmp_path / "manifest.json"))
    assert times == {"01_data_prep": 553.1, "02_fusion": 21.1, "total": 574.2, "wall": 580.0}


def test_a_run_without_timings_is_an_error_naming_its_manifest(tmp_path):
    broken = tmp_path / "manifest.json"
    broken.write_text('{"cold_start": true}')
    with pytest.raises(SystemExit, match="manifest.json: no run timings"):
        cold_run.notebook_times(broken)
    with pytest.raises(SystemExit, match="did the run finish"):
        cold_run.notebook_times(tmp_path / "absent.json")


def test_comparison_summary_of_an_absent_comparison_is_empty(tmp_path):
    # what it reads from a real comparison: tests/report/test_compare_results.py
    assert cold_run.comparison_summary(tmp_path / "absent.md") == ([], [])


def test_render_reports_install_notebooks_wall_and_an_unclean_clone(tmp_path):
    info = {
        "profile": "mini",
        "revision": "abc1234",
        "finished": "2026-12-07 12:00 UTC",
        "cpu": cold_run.cpu_description(CPUINFO),
        "capability_note": "native (AVX-512)",
        "load_before": 0.1,
        "load_after": 1.9,
        "install_seconds": 66.0,
        "reproduce_seconds": 650.0,
        "timings": cold_run.notebook_times(_manifest(tmp_path / "manifest.json")),
        "side_by_side": [["02_fusion"]],
        "clean": False,
        "status": "?? stray.txt",
        "comparison_rows": ["| table | rows |", "|---|---|", "| claims | 22 |"],
        "verdicts": ["claims: x: confirmed -> inconclusive"],
    }
    report = cold_run.render(info)
    assert "| install (`make setup`) | 1 min 06 s |" in report
    assert "| 01_data_prep | 9 min 13 s |" in report and "| 02_fusion (side by side) | 0 min 21 s |" in report
    assert "| **install + notebooks, wall** | **10 min 46 s** |" in report  # 66 + 580 s
    assert "**not clean**: ?? stray.txt" in report
    assert "Verdicts that differ: 1\n- claims: x: confirmed -> inconclusive" in report
    assert "Platinum 8488C, " in report and "amx_bf16" in report


def test_report_path_names_profile_cpu_and_a_forced_capability():
    xeon = cold_run.cpu_description(CPUINFO)
    assert cold_run.report_path("mini", xeon, "native").name == "mini_intel-xeon-platinum-8488c.md"
    assert cold_run.report_path("mini", xeon, "avx2").name == "mini_intel-xeon-platinum-8488c_avx2.md"
    epyc = cold_run.cpu_description("model name : AMD EPYC 7B13 64-Core Processor\n")
    assert cold_run.report_path("smoke", epyc, "native").name == "smoke_amd-epyc-7b13-64-core.md"
    assert cold_run.report_path("mini", cold_run.cpu_description(""), "native").name == "mini_unknown.md"
    bare = "model name : AMD EPYC\nflags : fpu avx2 avx512f avx512_bf16\n"
    assert cold_run.report_path("mini", cold_run.cpu_description(bare), "native").name == "mini_amd-epyc-avx512.md"
    avx2_only = cold_run.cpu_description("model name : AMD EPYC\nflags : fpu avx2\n")
    assert cold_run.report_path("mini", avx2_only, "native").name == "mini_amd-epyc.md"
