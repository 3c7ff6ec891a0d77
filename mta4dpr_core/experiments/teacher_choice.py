"""Choosing the teacher and the assistants without the test set.

The paper's teacher (a cross-encoder) shares nothing with its assistants (bi-encoders
trained elsewhere). Offline we only have bi-encoders, BM25 and static models, so the
teacher is a z-scored hybrid, and two rules keep the experiment meaningful:

1. **Independence.** No assistant is a member of the teacher, a copy of one, or
   distilled from one (a model2vec distillation of MiniLM-L6 *is* MiniLM-L6); no
   assistant is the student's starting model. The rules are ``independence.py``
   (checked when a profile loads).
2. **Chosen on training queries.** Every candidate is measured on the training
   split (:func:`candidate_table`): the teacher is the strongest candidate there, its
   weights the best of a grid there, and the paper's assistants are mapped to ours
   by their rank there. The test split is touched only to report.
"""

from __future__ import annotations

import copy

import pandas as pd

# the rules live in the config layer (params applies them); re-exported for callers of this module
from ..config.independence import check_independence, check_student_independence, model_family  # noqa: F401
from ..config.params import resolve_path
from ..store.atomic import atomic_write_json, code_digest, content_hash, read_json


def hybrid_name(first: str, second: str, first_weight: float, second_weight: float) -> str:
    """A hybrid's candidate name in the teacher-selection table: ``a+b 0.4/0.6``."""
    return f"{first}+{second} {first_weight:.1f}/{second_weight:.1f}"


def hybrid_specs(first: dict, second: dict, weights=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)) -> list[dict]:
    """Z-scored hybrids ``w * first + (1 - w) * second`` over a grid of ``w``."""
    return [
        {
            "name": hybrid_name(first["name"], second["name"], w, 1 - w),
            "kind": "ensemble",
            "weights": [w, round(1 - w, 6)],
            "members": [copy.deepcopy(first), copy.deepcopy(second)],
        }
        for w in weights
    ]


def candidate_table(setup, specs: list[dict], metrics=("nDCG@10", "MRR@10", "R@100"), role="candidate") -> pd.DataFrame:
    """Each candidate scorer on the *training* split's labelled queries (pseudo-queries aside), in percent."""
    from ..retrieval.scorers import build_scorer  # noqa: PLC0415 (lazy: numba, torch not loaded by this module)

    rows, shared = [], {}
    for spec in specs:
        # members shared across the hybrids: each model is loaded, and each query scored by BM25, once
        scorer = build_scorer(spec, setup.cache_dir, resolve_path(setup.config.data.root), shared)
        if getattr(scorer, "corpus", None) is not setup.collection.corpus:
            scorer.prepare(setup.collection.corpus)
        result = setup.evaluate(scorer, setup.train, names=metrics, query_mask=setup.train.labelled_mask)
        rows.append(
            {
                "candidate": spec["name"],
                "role": role,
                "family": "+".join(sorted(model_family(spec))),
                **{f"train {m}": 100 * result[m] for m in metrics},
            }
        )
    return pd.DataFrame(rows)


def candidate_label(spec: dict) -> str:
    """The candidate a model spec is in the table: a two-member ensemble is its hybrid (``a+b 0.4/0.6``, as
    :func:`hybrid_specs` names it), a one-member ensemble its member, anything else its name.

    >>> candidate_label({"kind": "ensemble", "weights": [0.8, 0.2], "members": [{"name": "a"}, {"name": "b"}]})
    'a+b 0.8/0.2'
    >>> candidate_label({"name": "teacher", "kind": "ensemble", "weights": [1.0], "members": [{"name": "bm25"}]})
    'bm25'
    """
    members = [m.get("name") for m in spec.get("members", [])]
    if len(members) == 2 and spec.get("weights"):
        return hybrid_name(*members, *spec["weights"])
    return members[0] if len(members) == 1 else spec.get("name")


def choose_teacher(table: pd.DataFrame, assistant_specs: list[dict], metric="train nDCG@10") -> str:
    """The strongest candidate on the training split whose family is disjoint from every assistant's."""
    families = set().union(*(model_family(spec) for spec in assistant_specs))
    allowed = table[table["family"].map(lambda f: not (set(f.split("+")) & families))]
    if allowed.empty:
        raise ValueError("no teacher candidate is independent of the assistants")
    return str(allowed.sort_values([metric, "candidate"], ascending=[False, True]).iloc[0]["candidate"])


def teacher_selection_records(setup) -> list[dict]:
    """The candidate table of the profile's ``study.teacher_candidates`` and ``study.teacher_hybrids`` as records,
    stored under a hash of the specs, the data and the core code (computed once)."""

    study = setup.config.study
    singles = {spec["name"]: spec for spec in study.teacher_candidates}
    specs = list(singles.values())
    for first, second in study.teacher_hybrids:
        specs += hybrid_specs(singles[first], singles[second])
    path = (
        setup.work_dir
        / "evaluations"
        / f"teacher-selection-{content_hash(specs, setup.params['data'], code_digest())}.json"
    )
    stored = read_json(path)
    if stored is None:
        stored = candidate_table(setup, specs).to_dict("records")
        atomic_write_json(path, stored)
    return stored
