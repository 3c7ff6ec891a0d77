"""The model kinds a spec may name (``kind:``), declared once: what each needs and may be.

``params`` validates a spec against its kind here; ``retrieval.scorers.SCORER_BUILDERS`` and
``retrieval.encoders.ENCODER_BUILDERS`` map the same names to the code that builds them (a test
checks that every kind has its builder and no builder lacks a kind).

Example::

    >>> KINDS["bm25"].needs_model, KINDS["hf"].student
    (False, True)
    >>> sorted(name for name, kind in KINDS.items() if kind.encoder)
    ['hf', 'onnx', 'sentence_transformers', 'static']
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelKind:
    """``needs_model``: the spec names a model (hub id, registry name or local path); ``encoder``: a dense
    bi-encoder (built by ``build_encoder``); ``student``: it may be the trained student;
    ``temperature``: the scores' default temperature (raw scores 1.0, cosine similarities 0.05)."""

    name: str
    help: str
    needs_model: bool
    encoder: bool = False
    student: bool = False
    temperature: float = 0.05


KINDS = {
    kind.name: kind
    for kind in (
        ModelKind(
            "hf", "a Hugging Face transformer bi-encoder (pooling, num_layers, inference_dtype)", True, True, True
        ),
        ModelKind("sentence_transformers", "a sentence-transformers model, its own pooling", True, True),
        ModelKind("onnx", "an ONNX export of a sentence-transformers model", True, True),
        ModelKind("static", "static token embeddings, mean pooled (WordLlama, model2vec)", True, True, True),
        ModelKind("bm25", "BM25 through bm25s", False, temperature=1.0),
        ModelKind("run", "scores read from TREC run files (`paths`)", False, temperature=1.0),
        ModelKind(
            "ensemble", "a weighted sum of z-scored member scorers (`members`, `weights`)", False, temperature=1.0
        ),
        ModelKind("cross_encoder", "a cross-encoder re-ranking a first stage (`first_stage`)", True, temperature=1.0),
    )
}
SCORER_KINDS = frozenset(KINDS)
STUDENT_KINDS = frozenset(name for name, kind in KINDS.items() if kind.student)
NEEDS_MODEL = frozenset(name for name, kind in KINDS.items() if kind.needs_model)
ENCODER_KINDS = frozenset(name for name, kind in KINDS.items() if kind.encoder)
