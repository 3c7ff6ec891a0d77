"""The student loss (3.2.4) term by term against hand computations."""

from __future__ import annotations

import math

import pytest
import torch

from mta4dpr_core.method.losses import MTA4DPRLoss, contrastive_loss, kl_to_student

B, C, D, TAU = 3, 4, 5, 0.1


@pytest.fixture
def batch():
    generator = torch.Generator().manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(B, D, generator=generator), dim=-1)
    p = torch.nn.functional.normalize(torch.randn(B * C, D, generator=generator), dim=-1)
    teacher = torch.randn(B, C, generator=generator) * 3
    assistant = torch.softmax(torch.randn(B, C, generator=generator), dim=-1)
    return q, p, teacher, assistant


def _own_scores(q, p):
    """s[b][c] = <q_b, p_{b*C + c}> / tau, by loops."""
    return [[float(q[b] @ p[b * C + c]) / TAU for c in range(C)] for b in range(B)]


def _log_softmax(row):
    top = max(row)
    log_z = top + math.log(sum(math.exp(x - top) for x in row))
    return [x - log_z for x in row]


def _kl(target_log, student_log):
    return sum(math.exp(t) * (t - s) for t, s in zip(target_log, student_log, strict=True))


def test_kl_terms_by_hand(batch):
    q, p, teacher, assistant = batch
    terms = MTA4DPRLoss(alpha=0.2, beta=1.0, gamma=15.0, student_temperature=TAU)(q, p, teacher, assistant)
    own = _own_scores(q, p)
    student_log = [_log_softmax(row) for row in own]
    kl_teacher = sum(_kl(_log_softmax(teacher[b].tolist()), student_log[b]) for b in range(B)) / B
    kl_assistant = sum(_kl([math.log(x) for x in assistant[b].tolist()], student_log[b]) for b in range(B)) / B
    assert terms["kl_teacher"].item() == pytest.approx(kl_teacher, rel=1e-5)
    assert terms["kl_assistant"].item() == pytest.approx(kl_assistant, rel=1e-5)
    assert kl_teacher > 0 and kl_assistant > 0


def test_in_batch_contrastive_by_hand(batch):
    q, p, teacher, _ = batch
    terms = MTA4DPRLoss(alpha=1.0, beta=0.0, gamma=0.0, student_temperature=TAU, in_batch_negatives=True)(q, p, teacher)
    expected = 0.0
    for b in range(B):
        row = [float(q[b] @ p[j]) / TAU for j in range(B * C)]  # every passage of the batch
        expected -= _log_softmax(row)[b * C]  # the positive is the first of b's candidates
    assert terms["contrastive"].item() == pytest.approx(expected / B, rel=1e-5)
    assert set(terms) == {"contrastive", "total"}


def test_candidate_only_contrastive_by_hand(batch):
    q, p, teacher, _ = batch
    terms = MTA4DPRLoss(alpha=1.0, beta=0.0, gamma=0.0, student_temperature=TAU, in_batch_negatives=False)(
        q, p, teacher
    )
    expected = -sum(_log_softmax(row)[0] for row in _own_scores(q, p)) / B
    assert terms["contrastive"].item() == pytest.approx(expected, rel=1e-5)
    in_batch = MTA4DPRLoss(alpha=1.0, beta=0.0, gamma=0.0, student_temperature=TAU, in_batch_negatives=True)(
        q, p, teacher
    )
    assert in_batch["contrastive"].item() > terms["contrastive"].item()  # more negatives, larger loss


def test_total_is_weighted_sum(batch):
    q, p, teacher, assistant = batch
    a, b, c = 0.2, 1.0, 15.0
    terms = MTA4DPRLoss(alpha=a, beta=b, gamma=c, student_temperature=TAU)(q, p, teacher, assistant)
    expected = a * terms["contrastive"] + b * terms["kl_teacher"] + c * terms["kl_assistant"]
    assert terms["total"].item() == pytest.approx(expected.item(), rel=1e-6)
    other = MTA4DPRLoss(alpha=0.7, beta=0.3, gamma=2.0, student_temperature=TAU)(q, p, teacher, assistant)
    assert other["total"].item() == pytest.approx(
        0.7 * terms["contrastive"].item() + 0.3 * terms["kl_teacher"].item() + 2.0 * terms["kl_assistant"].item(),
        rel=1e-6,
    )
    # no assistant (or gamma = 0): the term is absent
    assert "kl_assistant" not in MTA4DPRLoss(student_temperature=TAU)(q, p, teacher)
    assert "kl_assistant" not in MTA4DPRLoss(gamma=0.0, student_temperature=TAU)(q, p, teacher, assistant)


def test_gradient_reaches_student_embeddings_only(batch):
    q, p, teacher, assistant = batch
    q, p = q.clone().requires_grad_(True), p.clone().requires_grad_(True)
    teacher, assistant = teacher.clone().requires_grad_(True), assistant.clone().requires_grad_(True)
    MTA4DPRLoss(student_temperature=TAU)(q, p, teacher, assistant)["total"].backward()
    assert q.grad is not None and q.grad.abs().sum() > 0
    assert p.grad is not None and p.grad.abs().sum() > 0
    assert teacher.grad is None
    assert assistant.grad is None


def test_kl_helper_matches_torch_definition():
    generator = torch.Generator().manual_seed(1)
    target = torch.log_softmax(torch.randn(2, 6, generator=generator), -1)
    student = torch.randn(2, 6, generator=generator)
    log_s = torch.log_softmax(student, -1)
    expected = (target.exp() * (target - log_s)).sum(-1).mean()
    assert kl_to_student(target, student).item() == pytest.approx(expected.item(), rel=1e-6)
    assert kl_to_student(log_s, student).item() == pytest.approx(0.0, abs=1e-6)
    scores = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    expected_ce = -(math.log(math.exp(2) / (math.exp(2) + 1)) + math.log(math.exp(1) / (1 + math.exp(1)))) / 2
    assert contrastive_loss(scores, torch.tensor([0, 1])).item() == pytest.approx(expected_ce, rel=1e-6)
