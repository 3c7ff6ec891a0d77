"""The static student's loss and its gradient in one compiled pass on the CPU (numba), autograd left out.

The loss is :class:`.losses.MTA4DPRLoss` on the student's mean-pooled, L2-normalised static embeddings
(:mod:`..retrieval.static_pooling`); this module writes its gradient by hand. For queries ``q_b`` and their
candidates ``p_{bC+c}`` (positive first), with ``s = <q, p> / tau`` and ``B`` queries::

    d L / d s[b, j] = alpha / B * (softmax(s[b, :])_j - [j = b*C])              (in-batch contrastive)
                    + beta  / B * (softmax(own[b])_c * sum(T_b) - T_b,c)        (j = b*C + c; T = teacher probs)
                    + gamma / B * (softmax(own[b])_c * sum(A_b) - A_b,c)        (A = clamped assistant probs)

then ``dq_b = sum_j g[b, j] p_j / tau`` and ``dp_j = sum_b g[b, j] q_b / tau``, back through the normalisation
``d x = (d y - y <y, d y>) / max(|x|, eps)`` and the mean pooling (each token's row gets ``d x / length``).

Why: through autograd, the step of a static student on one core is two thirds framework overhead (about
1,600 Python-level calls; ``bench/static_step.py --floor``) around 4 ms of kernels. Here the arithmetic runs
in fixed order, each sum over a fixed sequence, and without fused multiply-adds (numba's default, no fast
maths), so the same inputs give the same bits whatever the CPU's vector width: no BLAS, no vectorised
``exp``, no reduction whose order depends on AVX2 or AVX-512. ``tests/method/test_static_step.py`` checks the
terms and the gradient against autograd's, and the bits against a build for generic x86-64.

>>> import torch
>>> from mta4dpr_core.method.losses import MTA4DPRLoss
>>> table = torch.randn(6, 4)
>>> ids, mask = torch.tensor([[0, 1], [2, 3], [4, 5], [1, 2], [3, 4], [5, 0]]), torch.ones(6, 2)
>>> terms, rows, grad = static_loss_and_gradient(
...     table, table[:0], ids[:2], mask[:2], ids[2:], mask[2:], torch.randn(2, 2), torch.full((2, 2), 0.5),
...     MTA4DPRLoss(), normalize=True)
>>> sorted(terms), rows.tolist(), tuple(grad.shape)
(['contrastive', 'kl_assistant', 'kl_teacher', 'total'], [0, 1, 2, 3, 4, 5], (6, 4))
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch

from ..retrieval.static_pooling import _pool_backward, _pool_forward
from .losses import MTA4DPRLoss

# F.normalize's floor on the norm
NORM_EPS = 1e-12


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _normalise(x, eps):  # pragma: no cover - compiled
    """(rows of ``x`` over max(|row|, eps), in float64; the divisors). Each norm is a sum in one fixed order."""
    y = np.empty(x.shape, np.float64)
    norms = np.empty(x.shape[0], np.float64)
    for t in range(x.shape[0]):
        total = 0.0
        for j in range(x.shape[1]):
            total += np.float64(x[t, j]) * np.float64(x[t, j])
        norm = max(math.sqrt(total), eps)
        norms[t] = norm
        for j in range(x.shape[1]):
            y[t, j] = x[t, j] / norm
    return y, norms


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _scores(q, p, scale):  # pragma: no cover - compiled
    """``q @ p.T * scale`` with each entry summed over the dimension in order (vectorised across columns)."""
    pt = np.ascontiguousarray(p.T)
    out = np.zeros((q.shape[0], p.shape[0]), np.float64)
    for d in range(q.shape[1]):
        for b in range(q.shape[0]):
            coefficient = q[b, d]
            for j in range(p.shape[0]):
                out[b, j] += coefficient * pt[d, j]
    for b in range(q.shape[0]):
        for j in range(p.shape[0]):
            out[b, j] *= scale
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _log_softmax(row):  # pragma: no cover - compiled
    top = row.max()
    total = 0.0
    for value in row:
        total += math.exp(value - top)
    return row - (top + math.log(total))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _kl_and_gradient(own, target_log, weight, grad):  # pragma: no cover - compiled
    """sum_b KL(exp(target_log[b]) || softmax(own[b])) / B; adds weight * its gradient in ``own`` to ``grad``."""
    batch = own.shape[0]
    total = 0.0
    for b in range(batch):
        student_log = _log_softmax(own[b])
        mass = 0.0
        for c in range(own.shape[1]):
            target = math.exp(target_log[b, c])
            mass += target
            total += target * (target_log[b, c] - student_log[c])
        for c in range(own.shape[1]):
            grad[b, c] += weight / batch * (math.exp(student_log[c]) * mass - math.exp(target_log[b, c]))
    return total / batch


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _cross_entropy_and_gradient(scores, targets, weight, grad):  # pragma: no cover - compiled
    """mean_b -log softmax(scores[b])[targets[b]]; adds weight * its gradient in ``scores`` to ``grad``."""
    batch = scores.shape[0]
    total = 0.0
    for b in range(batch):
        log_probs = _log_softmax(scores[b])
        total -= log_probs[targets[b]]
        for j in range(scores.shape[1]):
            grad[b, j] += weight / batch * math.exp(log_probs[j])
        grad[b, targets[b]] -= weight / batch
    return total / batch


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _normalise_backward(dy, y, norms, eps):  # pragma: no cover - compiled
    """Gradient through ``y = x / max(|x|, eps)``, as float32 rows for the pooling's backward."""
    dx = np.empty(dy.shape, np.float32)
    for t in range(dy.shape[0]):
        along = 0.0
        for j in range(dy.shape[1]):
            along += y[t, j] * dy[t, j]
        if norms[t] <= eps:  # the floor is a constant: no radial term
            along = 0.0
        for j in range(dy.shape[1]):
            dx[t, j] = (dy[t, j] - y[t, j] * along) / norms[t]
    return dx


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _pooled(ids, mask, table, frozen, normalize, eps):  # pragma: no cover - compiled
    """(text vectors in float64, normalised when ``normalize``; their divisors; token counts)."""
    pooled = np.zeros((ids.shape[0], table.shape[1]), np.float32)
    lengths = np.empty(ids.shape[0], np.float32)
    _pool_forward(ids, mask, table, frozen, pooled, lengths)
    if normalize:
        vectors, norms = _normalise(pooled, eps)
        return vectors, norms, lengths
    return pooled.astype(np.float64), np.ones(ids.shape[0]), lengths


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _score_gradient(scores, count, teacher_logits, assistant_probs, has_assistant, alpha, beta, gamma, in_batch):  # noqa: PLR0913  # pragma: no cover
    """(contrastive, KL teacher, KL assistant; the loss's gradient in ``scores`` [B, B*C])."""
    batch = scores.shape[0]
    own = np.empty((batch, count), np.float64)
    for b in range(batch):
        own[b] = scores[b, b * count : (b + 1) * count]
    grad_scores = np.zeros(scores.shape, np.float64)
    grad_own = np.zeros((batch, count), np.float64)
    contrastive = kl_teacher = kl_assistant = 0.0
    if alpha != 0.0 and in_batch:
        contrastive = _cross_entropy_and_gradient(scores, np.arange(batch) * count, alpha, grad_scores)
    elif alpha != 0.0:
        contrastive = _cross_entropy_and_gradient(own, np.zeros(batch, np.int64), alpha, grad_own)
    if beta != 0.0:
        teacher_log = np.empty((batch, count), np.float64)
        for b in range(batch):
            teacher_log[b] = _log_softmax(teacher_logits[b].astype(np.float64))
        kl_teacher = _kl_and_gradient(own, teacher_log, beta, grad_own)
    if gamma != 0.0 and has_assistant:
        assistant_log = np.empty((batch, count), np.float64)
        for b in range(batch):
            for c in range(count):
                assistant_log[b, c] = math.log(max(np.float64(assistant_probs[b, c]), 1e-12))
        kl_assistant = _kl_and_gradient(own, assistant_log, gamma, grad_own)
    for b in range(batch):
        grad_scores[b, b * count : (b + 1) * count] += grad_own[b]
    return contrastive, kl_teacher, kl_assistant, grad_scores


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _vector_gradients(grad_scores, q, p, scale):  # pragma: no cover - compiled
    """Gradients in ``q`` and ``p`` of a loss whose gradient in ``scale * q @ p.T`` is ``grad_scores``: each row a
    sum in fixed order (over passages for a query, over queries for a passage), vectorised across the dimension."""
    dq = np.zeros(q.shape, np.float64)
    dp = np.zeros(p.shape, np.float64)
    for b in range(q.shape[0]):
        for j in range(p.shape[0]):
            g = grad_scores[b, j] * scale
            if g == 0.0:
                continue
            for d in range(q.shape[1]):
                dq[b, d] += g * p[j, d]
                dp[j, d] += g * q[b, d]
    return dq, dp


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _table_gradient(q_ids, q_mask, q_lengths, dq, p_ids, p_mask, p_lengths, dp, rows):  # noqa: PLR0913  # pragma: no cover
    """(sorted distinct trainable rows, their gradient) of both groups of texts, pooled backward in one pass."""
    width = max(q_ids.shape[1], p_ids.shape[1])
    split = q_ids.shape[0]
    ids = np.zeros((split + p_ids.shape[0], width), np.int64)
    mask = np.zeros(ids.shape, np.float32)
    ids[:split, : q_ids.shape[1]] = q_ids
    mask[:split, : q_ids.shape[1]] = q_mask
    ids[split:, : p_ids.shape[1]] = p_ids
    mask[split:, : p_ids.shape[1]] = p_mask
    return _pool_backward(ids, mask, np.concatenate((q_lengths, p_lengths)), np.concatenate((dq, dp)), rows)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _loss_and_gradient(  # noqa: PLR0913 (the loss's inputs and weights, one compiled call)  # pragma: no cover
    q_ids, q_mask, p_ids, p_mask, table, frozen, teacher_logits, assistant_probs, has_assistant,
    alpha, beta, gamma, inverse_temperature, in_batch, normalize, eps,
):  # fmt: skip
    """(contrastive, KL teacher, KL assistant, touched rows, their gradient); see the module's formulas."""
    q, q_norms, q_lengths = _pooled(q_ids, q_mask, table, frozen, normalize, eps)
    p, p_norms, p_lengths = _pooled(p_ids, p_mask, table, frozen, normalize, eps)
    scores = _scores(q, p, inverse_temperature)  # [B, B*C]: in-batch and own candidates
    contrastive, kl_teacher, kl_assistant, grad_scores = _score_gradient(
        scores, teacher_logits.shape[1], teacher_logits, assistant_probs, has_assistant, alpha, beta, gamma, in_batch
    )
    dq, dp = _vector_gradients(grad_scores, q, p, inverse_temperature)
    if normalize:
        dq32, dp32 = _normalise_backward(dq, q, q_norms, eps), _normalise_backward(dp, p, p_norms, eps)
    else:
        dq32, dp32 = dq.astype(np.float32), dp.astype(np.float32)
    rows, values = _table_gradient(q_ids, q_mask, q_lengths, dq32, p_ids, p_mask, p_lengths, dp32, table.shape[0])
    return contrastive, kl_teacher, kl_assistant, rows, values


