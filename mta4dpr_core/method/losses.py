"""The student's loss (paper 3.2.4)::

    L = alpha * L_CL + beta * KL(P_teacher || P_student) + gamma * KL(P_assistant || P_student)

with, for query q and its candidate list c = [p+, p-_1, ..., p-_n]:

- student scores  s(q, p) = <e_q, e_p> / tau_s  (tau_s = 0.02 on L2-normalised vectors, as SimLM);
- L_CL = -log softmax(s(q, .))[p+] over the candidates, or over every passage of the
  batch with in-batch negatives (the default);
- P_student = softmax(s(q, c)), P_teacher = softmax(t(q, c) / T_t), P_assistant given;
- KL(P || Q) = sum_p P log(P / Q), averaged over queries (``KLDivLoss(batchmean, log_target=True)``).

Example::

    >>> import torch
    >>> q, p = torch.randn(2, 8), torch.randn(2 * 3, 8)
    >>> loss = MTA4DPRLoss()(q, p, teacher_logits=torch.randn(2, 3), assistant_probs=torch.full((2, 3), 1 / 3))
    >>> loss["total"].shape
    torch.Size([])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config.schema import SCHEMA


def kl_to_student(target_log_probs: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
    """KL(target || student) averaged over queries; the target gets no gradient."""
    return F.kl_div(
        F.log_softmax(student_logits, dim=-1), target_log_probs.detach(), reduction="batchmean", log_target=True
    )


def contrastive_loss(scores: torch.Tensor, positive_columns: torch.Tensor) -> torch.Tensor:
    """InfoNCE: cross-entropy with each query's positive column."""
    return F.cross_entropy(scores, positive_columns)


# the defaults are the profile schema's (config/schema.py), declared there once
_LOSS = SCHEMA["loss"]


class MTA4DPRLoss(nn.Module):
    def __init__(
        self,
        alpha: float = _LOSS["alpha"].default,
        beta: float = _LOSS["beta"].default,
        gamma: float = _LOSS["gamma"].default,
        student_temperature: float = _LOSS["student_temperature"].default,
        in_batch_negatives: bool = _LOSS["in_batch_negatives"].default,
    ):
        super().__init__()
        self.alpha, self.beta, self.gamma = alpha, beta, gamma
        self.student_temperature, self.in_batch_negatives = student_temperature, in_batch_negatives

    def forward(
        self,
        query_embeddings: torch.Tensor,
        passage_embeddings: torch.Tensor,
        teacher_logits: torch.Tensor,
        assistant_probs: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """``passage_embeddings`` [B*C, d] are the B queries' candidates, positive first."""
        batch, count = teacher_logits.shape
        own = (
            torch.einsum("bd,bcd->bc", query_embeddings, passage_embeddings.view(batch, count, -1))
            / self.student_temperature
        )
        terms = {}
        if self.alpha:
            if self.in_batch_negatives:
                scores = query_embeddings @ passage_embeddings.T / self.student_temperature
                target = torch.arange(batch, device=scores.device) * count
            else:
                scores, target = own, torch.zeros(batch, dtype=torch.long, device=own.device)
            terms["contrastive"] = contrastive_loss(scores, target)
        if self.beta:
            terms["kl_teacher"] = kl_to_student(F.log_softmax(teacher_logits.float(), dim=-1), own)
        if self.gamma and assistant_probs is not None:
            terms["kl_assistant"] = kl_to_student(torch.log(assistant_probs.float().clamp(min=1e-12)), own)
        weights = {"contrastive": self.alpha, "kl_teacher": self.beta, "kl_assistant": self.gamma}
        terms["total"] = sum(weights[name] * value for name, value in terms.items())
        return terms
