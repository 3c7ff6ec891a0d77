"""TrainConfig's one declaration: each field is a profile key (default the schema's) or set by the run."""

from __future__ import annotations

from dataclasses import MISSING, fields

from mta4dpr_core.config.params import load_params, profile_path
from mta4dpr_core.config.schema import SCHEMA
from mta4dpr_core.method.training import DIRECT_DEFAULTS, TrainConfig, profile_fields

RUN_TIME = {"teacher_temperature", "assistant_temperatures", "fusion_weights", "fixed_assistant", "seed"}


def test_every_field_is_a_profile_key_or_run_time():
    for f in fields(TrainConfig):
        declared = ("profile" in f.metadata) + ("run_time" in f.metadata)
        assert declared == 1, f"TrainConfig.{f.name}: declare it once, as _profile(section, key) or _run_time()"
    assert {f.name for f in fields(TrainConfig) if "run_time" in f.metadata} == RUN_TIME


def test_profile_defaults_are_the_schema_defaults_but_the_documented_ones():
    differing = {}
    for f in fields(TrainConfig):
        if "profile" not in f.metadata:
            continue
        section, key = f.metadata["profile"]
        schema_default = SCHEMA[section][key].default  # a KeyError: the field names no declared key
        default = f.default if f.default is not MISSING else f.default_factory()
        if default != schema_default:
            differing[f"{section}.{key}"] = default
    assert differing == DIRECT_DEFAULTS == {"training.amp": "off"}
    assert SCHEMA["training"]["amp"].default == "auto"  # so a profile's run never inherits the direct "off"


def test_train_config_takes_every_profile_field_from_the_profile():
    from mta4dpr_core.experiments.iteration import deep_update, train_config

    params = load_params(profile_path("smoke"))
    # a distinct value for every mapped key, so a field read from the wrong key shows
    changed = {"training": {"steps": 7, "queries_per_batch": 5, "negatives_per_query": 3, "learning_rate": 1e-4}}
    changed["training"].update(weight_decay=0.5, warmup_steps=2, max_query_length=11, max_passage_length=22)
    changed["training"].update(checkpoint_every=4, amp="bf16", attention_dropout=0.05, dropout_masks="philox")
    changed["loss"] = {
        "alpha": 0.3,
        "beta": 0.7,
        "gamma": 2.5,
        "student_temperature": 0.05,
        "in_batch_negatives": False,
    }
    changed["selection"] = {"method": "rbo", "rbo_p": 0.8}
    changed["fusion"] = {"enabled": False}
    params = deep_update(params, changed)
    config = train_config(params, [], seed=5)
    for name, (section, key) in profile_fields().items():
        assert getattr(config, name) == params[section][key] == changed[section][key], name
    assert set(profile_fields()) | RUN_TIME == {f.name for f in fields(TrainConfig)}
    assert (config.seed, config.fixed_assistant, config.fusion_weights, config.assistant_temperatures) == (
        5,
        None,
        None,
        [],
    )
