"""Batches, the training loop, checkpoint resume, and Algorithm 1 end to end on a tiny slice."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
from conftest import make_training_data, tiny_bert, tiny_static_encoder, tiny_train_config

from mta4dpr_core.method import training as training_module
from mta4dpr_core.method.construction import TrainingData
from mta4dpr_core.method.losses import MTA4DPRLoss
from mta4dpr_core.method.training import TrainConfig, batch_distributions, sample_batch, train_student

# --- batches -----------------------------------------------------------------------------------


def test_sample_batch_shapes_and_positive_first():
    data, _ = make_training_data(n_queries=12, n_docs=40, k=6, m=2, n_positives=2)
    config = TrainConfig(queries_per_batch=5, negatives_per_query=3)
    rows, columns = sample_batch(data, np.arange(12), config, np.random.default_rng(0))
    assert rows.shape == (5,) and len(set(rows.tolist())) == 5
    assert columns.shape == (5, 4)
    for row, cols in zip(rows, columns, strict=True):
        assert data.is_positive[row, cols[0]]
        assert not data.is_positive[row, cols[1:]].any()
        assert (data.candidates[row, cols[1:]] >= 0).all()
        assert len(set(cols[1:].tolist())) == 3  # enough negatives: drawn without replacement
    again_rows, again_columns = sample_batch(data, np.arange(12), config, np.random.default_rng(0))
    np.testing.assert_array_equal(again_rows, rows)
    np.testing.assert_array_equal(again_columns, columns)
    # both positives get drawn over many batches
    seen = {
        int(c[0]) for s in range(30) for c in sample_batch(data, np.arange(12), config, np.random.default_rng(s))[1]
    }
    assert seen == {0, 1}


def test_sample_batch_with_too_few_negatives():
    data, _ = make_training_data(n_queries=4, n_docs=20, k=5, m=1)
    data.candidates[:, 3:] = -1  # only columns 1 and 2 are negatives now
    config = TrainConfig(queries_per_batch=4, negatives_per_query=4)
    rows, columns = sample_batch(data, np.arange(4), config, np.random.default_rng(1))
    assert columns.shape == (4, 5)
    assert set(columns[:, 1:].ravel().tolist()) <= {1, 2}
    assert (columns[:, 0] == 0).all()


def test_batch_distributions():
    data, _ = make_training_data(n_queries=6, n_docs=20, k=4, m=3)
    config = TrainConfig(
        queries_per_batch=3, negatives_per_query=2, teacher_temperature=2.0, assistant_temperatures=[0.5, 1.0, 2.0]
    )
    rows, columns = sample_batch(data, np.arange(6), config, np.random.default_rng(0))
    teacher, candidates = batch_distributions(data, rows, columns, config)
    np.testing.assert_allclose(teacher, np.take_along_axis(data.teacher_scores[rows], columns, 1) / 2.0)
    assert candidates.shape == (7, 3, 3)  # 3 originals + 4 fused
    np.testing.assert_allclose(candidates.sum(-1), 1.0, atol=1e-9)
    scores = np.take_along_axis(data.assistant_scores[1][rows], columns, 1)
    expected = np.exp(scores) / np.exp(scores).sum(1, keepdims=True)
    np.testing.assert_allclose(candidates[1], expected, atol=1e-9)
    np.testing.assert_allclose(candidates[3], (candidates[0] + candidates[1]) / 2, atol=1e-12)  # fused (0, 1)
    unfused = TrainConfig(queries_per_batch=3, negatives_per_query=2, fusion=False, assistant_temperatures=[1, 1, 1])
    assert batch_distributions(data, rows, columns, unfused)[1].shape == (3, 3, 3)


# --- the training loop -------------------------------------------------------------------------


def _config(**overrides):
    return tiny_train_config(
        **{
            "steps": 40,
            "queries_per_batch": 8,
            "negatives_per_query": 4,
            "warmup_steps": 2,
            "alpha": 0.2,
            "beta": 1.0,
            **overrides,
        }
    )


def _full_loss(student, data: TrainingData, passages, config):
    """The distillation loss over every query and all its candidates (no sampling)."""
    student.eval()
    with torch.no_grad():
        q = student(student.tokenize(data.query_texts, 8))
        p = student(student.tokenize([passages[d] for d in data.candidates.ravel()], 8))
        loss = MTA4DPRLoss(alpha=0.0, beta=1.0, gamma=0.0, student_temperature=config.student_temperature)
        # train_student leaves the student on the GPU when there is one
        return loss(q, p, torch.tensor(data.teacher_scores, device=q.device))["total"].item()


def test_train_student_decreases_loss():
    data, passages = make_training_data(n_queries=16, n_docs=40, k=6, m=3)
    student = tiny_static_encoder(16, 40, dim=16, seed=0)
    config = _config()
    before = _full_loss(student, data, passages, config)
    record = train_student(student, data, passages, config)
    after = _full_loss(student, data, passages, config)
    assert len(record) == 40 and [r["step"] for r in record] == list(range(1, 41))
    assert after < 0.5 * before
    first, last = np.mean([r["total"] for r in record[:5]]), np.mean([r["total"] for r in record[-5:]])
    assert last < first
    assert all(0 <= r["assistant"] < 7 for r in record)  # one of 3 originals + 4 fused, every step
    assert {"contrastive", "kl_teacher", "kl_assistant", "total"} <= set(record[0])
    assert not student.training  # left in eval mode


def test_fixed_assistant_and_no_gamma():
    data, passages = make_training_data(n_queries=8, n_docs=20, k=4, m=2)
    record = train_student(
        tiny_static_encoder(8, 20), data, passages, _config(steps=3, fixed_assistant=2, assistant_temperatures=[1, 1])
    )
    assert [r["assistant"] for r in record] == [2, 2, 2]
    record = train_student(
        tiny_static_encoder(8, 20), data, passages, _config(steps=3, gamma=0.0, assistant_temperatures=[1, 1])
    )
    assert [r["assistant"] for r in record] == [-1, -1, -1] and "kl_assistant" not in record[0]


class Crash(Exception):
    pass


@pytest.mark.parametrize("kind", ["static", "transformer"])
def test_checkpoint_resume_is_bit_identical(kind, tmp_path, monkeypatch):
    """A run that crashed and resumed from its last checkpoint ends bit-identical to one that did not: a static
    student, and a transformer student with dropout (the default Philox masks, keyed from torch's generator)."""
    data, passages = make_training_data(n_queries=12, n_docs=30, k=5, m=3)
    config = _config(steps=12, checkpoint_every=4, queries_per_batch=6)
    if kind == "static":
        new_student = lambda: tiny_static_encoder(12, 30, seed=1)  # noqa: E731 (a fresh process rebuilds it so)
    else:
        new_student = _tiny_transformer_student
        config = _config(steps=6, checkpoint_every=2, queries_per_batch=4, negatives_per_query=2)
        assert config.dropout_masks == "philox"

    straight = new_student()
    straight_record = train_student(straight, data, passages, config, checkpoint_dir=tmp_path / "straight")

    real_sample = training_module.sample_batch
    calls = {"n": 0}
    crash_at = config.steps - 2  # steps before it ran; the last checkpoint is before the crash

    def crashing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == crash_at:
            raise Crash()
        return real_sample(*args, **kwargs)

    monkeypatch.setattr(training_module, "sample_batch", crashing)
    first = new_student()
    with pytest.raises(Crash):
        train_student(first, data, passages, config, checkpoint_dir=tmp_path / "resumed")
    monkeypatch.setattr(training_module, "sample_batch", real_sample)

    resumed = new_student()  # a fresh process would rebuild the initial model
    record = train_student(resumed, data, passages, config, checkpoint_dir=tmp_path / "resumed")
    assert [r["step"] for r in record] == list(range(1, config.steps + 1))
    for name, tensor in straight.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name
    assert [r["total"] for r in record] == [r["total"] for r in straight_record]
    assert [r["assistant"] for r in record] == [r["assistant"] for r in straight_record]
    # the model really moved away from its initial weights
    initial = new_student().state_dict()
    assert any(not torch.equal(initial[name], tensor.cpu()) for name, tensor in resumed.state_dict().items())


# --- Algorithm 1 end to end --------------------------------------------------------------------

SMOKE_OVERRIDES = {
    "data": {"max_train_queries": 60, "max_corpus": 200, "extra_test": []},
    "training": {"steps": 10, "checkpoint_every": 5},
    "iterations": {"count": 2},
}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, scifact_dir):
    from mta4dpr_core.config.params import load_params, profile_path
    from mta4dpr_core.experiments.experiment import Setup
    from mta4dpr_core.experiments.iteration import deep_update, run_mta4dpr

    params = load_params(profile_path("smoke"))
    runs_dir = tmp_path_factory.mktemp("runs")
    params = deep_update(params, {**SMOKE_OVERRIDES, "output": {"runs_dir": str(runs_dir)}})
    setup = Setup.from_params(params)
    started = time.perf_counter()
    result = run_mta4dpr(setup, params["seeds"][0])
    return setup, params, result, time.perf_counter() - started


