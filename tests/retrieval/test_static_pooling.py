"""The compiled static pooling equals its definition (a masked mean of table rows, frozen rows above the
table) and its gradient equals autograd's through that definition, sparse rows included."""

import numpy as np
import pytest
import torch

from mta4dpr_core.retrieval.static_pooling import static_mean_pool


def _reference(table, ids, mask, frozen):
    full = torch.cat([table, frozen])
    rows = full[ids] * mask[..., None]
    return rows.sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)


@pytest.mark.parametrize("sparse_grad", [True, False])
def test_forward_and_gradient_match_the_definition(sparse_grad):
    rng = np.random.default_rng(0)
    trainable, frozen_rows, dim = 50, 7, 16
    table = torch.from_numpy(rng.normal(size=(trainable, dim)).astype(np.float32))
    frozen = torch.from_numpy(rng.normal(size=(frozen_rows, dim)).astype(np.float32))
    ids = torch.from_numpy(rng.integers(0, trainable + frozen_rows, size=(9, 12)))
    mask = torch.from_numpy((rng.random((9, 12)) < 0.7).astype(np.float32))
    mask[3] = 0  # an empty text pools to zeros
    weights = torch.from_numpy(rng.normal(size=(9, dim)).astype(np.float32))

    ours_table = table.clone().requires_grad_()
    ours = static_mean_pool(ours_table, ids, mask, frozen, sparse_grad=sparse_grad)
    (ours * weights).sum().backward()
    reference_table = table.clone().requires_grad_()
    reference = _reference(reference_table, ids, mask, frozen)
    (reference * weights).sum().backward()

    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-6)
    assert torch.equal(ours[3], torch.zeros(dim))
    grad = ours_table.grad
    assert grad.is_sparse == sparse_grad
    if sparse_grad:
        touched = set(ids[(mask > 0) & (ids < trainable)].tolist())
        assert grad._indices()[0].tolist() == sorted(touched)  # one row per distinct token, sorted
        grad = grad.to_dense()
    torch.testing.assert_close(grad, reference_table.grad, rtol=1e-5, atol=1e-6)
