"""The two controls at MTA4DPR's total distillation weight (Table 1, inside the claim family).

``kd_matched_weight`` is teacher-only KD whose teacher KL weight is beta + gamma; ``assistants_are_teacher`` runs
MTA4DPR with every assistant's training distribution replaced by the teacher's. Both must leave the loss's balance
as MTA4DPR has it (alpha against a total KL weight of beta + gamma), and the second must reduce, on a batch, to the
first: what MTA4DPR gains over them is the assistants' own scores, not their weight.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mta4dpr_core.config.params import load_params, profile_path
from mta4dpr_core.config.typed import typed
from mta4dpr_core.experiments.catalog import CONTROLS, runs_for
from mta4dpr_core.experiments.iteration import (
    VARIANTS,
    assistants_mixed_with_teacher,
    assistants_replaced_by_teacher,
    candidate_ranking_quality,
    deep_update,
    variant_overrides,
)
from mta4dpr_core.method.construction import TrainingData
from mta4dpr_core.method.fusion import softmax
from mta4dpr_core.method.losses import MTA4DPRLoss
from mta4dpr_core.method.selection import kl_divergence
from mta4dpr_core.method.training import TrainConfig


@pytest.mark.parametrize("profile", ["mini", "nfcorpus", "mini_transformer", "smoke"])
def test_the_controls_keep_mta4dpr_s_total_loss_weight(profile):
    params = load_params(profile_path(profile))
    loss = params["loss"]
    total = loss["beta"] + loss["gamma"]
    matched = deep_update(params, variant_overrides("kd_matched_weight", params))["loss"]
    assert (matched["alpha"], matched["beta"], matched["gamma"]) == (loss["alpha"], total, 0.0)
    as_teacher = deep_update(params, variant_overrides("assistants_are_teacher", params))["loss"]
    assert as_teacher["beta"] + as_teacher["gamma"] == total and as_teacher["assistant_scores"] == "teacher"
    # the paper's comparison is the one that changes the balance
    paper = deep_update(params, variant_overrides("no_assistants", params))["loss"]
    assert paper["beta"] + paper["gamma"] == loss["beta"] < total
    # same schedule and data work as MTA4DPR: no step, iteration or construction override
    for variant in CONTROLS:
        overrides = variant_overrides(variant, params)
        assert set(overrides) == {"loss"} and variant in VARIANTS


def test_the_controls_are_in_every_profile_s_table1():
    import types

    params = load_params(profile_path("mini"))
    setup = types.SimpleNamespace(params=params, config=typed(params), assistants=[object()] * 2)
    variants = {spec.variant for spec in runs_for(setup, "table1")}
    assert set(CONTROLS) <= variants and "no_assistants" in variants


def test_assistants_are_teacher_is_kd_at_the_matched_weight_on_a_batch():
    """With every assistant's distribution the teacher's, alpha CL + beta KL_t + gamma KL_a equals
    alpha CL + (beta + gamma) KL_t: the control differs from kd_matched_weight by nothing but float rounding."""
    generator = torch.Generator().manual_seed(0)
    q = F.normalize(torch.randn(4, 8, generator=generator), dim=-1)
    p = F.normalize(torch.randn(4 * 5, 8, generator=generator), dim=-1)
    teacher = torch.randn(4, 5, generator=generator) * 2
    data = TrainingData(
        ["a"] * 4,
        ["q"] * 4,
        np.arange(4),
        np.zeros((4, 5), int),
        np.zeros((4, 5), bool),
        teacher.numpy(),
        np.random.default_rng(0).normal(size=(2, 4, 5)),
        ["x", "y"],
        np.zeros(4, int),
    )
    config = TrainConfig(steps=1, assistant_temperatures=[0.3, 3.0], teacher_temperature=1.0)
    replaced = assistants_replaced_by_teacher(data, config)
    assistant = torch.softmax(torch.as_tensor(replaced.assistant_scores[1]) / config.assistant_temperatures[1], -1)
    mta = MTA4DPRLoss(alpha=0.2, beta=1.0, gamma=15.0)(q, p, teacher, assistant)["total"]
    matched = MTA4DPRLoss(alpha=0.2, beta=16.0, gamma=0.0)(q, p, teacher)["total"]
    assert float(mta) == pytest.approx(float(matched), rel=1e-5)
    # with the assistants' own scores the two differ: the control is no identity by construction
    own = torch.softmax(torch.as_tensor(data.assistant_scores[1], dtype=torch.float32) / 3.0, -1)
    assert abs(float(MTA4DPRLoss(alpha=0.2, beta=1.0, gamma=15.0)(q, p, teacher, own)["total"]) - float(matched)) > 1e-3


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return TrainingData(
        ["a"] * 4,
        ["q"] * 4,
        np.arange(4),
        np.tile(np.arange(5), (4, 1)),
        np.eye(4, 5, dtype=bool),
        rng.normal(size=(4, 5)) * 2,
        rng.normal(size=(2, 4, 5)),
        ["x", "y"],
        np.zeros(4, int),
    )


def test_the_dose_response_mix_has_both_controls_at_its_ends():
    """lambda = 0 leaves each assistant's training distribution as it is, lambda = 1 makes it the teacher's (what
    assistants_are_teacher trains on); in between, the KL from the teacher shrinks monotonically."""
    data = _data()

    def distributions(weight):
        config = TrainConfig(steps=1, assistant_temperatures=[0.3, 3.0], teacher_temperature=0.7)
        mixed = assistants_mixed_with_teacher(data, config, weight)
        temps = np.asarray(config.assistant_temperatures)[:, None, None]
        return softmax(mixed.assistant_scores / temps)

    own = softmax(data.assistant_scores / np.array([0.3, 3.0])[:, None, None])
    teacher = softmax(data.teacher_scores / 0.7)
    np.testing.assert_allclose(distributions(0.0), own, rtol=1e-5)
    np.testing.assert_allclose(distributions(1.0), np.broadcast_to(teacher, own.shape), rtol=1e-5)
    kls = [kl_divergence(teacher, distributions(w)).mean() for w in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert all(a > b for a, b in zip(kls, kls[1:], strict=False)) and kls[-1] < 1e-6


def test_the_sweep_is_in_the_ablations_stage_only_where_declared():
    import types

    params = load_params(profile_path("mini"))
    setup = types.SimpleNamespace(params=params, config=typed(params), assistants=[object()] * 2)
    variants = [spec.variant for spec in runs_for(setup, "dose_response")]
    assert variants[0] == "kd_matched_weight" and {"mta4dpr", "assistants_are_teacher"} <= set(variants)
    assert any(v.startswith("teacher_mix_") for v in variants)
    silent = deep_update(params, {"study": {"dose_response": []}})
    quiet = types.SimpleNamespace(params=silent, config=typed(silent), assistants=[object()] * 2)
    assert runs_for(quiet, "dose_response") == []


def test_training_ranking_measures_the_mixed_assistants():
    """The x of the dose-response figure: the assistants' ranking of the training candidates moves to the
    teacher's as lambda goes to 1."""
    data = _data(1)
    ids = [f"d{i}" for i in range(5)]
    config = TrainConfig(steps=1, assistant_temperatures=[1.0, 1.0], teacher_temperature=1.0)
    own = candidate_ranking_quality(data, config, ids)
    same = candidate_ranking_quality(assistants_mixed_with_teacher(data, config, 1.0), config, ids)
    assert same["x"] == same["y"] == pytest.approx(same["teacher"]) == pytest.approx(own["teacher"])
    assert own["x"] != pytest.approx(own["teacher"]) or own["y"] != pytest.approx(own["teacher"])
