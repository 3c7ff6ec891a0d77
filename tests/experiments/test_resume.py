"""Crash and resume: a run killed at any point and rerun gives the same results as an uninterrupted one.

The tiny profile (``tests/tiny_profile.py``) runs notebooks 01, 03 and 04's stages with the runner
CLI (``--no-notebooks --only 01 03 04``) once without interruption. Then, for each kill point, the
same command starts in fresh runs/results directories (the encoding cache is shared), the whole
process group is SIGKILLed as soon as a marker file appears, and the same command is rerun to
completion. Its results tables must equal the uninterrupted run's byte for byte (timing rows and
columns excepted) and every MTA4DPR run's history must be bit-identical (timings and pair-score
cache bookkeeping excepted).

Kill points (deterministic: the runner stops itself right after writing the first file matching a
glob, then the test kills it), in run order:

- ``pair_store``: notebook 01 saved the teacher's pair-score store (the assistants' not yet);
- ``training_checkpoint``: the first run's first training checkpoint (step 4 of 8, iteration 1);
- ``torn_checkpoint``: that checkpoint's data renamed into place, its checksum not yet (resuming
  must reject it and train the iteration again from step 0);
- ``iteration_state``: the first run finished iteration 1 (its student replaced an assistant);
- ``first_result``: the first run finished;
- ``first_table``: notebook 03 wrote Table 5 (its other outputs not yet);
- ``second_iteration_checkpoint``: the main run's iteration-2 training checkpoint (resuming restores
  iteration 1's state, a pool holding a student snapshot, then the checkpoint);
- ``stage_marker``: notebook 03 is marked done, notebook 04 has not started.

The heavier ones are marked slow (``MTA4DPR_RUN_SLOW=1``); three run by default.
"""

from __future__ import annotations

import pytest
import torch
from conftest import make_training_data, tiny_static_encoder, tiny_train_config
from tiny_profile import assert_same_results, results_of, run_and_kill, run_to_completion, score_store_names, work_of

from mta4dpr_core.method import training as training_module
from mta4dpr_core.method.training import train_student
from mta4dpr_core.retrieval.encoders import StaticEncoder

STAGES = ["01", "03", "04"]
RUN = "runs/tiny/work/seed13"

KILL_POINTS = [
    pytest.param("runs/tiny/work/scores/teacher-*.npz.sha256", id="pair_store"),
    pytest.param(f"{RUN}/selection_random-*/iteration1/checkpoints/last.pt.sha256", id="training_checkpoint"),
    pytest.param(
        f"{RUN}/selection_random-*/iteration1/checkpoints/last.pt", id="torn_checkpoint", marks=pytest.mark.slow
    ),
    pytest.param(f"{RUN}/*/iteration1/state.pt.sha256", id="iteration_state", marks=pytest.mark.slow),
    pytest.param(f"{RUN}/*/result.json", id="first_result", marks=pytest.mark.slow),
    pytest.param("results/tiny/table5.csv", id="first_table", marks=pytest.mark.slow),
    pytest.param(f"{RUN}/mta4dpr-*/iteration2/checkpoints/last.pt.sha256", id="second_iteration_checkpoint"),
    pytest.param("runs/tiny/notebooks/03_selection_study.done.json", id="stage_marker", marks=pytest.mark.slow),
]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, scifact_dir):  # the tiny profile is a SciFact slice
    directory = tmp_path_factory.mktemp("uninterrupted")
    run_to_completion(directory, STAGES)
    return directory


