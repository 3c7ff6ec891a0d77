"""Mean pooling of static token embeddings on the CPU, forward and backward, as compiled loops (numba).

For a batch of texts with token ids ``ids`` [T, L] and a 0/1 ``mask`` [T, L]::

    pooled[t] = (sum_{l: mask[t, l]} E[ids[t, l]]) / max(1, sum_l mask[t, l])

where ``E`` is the trainable table for ids below its row count and the frozen table above (the restricted
vocabulary of :meth:`..encoders.StaticEncoder.restrict_vocabulary`). The gradient reaches the trainable
table only, as a coalesced sparse tensor whose rows are the distinct trainable ids of the batch, sorted,
which is what :class:`..method.row_adam.RowSparseAdam` reads (lazy Adam on the touched rows).

Why not PyTorch ops: the earlier formulation, ``counts @ rows`` with a [texts x distinct tokens] count
matrix, is a dense product over a matrix that is about 96% zeros (a passage has ~150 distinct tokens of the
batch's ~4,400), plus a zero fill, a scatter and a coalesce around it: 6 ms of a 20 ms static training
step on one core. These loops touch each token once (``bench/static_step.py`` has the profile).

>>> import torch
>>> table = torch.tensor([[1.0, 0.0], [0.0, 2.0], [4.0, 4.0]], requires_grad=True)
>>> ids, mask = torch.tensor([[0, 1, 1], [2, 0, 0]]), torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
>>> pooled = static_mean_pool(table, ids, mask, table.new_zeros(0, 2), sparse_grad=True)
>>> pooled
tensor([[0.5000, 1.0000],
        [4.0000, 4.0000]], grad_fn=<StaticMeanPoolBackward>)
>>> pooled.sum().backward()
>>> table.grad.coalesce().indices().tolist(), table.grad.coalesce().values().tolist()
([[0, 1, 2]], [[0.5, 0.5], [0.5, 0.5], [1.0, 1.0]])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numba
import numpy as np
import torch

if TYPE_CHECKING:
    from torch.autograd.function import FunctionCtx


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _pool_forward(ids, mask, table, frozen, out, lengths):  # pragma: no cover - compiled
    rows = table.shape[0]
    dim = table.shape[1]
    for t in range(ids.shape[0]):
        count = 0
        for position in range(ids.shape[1]):
            if mask[t, position] == 0:
                continue
            token = ids[t, position]
            count += 1
            if token < rows:
                for j in range(dim):
                    out[t, j] += table[token, j]
            else:
                for j in range(dim):
                    out[t, j] += frozen[token - rows, j]
        length = numba.float32(max(count, 1))
        lengths[t] = length
        for j in range(dim):
            out[t, j] = out[t, j] / length


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _pool_backward(ids, mask, lengths, grad, rows):  # noqa: C901 (a compiled numba kernel: one loop nest)  # pragma: no cover
    """(sorted distinct trainable ids, their gradient rows): d pooled[t] / d E[id] = 1 / length[t] per occurrence."""
    dim = grad.shape[1]
    slot = np.full(rows, -1, np.int64)
    for t in range(ids.shape[0]):
        for position in range(ids.shape[1]):
            token = ids[t, position]
            if mask[t, position] != 0 and token < rows:
                slot[token] = 0
    count = 0
    for token in range(rows):
        if slot[token] == 0:
            slot[token] = count
            count += 1
    touched = np.empty(count, np.int64)
    for token in range(rows):
        if slot[token] >= 0:
            touched[slot[token]] = token
    values = np.zeros((count, dim), np.float32)
    scaled = np.empty(dim, np.float32)
    for t in range(ids.shape[0]):
        for j in range(dim):
            scaled[j] = grad[t, j] / lengths[t]
        for position in range(ids.shape[1]):
            token = ids[t, position]
            if mask[t, position] == 0 or token >= rows:
                continue
            row = slot[token]
            for j in range(dim):
                values[row, j] += scaled[j]
    return touched, values


class StaticMeanPool(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: FunctionCtx,
        table: torch.Tensor,
        ids: torch.Tensor,
        mask: torch.Tensor,
        frozen: torch.Tensor,
        sparse_grad: bool,
    ) -> torch.Tensor:
        ids_np = np.ascontiguousarray(ids.numpy(), dtype=np.int64)
        mask_np = np.ascontiguousarray(mask.numpy(), dtype=np.float32)
        table_np = table.detach().numpy()
        out = np.zeros((ids_np.shape[0], table_np.shape[1]), np.float32)
        lengths = np.empty(ids_np.shape[0], np.float32)
        _pool_forward(ids_np, mask_np, table_np, frozen.detach().numpy(), out, lengths)
        ctx.saved = (ids_np, mask_np, lengths, table.shape, sparse_grad)
        return torch.from_numpy(out)

    @staticmethod
    def backward(ctx: FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None, None]:
        ids_np, mask_np, lengths, shape, sparse_grad = ctx.saved
        touched, values = _pool_backward(
            ids_np, mask_np, lengths, np.ascontiguousarray(grad.numpy(), dtype=np.float32), shape[0]
        )
        touched, values = torch.from_numpy(touched), torch.from_numpy(values)
        if sparse_grad:
            table_grad = torch.sparse_coo_tensor(
                touched[None], values, shape, is_coalesced=True, check_invariants=False
            )
        else:
            table_grad = values.new_zeros(shape).index_add_(0, touched, values)
        return table_grad, None, None, None, None


@numba.njit(cache=True, nogil=True)
def _map_table_rows(token_ids, mask, id_map, unknown):  # pragma: no cover - compiled
    rows = np.empty(token_ids.shape, np.int64)
    kept = np.empty(token_ids.shape, mask.dtype)
    last = id_map.shape[0] - 1
    for t in range(token_ids.shape[0]):
        for position in range(token_ids.shape[1]):
            row = id_map[min(token_ids[t, position], last)]
            rows[t, position] = row
            kept[t, position] = mask[t, position] if row != unknown else 0
    return rows, kept


def map_table_rows(
    token_ids: torch.Tensor, mask: torch.Tensor, id_map: torch.Tensor, unknown: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(``id_map[token_ids]`` with ids past its end taken as its last, ``mask`` zeroed where the row is
    ``unknown``) in one compiled pass over CPU tensors: a restricted vocabulary's row ids and mask
    (:meth:`..encoders.StaticEncoder.table_ids`), without the six tensor operations (clamp, gather, compare,
    multiply and their allocations) that PyTorch takes for it."""
    rows, kept = _map_table_rows(token_ids.numpy(), mask.numpy(), id_map.numpy(), np.int64(unknown))
    return torch.from_numpy(rows), torch.from_numpy(kept)


def static_mean_pool(
    table: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor, frozen: torch.Tensor, sparse_grad: bool = True
) -> torch.Tensor:
    """Mean of the rows of ``table`` (ids below its row count) or ``frozen`` (ids above) over each text's
    masked tokens; CPU tensors. The gradient reaches ``table`` (sparse, coalesced, when ``sparse_grad``)."""
    return StaticMeanPool.apply(table, ids, mask, frozen, sparse_grad)