def test_run_mta4dpr_smoke_history(smoke_run):
    setup, params, result, seconds = smoke_run
    assert len(setup.collection.corpus) == 200 and len(setup.train) <= 60
    assert seconds < 60  # two iterations of 10 steps on 200 passages (measured 10-25 s on 2 busy cores)
    history = result.history
    assert [h.iteration for h in history] == [1, 2]
    names = [a.name for a in setup.assistants]
    assert result.assistants == names
    for entry in history:
        assert len(entry.pool) == len(names)
        assert entry.replaced is None or entry.replaced in names
        assert 0.0 <= entry.eval_student <= 1.0
        assert entry.rows >= 1 and entry.final_loss > 0
        assert 0.0 <= entry.test["test"]["nDCG@10"] <= 1.0
    assert history[0].mined_queries == 0  # no previous student in iteration 1
    assert history[1].pairs_cached > 0  # iteration 2 reuses the stored pair scores
    assert result.final == history[-1].test
    assert set(result.initial["test"]) >= {"MRR@10", "nDCG@10", "R@100"}


def test_run_mta4dpr_records_a_selection_per_step(smoke_run):
    setup, params, result, seconds = smoke_run
    selections = result.selections
    steps = params["training"]["steps"]
    assert [(s["iteration"], s["step"]) for s in selections] == [(i, s) for i in (1, 2) for s in range(1, steps + 1)]
    pools = {1: [a.name for a in setup.assistants], 2: result.history[0].pool}
    for selection in selections:
        members = selection["assistant"].split("&")
        assert set(members) <= set(pools[selection["iteration"]])
        assert selection["members"] == len(members) == len(set(members))
    assert len({s["assistant"] for s in selections}) > 1  # the kl choice varies from batch to batch


