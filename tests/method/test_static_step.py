"""The static student's compiled loss and gradient (method/static_step.py) against autograd's, and its bits on
another instruction set."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import make_training_data, tiny_static_encoder, tiny_train_config

from mta4dpr_core.method.losses import MTA4DPRLoss
from mta4dpr_core.method.static_step import static_loss_and_gradient
from mta4dpr_core.method.training import train_student
from mta4dpr_core.retrieval.static_pooling import static_mean_pool

ROOT = Path(__file__).resolve().parents[2]


def _problem(seed=0, rows=300, frozen=20, dim=64, batch=4, count=5):
    """A random static table, its frozen rows, masked query and passage ids (some frozen, one text empty), teacher
    logits and assistant probabilities; drawn by numpy, whose generator gives the same bits on every CPU."""
    rng = np.random.default_rng(seed)

    def normal(*shape):
        return torch.from_numpy(rng.normal(size=shape).astype(np.float32))

    def texts(n, length):
        ids = torch.from_numpy(rng.integers(0, rows + frozen, (n, length)))
        return ids, torch.from_numpy((rng.random((n, length)) > 0.3).astype(np.float32))

    table, frozen_rows = normal(rows, dim), normal(frozen, dim)
    query_ids, query_mask = texts(batch, 7)
    passage_ids, passage_mask = texts(batch * count, 19)
    passage_mask[3] = 0.0  # a passage with no token left: pooled to zeros, normalised to zeros
    teacher = normal(batch, count)
    weights = rng.random((batch, count))
    weights[0, 1] = 0.0  # clamped at 1e-12 in the target's log
    assistant = torch.from_numpy((weights / weights.sum(1, keepdims=True)).astype(np.float32))
    return table, frozen_rows, query_ids, query_mask, passage_ids, passage_mask, teacher, assistant


def _autograd(table, frozen, query_ids, query_mask, passage_ids, passage_mask, teacher, assistant, loss, normalize):
    weight = table.clone().requires_grad_()
    q = static_mean_pool(weight, query_ids, query_mask, frozen)
    p = static_mean_pool(weight, passage_ids, passage_mask, frozen)
    if normalize:
        q, p = F.normalize(q, dim=-1), F.normalize(p, dim=-1)
    terms = loss(q, p, teacher, assistant)
    terms["total"].backward()
    gradient = weight.grad.coalesce()
    return {k: float(v.detach()) for k, v in terms.items()}, gradient.indices()[0], gradient.values()


@pytest.mark.parametrize("in_batch", [True, False])
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("with_assistant", [True, False])
@pytest.mark.parametrize("weights", [(0.2, 1.0, 15.0), (0.0, 1.0, 0.0), (1.0, 0.0, 2.0)])
def test_terms_and_gradient_match_autograd(in_batch, normalize, with_assistant, weights):
    table, frozen, qi, qm, pi, pm, teacher, assistant = _problem()
    assistant = assistant if with_assistant else None
    loss = MTA4DPRLoss(*weights, in_batch_negatives=in_batch)
    expected, expected_rows, expected_values = _autograd(
        table, frozen, qi, qm, pi, pm, teacher, assistant, loss, normalize
    )
    terms, rows, values = static_loss_and_gradient(table, frozen, qi, qm, pi, pm, teacher, assistant, loss, normalize)
    assert sorted(terms) == sorted(expected)
    for name, value in terms.items():
        assert float(value) == pytest.approx(expected[name], rel=2e-6, abs=1e-6), name
    torch.testing.assert_close(rows, expected_rows, rtol=0, atol=0)  # the same touched rows, sorted
    scale = expected_values.abs().max()
    torch.testing.assert_close(values / scale, expected_values / scale, rtol=0, atol=5e-6)
    assert rows.max() < table.shape[0]  # frozen rows get no gradient


def test_gradient_is_the_loss_derivative():
    """A finite difference of the compiled loss itself agrees with its gradient (float64 table)."""
    table, frozen, qi, qm, pi, pm, teacher, assistant = _problem(seed=3, dim=16)
    loss = MTA4DPRLoss(0.2, 1.0, 15.0)
    _, rows, values = static_loss_and_gradient(table, frozen, qi, qm, pi, pm, teacher, assistant, loss, True)
    rng = np.random.default_rng(0)
    for _ in range(5):
        row, column = int(rng.choice(rows.numpy())), int(rng.integers(table.shape[1]))
        step = 1e-2
        moved = [table.clone(), table.clone()]
        moved[0][row, column] += step
        moved[1][row, column] -= step
        up, down = (
            float(static_loss_and_gradient(m, frozen, qi, qm, pi, pm, teacher, assistant, loss, True)[0]["total"])
            for m in moved
        )
        slope = (up - down) / (2 * step)
        analytic = float(values[int(np.searchsorted(rows.numpy(), row)), column])
        assert slope == pytest.approx(analytic, rel=0.05, abs=0.05 * float(values.abs().max()))


def _restricted_student(data, passages, seed=0):
    student = tiny_static_encoder(len(data.query_texts), len(passages), dim=16, seed=seed)
    texts = list(data.query_texts) + list(passages)
    trainable = {int(t) for ids in student.token_ids(texts, 64) for t in ids}
    return student.restrict_vocabulary(sorted(trainable)[:-3], sorted(trainable)[-3:])  # three rows frozen


def test_training_matches_the_autograd_step():
    """Forty steps of train_student through the compiled pass and through autograd: the same selections, losses
    and tables to float32 rounding (the Adam state follows the same gradients)."""
    data, passages = make_training_data(n_queries=16, n_docs=40, k=6, m=3)
    config = tiny_train_config(steps=40, queries_per_batch=8, negatives_per_query=4, warmup_steps=2, gamma=15.0)
    fused, reference = _restricted_student(data, passages), _restricted_student(data, passages)
    fused_record = train_student(fused, data, passages, config, final_checkpoint=False)
    reference_record = train_student(reference, data, passages, config, final_checkpoint=False, fused_static_step=False)
    assert [r["assistant"] for r in fused_record] == [r["assistant"] for r in reference_record]
    np.testing.assert_allclose(
        [r["total"] for r in fused_record], [r["total"] for r in reference_record], rtol=1e-4, atol=1e-5
    )
    assert fused_record[-1]["total"] < fused_record[0]["total"]
    torch.testing.assert_close(fused.embedding.weight, reference.embedding.weight, rtol=1e-4, atol=1e-5)
    assert not torch.equal(fused.embedding.weight, _restricted_student(data, passages).embedding.weight)


def bits_digest() -> str:
    """A digest of the compiled pass's terms (float64) and gradient rows on a few fixed problems."""
    digest = hashlib.sha256()
    for seed in range(3):
        for normalize in (True, False):
            terms, rows, values = static_loss_and_gradient(*_problem(seed), MTA4DPRLoss(0.2, 1.0, 15.0), normalize)
            digest.update(rows.numpy().tobytes() + values.numpy().tobytes())
            digest.update(json.dumps({k: float(v) for k, v in terms.items()}, sort_keys=True).encode())
    return digest.hexdigest()


_GENERIC = """
import sys
sys.path[:0] = [{tests!r}, {root!r}]
from test_static_step import bits_digest
print(bits_digest())
"""


def test_same_bits_on_another_instruction_set(tmp_path):
    """Compiled for this CPU (here) and for generic x86-64 (SSE2: no AVX, no FMA; in a fresh process and cache),
    with torch's kernels held to their default capability there: the same loss terms and gradient bits. A build
    that reordered a sum for the vector width, or fused a multiply-add, would differ."""
    script = _GENERIC.format(tests=str(Path(__file__).parent), root=str(Path(__file__).parents[1]))
    environment = {"NUMBA_CACHE_DIR": str(tmp_path), "NUMBA_CPU_NAME": "generic", "ATEN_CPU_CAPABILITY": "default"}
    result = subprocess.run(
        [sys.executable, "-c", script], env={**os.environ, **environment}, capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == bits_digest()
