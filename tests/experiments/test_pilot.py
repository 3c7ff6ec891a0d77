"""The pilot learning curve on the tiny profile: more steps move the teacher-only student, each point is a
stored no-assistant run at that step count, and the references are measured on the same eval queries."""

from __future__ import annotations

import numpy as np
from tiny_profile import tiny_params

from mta4dpr_core.config.params import from_mapping
from mta4dpr_core.experiments.experiment import Setup
from mta4dpr_core.experiments.iteration import stored_run
from mta4dpr_core.experiments.pilot import pilot_learning_curve


def test_the_pilot_curve_is_made_of_stored_teacher_only_runs(tmp_path):
    params = from_mapping(tiny_params(tmp_path))
    setup = Setup.from_params(params)
    table = pilot_learning_curve(setup, [2, 8], [13])
    metric = params["evaluation"]["metric"]
    assert list(table["steps per iteration"]) == [2, 8]
    assert table[f"student eval {metric}"].nunique() == 2  # the steps changed the student
    assert np.isfinite(table[f"teacher eval {metric}"]).all()
    run = stored_run(setup, 13, "no_assistants", {"loss": {"gamma": 0.0}, "training": {"steps": 8}})
    assert run is not None and 100 * run.history[-1].eval_student == table[f"student eval {metric}"].iloc[1]
