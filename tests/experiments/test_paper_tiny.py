"""params/paper_tiny.yaml end to end: the paper path (cross-encoder teacher with a first stage,
hf [CLS] assistants, a truncated cls_last3 hf student, MS MARCO TSV data, amp auto) runs through
all seven notebooks with papermill.

The assets (tiny models cut from the installed all-MiniLM-L6-v2, a TSV slice of the shared DL
pool) are built by ``mta4dpr_core.retrieval.tiny_models`` into a tmp directory; runs and results go to the
tmp directory too (never the repository's results/). The encodings cache is shared with the other
tests (``$MTA4DPR_TEST_CACHE`` or the repository's ``.cache``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from mta4dpr_core.config.params import REPO_ROOT, load_params
from mta4dpr_core.runner import notebook_names

PROFILE = REPO_ROOT / "params" / "paper_tiny.yaml"
ASSET_PREFIX = ".cache/paper_tiny"
TABLES = [
    "data_statistics",
    "baselines",
    "fusion_kl",
    "table5",
    "figure2_data",
    "table1",
    "table2",
    "table4",
    "table3",
    "table6",
    "table8",
    "table9",
    "claims",
]


def _relocate(value, assets: Path):
    if isinstance(value, dict):
        return {k: _relocate(v, assets) for k, v in value.items()}
    if isinstance(value, list):
        return [_relocate(v, assets) for v in value]
    if isinstance(value, str) and value.startswith(ASSET_PREFIX):
        return str(assets) + value[len(ASSET_PREFIX) :]
    return value


def write_profile(directory: Path, assets: Path) -> Path:
    """params/paper_tiny.yaml with its asset paths moved to ``assets`` and its outputs to ``directory``."""
    params = _relocate(yaml.safe_load(PROFILE.read_text()), assets)
    cache = Path(os.environ.get("MTA4DPR_TEST_CACHE", REPO_ROOT / ".cache"))
    params["output"] = {
        **params.get("output", {}),
        "runs_dir": str(directory / "runs"),
        "results_dir": str(directory / "results"),
        "cache_dir": str(cache),
    }
    path = directory / "paper_tiny.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def tiny_assets(tmp_path_factory, trecdl_dir):
    from mta4dpr_core.retrieval.tiny_models import build

    return build(tmp_path_factory.mktemp("paper_tiny_assets"), pool=trecdl_dir)


def test_profile_keeps_the_paper_kinds():
    tiny, paper = load_params(PROFILE), load_params(REPO_ROOT / "params" / "paper_msmarco.yaml")
    teacher = tiny["models"]["teacher"]
    assert teacher["kind"] == paper["models"]["teacher"]["kind"] == "cross_encoder"
    assert teacher["first_stage"]["kind"] == "hf" and teacher["rerank_depth"] > tiny["construction"]["k"]
    for spec in tiny["models"]["assistants"]:
        assert (spec["kind"], spec["pooling"], spec["normalize"]) == ("hf", "cls", False)
    student = tiny["models"]["student"]
    assert (student["kind"], student["pooling"]) == ("hf", "cls_last3") and student["num_layers"]
    assert tiny["training"]["amp"] == paper["training"]["amp"] == "auto"
    assert tiny["data"]["train"] == paper["data"]["train"] and tiny["data"]["test"] == paper["data"]["test"]
    assert len(tiny["seeds"]) == 1


def test_tiny_assets(tiny_assets):
    from transformers import AutoConfig

    from mta4dpr_core.retrieval.data import load_collection

    collection = load_collection(tiny_assets / "data" / "msmarco-passage")
    assert set(collection.splits) == {"train", "dev.small"}
    assert len(collection.splits["train"]) == 60 and len(collection.splits["dev.small"]) == 20
    assert 250 <= len(collection.corpus) <= 350
    assert not set(collection.splits["train"].query_ids) & set(collection.splits["dev.small"].query_ids)
    cross = AutoConfig.from_pretrained(str(tiny_assets / "models" / "cross-encoder-l1"))
    assert (
        cross.architectures == ["BertForSequenceClassification"]
        and cross.num_labels == 1
        and cross.num_hidden_layers == 1
    )
    assert AutoConfig.from_pretrained(str(tiny_assets / "models" / "bert-l1")).num_hidden_layers == 1


def test_tiny_models_are_deterministic(tiny_assets, tmp_path):
    """A second build of the models gives byte-identical weights (the head is seeded)."""
    from mta4dpr_core.retrieval.tiny_models import build_models

    build_models(tmp_path)
    for name in ("bert-l1", "cross-encoder-l1"):
        assert (tmp_path / name / "model.safetensors").read_bytes() == (
            tiny_assets / "models" / name / "model.safetensors"
        ).read_bytes()


def test_all_notebooks_run(tiny_assets, tmp_path):
    profile = write_profile(tmp_path, tiny_assets)
    env = {
        **os.environ,
        "MTA4DPR_PROGRESS": "0",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "mta4dpr_core.runner", "--profile", str(profile)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    seconds = time.perf_counter() - started
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    notebooks = tmp_path / "runs" / "paper_tiny" / "notebooks"
    for name in notebook_names():
        assert (notebooks / f"{name}.ipynb").exists(), name
        assert (notebooks / f"{name}.done.json").exists(), f"{name} did not finish"
    results = tmp_path / "results" / "paper_tiny"
    written = {p.stem for p in results.glob("*.csv")}
    missing = [t for t in TABLES if t not in written]
    assert not missing, f"tables not written: {missing}; written: {sorted(written)}"
    assert not (REPO_ROOT / "results" / "paper_tiny").exists()
    print(f"paper_tiny: seven notebooks in {seconds:.0f} s")


def test_paper_scorers_on_tiny_models(tiny_assets, tmp_path):
    """The cross-encoder re-ranks only its first stage's top `rerank_depth` (deeper ranks keep the
    first stage's order), and hf [CLS] assistants without normalisation give raw inner products."""
    import numpy as np

    from mta4dpr_core.retrieval.data import load_collection
    from mta4dpr_core.retrieval.scorers import build_scorer

    collection = load_collection(tiny_assets / "data" / "msmarco-passage")
    models = tiny_assets / "models"
    first = {
        "name": "first",
        "kind": "hf",
        "model": str(models / "bert-l1"),
        "pooling": "cls",
        "normalize": False,
        "max_query_length": 16,
        "max_passage_length": 32,
    }
    teacher = build_scorer(
        {
            "name": "ce",
            "kind": "cross_encoder",
            "model": str(models / "cross-encoder-l1"),
            "max_length": 48,
            "rerank_depth": 5,
            "first_stage": first,
        },
        cache_dir=tmp_path,
    ).prepare(collection.corpus)
    split = collection.splits["dev.small"]
    ids, texts = split.query_ids[:3], split.query_texts[:3]
    _, stage_one = teacher.first_stage.search(ids, texts, 12)
    scores, docs = teacher.search(ids, texts, 12)
    assert docs.shape == scores.shape == (3, 12)
    for row in range(3):
        assert set(docs[row, :5]) == set(stage_one[row, :5]) and list(docs[row, 5:]) == list(stage_one[row, 5:])
    assert np.all(np.diff(scores, axis=1) < 0) or np.all(np.diff(scores, axis=1) <= 0)
    np.testing.assert_allclose(teacher.score(ids, texts, docs[:, :5]), scores[:, :5], rtol=1e-4, atol=1e-5)
    short_scores, short_docs = teacher.search(ids, texts, 3)  # k <= rerank_depth: the re-ranked top 3
    assert (short_docs == docs[:, :3]).all()

    vectors = teacher.first_stage.doc_embeddings
    assert not np.allclose(np.linalg.norm(vectors, axis=1), 1.0)  # no normalisation
    query = teacher.first_stage.encode_queries(texts[:1])
    np.testing.assert_allclose(
        teacher.first_stage.score(ids[:1], texts[:1], docs[:1, :4]), query @ vectors[docs[0, :4]].T, rtol=1e-4
    )
