"""Params profiles (``params/*.yaml``): defaults, loading and validation.

A profile is a nested mapping. Every key is declared once in ``schema.py`` (its default,
type, bounds and help; ``docs/params.md`` lists them); a profile only states what differs. Validation rejects unknown keys (suggesting
the closest known one), wrong types, negative sizes, all-zero loss weights and
fusion requests with fewer than two assistants, with a message naming the key.
"""

from __future__ import annotations

import copy
import difflib
import os
from pathlib import Path

import yaml

from .errors import ParamsError
from .independence import check_independence, check_student_independence
from .kinds import KINDS, NEEDS_MODEL, SCORER_KINDS, STUDENT_KINDS, check_transformer_options
from .schema import defaults, rules
from .schema import keys as schema_keys
from .typed import typed

REPO_ROOT = Path(__file__).resolve().parents[2]

# Every key is declared once, in schema.py (default, type, bounds, choices, help); the rules below are
# read from it. Model specs (teacher, assistants, student) are free-form mappings checked by kind here.
DEFAULTS: dict = defaults()
FREE_FORM = set(rules("free_form"))
NON_NEGATIVE = {key for key, bound in rules("bound").items() if bound in (">= 0", "> 0")}
POSITIVE = {key for key, bound in rules("bound").items() if bound == "> 0"}
INTERVALS = {key: bound for key, bound in rules("bound").items() if bound.startswith(("[", "("))}
CHOICES = {key: set(allowed) for key, allowed in rules("choices").items()}
NULLABLE = {key for key, spec in schema_keys() if spec.default is None}
LIST_CHOICES = {key: set(allowed) for key, allowed in rules("each_of").items()}


# Model spec kinds, their needs and builders: kinds.py
DATA_LIMITS = ("max_train_queries", "max_test_queries", "max_corpus", "max_extra_test_queries")


