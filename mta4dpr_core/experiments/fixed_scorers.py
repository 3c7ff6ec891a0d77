"""The fixed scorers' evaluations (teacher, assistants, baselines, reference runs), stored under the code digest.

The notebooks' baseline table and Tables 1-2's fixed rows read a scorer's evaluation from here: computed once
per (scorer spec, data, evaluation settings, core code) and stored as JSON, so that a table is a pure function
of stored results and a change to this rule changes the key.
"""

from __future__ import annotations

from ..config.params import resolve_path
from ..retrieval.scorers import RunScorer, build_scorer
from ..store.atomic import atomic_write_json, code_digest, content_hash, read_json
from .experiment import uses_transformer


def evaluate_fixed(setup, scorer, key: str, spec=None) -> dict:
    """``setup.evaluate_all`` of a fixed scorer, stored under ``key`` plus a hash of its spec (the profile's models
    when ``spec`` is None), the data, the evaluation settings and the core code."""
    params = setup.params
    key = f"{key}-{content_hash(spec, params['data'], params['models'] if spec is None else None, params['evaluation'], code_digest())}"
    path = setup.work_dir / "evaluations" / f"{key}.json"
    stored = read_json(path)
    if stored is not None:
        return stored
    extra = setup.config.evaluation.transformer_scorers_on_extra_tests or not uses_transformer(scorer)
    result = setup.evaluate_all(scorer, extra_tests=extra)
    atomic_write_json(path, result)
    return result


def baseline_scorer(setup, spec: dict):
    """A baseline of ``study.baseline_models``, built and prepared on the profile's corpus."""
    return build_scorer(spec, setup.cache_dir, resolve_path(setup.config.data.root)).prepare(setup.collection.corpus)


def reference_run_evaluation(setup, reference: dict) -> dict:
    """``{extra test spec: nDCG@10}`` of a reference run (``study.reference_runs``) on each extra test set whose
    run file ships with the data; sets without one are left out."""
    out = {}
    for spec, (collection, split) in setup.extra_tests.items():
        year = spec.rsplit("/", 1)[1]
        path = resolve_path(setup.config.data.root) / spec.split("/")[0] / "runs" / f"{year}.{reference['run']}.trec.gz"
        if path.exists():
            scorer = RunScorer([path], name=reference["name"]).prepare(collection.corpus)
            out[spec] = setup.evaluate(scorer, split, collection, names=("nDCG@10",))["nDCG@10"]
    return out
