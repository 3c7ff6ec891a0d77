"""Who may teach, assist and learn: the independence rules, checked when a profile loads.

1. **The teacher shares no model with any assistant** (:func:`check_independence`): no assistant is a
   member of the teacher, a copy of one, or distilled from one (a model2vec distillation of MiniLM-L6
   *is* MiniLM-L6).
2. **The student is none of its assistants** (:func:`check_student_independence`): no assistant is the
   student's starting model, a copy, a layer cut or a distillation of it, or the target of its [CLS]
   warm start.

:func:`model_family` names what a spec is made of. The rules read model specs only (no model is
loaded), so ``params`` applies them before any work; choosing the teacher on training queries, which
does load models, is ``teacher_choice``.

>>> sorted(model_family({"kind": "ensemble", "members": [{"kind": "bm25"}, {"kind": "static", "model": "model2vec:all-MiniLM-L6-v2"}]}))
['bm25', 'sentence-transformers/all-minilm-l6-v2']
"""

from __future__ import annotations

from .errors import ParamsError
from .kinds import KINDS, ModelKind
from .models import ALIASES
from .warm_start_config import WarmStartConfig


def _canonical(model: str) -> str:
    name = model.split(":", 1)[1] if model.startswith("model2vec:") else model
    return ALIASES.get(name.lower().rsplit("/", 1)[-1], ALIASES.get(name.lower(), name)).lower()


def model_family(spec: dict) -> set[str]:
    """The base models a scorer spec is made of: ensemble members count, a model2vec distillation
    counts as the model it was distilled from, a layer cut (``num_layers``) or a smaller ``dim`` as
    the model it was cut from, and ``derived_from`` declares lineage the name cannot show (a local
    checkpoint fine-tuned or distilled from a hub model)."""
    declared = {_canonical(str(name)) for name in spec.get("derived_from", None) or []}
    kind = KINDS.get(spec.get("kind"), ModelKind("", "", True))  # an unchecked spec: its model (or name)
    return declared | kind.family(spec, _canonical, model_family)


def check_independence(teacher: dict, assistants: list[dict], source=None):
    """Raise :class:`ParamsError` naming the first assistant that shares a model with the teacher."""
    teacher_family = model_family(teacher)
    for index, spec in enumerate(assistants):
        shared = model_family(spec) & teacher_family
        if shared:
            raise ParamsError(
                f"models.assistants[{index}]",
                f"assistant {spec.get('name')!r} shares {sorted(shared)} with the teacher; the teacher must be "
                "independent of every assistant (set models.independent_teacher: false to allow it)",
                source,
            )


def check_student_independence(student: dict, assistants: list[dict], source=None, key="models.student"):
    """Raise :class:`ParamsError` when an assistant is the student's starting model, a copy, a layer
    cut or a distillation of it, or the target of the student's [CLS] warm start.

    MTA4DPR's student is none of its assistants: the assistants' scores are an independent signal
    pulled into the student with weight gamma. An assistant that *is* the student's starting point
    pulls the student back towards where it began, and the claim "assistants help" then measures
    that pull, not the method."""
    if not student:
        return
    student_family = model_family(student)
    warm_start = student.get("warm_start")
    target = None
    if warm_start:
        target = WarmStartConfig.from_spec(warm_start, key=f"{key}.warm_start", source=source).target
    for index, spec in enumerate(assistants):
        family = model_family(spec)
        shared = family & student_family
        if shared:
            raise ParamsError(
                f"models.assistants[{index}]",
                f"assistant {spec.get('name')!r} is {key}'s starting model ({', '.join(sorted(shared))}), or a "
                "copy, layer cut or distillation of it; no assistant may be the student's starting model: choose "
                "another student or drop this assistant (models.independent_student: false allows it)",
                source,
            )
        if target is not None and _canonical(target) in family:
            raise ParamsError(
                f"{key}.warm_start.target",
                f"the [CLS] warm start copies {target!r}, which is assistant {spec.get('name')!r} "
                f"(models.assistants[{index}]); the student would start as that assistant",
                source,
            )
