"""Params profiles: loading, defaults merge and the main validation errors."""

from __future__ import annotations

import copy

import pytest
import yaml

from mta4dpr_core.config.errors import ParamsError
from mta4dpr_core.config.params import DEFAULTS, FREE_FORM, from_mapping, load_params, profile_path
from mta4dpr_core.config.typed import typed


def _leaves(tree, prefix=""):
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and path not in FREE_FORM:
            yield from _leaves(value, path + ".")
        else:
            yield path, value


def _get(tree, dotted):
    for part in dotted.split("."):
        tree = tree[part]
    return tree


def test_smoke_profile_loads_with_defaults_filled():
    path = profile_path("smoke")
    if not path.exists():
        pytest.skip(f"{path} not present")
    params = load_params(path)
    given = yaml.safe_load(path.read_text())
    # every key the file states is taken as given ...
    for key, value in _leaves(given):
        assert _get(params, key) == value, key
    # ... and every default key exists afterwards
    for key, _ in _leaves(DEFAULTS):
        _get(params, key)
    assert params["profile"] == "smoke"


def test_defaults_merge_does_not_mutate_defaults():
    before = copy.deepcopy(DEFAULTS)
    params = from_mapping({"training": {"steps": 7}, "loss": {"gamma": 0.0}})
    assert params["training"]["steps"] == 7
    assert params["training"]["queries_per_batch"] == DEFAULTS["training"]["queries_per_batch"]
    assert params["loss"]["gamma"] == 0.0 and params["loss"]["alpha"] == DEFAULTS["loss"]["alpha"]
    assert params["construction"] == DEFAULTS["construction"]
    params["construction"]["k"] = 999
    assert DEFAULTS == before


def test_integer_valued_float_is_accepted_as_integer():
    assert from_mapping({"training": {"steps": 10.0}})["training"]["steps"] == 10
    with pytest.raises(ParamsError, match="expected an integer"):
        from_mapping({"training": {"steps": 10.5}})


@pytest.mark.parametrize(
    "given, key, message",
    [
        ({"trainng": {"steps": 1}}, "trainng", "did you mean `training`"),
        ({"training": {"stpes": 1}}, "training.stpes", "did you mean `training.steps`"),
        ({"training": {"steps": "ten"}}, "training.steps", "expected an integer"),
        ({"construction": {"k": -1}}, "construction.k", "must be >= 0"),
        ({"loss": {"alpha": 0, "beta": 0, "gamma": 0}}, "loss", "all zero"),
        ({"models": {"assistants": [{"name": "only", "kind": "bm25"}]}}, "fusion.enabled", "at least 2 assistants"),
        ({"selection": {"method": "kll"}}, "selection.method", "did you mean 'kl'"),
        ({"output": {"schedule": "all"}}, "output.schedule", "stage"),
        ({"construction": {"eval_fraction": 1.0}}, "construction.eval_fraction", "must be in [0, 1), got 1.0"),
        ({"selection": {"rbo_p": 0}}, "selection.rbo_p", "must be in (0, 1), got 0"),
        (
            {"models": {"student": {"kind": "static", "model": "wordllama", "inference_dtype": "auto"}}},
            "models.student.inference_dtype",
            "on a `static` model",
        ),
        (
            {"models": {"student": {"kind": "hf", "model": "all-MiniLM-L6-v2", "inference_dtype": "bfloat16"}}},
            "models.student.inference_dtype",
            "`auto`, `bf16` or `fp16`",
        ),
    ],
)
def test_validation_errors_name_the_key(given, key, message):
    with pytest.raises(ParamsError) as caught:
        from_mapping(given, source="profile.yaml")
    assert caught.value.key == key
    assert f"`{key}`" in str(caught.value)
    assert message in str(caught.value)
    assert str(caught.value).startswith("profile.yaml: ")


def test_single_assistant_is_fine_without_fusion():
    params = from_mapping({"models": {"assistants": [{"name": "only", "kind": "bm25"}]}, "fusion": {"enabled": False}})
    assert len(params["models"]["assistants"]) == 1


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("seeds: [13]\ntraining:\n\tsteps: 3\n")  # a tab on line 3
    with pytest.raises(ParamsError) as caught:
        load_params(path)
    assert str(path) in str(caught.value)
    assert "not valid YAML:3:" in str(caught.value)


def test_a_profile_extends_another_by_the_keys_it_changes(tmp_path):
    variant = tmp_path / "variant.yaml"
    variant.write_text("extends: smoke\nprofile: variant\nseeds: [5]\ntraining: {steps: 7}\n")
    base, params = load_params(profile_path("smoke")), load_params(variant)
    assert params["profile"] == "variant" and params["seeds"] == [5] and params["training"]["steps"] == 7
    # everything else is the base's, key by key inside a mapping
    assert params["training"]["learning_rate"] == base["training"]["learning_rate"]
    assert params["models"] == base["models"]
    unnamed = tmp_path / "unnamed.yaml"
    unnamed.write_text("extends: smoke\nseeds: [5]\n")
    with pytest.raises(ParamsError, match="names itself"):
        load_params(unnamed)
    missing = tmp_path / "missing.yaml"
    missing.write_text("extends: no-such-profile\nprofile: x\n")
    with pytest.raises(ParamsError, match="no profile 'no-such-profile'"):
        load_params(missing)