def test_run_mta4dpr_second_call_returns_stored_result(smoke_run, monkeypatch):
    from mta4dpr_core.experiments import iteration

    setup, params, result, seconds = smoke_run

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished run was recomputed")

    monkeypatch.setattr(iteration, "train_student", must_not_run)
    monkeypatch.setattr(type(setup), "training_data", must_not_run)
    again = iteration.run_mta4dpr(setup, params["seeds"][0])
    assert isinstance(again, iteration.RunResult)
    assert again.to_json() == json.loads(json.dumps(result.to_json()))  # stored as produced
    assert again == iteration.RunResult.from_json(json.loads(json.dumps(result.to_json())))


def test_training_is_not_a_no_op(smoke_run):
    """Fails when training does nothing: weights unchanged, loss not falling, or the metric equal to the untrained student's."""
    import torch

    from mta4dpr_core.store.atomic import try_load_torch

    setup, params, result, seconds = smoke_run
    seed = params["seeds"][0]
    states = sorted((setup.work_dir / f"seed{seed}").glob("mta4dpr-*/iteration2/state.pt"))
    assert states, "the run stored no iteration-2 weights"
    trained = try_load_torch(states[-1])["model"]
    initial = setup.new_student(seed).state_dict()
    changed = [name for name, tensor in initial.items() if not torch.equal(tensor, trained[name])]
    assert changed, "training left every weight unchanged"

    losses = [s for s in result.selections if s["iteration"] == 1]
    assert len(losses) == params["training"]["steps"]
    history_losses = [h.final_loss for h in result.history]
    assert all(np.isfinite(history_losses))

    before = result.initial["per_query"]["test"]["nDCG@10"]
    after = result.final["per_query"]["test"]["nDCG@10"]
    moved = sum(abs(before[q] - after[q]) > 1e-9 for q in before)
    assert moved > 0, f"the trained student ranks all {len(before)} test queries exactly as the untrained one"


