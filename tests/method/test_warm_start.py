"""The [CLS] warm start: it escapes the collapsed [CLS] of a mean-pooling checkpoint, is cached per spec,
and its settings are checked at profile load."""

import json

import pytest
import torch

from mta4dpr_core.config.errors import ParamsError
from mta4dpr_core.config.params import apply_overrides, load_params, profile_path
from mta4dpr_core.method import warm_start as warm_start_module
from mta4dpr_core.method.warm_start import WarmStartConfig, query_length_crops, warm_start, warm_started
from mta4dpr_core.retrieval.encoders import TransformerEncoder

SPEC = {"kind": "hf", "model": "all-MiniLM-L6-v2", "pooling": "cls_last3", "normalize": True, "num_layers": 1}


def _mean_off_diagonal_cosine(vectors):
    vectors = torch.nn.functional.normalize(torch.as_tensor(vectors), dim=-1)
    cosine = vectors @ vectors.T
    return float(cosine[~torch.eye(len(vectors), dtype=torch.bool)].mean())


@pytest.fixture(scope="module")
def passages(scifact):
    return list(scifact.corpus.texts[:96])


def test_warm_start_moves_a_collapsed_cls_towards_the_target(passages, minilm_encoder):
    # three layers, so that the pooled [CLS] states are all layer outputs (the embedding layer's [CLS] is a constant)
    student = TransformerEncoder.from_name("all-MiniLM-L6-v2", pooling="cls_last3", normalize=True, num_layers=3)
    before = _mean_off_diagonal_cosine(student.encode(passages[:32], max_length=48))
    assert before > 0.99, f"the premise: all-MiniLM's [CLS] is one vector (mean cosine {before:.4f})"
    config = WarmStartConfig(steps=40, batch_size=16, max_length=48, learning_rate=1e-3, warmup_steps=3, amp="off")
    losses = warm_start(student, minilm_encoder, passages, config)
    after = _mean_off_diagonal_cosine(student.encode(passages[:32], max_length=48))
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.1, f"cosine loss did not fall: {losses[:5]} ... {losses[-5:]}"
    assert after < 0.99, f"[CLS] still collapsed: mean cosine {before:.4f} -> {after:.4f}"


def test_query_length_crops_are_contiguous_spans():
    import random

    texts = ["one two three four five six seven eight nine ten eleven twelve thirteen fourteen", "short text"]
    crops = query_length_crops(texts, random.Random(0))
    assert 4 <= len(crops[0].split()) <= 12 and crops[0] in texts[0]
    assert crops[1] == "short text"


def test_warm_start_is_computed_once_and_reused(tmp_path, monkeypatch, passages):
    root = tmp_path / "data"
    (root / "pool").mkdir(parents=True)
    with open(root / "pool" / "corpus.jsonl", "w") as handle:
        for i, text in enumerate(passages[:40]):
            handle.write(json.dumps({"_id": f"d{i}", "title": "", "text": text}) + "\n")
    spec = {
        **SPEC,
        "warm_start": {"texts": "pool", "passages": 20, "steps": 2, "batch_size": 4, "max_length": 32, "amp": "off"},
    }
    first = warm_started(
        TransformerEncoder.from_name("all-MiniLM-L6-v2", pooling="cls_last3", normalize=True, num_layers=1),
        spec,
        root,
        tmp_path / "cache",
    )
    assert warm_start_module.warm_start_report(tmp_path / "cache", spec)["texts"] == 40

    def must_not_train(*args, **kwargs):
        raise AssertionError("the cached warm start was recomputed")

    monkeypatch.setattr(warm_start_module, "warm_start", must_not_train)
    second = warm_started(
        TransformerEncoder.from_name("all-MiniLM-L6-v2", pooling="cls_last3", normalize=True, num_layers=1),
        spec,
        root,
        tmp_path / "cache",
    )
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    other = {**spec, "warm_start": {**spec["warm_start"], "steps": 3}}
    with pytest.raises(AssertionError, match="recomputed"):
        warm_started(
            TransformerEncoder.from_name("all-MiniLM-L6-v2", pooling="cls_last3", normalize=True, num_layers=1),
            other,
            root,
            tmp_path / "cache",
        )


@pytest.mark.parametrize(
    "warm, message",
    [
        ({"stepz": 3}, "models.student.warm_start.stepz"),
        ({"steps": 0}, "models.student.warm_start.steps"),
        ({"learning_rate": "3e-4"}, "write 3.0e-4"),
        ({"amp": "fp16"}, "models.student.warm_start.amp"),
        ({"texts": ""}, "models.student.warm_start.texts"),
    ],
)
def test_bad_warm_start_settings_name_the_key(warm, message):
    with pytest.raises(ParamsError, match=message.replace(".", r"\.")):
        apply_overrides(
            load_params(profile_path("mini_transformer")), [f"models.student.warm_start={json.dumps(warm)}"]
        )


def test_a_static_student_has_no_cls_to_warm_start():
    with pytest.raises(ParamsError, match="only an `hf` student"):
        apply_overrides(load_params(profile_path("mini")), ['models.student.warm_start={"steps": 3}'])


def test_a_missing_warm_start_corpus_stops_before_any_work(tmp_path):
    from mta4dpr_core.experiments.experiment import Setup

    params = apply_overrides(
        load_params(profile_path("mini_transformer")), ["models.student.warm_start.texts=no-such-corpus"]
    )
    with pytest.raises(
        ParamsError, match=r"models\.student\.warm_start\.texts.*no-such-corpus: no such corpus directory"
    ):
        Setup.from_params(params, prepare=False)
