"""Params profiles (``params/*.yaml``): defaults, loading and validation.

A profile is a nested mapping. Every key has a default in :data:`DEFAULTS`;
a profile only states what differs. Validation rejects unknown keys (suggesting
the closest known one), wrong types, negative sizes, all-zero loss weights and
fusion requests with fewer than two assistants, with a message naming the key.
"""
from __future__ import annotations

import copy
import difflib
from pathlib import Path

import yaml

from .errors import ParamsError

REPO_ROOT = Path(__file__).resolve().parent.parent

# Model specs (teacher, assistants, student) are free-form mappings checked by
# ``encoders.build_scorer``; everything else is typed here.
DEFAULTS: dict = {
    "profile": "smoke",
    "seeds": [13],
    "data": {
        "root": "../shared/data",
        "train": "scifact/train",
        "test": "scifact/test",
        "extra_test": [],
        "max_train_queries": None,
        "max_test_queries": None,
        "max_corpus": None,
        "max_extra_test_queries": None,
    },
    "models": {
        "teacher": {},
        "assistants": [],
        "student": {},
    },
    "construction": {
        "k": 30,
        "rrf_c": 60,
        "eval_fraction": 0.01,
        "min_eval_queries": 1,
        "mining": True,
        "mining_max_rank": 15,
        "encode_batch_size": 64,
    },
    "fusion": {"enabled": True, "weights": None, "min_size": 2},
    "selection": {"method": "kl", "rbo_p": 0.9, "per_iteration": False},
    "loss": {
        "alpha": 0.2,
        "beta": 1.0,
        "gamma": 15.0,
        "student_temperature": 0.02,
        "in_batch_negatives": True,
    },
    "training": {
        "steps": 100,
        "queries_per_batch": 16,
        "negatives_per_query": 8,
        "learning_rate": 3e-5,
        "weight_decay": 0.01,
        "warmup_steps": 10,
        "max_query_length": 32,
        "max_passage_length": 144,
        "checkpoint_every": 50,
        "amp": "auto",
    },
    "iterations": {"count": 3, "replace_worst": True},
    "evaluation": {"metric": "MRR@10", "depth": 100},
    "study": {
        "selection_methods": ["random", "footrule", "rbo", "kl"],
        "assistant_combinations": True,
        "student_sizes": [],
        "combination_seeds": 0,
        "paper_analogs": {},
        "baseline_models": [],
        "reference_runs": [],
    },
    "output": {"runs_dir": "runs", "results_dir": "results", "cache_dir": ".cache"},
}

FREE_FORM = {"models.teacher", "models.student", "models.assistants", "study.student_sizes", "fusion.weights",
             "study.paper_analogs", "study.baseline_models", "study.reference_runs"}
NON_NEGATIVE = {
    "construction.k", "construction.rrf_c", "construction.mining_max_rank", "construction.encode_batch_size",
    "construction.min_eval_queries", "study.combination_seeds", "training.steps", "training.queries_per_batch",
    "training.negatives_per_query", "training.warmup_steps", "training.max_query_length",
    "training.max_passage_length", "training.checkpoint_every", "iterations.count",
    "loss.alpha", "loss.beta", "loss.gamma", "training.learning_rate", "training.weight_decay",
    "evaluation.depth",
}
POSITIVE = {"construction.k", "training.steps", "training.queries_per_batch", "training.max_query_length",
            "training.max_passage_length", "iterations.count", "construction.encode_batch_size"}
CHOICES = {
    "selection.method": {"kl", "footrule", "rbo", "random", "validation"},
    "training.amp": {"auto", "off", "bf16", "fp16"},
    "evaluation.metric": {"MRR@10", "nDCG@10", "R@100"},
}


def _type_name(value):
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a mapping", type(None): "null"}.get(type(value), type(value).__name__)


