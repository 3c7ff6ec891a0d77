"""Lazy Adam for a sparse embedding table, computed on the rows a step touches.

``torch.optim.SparseAdam`` updates only the rows ``r`` of a sparse gradient ``g``::

    m[r] += (1 - beta1) * (g[r] - m[r])
    v[r] += (1 - beta2) * (g[r]**2 - v[r])
    p[r] -= lr * sqrt(1 - beta2**t) / (1 - beta1**t) * m[r] / (sqrt(v[r]) + eps)

It reads the old moments with ``sparse_mask`` and writes them back by adding sparse tensors. For the
static student's table (tens of thousands of rows, a few thousand touched per step), those sparse-tensor
operations took 7.5 of a run's 19.4 training seconds. :class:`RowSparseAdam` does the same arithmetic,
operation for operation in the same order, with ``index_select`` and ``index_add_`` on the coalesced
rows: every element sees the same floating-point operations, so the parameters and moments are
bit-identical to ``SparseAdam``'s (``tests/method/test_row_adam.py`` checks ``torch.equal`` over many
steps, also when the rows are updated in many slices). It *is* a ``SparseAdam`` (same state layout, same
checkpoints, same schedulers); only ``step`` differs.

>>> import torch
>>> table = torch.nn.Embedding(10, 4, sparse=True)
>>> optimizer = RowSparseAdam(table.parameters(), lr=0.1)
>>> table(torch.tensor([1, 3, 3])).sum().backward()
>>> before = table.weight.detach().clone()
>>> optimizer.step()
>>> sorted(torch.nonzero((table.weight != before).any(1)).flatten().tolist())
[1, 3]
"""

from __future__ import annotations

import math

import torch

# rows per slice of the update: a slice's temporaries (a few times rows x dim floats) stay in the core's cache
_SLICE_ELEMENTS = 1 << 16


def row_sparse_adam(params, grads, exp_avgs, exp_avg_sqs, state_steps, *, eps, beta1, beta2, lr, maximize):
    """``torch.optim._functional.sparse_adam`` with the touched rows gathered and scattered by index.

    The touched rows are updated a slice at a time: each element still sees the same operations in the
    same order (rows are independent), but the dozen temporaries of a slice stay in cache instead of
    streaming the whole touched table through memory a dozen times (2x faster on one core)."""
    for param, grad, exp_avg, exp_avg_sq, step in zip(params, grads, exp_avgs, exp_avg_sqs, state_steps):
        grad = (grad if not maximize else -grad).coalesce()  # the update is non-linear: rows must be unique
        all_values = grad._values()
        if all_values.numel() == 0:
            continue
        all_rows = grad._indices()[0]
        step_size = lr * math.sqrt(1 - beta2**step) / (1 - beta1**step)
        width = max(1, _SLICE_ELEMENTS // max(1, all_values[0].numel()))
        for start in range(0, all_rows.numel(), width):
            rows, values = all_rows[start : start + width], all_values[start : start + width]
            old_exp_avg = exp_avg.index_select(0, rows)
            exp_avg_update = values.sub(old_exp_avg).mul_(1 - beta1)
            exp_avg.index_add_(0, rows, exp_avg_update)
            old_exp_avg_sq = exp_avg_sq.index_select(0, rows)
            exp_avg_sq_update = values.pow(2).sub_(old_exp_avg_sq).mul_(1 - beta2)
            exp_avg_sq.index_add_(0, rows, exp_avg_sq_update)
            numer = exp_avg_update.add_(old_exp_avg)  # the new first moment, as SparseAdam computes it
            denom = exp_avg_sq_update.add_(old_exp_avg_sq).sqrt_().add_(eps)
            param.index_add_(0, rows, -step_size * numer.div_(denom))


class RowSparseAdam(torch.optim.SparseAdam):
    """``torch.optim.SparseAdam`` whose step runs :func:`row_sparse_adam` (bit-identical, faster)."""

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads, exp_avgs, exp_avg_sqs, steps = [], [], [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                if not p.grad.is_sparse:
                    raise RuntimeError("RowSparseAdam needs sparse gradients; use AdamW for dense parameters")
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                params.append(p)
                grads.append(p.grad)
                exp_avgs.append(state["exp_avg"])
                exp_avg_sqs.append(state["exp_avg_sq"])
                steps.append(state["step"])
            beta1, beta2 = group["betas"]
            lr = group["lr"]
            row_sparse_adam(
                params,
                grads,
                exp_avgs,
                exp_avg_sqs,
                steps,
                eps=group["eps"],
                beta1=beta1,
                beta2=beta2,
                lr=float(lr) if isinstance(lr, torch.Tensor) else lr,
                maximize=group.get("maximize", False),
            )
        return loss
