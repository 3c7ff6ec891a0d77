"""The model kinds a spec may name (``kind:``), declared once: what each needs, may be, and how it is checked.

Each :class:`ModelKind` carries its own rules: the specs nested in it (an ensemble's members, a cross-encoder's
first stage), its extra checks, what it is made of for the independence rules (:func:`model_family` in
``independence.py``) and, for a student, how tables name it. ``params`` validates a spec through its kind;
``retrieval.scorers.SCORER_BUILDERS``, ``retrieval.encoders.ENCODER_BUILDERS`` and
``experiments.experiment.STUDENT_BUILDERS`` map the same names to the code that builds them (a test checks that
every kind has its builder and no builder lacks a kind). No other module tests a kind's name.

Example::

    >>> KINDS["bm25"].needs_model, KINDS["hf"].student
    (False, True)
    >>> sorted(name for name, kind in KINDS.items() if kind.encoder)
    ['hf', 'onnx', 'sentence_transformers', 'static']
    >>> [key for key, _ in KINDS["ensemble"].nested({"members": [{"kind": "bm25"}, {"kind": "bm25"}]})]
    ['members[0]', 'members[1]']
    >>> student_label({"kind": "static", "model": "wordllama", "dim": 64})
    'static wordllama, 64-d'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .errors import ParamsError
from .warm_start_config import WarmStartConfig

INFERENCE_DTYPES = ("auto", "bf16", "fp16")


def _none(spec) -> list:
    return []


def _no_check(key, spec, source) -> None:
    return None


def _model_family(spec, canonical, family) -> set:
    return {canonical(str(spec.get("model", spec.get("name"))))}


@dataclass(frozen=True)
class ModelKind:
    """``needs_model``: the spec names a model (hub id, registry name or local path); ``encoder``: a dense
    bi-encoder (built by ``build_encoder``); ``student``: it may be the trained student; ``temperature``: the
    scores' default temperature (raw scores 1.0, cosine similarities 0.05); ``transformer_options``: it may set
    ``inference_dtype`` and a [CLS] ``warm_start``; ``one_thread_student``: a student of this kind trains on one
    thread, so two runs share a 2-core CPU; ``nested(spec)``: ``(key, spec)`` of the specs inside it, validated
    like any spec; ``check(key, spec, source)``: its own rules; ``family(spec, canonical, family)``: the base
    models it is made of; ``label(spec)``: how tables name a student of this kind."""

    name: str
    help: str
    needs_model: bool
    encoder: bool = False
    student: bool = False
    temperature: float = 0.05
    transformer_options: bool = False
    one_thread_student: bool = False
    nested: Callable[[dict], list] = _none
    check: Callable[[str, dict, object], None] = _no_check
    family: Callable[[dict, Callable, Callable], set] = _model_family
    label: Callable[[dict], str] | None = None


def _ensemble_nested(spec) -> list:
    members = spec.get("members")
    return [(f"members[{i}]", member) for i, member in enumerate(members)] if isinstance(members, list) else []


def _check_ensemble(key, spec, source) -> None:
    members = spec.get("members")
    if not isinstance(members, list) or not members:
        raise ParamsError(f"{key}.members", "an ensemble needs a non-empty list of member specs", source)
    weights = spec.get("weights")
    if weights is not None and (not isinstance(weights, list) or len(weights) != len(members)):
        raise ParamsError(
            f"{key}.weights", f"expected a list of {len(members)} numbers (one per member), got {weights!r}", source
        )


def _check_run(key, spec, source) -> None:
    if not isinstance(spec.get("paths"), list):
        raise ParamsError(f"{key}.paths", "a `run` spec needs `paths`: a list of TREC run files", source)


KINDS = {
    kind.name: kind
    for kind in (
        ModelKind(
            "hf",
            "a Hugging Face transformer bi-encoder (pooling, num_layers, inference_dtype)",
            True,
            encoder=True,
            student=True,
            transformer_options=True,
            label=lambda spec: f"{spec.get('model')}, {spec.get('num_layers') or 'all'} layers",
        ),
        ModelKind("sentence_transformers", "a sentence-transformers model, its own pooling", True, encoder=True),
        ModelKind("onnx", "an ONNX export of a sentence-transformers model", True, encoder=True),
        ModelKind(
            "static",
            "static token embeddings, mean pooled (WordLlama, model2vec)",
            True,
            encoder=True,
            student=True,
            one_thread_student=True,
            label=lambda spec: f"static {spec.get('model', 'wordllama')}, {spec.get('dim') or 'full'}-d",
        ),
        ModelKind(
            "bm25", "BM25 through bm25s", False, temperature=1.0, family=lambda spec, canonical, family: {"bm25"}
        ),
        ModelKind(
            "run",
            "scores read from TREC run files (`paths`)",
            False,
            temperature=1.0,
            check=_check_run,
            family=lambda spec, canonical, family: {"run"},
        ),
        ModelKind(
            "ensemble",
            "a weighted sum of z-scored member scorers (`members`, `weights`)",
            False,
            temperature=1.0,
            nested=_ensemble_nested,
            check=_check_ensemble,
            family=lambda spec, canonical, family: set().union(*(family(m) for m in spec.get("members", []))),
        ),
        ModelKind(
            "cross_encoder",
            "a cross-encoder re-ranking a first stage (`first_stage`)",
            True,
            temperature=1.0,
            nested=lambda spec: [] if spec.get("first_stage") is None else [("first_stage", spec["first_stage"])],
            family=lambda spec, canonical, family: {canonical(spec["model"])},
        ),
    )
}
SCORER_KINDS = frozenset(KINDS)
STUDENT_KINDS = frozenset(name for name, kind in KINDS.items() if kind.student)
NEEDS_MODEL = frozenset(name for name, kind in KINDS.items() if kind.needs_model)
ENCODER_KINDS = frozenset(name for name, kind in KINDS.items() if kind.encoder)


def check_transformer_options(key, spec, kind: ModelKind, source) -> None:
    """``inference_dtype`` and ``warm_start`` belong to kinds with ``transformer_options`` only."""
    inference_dtype = spec.get("inference_dtype")
    if inference_dtype is not None and (not kind.transformer_options or inference_dtype not in INFERENCE_DTYPES):
        raise ParamsError(
            f"{key}.inference_dtype",
            f"an `hf` model may encode under `auto`, `bf16` or `fp16` (float32 when absent); got {inference_dtype!r}"
            + ("" if kind.transformer_options else f" on a `{kind.name}` model"),
            source,
        )
    if spec.get("warm_start") is not None:
        if not kind.transformer_options:
            raise ParamsError(
                f"{key}.warm_start", f"only an `hf` student has a [CLS] to warm-start, not a `{kind.name}` one", source
            )
        WarmStartConfig.from_spec(spec["warm_start"], key=f"{key}.warm_start", source=source)


def student_label(spec: dict) -> str:
    """A student spec as tables show it (its kind's ``label``)."""
    return KINDS[spec.get("kind", "static")].label(spec)


def one_thread_student(spec: dict) -> bool:
    """Whether a student of this spec's kind trains on one thread (two runs then share a 2-core CPU)."""
    kind = KINDS.get(spec.get("kind"))
    return bool(kind and kind.one_thread_student)