def test_train_student_loss_falls_on_real_rows(smoke_run):
    """The distillation loss (KL to the teacher) on a fixed set of real SciFact rows, all their
    candidates, falls with training (a sampled per-step total is too noisy to compare: it follows the
    assistant selected for each batch)."""
    from mta4dpr_core.experiments.iteration import train_config
    from mta4dpr_core.method.training import Tokenized, take_rows
    from mta4dpr_core.report.studies import first_iteration_data

    setup, params, result, seconds = smoke_run
    seed = params["seeds"][0]
    data, _ = first_iteration_data(setup, seed)
    config = train_config(deep_update_params(params, {"training": {"steps": 40}}), setup.assistants, seed)
    rows = np.arange(min(32, len(data)))
    candidates = take_rows(data.candidates, rows)
    teacher = torch.tensor(np.where(candidates >= 0, take_rows(data.teacher_scores, rows), -1e4), dtype=torch.float32)
    loss = MTA4DPRLoss(alpha=0.0, beta=1.0, gamma=0.0, student_temperature=config.student_temperature)

    def fixed_loss(student):
        student.eval()
        with torch.no_grad():
            q = student(
                Tokenized(student, data.query_texts, config.max_query_length).batch(take_rows(data.query_rows, rows))
            )
            p = student(
                Tokenized(student, setup.collection.corpus.texts, config.max_passage_length).batch(
                    np.maximum(candidates, 0).ravel()
                )
            )
            return loss(q, p, teacher)["total"].item()

    student = setup.new_student(seed)
    before = fixed_loss(student)
    train_student(student, data, setup.collection.corpus.texts, config)
    after = fixed_loss(student)
    assert after < before, (
        f"KL to the teacher on 32 fixed rows did not fall: {before:.4f} before training, {after:.4f} after"
    )


def deep_update_params(params, overrides):
    from mta4dpr_core.experiments.iteration import deep_update

    return deep_update(params, overrides)


def _tiny_transformer_student():
    from transformers import BertTokenizerFast

    from mta4dpr_core.config.models import resolve_model
    from mta4dpr_core.retrieval.encoders import TransformerEncoder

    tokenizer = BertTokenizerFast.from_pretrained(str(resolve_model("all-MiniLM-L6-v2").path))
    model = tiny_bert(vocab_size=tokenizer.vocab_size, hidden_size=16, intermediate_size=24)
    return TransformerEncoder(model, tokenizer, pooling="mean", normalize=True)


def test_philox_dropout_masks_in_train_student():
    """training.dropout_masks: philox trains a transformer student with its own masks (another stream than
    torch's, the same on a rerun) and leaves the model's own dropout modules in place afterwards."""
    data, passages = make_training_data(n_queries=8, n_docs=20, k=4, m=2)
    trained = {}
    for name, masks in [("philox", "philox"), ("philox again", "philox"), ("torch", "torch")]:
        config = _config(
            steps=3, queries_per_batch=4, negatives_per_query=2, assistant_temperatures=[1, 1], dropout_masks=masks
        )
        student = _tiny_transformer_student()
        trained[name] = [r["total"] for r in train_student(student, data, passages, config)]
        assert any(type(m) is torch.nn.Dropout for m in student.modules())
        assert not any(type(m).__name__ == "PhiloxDropout" for m in student.modules())
        assert student.model.config._attn_implementation == "sdpa"
    assert trained["philox"] == trained["philox again"]
    assert trained["philox"][0] != trained["torch"][0]


def test_multi_tensor_adamw_keeps_the_per_parameter_bits(monkeypatch):
    """The student's AdamW runs foreach (multi-tensor) kernels on the CPU too, for speed alone: training a
    transformer student gives bit-identical weights to the per-parameter loop (torch's CPU default)."""
    data, passages = make_training_data(n_queries=8, n_docs=20, k=4, m=2)
    config = _config(steps=4, queries_per_batch=4, negatives_per_query=2, assistant_temperatures=[1, 1])
    students, flags = {}, {}
    original = torch.optim.AdamW
    for name in ("multi-tensor", "per-parameter"):

        def adamw(params, name=name, **kwargs):
            optimizer = original(params, **{**kwargs, "foreach": kwargs.get("foreach") and name == "multi-tensor"})
            flags[name] = optimizer.param_groups[0]["foreach"]
            return optimizer

        monkeypatch.setattr(torch.optim, "AdamW", adamw)
        students[name] = _tiny_transformer_student()
        train_student(students[name], data, passages, config)
    assert flags == {"multi-tensor": True, "per-parameter": False}
    weights = [dict(students[name].named_parameters()) for name in ("multi-tensor", "per-parameter")]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])
    untrained = dict(_tiny_transformer_student().named_parameters())
    assert not torch.equal(weights[0]["model.encoder.layer.0.attention.self.query.weight"],
                           untrained["model.encoder.layer.0.attention.self.query.weight"])  # fmt: skip
