"""Retrieval metrics through ir_measures (pytrec_eval provider, identical to trec_eval).

Binary measures (MRR@10, recall) use the split's relevance level (TREC DL
passage: grade >= 2); nDCG@10 uses the graded judgments.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import ir_measures
import numpy as np

NAMES = ("MRR@10", "nDCG@10", "R@5", "R@20", "R@50", "R@100", "R@1000")


def measure(name: str, relevance_level: int = 1) -> ir_measures.Measure:
    base, depth = name.split("@")
    depth = int(depth)
    if base == "MRR":
        return ir_measures.RR(rel=relevance_level) @ depth
    if base == "R":
        return ir_measures.R(rel=relevance_level) @ depth
    if base == "nDCG":
        return ir_measures.nDCG @ depth
    raise ValueError(f"unknown metric {name!r}; known: {NAMES}")


def run_from_arrays(query_ids: Sequence[str], doc_ids: Sequence[str], scores: np.ndarray, indices: np.ndarray) -> dict:
    """{qid: {doc_id: score}} from top-k arrays (indices < 0 are padding)."""
    run = {}
    for row, query_id in enumerate(query_ids):
        kept = indices[row] >= 0
        # tolist(): the same Python floats as float() of each element, converted in one call
        run[query_id] = dict(
            zip([doc_ids[j] for j in indices[row][kept].tolist()], scores[row][kept].tolist(), strict=True)
        )
    return run


def top_of_run(run: dict, depth: int) -> dict:
    """Each query's documents scoring at least its ``depth``-th highest score, ties included.

    Any ranking by score, whatever breaks its ties, puts the same first ``depth`` documents at the same ranks in
    this run as in the whole one, so a measure cut at ``depth`` (reciprocal rank, nDCG, recall) has the same value
    on both."""
    cut = {}
    for query_id, docs in run.items():
        if len(docs) <= depth:
            cut[query_id] = docs
            continue
        floor = heapq.nlargest(depth, docs.values())[-1]
        cut[query_id] = {d: s for d, s in docs.items() if s >= floor}
    return cut


def drop_identical_ids(run: dict) -> dict:
    """``run`` without each query's own id in its ranking (BEIR/MTEB ``ignore_identical_ids``).

    For collections whose queries are also passages (e.g. ArguAna, Quora), a query
    trivially retrieves itself; BEIR and MTEB drop that hit before scoring.
    """
    return {q: {d: s for d, s in docs.items() if d != q} for q, docs in run.items()}


def evaluate(
    run: dict,
    qrels: dict,
    names: Sequence[str] = ("MRR@10", "nDCG@10", "R@100"),
    relevance_level: int = 1,
    per_query: bool = False,
) -> dict:
    """Mean of each metric over the judged queries (a query missing from ``run`` scores 0)."""
    measures = {name: measure(name, relevance_level) for name in names}
    qrels = {q: {d: int(g) for d, g in docs.items()} for q, docs in qrels.items()}
    run = {q: run.get(q, {}) for q in qrels}
    results = {name: {} for name in names}
    by_measure = {m: name for name, m in measures.items()}
    # MS MARCO's RR@10 (ir_measures' ``msmarco`` provider) sorts each query's documents in Python to read the
    # first ten: it gets the top of the run (top_of_run), the same values. pytrec_eval's measures take the whole
    # run in one call: it converts the run once for all of them, and a second call for the shallow ones cost more
    # than it saved.
    cut = {m for m in measures.values() if m.NAME == "RR" and isinstance(m["cutoff"], int)}
    groups = [([m for m in measures.values() if m not in cut], run)] + [
        ([m for m in cut if m["cutoff"] == depth], top_of_run(run, depth))
        for depth in sorted({m["cutoff"] for m in cut})
    ]
    for group, group_run in groups:
        if group:
            for metric in ir_measures.iter_calc(group, qrels, group_run):
                results[by_measure[metric.measure]][metric.query_id] = metric.value
    if per_query:
        return results
    return {
        name: float(np.mean([values.get(q, 0.0) for q in qrels])) if qrels else 0.0 for name, values in results.items()
    }
