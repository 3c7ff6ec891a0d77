"""Distributed training and sharded encoding equal their single-process counterparts.

``test_ddp_step_equals_single_process`` launches ``torchrun --standalone
--nproc_per_node 2`` (gloo, CPU) on this very file: each rank joins through
:func:`mta4dpr_core.method.distributed.init_from_env`, runs ONE ``train_student`` step on
a small synthetic TrainingData, and rank 0 saves the loss terms and the updated
parameters. The test then runs the same step in one process on the same global
batch and compares. Scenarios:

- static student, AdamW, 6 queries (3 per rank);
- static student, plain SGD, 5 queries (3 + 2: unequal slices). AdamW's first step
  is ``lr * g / |g|`` and would hide a gradient off by a constant factor; SGD does not;
- a tiny random BERT with ``cls_last3`` pooling, SGD: its pooler gets no gradient,
  which plain DDP (without ``find_unused_parameters``) rejects.

The ranks also encode a corpus one shard each and rank 0 merges it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mta4dpr_core.method.construction import TrainingData
from mta4dpr_core.method.training import TrainConfig, train_student
from mta4dpr_core.retrieval.encoders import StaticEncoder, TransformerEncoder

N_DOCS = 40
PASSAGES = [f"passage {i} discusses subject {i % 7} with words {i * 3} and {i % 5} more" for i in range(N_DOCS)]
SCENARIOS = {
    # name: (student kind, optimizer, queries per batch)
    "static_adamw": ("static", "adamw", 6),
    "static_sgd_uneven": ("static", "sgd", 5),
    "bert_sgd": ("bert", "sgd", 4),
}


def make_data(n_queries=12, width=6, m=3):
    rng = np.random.default_rng(0)
    candidates = np.stack([rng.choice(N_DOCS, width, replace=False) for _ in range(n_queries)]).astype(np.int64)
    candidates[3, -1] = -1  # padding
    is_positive = np.zeros((n_queries, width), bool)
    is_positive[:, 0] = True
    is_positive[5, 1] = True  # two positives
    return TrainingData(
        [f"q{i}" for i in range(n_queries)],
        [f"query {i} about topic {i % 5} and more" for i in range(n_queries)],
        np.arange(n_queries, dtype=np.int64),
        candidates,
        is_positive,
        rng.normal(size=(n_queries, width)).astype(np.float32),
        rng.normal(size=(m, n_queries, width)).astype(np.float32),
        ["a", "b", "c"],
        np.zeros(n_queries, np.int8),
    )


def wordllama_tokenizer():
    from wordllama import WordLlama

    from mta4dpr_core.config.models import resolve_model

    return WordLlama.load(cache_dir=resolve_model("wordllama").path, disable_download=True).tokenizer


def make_student(kind):
    if kind == "static":
        table = np.random.default_rng(1).normal(size=(32000, 16)).astype(np.float32)
        return StaticEncoder(table, wordllama_tokenizer(), normalize=True, name="tiny-static")
    from transformers import AutoTokenizer, BertConfig, BertModel

    from mta4dpr_core.config.models import resolve_model

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    tokenizer = AutoTokenizer.from_pretrained(str(resolve_model("all-MiniLM-L6-v2").path))
    return TransformerEncoder(BertModel(config), tokenizer, pooling="cls_last3", normalize=True, name="tiny-bert")


def make_config(queries):
    return TrainConfig(
        steps=1,
        queries_per_batch=queries,
        negatives_per_query=3,
        learning_rate=0.5,
        weight_decay=0.01,
        warmup_steps=1,
        max_query_length=16,
        max_passage_length=24,
        assistant_temperatures=[1.0, 0.5, 2.0],
        checkpoint_every=0,
        seed=3,
    )


@contextlib.contextmanager
def optimizer(name):
    """train_student builds ``torch.optim.AdamW(params, lr=..., weight_decay=...)``; SGD takes the same arguments."""
    original = torch.optim.AdamW
    if name == "sgd":
        torch.optim.AdamW = torch.optim.SGD
    try:
        yield
    finally:
        torch.optim.AdamW = original


def run_scenario(name):
    kind, opt, queries = SCENARIOS[name]
    student = make_student(kind)
    with optimizer(opt):
        record = train_student(student, make_data(), PASSAGES, make_config(queries))
    return {"record": record, "state": {k: v.detach().clone() for k, v in student.state_dict().items()}}


def _torchrun_worker(out_dir, backend="gloo"):
    from mta4dpr_core.method import distributed

    torch.set_num_threads(1)
    with distributed.distributed_session(backend) as (rank, world, _):
        if backend == "nccl":  # one GPU: the DDP step of the transformer student only
            assert world == 1, world
            torch.save({"bert_sgd": run_scenario("bert_sgd")}, Path(out_dir) / "ddp.pt")
            return
        assert world == 2, world
        results = {name: run_scenario(name) for name in SCENARIOS}
        encoder = make_student("static")
        merged = distributed.encode_corpus_distributed(
            encoder, PASSAGES, Path(out_dir) / "shards", max_length=24, batch_size=4
        )
        if rank == 0:
            results["merged"] = torch.from_numpy(merged)
            torch.save(results, Path(out_dir) / "ddp.pt")


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory):
    pytest.importorskip("wordllama")
    out_dir = tmp_path_factory.mktemp("ddp")
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MTA4DPR_PROGRESS": "0",
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")])
        ),
    }
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(Path(__file__).resolve()),
        str(out_dir),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, f"torchrun failed:\n{done.stdout[-4000:]}\n{done.stderr[-6000:]}"
    return torch.load(out_dir / "ddp.pt", weights_only=False)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_ddp_step_equals_single_process(ddp_results, name):
    single = run_scenario(name)
    ddp = ddp_results[name]
    for key in ("total", "contrastive", "kl_teacher", "kl_assistant", "assistant"):
        assert ddp["record"][0][key] == pytest.approx(single["record"][0][key], rel=1e-5, abs=1e-6), key
    # on a CUDA machine both runs train on the GPU while the fresh student stays on the CPU: compare on the CPU
    initial = make_student(SCENARIOS[name][0]).state_dict()
    single_state = {key: value.cpu() for key, value in single["state"].items()}
    ddp_state = {key: value.cpu() for key, value in ddp["state"].items()}
    moved = 0.0
    for key, value in single_state.items():
        torch.testing.assert_close(ddp_state[key], value, rtol=1e-4, atol=2e-6, msg=f"{name}: parameter {key}")
        moved = max(moved, (value - initial[key]).abs().max().item())
    assert moved > 1e-3  # the step did change the parameters
    if SCENARIOS[name][0] == "bert":
        pooler = [k for k in single_state if "pooler" in k]
        assert pooler and all(
            torch.equal(single_state[k], initial[k]) and torch.equal(ddp_state[k], initial[k]) for k in pooler
        )


def test_distributed_encoding_equals_single_process(ddp_results):
    reference = make_student("static").encode(PASSAGES, max_length=24, batch_size=4)
    np.testing.assert_allclose(ddp_results["merged"].numpy(), reference, rtol=1e-6, atol=1e-6)


def test_sharded_encoding_merges_to_unsharded(tmp_path):
    from mta4dpr_core.config.errors import CacheError
    from mta4dpr_core.method import distributed
    from mta4dpr_core.store.atomic import try_load_array

    pytest.importorskip("wordllama")
    encoder = make_student("static")
    texts = PASSAGES[:23]
    reference = encoder.encode(texts, max_length=24, batch_size=5)
    paths = [
        distributed.encode_corpus_sharded(encoder, texts, i, 4, tmp_path, max_length=24, batch_size=5) for i in range(4)
    ]
    assert [np.load(p).shape[0] for p in paths] == [5, 6, 6, 6]
    np.testing.assert_allclose(
        distributed.merge_shards(tmp_path, 4, expected_total=len(texts), texts=texts), reference, rtol=1e-6, atol=1e-6
    )

    # streamed merge into a checksummed .npy that the scorers' cache loader accepts
    merged_path = distributed.merge_shards(tmp_path, 4, out_path=tmp_path / "cache" / "merged.npy")
    np.testing.assert_allclose(try_load_array(merged_path), reference, rtol=1e-6, atol=1e-6)

    # a finished shard is not encoded again
    class Counting:
        calls = 0

        def identity(self):
            return encoder.identity()

        def encode(self, *args, **kwargs):
            Counting.calls += 1
            return encoder.encode(*args, **kwargs)

    before = paths[2].stat().st_mtime_ns
    distributed.encode_corpus_sharded(Counting(), texts, 2, 4, tmp_path, max_length=24, batch_size=5)
    assert Counting.calls == 0 and paths[2].stat().st_mtime_ns == before

    # a corrupted or missing shard, or a different text list, is refused
    with pytest.raises(CacheError):
        distributed.merge_shards(tmp_path, 4, texts=texts[::-1])
    with pytest.raises(CacheError):
        distributed.merge_shards(tmp_path, 4, expected_total=len(texts) + 1)
    raw = bytearray(paths[1].read_bytes())
    raw[-1] ^= 0xFF
    paths[1].write_bytes(bytes(raw))
    with pytest.raises(CacheError):
        distributed.merge_shards(tmp_path, 4)
    paths[3].unlink()
    with pytest.raises(CacheError):
        distributed.merge_shards(tmp_path, 4)
    # ... and re-encoding repairs the corrupted shard
    distributed.encode_corpus_sharded(encoder, texts, 1, 4, tmp_path, max_length=24, batch_size=5)
    distributed.encode_corpus_sharded(encoder, texts, 3, 4, tmp_path, max_length=24, batch_size=5)
    np.testing.assert_allclose(distributed.merge_shards(tmp_path, 4), reference, rtol=1e-6, atol=1e-6)


def test_init_from_env_without_torchrun(monkeypatch):
    from mta4dpr_core.method import distributed

    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.init_from_env() == (0, 1, 0)
    assert distributed.rank_world() == (0, 1) and distributed.is_main()
    distributed.teardown()  # a no-op without a process group
    assert distributed.shard_range(10, 0, 3) == (0, 3) and distributed.shard_range(10, 2, 3) == (6, 10)
    with pytest.raises(ValueError):
        distributed.shard_range(10, 3, 3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (NCCL)")
def test_nccl_one_gpu_step_equals_single_process(tmp_path):
    """``torchrun --nproc_per_node 1`` with NCCL: train_student wraps the student in DDP whenever a
    process group exists, so one GPU runs the multi-GPU code path (NCCL all-reduce of the gradients,
    bf16 autocast) and must give the single-process step."""
    env = {
        **os.environ,
        "MTA4DPR_PROGRESS": "0",
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")])
        ),
    }
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "1",
        str(Path(__file__).resolve()),
        str(tmp_path),
        "nccl",
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, f"torchrun failed:\n{done.stdout[-4000:]}\n{done.stderr[-6000:]}"
    ddp = torch.load(tmp_path / "ddp.pt", weights_only=False)["bert_sgd"]
    single = run_scenario("bert_sgd")
    for key in ("total", "contrastive", "kl_teacher", "kl_assistant"):
        assert ddp["record"][0][key] == pytest.approx(single["record"][0][key], rel=1e-5, abs=1e-6), key
    for key, value in single["state"].items():
        torch.testing.assert_close(ddp["state"][key].cpu(), value.cpu(), rtol=1e-4, atol=2e-6, msg=f"parameter {key}")


if __name__ == "__main__":
    _torchrun_worker(sys.argv[1], *sys.argv[2:3])