def _check_type(key, default, value, source):
    if default is None or key in FREE_FORM:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ParamsError(key, f"expected a boolean (true/false), got {value!r}", source)
        return value
    if isinstance(default, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamsError(key, f"expected {_type_name(default)}, got {value!r} ({_type_name(value)})", source)
        if isinstance(default, int) and not isinstance(default, bool) and isinstance(value, float):
            if not value.is_integer():
                raise ParamsError(key, f"expected an integer, got {value!r}", source)
            value = int(value)
        return value
    if isinstance(default, str) and not isinstance(value, str):
        raise ParamsError(key, f"expected a string, got {value!r} ({_type_name(value)})", source)
    if isinstance(default, list) and not isinstance(value, list):
        raise ParamsError(key, f"expected a list, got {value!r} ({_type_name(value)})", source)
    if isinstance(default, dict) and not isinstance(value, dict):
        raise ParamsError(key, f"expected a mapping, got {value!r} ({_type_name(value)})", source)
    return value


def _merge(defaults: dict, given: dict, prefix: str, source) -> dict:
    merged = copy.deepcopy(defaults)
    for key, value in given.items():
        path = f"{prefix}{key}"
        if key not in defaults:
            close = difflib.get_close_matches(str(key), list(defaults), n=1)
            hint = f"; did you mean `{prefix}{close[0]}`?" if close else f"; known keys: {', '.join(defaults)}"
            raise ParamsError(path, f"unknown key{hint}", source)
        default = defaults[key]
        if isinstance(default, dict) and path not in FREE_FORM:
            if value is None:
                continue
            if not isinstance(value, dict):
                raise ParamsError(path, f"expected a mapping, got {value!r}", source)
            merged[key] = _merge(default, value, path + ".", source)
        else:
            merged[key] = _check_type(path, default, value, source)
    return merged


def _get(params, dotted):
    node = params
    for part in dotted.split("."):
        node = node[part]
    return node


def validate(params: dict, source=None) -> dict:
    """Check cross-key constraints; return ``params`` unchanged when valid."""
    for key in NON_NEGATIVE:
        value = _get(params, key)
        if value < 0:
            raise ParamsError(key, f"must be >= 0, got {value}", source)
    for key in POSITIVE:
        value = _get(params, key)
        if value <= 0:
            raise ParamsError(key, f"must be > 0, got {value}", source)
    for key, allowed in CHOICES.items():
        value = _get(params, key)
        if value not in allowed:
            close = difflib.get_close_matches(str(value), sorted(allowed), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ParamsError(key, f"must be one of {sorted(allowed)}, got {value!r}{hint}", source)
    loss = params["loss"]
    if loss["alpha"] == 0 and loss["beta"] == 0 and loss["gamma"] == 0:
        raise ParamsError("loss", "alpha, beta and gamma are all zero: the student would learn nothing", source)
    if not 0 <= params["construction"]["eval_fraction"] < 1:
        raise ParamsError("construction.eval_fraction", "must be in [0, 1)", source)
    if not 0 < params["selection"]["rbo_p"] < 1:
        raise ParamsError("selection.rbo_p", "must be in (0, 1)", source)
    if not params["seeds"] or not all(isinstance(s, int) and not isinstance(s, bool) for s in params["seeds"]):
        raise ParamsError("seeds", f"expected a non-empty list of integers, got {params['seeds']!r}", source)
    assistants = params["models"]["assistants"]
    if not isinstance(assistants, list):
        raise ParamsError("models.assistants", "expected a list of model specs", source)
    if params["fusion"]["enabled"] and 0 < len(assistants) < 2:
        raise ParamsError("fusion.enabled", f"fusion needs at least 2 assistants, got {len(assistants)}", source)
    weights = params["fusion"]["weights"]
    if weights is not None:
        if not isinstance(weights, list) or len(weights) != len(assistants):
            raise ParamsError("fusion.weights", f"expected a list of {len(assistants)} numbers (one per assistant)", source)
        if any((not isinstance(w, (int, float))) or w < 0 for w in weights) or sum(weights) == 0:
            raise ParamsError("fusion.weights", "weights must be non-negative numbers, not all zero", source)
    for index, spec in enumerate(assistants):
        if not isinstance(spec, dict) or "name" not in spec:
            raise ParamsError(f"models.assistants[{index}]", "each assistant needs a mapping with a `name`", source)
    names = [spec["name"] for spec in assistants]
    if len(set(names)) != len(names):
        raise ParamsError("models.assistants", f"assistant names must be unique, got {names}", source)
    return params


def from_mapping(given: dict, source=None) -> dict:
    if not isinstance(given, dict):
        raise ParamsError("<root>", f"a params profile must be a mapping, got {_type_name(given)}", source)
    return validate(_merge(DEFAULTS, given, "", source), source)


def load_params(path) -> dict:
    """Load and validate one YAML profile; errors name the file and the key (or YAML line)."""
    path = Path(path)
    if not path.exists():
        raise ParamsError("<file>", "params file does not exist", str(path))
    try:
        given = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ParamsError("<yaml>", f"not valid YAML{line}: {getattr(error, 'problem', error)}", str(path)) from None
    return from_mapping(given, source=str(path))


def profile_path(profile: str) -> Path:
    return REPO_ROOT / "params" / f"{profile}.yaml"


def notebook_params(profile: str, **sections) -> dict:
    """What a notebook's parameters cell resolves to.

    papermill injects the profile's top-level sections as variables; in
    JupyterLab they are ``None`` and the profile file is read instead.
    """
    given = {key: value for key, value in sections.items() if value is not None}
    if given:
        return from_mapping({"profile": profile, **given}, source=f"profile {profile}")
    return load_params(profile_path(profile))


def resolve_path(value, base=REPO_ROOT) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path).resolve()
