"""Frozen scorers load their model at first use (``encoders.DeferredEncoder``).

Its identity, which keys the encoding cache, is computed from the spec and the checkpoint's config alone; these
tests check it against the identity of the loaded encoder for every offline spec of every profile, and that the
deferred encoder encodes with the same bits as an eager one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from mta4dpr_core.config.models import ModelNotFoundError, resolve_model
from mta4dpr_core.config.params import REPO_ROOT, load_params
from mta4dpr_core.retrieval.encoders import DEFERRED_BUILDERS, DeferredEncoder, build_encoder

TEXTS = ["Vitamin D deficiency increases fracture risk.", "a", "Low vitamin D raises the risk of bone fractures."]


def scorer_specs(spec):
    """Every spec inside a teacher or assistant spec: ensemble members and a cross-encoder's first stage too."""
    yield spec
    for member in spec.get("members", []):
        yield from scorer_specs(member)
    if spec.get("first_stage"):
        yield from scorer_specs(spec["first_stage"])


def offline_deferrable_specs():
    found = {}
    for path in sorted((REPO_ROOT / "params").glob("*.yaml")):
        models = load_params(path)["models"]
        for top in [models["teacher"], *models["assistants"]]:
            for spec in scorer_specs(top):
                if spec.get("kind") not in DEFERRED_BUILDERS:
                    continue
                try:
                    resolve_model(spec["model"])
                except ModelNotFoundError:  # the paper profiles' hub ids (no internet here)
                    continue
                found.setdefault(json.dumps(spec, sort_keys=True), path.stem)
    return [
        pytest.param(json.loads(spec), id=f"{profile}-{json.loads(spec)['name']}") for spec, profile in found.items()
    ]


SPECS = offline_deferrable_specs()


def test_the_profiles_have_deferrable_offline_specs():
    kinds = {param.values[0]["kind"] for param in SPECS}
    assert kinds == {"hf", "onnx"}, kinds


@pytest.mark.parametrize("spec", SPECS)
def test_deferred_identity_equals_the_loaded_encoders(spec):
    deferred = build_encoder(spec, deferred=True)
    assert isinstance(deferred, DeferredEncoder) and deferred._encoder is None
    eager = build_encoder(spec)
    assert deferred.identity() == eager.identity()
    assert deferred.name == eager.name


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "hf", "model": "all-MiniLM-L6-v2", "pooling": "mean", "normalize": True},
        {"kind": "hf", "model": "all-MiniLM-L6-v2", "pooling": "cls_last3", "num_layers": 3},
        {"kind": "onnx", "model": "paraphrase-MiniLM-L3-v2"},
    ],
    ids=["mean", "truncated", "onnx"],
)
def test_deferred_encoder_loads_once_and_encodes_the_same_bits(spec):
    deferred = build_encoder(spec, deferred=True)
    assert deferred._encoder is None
    vectors = deferred.encode(TEXTS, max_length=32, batch_size=2)
    loaded = deferred._encoder
    assert loaded is not None and deferred.loaded is loaded
    assert deferred.identity() == loaded.identity()
    np.testing.assert_array_equal(vectors, build_encoder(spec).encode(TEXTS, max_length=32, batch_size=2))
    if spec["kind"] == "hf":  # attributes reach the loaded encoder
        assert deferred.dim == 384 and deferred.model is loaded.model


def test_a_wrong_identity_is_refused_at_load(tmp_path):
    """A checkpoint whose config.json says 6 layers but whose weights hold 3 would key its encodings as a
    6-layer model's; the load compares the two and refuses."""
    source = resolve_model("all-MiniLM-L6-v2").path
    model = tmp_path / "minilm"
    model.mkdir()
    for item in source.iterdir():
        if item.is_file():
            (model / item.name).write_bytes(item.read_bytes())
    spec = {"kind": "hf", "model": str(model), "pooling": "cls", "num_layers": 4}
    deferred = build_encoder(spec, deferred=True)
    assert deferred.identity()["layers"] == 4
    deferred._identity = {**deferred._identity, "layers": 6}
    with pytest.raises(RuntimeError, match="identity"):
        deferred.encode(TEXTS, max_length=16)


def test_spec_errors_still_come_before_any_load(tmp_path):
    with pytest.raises(ValueError, match="pooling must be one of"):
        build_encoder({"kind": "hf", "model": "all-MiniLM-L6-v2", "pooling": "max"}, deferred=True)
    with pytest.raises(ValueError, match="cannot truncate"):
        build_encoder({"kind": "hf", "model": "all-MiniLM-L6-v2", "num_layers": 7}, deferred=True)
    with pytest.raises(ModelNotFoundError):
        build_encoder({"kind": "onnx", "model": str(tmp_path / "nowhere.onnx")}, deferred=True)
    with pytest.raises(ValueError, match="not an ONNX model"):
        build_encoder({"kind": "onnx", "model": "all-MiniLM-L6-v2"}, deferred=True)


def test_a_warm_setup_never_loads_transformers():
    """The smoke profile's teacher (BM25 + ONNX MiniLM-L3) and MiniLM-L6 assistant: once their encodings are
    cached, a new process builds the Setup without importing transformers (5-7 s of a notebook kernel's start)."""
    from mta4dpr_core.report.notebook import setup_from_parameters

    _, warm = setup_from_parameters("smoke")  # here, the cache is filled where it was cold
    deferred = [
        s.encoder for s in warm.all_scorers().values() if isinstance(getattr(s, "encoder", None), DeferredEncoder)
    ]
    deferred += [m.encoder for m in warm.teacher.members if isinstance(getattr(m, "encoder", None), DeferredEncoder)]
    assert len(deferred) == 2
    script = (
        "import sys\n"
        "from mta4dpr_core.report.notebook import setup_from_parameters\n"
        "params, setup = setup_from_parameters('smoke')\n"
        "print(sorted(m for m in ('transformers', 'onnxruntime', 'sentence_transformers') if m in sys.modules))\n"
    )
    env = {**os.environ, "MTA4DPR_PROGRESS": "0", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip().splitlines()[-1] == "[]", run.stdout
