"""The notebooks' stages: one function per notebook, each returning what it shows.

A notebook is a parameters cell, ``setup = Setup.from_params(params)``, one call
below, and display cells. ``python -m mta4dpr_core.runner --no-notebooks`` runs
the same functions without Jupyter.
"""

from __future__ import annotations

from .experiments.catalog import planned_runs
from .experiments.experiment import Setup
from .experiments.grid import run_grid
from .report import plots, studies
from .report.claims import check_claims, write_findings


def _run_planned(setup: Setup, stage: str):
    """The stage's missing MTA4DPR runs first, side by side (grid.py); its tables then read them.

    With ``output.schedule: profile`` the first stage runs every run of the profile in one grid, so the
    workers stay busy to the end (a stage of three runs on two workers leaves one idle for a whole run);
    the later stages then find their runs stored."""
    everything = setup.config.output.schedule == "profile"
    run_grid(setup, planned_runs(setup, "summary" if everything else stage))


def data_prep(setup: Setup) -> dict:
    return {
        "teacher_selection": studies.teacher_selection(setup),
        "statistics": studies.dataset_statistics(setup),
        "baselines": studies.baselines(setup),
    }


def fusion(setup: Setup) -> dict:
    table = studies.fusion_closeness(setup)
    figure = studies.plot_fusion(table, studies.results_dir(setup.params) / "fusion_kl.png")
    return {"fusion_kl": table, "figure": figure}


def selection(setup: Setup) -> dict:
    _run_planned(setup, "selection")
    table5 = studies.selection_study(setup)
    composition = studies.selection_composition(setup)
    figure = studies.plot_composition(composition, studies.results_dir(setup.params) / "figure2.png")
    return {"table5": table5, "figure2_data": composition, "figure": figure}


def _tables(setup: Setup, stage: str, study, names) -> dict:
    """The stage's runs, then ``study(setup)``'s tables by name."""
    _run_planned(setup, stage)
    return dict(zip(names, study(setup), strict=True))


def training(setup: Setup) -> dict:
    return _tables(setup, "training", studies.main_study, ("table1", "table2", "table4"))


def ablations(setup: Setup) -> dict:
    _run_planned(setup, "ablations")
    table3, table7 = studies.ablation_study(setup)
    sweep = studies.dose_response_study(setup)
    figure = (
        studies.plot_dose_response(sweep, studies.results_dir(setup.params) / "dose_response.png")
        if sweep is not None
        else None
    )
    return {"table3": table3, "table7": table7, "dose_response": sweep, "dose_response_figure": figure}


def scale_and_cost(setup: Setup) -> dict:
    return _tables(setup, "scale_and_cost", studies.scale_and_cost, ("table6", "table8", "table9"))


def summary(setup: Setup) -> dict:
    _run_planned(setup, "summary")
    claims = check_claims(setup)
    findings = write_findings(setup, claims)
    forest = plots.claims_forest(claims)
    forest.save(studies.results_dir(setup.params) / "claims.png")
    return {"claims": claims, "findings": findings, "forest": forest}


STAGES = {
    "01_data_prep": data_prep,
    "02_fusion": fusion,
    "03_selection_study": selection,
    "04_training": training,
    "05_ablations": ablations,
    "06_scale_and_cost": scale_and_cost,
    "07_summary": summary,
}