def static_loss_and_gradient(
    table: torch.Tensor,
    frozen: torch.Tensor,
    query_ids: torch.Tensor,
    query_mask: torch.Tensor,
    passage_ids: torch.Tensor,
    passage_mask: torch.Tensor,
    teacher_logits: torch.Tensor | np.ndarray,
    assistant_probs: torch.Tensor | np.ndarray | None,
    loss: MTA4DPRLoss,
    normalize: bool,
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """(``loss``'s terms, the sorted distinct trainable rows the batch touches, their gradient rows) for a
    static student whose text vectors are the mean of ``table``'s rows (ids below its row count) or
    ``frozen``'s (ids above) over each text's masked tokens, L2-normalised when ``normalize``.

    ``teacher_logits`` and ``assistant_probs`` are [queries, candidates], the passages [queries x candidates,
    length] in that order, positive first, as :class:`.losses.MTA4DPRLoss` takes them."""
    has_assistant = assistant_probs is not None
    # rounded to float32 as the autograd path's tensors are (numpy's cast rounds as torch's does)
    assistant = np.ascontiguousarray(assistant_probs, np.float32) if has_assistant else np.zeros((1, 1), np.float32)
    contrastive, kl_teacher, kl_assistant, rows, values = _loss_and_gradient(
        np.ascontiguousarray(query_ids.numpy(), dtype=np.int64),
        np.ascontiguousarray(query_mask.numpy(), dtype=np.float32),
        np.ascontiguousarray(passage_ids.numpy(), dtype=np.int64),
        np.ascontiguousarray(passage_mask.numpy(), dtype=np.float32),
        table.detach().numpy(),
        frozen.detach().numpy(),
        np.ascontiguousarray(teacher_logits, np.float32),
        assistant,
        has_assistant,
        float(loss.alpha),
        float(loss.beta),
        float(loss.gamma),
        1.0 / loss.student_temperature,
        bool(loss.in_batch_negatives),
        bool(normalize),
        NORM_EPS,
    )
    values_by_term = {"contrastive": contrastive, "kl_teacher": kl_teacher, "kl_assistant": kl_assistant}
    present = {
        "contrastive": bool(loss.alpha),
        "kl_teacher": bool(loss.beta),
        "kl_assistant": bool(loss.gamma) and has_assistant,
    }
    weights = {"contrastive": loss.alpha, "kl_teacher": loss.beta, "kl_assistant": loss.gamma}
    # float64, as computed: the record keeps every digit the pass computed
    terms = {name: torch.tensor(value, dtype=torch.float64) for name, value in values_by_term.items() if present[name]}
    terms["total"] = torch.tensor(sum(weights[name] * values_by_term[name] for name in terms), dtype=torch.float64)
    return terms, torch.from_numpy(rows), torch.from_numpy(values)


def fused_step_applies(
    student: torch.nn.Module, device: torch.device, world: int, amp_dtype: torch.dtype | None
) -> bool:
    """Whether a step of ``student`` can run here: a static student (sparse table, CPU, float32, one process)."""
    weight = getattr(getattr(student, "embedding", None), "weight", None)
    return (
        device.type == "cpu"
        and world == 1
        and amp_dtype is None
        and weight is not None
        and weight.dtype == torch.float32
        and bool(getattr(student, "sparse_parameters", lambda: [])())
        and hasattr(student, "id_map")  # a restricted vocabulary (StaticEncoder.restrict_vocabulary)
    )


def static_student_step(
    student: torch.nn.Module,
    queries: dict,
    passages: dict,
    teacher_logits: torch.Tensor | np.ndarray,
    assistant_probs: torch.Tensor | np.ndarray | None,
    loss: MTA4DPRLoss,
) -> dict[str, torch.Tensor]:
    """``loss``'s terms for a static student's batch, its sparse gradient left in the table's ``.grad`` (as
    ``backward`` would leave it) for the optimizer's step."""
    weight, frozen = student.embedding.weight, student.frozen_table
    (query_ids, query_mask, _), (passage_ids, passage_mask, _) = (student.table_ids(b) for b in (queries, passages))
    terms, rows, values = static_loss_and_gradient(
        weight, frozen, query_ids, query_mask, passage_ids, passage_mask, teacher_logits, assistant_probs, loss,
        student.normalize,
    )  # fmt: skip
    weight.grad = torch.sparse_coo_tensor(rows[None], values, weight.shape, is_coalesced=True, check_invariants=False)
    return terms
