"""What a run trains on before it trains: the iteration-1 data of a seed, the assistants' fitted temperatures and
the :class:`TrainConfig` built from the profile.

``iteration.run_mta4dpr`` builds them for its own run; the notebooks' walk-through and fusion tables read the same
objects through :func:`first_iteration_data` and :func:`first_iteration_temperatures`, so what a notebook shows
is what the run trained on. Nothing here trains.
"""

from __future__ import annotations

import numpy as np

from ..config.typed import typed
from ..method.construction import TrainingData, eval_query_mask
from ..method.temperature import assistant_temperatures
from ..method.training import TrainConfig, profile_fields


def fitted_temperatures(params: dict, data: TrainingData, pool) -> dict:
    """Each pool member's temperature, fitted by ``fusion.temperature_rule`` on all of ``data``'s rows (a run's
    iteration-1 training rows: build_training_data leaves the eval queries out)."""
    profile = typed(params)
    return assistant_temperatures(
        data,
        pool,
        profile.fusion.temperature_rule,
        profile.models.teacher.get("temperature", 1.0),
        np.arange(len(data)),
    )


def train_config(params: dict, pool, seed: int, fixed_assistant=None, temperatures: dict | None = None) -> TrainConfig:
    """Every profile field of :class:`TrainConfig` from its declared key, the run-time ones from the run.
    ``temperatures``: fitted assistant temperatures by name (a student in the pool keeps its own)."""
    temperatures, profile = temperatures or {}, typed(params)
    weights = profile.fusion.weights
    return TrainConfig(
        **{name: getattr(getattr(profile, section), key) for name, (section, key) in profile_fields().items()},
        teacher_temperature=profile.models.teacher.get("temperature", 1.0),
        assistant_temperatures=[temperatures.get(a.name, a.temperature) for a in pool],
        fusion_weights=weights if len(pool) == len(weights or []) else None,
        fixed_assistant=fixed_assistant,
        seed=seed,
    )


def first_iteration_data(setup, seed=None):
    """``(data, eval_mask)``: the iteration-1 training data of ``seed`` (the first seed by default) and its eval
    mask, as the seed's main run builds them (the score caches make a second build cheap). Built once per
    Setup and seed: a notebook asks for it several times (the walk-through, the temperatures, the fusion
    table), and NFCorpus's retrieval 1,388 deep costs seconds each time."""
    seed = seed if seed is not None else setup.config.seeds[0]
    memo = setup.__dict__.setdefault("_first_iteration_data", {})
    if seed not in memo:
        eval_mask = eval_query_mask(setup.train, setup.params["construction"], seed)
        memo[seed] = (setup.training_data(setup.assistants, eval_mask, mining=False), eval_mask)
    return memo[seed]


def first_iteration_temperatures(setup, seed=None) -> dict:
    """``{assistant: temperature}`` as the seed's run fits them on its iteration-1 training rows."""
    memo = setup.__dict__.setdefault("_fitted_temperatures", {})
    if seed not in memo:
        data, _ = first_iteration_data(setup, seed)
        memo[seed] = fitted_temperatures(setup.params, data, setup.assistants)
    return dict(memo[seed])