def test_the_uninterrupted_run_exercises_the_resume_paths(uninterrupted):
    """The profile is small but not trivial: the student replaces an assistant after iteration 1, so
    resuming after it has to rebuild a pool that holds a student snapshot."""
    from tiny_profile import run_results

    runs = run_results(uninterrupted)
    assert sorted(variant for _, variant in runs) == [
        "assistants_are_teacher",
        "kd_matched_weight",
        "mta4dpr",
        "no_assistants",
        "one_iteration_kd",
        "selection_random",
    ]
    main = runs[("seed13", "mta4dpr")]
    assert [entry["iteration"] for entry in main["history"]] == [1, 2]
    assert main["history"][0]["replaced"] is not None and "student@1" in main["history"][0]["pool"]
    assert {
        "baselines.csv",
        "data_statistics.csv",
        "table5.csv",
        "figure2_data.csv",
        "table1.csv",
        "table2.csv",
        "table4.csv",
    } <= {p.name for p in results_of(uninterrupted).glob("*.csv")}


@pytest.mark.parametrize("marker", KILL_POINTS)
def test_killed_and_resumed_run_gives_identical_results(marker, uninterrupted, tmp_path):
    hit = run_and_kill(tmp_path, STAGES, marker)
    assert hit.exists()
    if hit.suffix == ".pt":  # the kill came between a checkpoint's data and its checksum
        assert not hit.with_name(hit.name + ".sha256").exists()
    # it really was interrupted: the last stage never finished
    assert not (tmp_path / "runs" / "tiny" / "notebooks" / "04_training.done.json").exists()
    assert not (results_of(tmp_path) / "manifest.json").exists()

    run_to_completion(tmp_path, STAGES)
    assert_same_results(uninterrupted, tmp_path)
    # a resumed pool keeps each student's pair-score cache name (the same files as the uninterrupted run)
    assert score_store_names(tmp_path) == score_store_names(uninterrupted)
    assert not list(work_of(tmp_path).glob("scores/*student@*"))


# ---------------------------------------------------------------------------------------------
# Checkpoint resume with dropout: torch's RNG is part of what a resumed step must reproduce
# ---------------------------------------------------------------------------------------------


class DropoutStatic(StaticEncoder):
    """A static encoder with dropout on the token embeddings (like a transformer student in train mode)."""

    def forward(self, batch):
        device = self.embedding.weight.device
        ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
        tokens = torch.nn.functional.dropout(self.embedding(ids), p=0.3, training=self.training)
        pooled = (tokens * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)
        return torch.nn.functional.normalize(pooled, dim=-1)


def dropout_student(seed=1):
    base = tiny_static_encoder(12, 30, seed=seed)
    return DropoutStatic(base.embedding.weight.detach().numpy(), base.tokenizer, normalize=True, name="tiny-dropout")


class Crash(Exception):
    pass


def test_checkpoint_resume_with_dropout_is_bit_identical(tmp_path, monkeypatch):
    data, passages = make_training_data(n_queries=12, n_docs=30, k=5, m=3)
    config = tiny_train_config(steps=10, checkpoint_every=4)
    torch.manual_seed(0)
    straight = dropout_student()
    straight_record = train_student(straight, data, passages, config, checkpoint_dir=tmp_path / "straight")

    real_sample = training_module.sample_batch
    calls = {"n": 0}

    def crashing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:  # steps 1..6 ran; the last checkpoint is after step 4
            raise Crash()
        return real_sample(*args, **kwargs)

    monkeypatch.setattr(training_module, "sample_batch", crashing)
    torch.manual_seed(0)
    with pytest.raises(Crash):
        train_student(dropout_student(), data, passages, config, checkpoint_dir=tmp_path / "resumed")
    monkeypatch.setattr(training_module, "sample_batch", real_sample)

    torch.manual_seed(12345)  # a new process: torch's RNG is wherever it happens to be
    resumed = dropout_student()
    record = train_student(resumed, data, passages, config, checkpoint_dir=tmp_path / "resumed")
    assert [r["step"] for r in record] == list(range(1, 11))
    assert [r["total"] for r in record] == [r["total"] for r in straight_record]
    for name, tensor in straight.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name
    # dropout really is active in training mode: two forward passes differ
    probe = dropout_student().train()
    batch = probe.tokenize(["d1 d2 d3 d4 d5 d6"], 8)
    assert not torch.equal(probe(batch), probe(batch))