def _choice_error(key, value, allowed, source):
    close = difflib.get_close_matches(str(value), sorted(allowed), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ParamsError(key, f"must be one of {sorted(allowed)}, got {value!r}{hint}", source)


def _check_dataset_spec(key, spec, source):
    """``<collection>/<split>`` (e.g. ``scifact/train``) or ``ir_datasets:<id>``."""
    if not isinstance(spec, str):
        raise ParamsError(
            key, f"expected a dataset spec like 'scifact/train', got {spec!r} ({_type_name(spec)})", source
        )
    if spec.startswith("ir_datasets:"):
        if not spec.split(":", 1)[1].strip():
            raise ParamsError(key, f"dataset spec {spec!r} names no ir_datasets id", source)
        return
    collection, _, split = spec.rpartition("/")
    if not collection.strip() or not split.strip():
        raise ParamsError(
            key, f"dataset spec {spec!r} must look like '<collection>/<split>', e.g. 'scifact/train'", source
        )


def _check_model_spec(key, spec, source, kinds=SCORER_KINDS):
    if not isinstance(spec, dict):
        raise ParamsError(key, f"expected a model spec mapping, got {spec!r} ({_type_name(spec)})", source)
    kind = spec.get("kind")
    if kind not in kinds:
        raise _choice_error(f"{key}.kind", kind, kinds, source)
    model = spec.get("model")
    if (kind in NEEDS_MODEL or "model" in spec) and not (isinstance(model, str) and model.strip()):
        raise ParamsError(
            f"{key}.model", f"a `{kind}` model spec needs `model` (a model name or local path), got {model!r}", source
        )
    flag = spec.get("no_public_checkpoint")
    if flag is not None:
        if not isinstance(flag, bool):
            raise ParamsError(f"{key}.no_public_checkpoint", f"expected a boolean (true/false), got {flag!r}", source)
        if flag and not (isinstance(model, str) and model.startswith(("/", ".", "~"))):
            raise ParamsError(
                f"{key}.model",
                f"a spec with `no_public_checkpoint: true` needs a local path (e.g. /models/m2dpr), got {model!r}",
                source,
            )
    rules = KINDS[kind]
    rules.check(key, spec, source)
    for suffix, nested in rules.nested(spec):
        _check_model_spec(f"{key}.{suffix}", nested, source)
    check_transformer_options(key, spec, rules, source)


def _type_name(value):
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _check_number(key, default, value, source):
    """A number where the default is one; a whole float where it is an integer becomes that integer."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParamsError(key, f"expected {_type_name(default)}, got {value!r} ({_type_name(value)})", source)
    if isinstance(default, int) and isinstance(value, float):
        if not value.is_integer():
            raise ParamsError(key, f"expected an integer, got {value!r}", source)
        value = int(value)
    return value


def _check_type(key, default, value, source):
    if default is None or key in FREE_FORM:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ParamsError(key, f"expected a boolean (true/false), got {value!r}", source)
        return value
    if isinstance(default, (int, float)):
        return _check_number(key, default, value, source)
    if isinstance(default, str) and not isinstance(value, str):
        # YAML 1.1 reads a bare off/no/on/yes as a boolean
        hint = '; YAML reads a bare off/on as a boolean: quote it, e.g. "off"' if isinstance(value, bool) else ""
        raise ParamsError(key, f"expected a string, got {value!r} ({_type_name(value)}){hint}", source)
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


def _check_declared_rules(params: dict, source) -> None:
    """The schema's bounds and choices."""
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
            raise _choice_error(key, value, allowed, source)
    for key, allowed in LIST_CHOICES.items():
        for index, value in enumerate(_get(params, key) or []):
            if value not in allowed:
                raise _choice_error(f"{key}[{index}]", value, allowed, source)


def _check_loss_and_intervals(params: dict, source) -> None:
    """A loss that teaches something, and the schema's intervals."""
    loss = typed(params).loss
    if loss.alpha == 0 and loss.beta == 0 and loss.gamma == 0:
        raise ParamsError("loss", "alpha, beta and gamma are all zero: the student would learn nothing", source)
    for key, interval in INTERVALS.items():
        value = _get(params, key)
        if value is None and key in NULLABLE:  # null: the key's documented "not set" (e.g. the model's own value)
            continue
        low, high = (float(x) for x in interval[1:-1].split(","))
        above = value >= low if interval[0] == "[" else value > low
        below = value <= high if interval[-1] == "]" else value < high
        if not (above and below):
            raise ParamsError(key, f"must be in {interval}, got {value!r}", source)


def _check_data(params: dict, source) -> None:
    """The dataset specs and the data limits."""
    data = typed(params).data
    if not isinstance(data.extra_test, list):
        raise ParamsError("data.extra_test", f"expected a list, got {data.extra_test!r}", source)
    for key, spec in [("data.train", data.train), ("data.test", data.test)] + [
        (f"data.extra_test[{i}]", spec) for i, spec in enumerate(data.extra_test)
    ]:
        _check_dataset_spec(key, spec, source)
    for name in DATA_LIMITS:
        value = getattr(data, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ParamsError(
                f"data.{name}", f"expected null (no limit) or a non-negative integer, got {value!r}", source
            )


def _check_seeds_and_study(params: dict, source) -> None:
    """The seeds, the pseudo-query cap and the dose-response sweep."""
    config = typed(params)
    if not config.seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in config.seeds):
        raise ParamsError("seeds", f"expected a non-empty list of integers, got {config.seeds!r}", source)
    cap = config.data.pseudo_queries.max_queries
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap <= 0):
        raise ParamsError(
            "data.pseudo_queries.max_queries", f"expected null or a positive integer, got {cap!r}", source
        )
    sweep = config.study.dose_response
    if not isinstance(sweep, list) or not all(
        isinstance(w, (int, float)) and not isinstance(w, bool) and 0 < w < 1 for w in sweep
    ):
        raise ParamsError("study.dose_response", f"expected a list of numbers in (0, 1), got {sweep!r}", source)


