"""Choosing the teacher and the assistants without the test set.

The paper's teacher (a cross-encoder) shares nothing with its assistants (bi-encoders
trained elsewhere). Offline we only have bi-encoders, BM25 and static models, so the
teacher is a z-scored hybrid, and two rules keep the experiment meaningful:

1. **Independence.** No assistant is a member of the teacher, a copy of one, or
   distilled from one (a model2vec distillation of MiniLM-L6 *is* MiniLM-L6).
   :func:`model_family` names what a spec is made of; :func:`check_independence`
   rejects a profile that breaks the rule.
2. **Chosen on training queries.** Every candidate is measured on the training
   split (:func:`candidate_table`): the teacher is the strongest candidate there, its
   weights the best of a grid there, and the paper's assistants are mapped to ours
   by their rank there. The test split is touched only to report.
"""
from __future__ import annotations

import copy

import pandas as pd

from .errors import ParamsError
from .models import ALIASES


def _canonical(model: str) -> str:
    name = model.split(":", 1)[1] if model.startswith("model2vec:") else model
    return ALIASES.get(name.lower().rsplit("/", 1)[-1], ALIASES.get(name.lower(), name)).lower()


def model_family(spec: dict) -> set[str]:
    """The base models a scorer spec is made of: ensemble members count, a model2vec distillation
    counts as the model it was distilled from, a layer cut (``num_layers``) or a smaller ``dim`` as
    the model it was cut from, and ``derived_from`` declares lineage the name cannot show (a local
    checkpoint fine-tuned or distilled from a hub model)."""
    kind = spec.get("kind")
    declared = {_canonical(str(name)) for name in spec.get("derived_from", None) or []}
    if kind == "ensemble":
        return declared.union(*(model_family(member) for member in spec.get("members", [])))
    if kind == "cross_encoder":
        return declared | {_canonical(spec["model"])}
    if kind in ("bm25", "run"):
        return declared | {kind}
    return declared | {_canonical(str(spec.get("model", spec.get("name"))))}


def check_independence(teacher: dict, assistants: list[dict], source=None):
    """Raise :class:`ParamsError` naming the first assistant that shares a model with the teacher."""
    teacher_family = model_family(teacher)
    for index, spec in enumerate(assistants):
        shared = model_family(spec) & teacher_family
        if shared:
            raise ParamsError(f"models.assistants[{index}]",
                              f"assistant {spec.get('name')!r} shares {sorted(shared)} with the teacher; the teacher must be "
                              "independent of every assistant (set models.independent_teacher: false to allow it)", source)


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
        from .warm_start import WarmStartConfig

        target = WarmStartConfig.from_spec(warm_start, key=f"{key}.warm_start", source=source).target
    for index, spec in enumerate(assistants):
        family = model_family(spec)
        shared = family & student_family
        if shared:
            raise ParamsError(f"models.assistants[{index}]",
                              f"assistant {spec.get('name')!r} is {key}'s starting model ({', '.join(sorted(shared))}), or a "
                              "copy, layer cut or distillation of it; no assistant may be the student's starting model: choose "
                              "another student or drop this assistant (models.independent_student: false allows it)", source)
        if target is not None and _canonical(target) in family:
            raise ParamsError(f"{key}.warm_start.target",
                              f"the [CLS] warm start copies {target!r}, which is assistant {spec.get('name')!r} "
                              f"(models.assistants[{index}]); the student would start as that assistant", source)


def hybrid_specs(first: dict, second: dict, weights=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)) -> list[dict]:
    """Z-scored hybrids ``w * first + (1 - w) * second`` over a grid of ``w``."""
    return [{"name": f"{first['name']}+{second['name']} {w:.1f}/{1 - w:.1f}", "kind": "ensemble", "weights": [w, round(1 - w, 6)],
             "members": [copy.deepcopy(first), copy.deepcopy(second)]} for w in weights]


def candidate_table(setup, specs: list[dict], metrics=("nDCG@10", "MRR@10", "R@100"), role="candidate") -> pd.DataFrame:
    """Each candidate scorer on the *training* split (all its queries), in percent."""
    from .scorers import build_scorer
    from .params import resolve_path

    rows, shared = [], {}
    for spec in specs:
        # members shared across the hybrids: each model is loaded, and each query scored by BM25, once
        scorer = build_scorer(spec, setup.cache_dir, resolve_path(setup.params["data"]["root"]), shared)
        if getattr(scorer, "corpus", None) is not setup.collection.corpus:
            scorer.prepare(setup.collection.corpus)
        result = setup.evaluate(scorer, setup.train, names=metrics)
        rows.append({"candidate": spec["name"], "role": role, "family": "+".join(sorted(model_family(spec))),
                     **{f"train {m}": 100 * result[m] for m in metrics}})
    return pd.DataFrame(rows)


def choose_teacher(table: pd.DataFrame, assistant_specs: list[dict], metric="train nDCG@10") -> str:
    """The strongest candidate on the training split whose family is disjoint from every assistant's."""
    families = set().union(*(model_family(spec) for spec in assistant_specs))
    allowed = table[table["family"].map(lambda f: not (set(f.split("+")) & families))]
    if allowed.empty:
        raise ValueError("no teacher candidate is independent of the assistants")
    return str(allowed.sort_values([metric, "candidate"], ascending=[False, True]).iloc[0]["candidate"])