def test_study_ablations_decide_which_table3_runs_are_scheduled():
    import types

    from mta4dpr_core.config.params import load_params
    from mta4dpr_core.experiments.catalog import planned_runs

    def variants(profile, stage="ablations"):
        params = load_params(f"params/{profile}.yaml")
        setup = types.SimpleNamespace(
            params=params, config=typed(params), assistants=[object()] * len(params["models"]["assistants"])
        )
        return {job["variant"] for job in planned_runs(setup, stage)}

    assert {"no_fusion", "no_iterations"} <= variants("mini")
    assert "no_fusion" in variants("mini_transformer") and "no_iterations" not in variants("mini_transformer")
    assert "no_iterations" not in variants("mini_transformer", "summary")


def test_schedule_profile_runs_every_run_in_the_first_grid(monkeypatch):
    import types

    from mta4dpr_core import pipeline
    from mta4dpr_core.config.params import load_params
    from mta4dpr_core.config.typed import typed
    from mta4dpr_core.experiments.catalog import planned_runs

    grids = []
    monkeypatch.setattr(pipeline, "run_grid", lambda setup, jobs: grids.append(len(jobs)))
    for schedule in ("stage", "profile"):
        params = load_params("params/mini_transformer.yaml")
        params["output"]["schedule"] = schedule
        setup = types.SimpleNamespace(
            params=params, config=typed(params), assistants=[object()] * len(params["models"]["assistants"])
        )
        pipeline._run_planned(setup, "selection")
        expected = planned_runs(setup, "selection" if schedule == "stage" else "summary")
        assert grids[-1] == len(expected)
    assert grids == [6, 21]  # the profile's 7 variants (the two controls among them) x 3 seeds in one grid


def test_the_run_catalog_gives_each_stage_the_runs_its_tables_read():
    import types

    from mta4dpr_core.config.params import load_params
    from mta4dpr_core.experiments.catalog import STAGE_TABLES, planned_runs, runs_for

    params = load_params("params/mini.yaml")
    setup = types.SimpleNamespace(
        params=params, config=typed(params), assistants=[object()] * len(params["models"]["assistants"])
    )
    seeds = len(params["seeds"])
    for stage, tables in STAGE_TABLES.items():
        jobs = planned_runs(setup, stage)
        keys = {(j["variant"], j["seed"], repr(j["student_spec"])) for j in jobs}
        assert len(keys) == len(jobs), f"{stage}: a run planned twice"
        for table in tables:
            for spec in runs_for(setup, table):
                assert (spec.variant, spec.seed, repr(spec.student_spec)) in keys, f"{stage} misses a run of {table}"
    # mini: 5 seeds of 4 selection methods, 2 baselines, 2 controls and 2 ablations; Table 7's single assistants and
    # Table 6's two smaller students (MTA4DPR and no assistant) over every seed
    # and the dose-response sweep's three inner lambdas
    assert len(planned_runs(setup, "summary")) == seeds * (4 + 2 + 2 + 2 + 2 + 2 * 2 + 3)
    assert [j["evaluate_test"] for j in planned_runs(setup, "training")].count("all") == seeds


def test_every_key_is_declared_once_with_help_and_the_reference_page_is_current():
    from pathlib import Path

    from mta4dpr_core.config import schema
    from mta4dpr_core.config.params import DEFAULTS

    declared = [key for key, _ in schema.keys()]
    assert len(declared) == len(set(declared))
    assert all(spec.help.strip() for _, spec in schema.keys())
    assert schema.defaults() == DEFAULTS
    page = Path("docs/params.md").read_text()
    assert page == schema.markdown(), "docs/params.md is stale: python -m mta4dpr_core.config.schema > docs/params.md"


def test_every_model_kind_has_its_builders_and_no_builder_lacks_a_kind():
    from mta4dpr_core.config.kinds import ENCODER_KINDS, KINDS, STUDENT_KINDS
    from mta4dpr_core.retrieval.encoders import ENCODER_BUILDERS
    from mta4dpr_core.retrieval.scorers import SCORER_BUILDERS

    assert set(SCORER_BUILDERS) == set(KINDS)
    assert set(ENCODER_BUILDERS) == set(ENCODER_KINDS)
    assert STUDENT_KINDS == {"static", "hf"}
    from mta4dpr_core.experiments.experiment import STUDENT_BUILDERS

    assert set(STUDENT_BUILDERS) == STUDENT_KINDS
    with pytest.raises(ValueError, match="unknown scorer kind 'nope'"):
        from mta4dpr_core.retrieval.scorers import build_scorer

        build_scorer({"name": "x", "kind": "nope"})


def test_results_dir_override_moves_the_tables_and_nothing_else(monkeypatch):
    """``make test`` sets $MTA4DPR_RESULTS_DIR so that nbval never rewrites the committed results/."""
    from mta4dpr_core.config.params import RESULTS_DIR_VARIABLE, notebook_params

    monkeypatch.delenv(RESULTS_DIR_VARIABLE, raising=False)
    plain = notebook_params("smoke")
    assert plain["output"]["results_dir"] == "results"
    monkeypatch.setenv(RESULTS_DIR_VARIABLE, "runs/test-results")
    moved = notebook_params("smoke")
    assert moved["output"]["results_dir"] == "runs/test-results"
    assert {k: v for k, v in moved.items() if k != "output"} == {k: v for k, v in plain.items() if k != "output"}