def _check_fusion(params: dict, source) -> None:
    """The assistants are a list, and fusion has what it fuses."""
    config = typed(params)
    assistants = config.models.assistants
    if not isinstance(assistants, list):
        raise ParamsError("models.assistants", "expected a list of model specs", source)
    if config.fusion.enabled and 0 < len(assistants) < 2:
        raise ParamsError("fusion.enabled", f"fusion needs at least 2 assistants, got {len(assistants)}", source)
    weights = config.fusion.weights
    if weights is not None:
        if not isinstance(weights, list) or len(weights) != len(assistants):
            raise ParamsError(
                "fusion.weights", f"expected a list of {len(assistants)} numbers (one per assistant)", source
            )
        if any((not isinstance(w, (int, float))) or w < 0 for w in weights) or sum(weights) == 0:
            raise ParamsError("fusion.weights", "weights must be non-negative numbers, not all zero", source)


def _check_models(params: dict, source) -> None:
    """Every model spec by its kind, the independence rules and unique assistant names."""
    models = typed(params).models
    assistants = models.assistants
    for index, spec in enumerate(assistants):
        if not isinstance(spec, dict) or "name" not in spec:
            raise ParamsError(f"models.assistants[{index}]", "each assistant needs a mapping with a `name`", source)
        _check_model_spec(f"models.assistants[{index}]", spec, source)
    if models.teacher:
        _check_model_spec("models.teacher", models.teacher, source)
    if models.student:
        _check_model_spec("models.student", models.student, source, STUDENT_KINDS)
    if models.teacher and models.independent_teacher:
        check_independence(models.teacher, assistants, source)
    if models.independent_student:
        check_student_independence(models.student, assistants, source)
        for index, spec in enumerate(typed(params).study.student_sizes or []):
            check_student_independence(spec, assistants, source, key=f"study.student_sizes[{index}]")
    names = [spec["name"] for spec in assistants]
    if len(set(names)) != len(names):
        raise ParamsError("models.assistants", f"assistant names must be unique, got {names}", source)


def validate(params: dict, source=None) -> dict:
    """Check cross-key constraints; return ``params`` unchanged when valid."""
    checks = (
        _check_declared_rules,
        _check_loss_and_intervals,
        _check_data,
        _check_seeds_and_study,
        _check_fusion,
        _check_models,
    )
    for check in checks:
        check(params, source)
    return params


def from_mapping(given: dict, source=None) -> dict:
    if not isinstance(given, dict):
        raise ParamsError("<root>", f"a params profile must be a mapping, got {_type_name(given)}", source)
    return validate(_merge(DEFAULTS, given, "", source), source)


def parse_assignments(assignments, source="--set") -> dict:
    """``["training.steps=10", "seeds=[1,2]"]`` -> ``{"training": {"steps": 10}, "seeds": [1, 2]}``.

    Values are YAML (``10`` an integer, ``[1, 2]`` a list, ``null``, ``true``; anything else a string).
    """
    given: dict = {}
    for item in assignments or []:
        key, equals, text = str(item).partition("=")
        key = key.strip()
        where = f"{source} {item}"
        if not equals or not key or any(not part for part in key.split(".")):
            raise ParamsError(
                key or "<none>", f"expected KEY=VALUE with a dotted key (e.g. training.steps=10), got {item!r}", where
            )
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as error:
            problem = " ".join(str(getattr(error, "problem", None) or error).split())
            raise ParamsError(key, f"value {text!r} is not valid YAML: {problem}", where) from None
        node = given
        *parents, last = key.split(".")
        for depth, part in enumerate(parents):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ParamsError(
                    ".".join(parents[: depth + 1]), f"set both as a value and as a mapping in {source}", where
                )
            node = child
        node[last] = value
    return given


