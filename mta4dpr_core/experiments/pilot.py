"""The pilot learning curve: teacher-only KD at several step counts, measured on the eval queries (held out of
the training split, never the test set), beside the teacher and the assistants on the same queries.

It answers the regime question before a profile is frozen: does the teacher-only student, given more steps,
flatten out inside the assistants' band ``[weakest - 2, best]`` as in the paper (MS MARCO: 39.9 against
39.4-42.0 MRR@10)? Each point is a stored run of the ``no_assistants`` variant with ``training.steps``
overridden, so a rerun reuses it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..method.construction import eval_query_mask
from .experiment import Setup
from .iteration import VARIANTS, deep_update, run_mta4dpr

BAND_SLACK = 2.0  # points below the weakest assistant still counted inside the band (the acceptance rule)


def _eval_mask(setup: Setup, seed: int) -> np.ndarray:
    construction = setup.params["construction"]
    return eval_query_mask(setup.train, construction, seed)


def pilot_learning_curve(setup: Setup, steps, seeds) -> pd.DataFrame:
    """One row per (steps per iteration): the teacher-only student's eval metric after its last iteration,
    mean over ``seeds``, beside the teacher's and each assistant's on the same eval queries (percent)."""
    metric = setup.config.evaluation.metric
    fixed = {}
    for seed in seeds:
        mask = _eval_mask(setup, seed)
        for scorer in [setup.teacher, *setup.assistants]:
            value = setup.evaluate(scorer, setup.train, names=(metric,), query_mask=mask)[metric]
            fixed.setdefault(scorer.name, []).append(100 * value)
    references = {name: float(np.mean(values)) for name, values in fixed.items()}
    assistants = [references[a.name] for a in setup.assistants]
    rows = []
    for count in steps:
        overrides = deep_update(VARIANTS["no_assistants"], {"training": {"steps": int(count)}})
        students = [
            100 * run_mta4dpr(setup, seed, "no_assistants", overrides, evaluate_test="none").history[-1].eval_student
            for seed in seeds
        ]
        student = float(np.mean(students))
        low, high = min(assistants) - BAND_SLACK, max(assistants)
        rows.append(
            {
                "steps per iteration": int(count),
                "total steps": int(count) * setup.config.iterations.count,
                f"student eval {metric}": student,
                "student ± (seeds)": float(np.std(students, ddof=1)) if len(students) > 1 else float("nan"),
                f"teacher eval {metric}": references[setup.teacher.name],
                **{f"{a.name} eval {metric}": references[a.name] for a in setup.assistants},
                "in [weakest − 2, best]": bool(low <= student <= high),
            }
        )
    return pd.DataFrame(rows)
