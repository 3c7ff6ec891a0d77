"""A query's teacher and assistant scores are a function of the training split alone.

A transformer's encoding of a text moves with its batch-mates' padding. Before ``Setup`` encoded every
training query once (``Setup.encode_training_queries``), a query mined in iteration 2 was encoded with
whichever queries first needed encoding in that process, and under two grid workers the teacher's pair
score that the shared store kept came from whichever worker got there first: two cold runs of one
profile differed by up to 0.2 nDCG@10. Here two fresh setups score one query, the first along with nine
others and the second alone, as a run mining different queries would; the scores must be equal bit for bit.
"""

from __future__ import annotations

import numpy as np
from tiny_profile import tiny_params

from mta4dpr_core.experiments.experiment import Setup


def _scores(setup, rows, candidates):
    ids = [setup.train.query_ids[r] for r in rows]
    texts = [setup.train.query_texts[r] for r in rows]
    doc_idx = np.broadcast_to(candidates, (len(rows), len(candidates))).copy()
    return {
        scorer.name: scorer.score(ids, texts, doc_idx)[rows.index(0)] for scorer in [setup.teacher, *setup.assistants]
    }


def test_a_query_scores_the_same_whatever_was_encoded_with_it(tmp_path, scifact_dir):
    candidates = np.arange(25)
    with_others = _scores(Setup.from_params(tiny_params(tmp_path / "a")), list(range(10)), candidates)
    alone = _scores(Setup.from_params(tiny_params(tmp_path / "b")), [0], candidates)
    assert with_others.keys() == alone.keys() and len(alone) == 3
    for name in alone:
        assert np.array_equal(with_others[name], alone[name]), name