def _deep_merge(base, override):
    out = copy.deepcopy(base)
    for key, value in override.items():
        out[key] = _deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def apply_overrides(params: dict, assignments, source="--set") -> dict:
    """``params`` (a validated profile) with ``KEY=VALUE`` overrides, validated exactly like a profile.

    Each assignment is first checked on its own (unknown key with the closest suggestion, wrong
    type), so the error names the key and the ``--set`` item it came from; then the merged
    profile is validated as a whole. Nested mappings merge key by key (``models.student.dim=128``
    changes only ``dim``).
    """
    for item in assignments or []:
        _merge(DEFAULTS, parse_assignments([item], source), "", f"{source} {item}")
    merged = _deep_merge(params, parse_assignments(assignments, source))
    return from_mapping(merged, source=f"{source} {' '.join(map(str, assignments))}")


def load_params(path) -> dict:
    """Load and validate one YAML profile; errors name the file and the key (or YAML line).

    A profile may start with ``extends: <profile>``: it is then that profile (``params/<profile>.yaml``) with
    this file's keys merged over it, mapping by mapping (a list or a value replaces the base's), so that a
    variant states only what it changes."""
    return from_mapping(_read_profile(Path(path), ()), source=str(path))


def _read_profile(path: Path, chain: tuple) -> dict:
    if not path.is_file():
        raise ParamsError("<file>", "params file does not exist" if not path.exists() else "not a file", str(path))
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ParamsError(
            "<file>", f"not valid UTF-8 (byte {raw[error.start : error.start + 1]!r})", f"{path}:{line}"
        ) from None
    try:
        given = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = " ".join(str(getattr(error, "problem", None) or error).split())
        raise ParamsError("<yaml>", f"not valid YAML{line}: {problem}", f"{path}{line}") from None
    base = given.pop("extends", None) if isinstance(given, dict) else None
    if base is None:
        return given  # anything but a mapping is reported by from_mapping
    if not isinstance(base, str) or not base:
        raise ParamsError("extends", f"names a profile in params/, got {base!r}", str(path))
    base_path, chain = profile_path(base), (*chain, path.resolve())
    if base_path.resolve() in chain:
        raise ParamsError("extends", f"{base!r} extends itself (through {[p.stem for p in chain]})", str(path))
    if not base_path.is_file():
        raise ParamsError("extends", f"no profile {base!r} ({base_path} does not exist)", str(path))
    if "profile" not in given:  # else its runs and tables would land in the base's folders
        raise ParamsError("profile", f"a profile that extends {base!r} names itself (profile: ...)", str(path))
    return _deep_merge(_read_profile(base_path, chain), given)


def add_profile_arguments(parser, set_help: str) -> None:
    """The command lines' ``--profile`` (a name under ``params/`` or a YAML path) and ``--set KEY=VALUE ...``."""
    parser.add_argument("--profile", default="mini", help="name of params/<profile>.yaml, or a path to a YAML file")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", dest="overrides", help=set_help)


def profile_path(profile: str) -> Path:
    return REPO_ROOT / "params" / f"{profile}.yaml"


def notebook_params(profile: str, **sections) -> dict:
    """What a notebook's parameters cell resolves to.

    papermill injects the profile's top-level sections as variables; in
    JupyterLab they are ``None`` and the profile file is read instead.
    """
    given = {key: value for key, value in sections.items() if value is not None}
    if given:
        params = from_mapping({"profile": profile, **given}, source=f"profile {profile}")
    else:
        params = load_params(profile_path(profile))
    return with_results_dir_override(params)


RESULTS_DIR_VARIABLE = "MTA4DPR_RESULTS_DIR"


def with_results_dir_override(params: dict) -> dict:
    """``$MTA4DPR_RESULTS_DIR``, when set, replaces ``output.results_dir``: ``make test`` points it under
    ``runs/`` so that checking the notebooks never rewrites the committed ``results/`` (tables carry timings)."""
    override = os.environ.get(RESULTS_DIR_VARIABLE)
    if override:
        params["output"]["results_dir"] = override
    return params


def resolve_path(value, base=REPO_ROOT) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path).resolve()
