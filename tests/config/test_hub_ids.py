"""The paper profiles' model ids: spelled as on the hub and of the right kind (tests/config/paper_models.yaml),
and models without a public checkpoint stop a run before any work, naming the missing path.

No network: the list in tests/config/paper_models.yaml was checked against the hub pages once; this test
checks the profiles against the list. Run it on a copy of a profile with ``MTA4DPR_PAPER_PROFILES``
(paths separated by ``os.pathsep``) to check another file the same way.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest
import yaml

from mta4dpr_core.config.errors import ModelNotFoundError, ParamsError
from mta4dpr_core.config.models import _model_specs, check_models_available, looks_local
from mta4dpr_core.config.params import REPO_ROOT, from_mapping, load_params

REGISTRY = yaml.safe_load((Path(__file__).parent / "paper_models.yaml").read_text())
PROFILES = [Path(p) for p in os.environ.get("MTA4DPR_PAPER_PROFILES", "").split(os.pathsep) if p] or [
    REPO_ROOT / "params" / "paper_msmarco.yaml",
    REPO_ROOT / "params" / "paper_nq.yaml",
]


# which registry roles a spec may name, by where it sits and its kind
def allowed_roles(key: str, spec: dict) -> set:
    if spec.get("kind") == "cross_encoder":
        return {"cross_encoder"}
    if key.startswith(("models.student", "study.student_sizes")):
        return {"pretrained", "retriever"}
    return {"retriever"}  # hf teachers, first stages, assistants, baselines: dual encoders


def profile_problems(path: Path) -> list:
    """Every misspelt id, wrong kind or unmarked local path in one profile (empty when all is well)."""
    params = load_params(path)
    problems, listed = [], REGISTRY["models"]
    for key, spec in _model_specs(params):
        model = spec.get("model")
        if not isinstance(model, str) or spec.get("kind") not in {"hf", "cross_encoder", "sentence_transformers"}:
            continue
        where = f"{path.name}: {key}.model = {model!r}"
        if looks_local(model):
            if not spec.get("no_public_checkpoint"):
                problems.append(
                    f"{where}: a local path needs `no_public_checkpoint: true` (or use a hub id from tests/config/paper_models.yaml)"
                )
            elif spec.get("name", key.split(".")[-1]) not in REGISTRY["no_public_checkpoint"]:
                problems.append(
                    f"{where}: {spec.get('name')!r} is not listed under no_public_checkpoint in tests/config/paper_models.yaml"
                )
            continue
        if model not in listed:
            close = difflib.get_close_matches(model, list(listed), n=1, cutoff=0.6)
            hint = (
                f"; did you mean {close[0]!r}?"
                if close
                else "; add it to tests/config/paper_models.yaml after checking its hub page"
            )
            problems.append(f"{where}: not a known hub id of the paper's models{hint}")
            continue
        role, allowed = listed[model]["role"], allowed_roles(key, spec)
        if role not in allowed:
            problems.append(
                f"{where}: listed as {listed[model]['architecture']} ({role}), but a `{spec['kind']}` spec here "
                f"needs a {' or '.join(sorted(allowed))}"
            )
    return problems


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_paper_model_ids(path):
    problems = profile_problems(path)
    assert not problems, "\n".join(problems)


def test_registry_is_well_formed():
    for model, entry in REGISTRY["models"].items():
        owner, _, name = model.partition("/")
        assert owner and name and "/" not in name, model
        assert entry["role"] in {"cross_encoder", "retriever", "pretrained"}, model
        assert entry["page"] == f"https://huggingface.co/{model}"


def test_the_paper_teacher_is_a_cross_encoder():
    params = load_params(REPO_ROOT / "params" / "paper_msmarco.yaml")
    teacher = params["models"]["teacher"]
    assert teacher["kind"] == "cross_encoder" and REGISTRY["models"][teacher["model"]]["model_type"] == "electra"


def test_a_misspelt_or_misplaced_id_is_caught(tmp_path):
    text = (REPO_ROOT / "params" / "paper_msmarco.yaml").read_text()
    misspelt = tmp_path / "misspelt.yaml"
    misspelt.write_text(text.replace("intfloat/simlm-msmarco-reranker", "intfloat/simlm-msmarco-rerank"))
    [problem] = profile_problems(misspelt)
    assert (
        "models.teacher.model = 'intfloat/simlm-msmarco-rerank'" in problem
        and "did you mean 'intfloat/simlm-msmarco-reranker'" in problem
    )
    # a pre-trained encoder as the cross-encoder teacher, a reranker as an assistant
    swapped = tmp_path / "swapped.yaml"
    swapped.write_text(
        text.replace("model: intfloat/simlm-msmarco-reranker", "model: intfloat/simlm-base-msmarco").replace(
            "model: caskcsg/cotmae_base_msmarco_retriever", "model: intfloat/simlm-msmarco-reranker"
        )
    )
    problems = profile_problems(swapped)
    assert len(problems) == 2, problems
    assert "models.teacher.model" in problems[0] and "needs a cross_encoder" in problems[0]
    assert "models.assistants[0].model" in problems[1] and "needs a retriever" in problems[1]
    # a local path without the flag
    unmarked = tmp_path / "unmarked.yaml"
    unmarked.write_text(text.replace("no_public_checkpoint: true, ", ""))
    assert any("needs `no_public_checkpoint: true`" in p for p in profile_problems(unmarked))


@pytest.mark.parametrize(
    "profile, missing",
    [
        ("paper_msmarco", ["models.assistants[3].model (m2dpr): local path /models/m2dpr"]),
        (
            "paper_nq",
            [
                "models.teacher.model (ernie-search): local path /models/ernie-search",
                "models.assistants[0].model (rocketqav1): local path /models/rocketqav1",
                "models.assistants[1].model (pair): local path /models/pair",
            ],
        ),
    ],
)
def test_missing_local_checkpoints_fail_before_any_work(profile, missing, tmp_path, monkeypatch):
    if any(Path(m.split("local path ")[1]).exists() for m in missing):
        pytest.skip("this machine has the converted checkpoints")
    params = load_params(REPO_ROOT / "params" / f"{profile}.yaml")
    with pytest.raises(ModelNotFoundError) as raised:
        check_models_available(params)
    message = str(raised.value)
    for line in missing:
        assert line in message and "no public checkpoint" in message
    assert "intfloat/" not in message  # hub ids are not checked here (no network)

    # the runner stops before the first notebook; the notebooks' first cell before loading any data
    from mta4dpr_core import runner
    from mta4dpr_core.experiments import experiment
    from mta4dpr_core.report.notebook import setup_from_parameters

    monkeypatch.setattr(experiment.Setup, "from_params", classmethod(lambda cls, *a, **k: pytest.fail("work started")))
    given = yaml.safe_load((REPO_ROOT / "params" / f"{profile}.yaml").read_text())
    given["output"] = {
        "runs_dir": str(tmp_path / "runs"),
        "results_dir": str(tmp_path / "results"),
        "cache_dir": str(tmp_path / "cache"),
    }
    copy = tmp_path / f"{profile}.yaml"
    copy.write_text(yaml.safe_dump(given))
    with pytest.raises(ModelNotFoundError, match=missing[0].split(": ")[1]):
        runner.run_profile(copy, notebooks=False, log=lambda *_: None)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "results").exists()
    sections = {k: v for k, v in given.items() if k != "profile"}
    with pytest.raises(ModelNotFoundError, match=missing[0].split(": ")[1]):
        setup_from_parameters(profile, **sections)
    assert runner.main(["--profile", str(copy), "--no-notebooks"]) == 2


def test_present_local_checkpoints_pass(tmp_path):
    given = yaml.safe_load((REPO_ROOT / "params" / "paper_msmarco.yaml").read_text())
    (tmp_path / "m2dpr").mkdir()
    given["models"]["assistants"][3]["model"] = str(tmp_path / "m2dpr")
    check_models_available(from_mapping(given))


def test_no_public_checkpoint_is_validated():
    given = yaml.safe_load((REPO_ROOT / "params" / "paper_msmarco.yaml").read_text())
    given["models"]["assistants"][3]["no_public_checkpoint"] = "yes"
    with pytest.raises(ParamsError, match=r"models.assistants\[3\].no_public_checkpoint"):
        from_mapping(given)
    given["models"]["assistants"][3].update(no_public_checkpoint=True, model="someone/m2dpr")
    with pytest.raises(ParamsError, match="needs a local path"):
        from_mapping(given)
