"""The compiled static pooling equals its definition (a masked mean of table rows, frozen rows above the
table) and its gradient equals autograd's through that definition, sparse rows included."""

import numpy as np
import pytest
import torch
from conftest import make_training_data, tiny_static_encoder

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


def test_table_ids_on_the_cpu_are_the_tensor_expression():
    """StaticEncoder.table_ids maps a restricted vocabulary in one compiled pass on the CPU (map_table_rows) and with
    tensor operations elsewhere; both give the same rows and mask, with frozen, unknown and out-of-range tokens."""
    data, passages = make_training_data(n_queries=6, n_docs=20, k=4, m=1)
    student = tiny_static_encoder(6, 20, dim=8).restrict_vocabulary(range(10), range(10, 14))  # the rest: unknown
    batch = student.tokenize(list(data.query_texts) + list(passages) + ["", "q1 d19 zz"], 64)
    batch["input_ids"][0, 0] = student.id_map.numel() + 5  # past the map's end: taken as its last entry
    rows, mask, count = student.table_ids(batch)
    ids = student.id_map[batch["input_ids"].clamp(max=student.id_map.numel() - 1)]
    unknown = student.embedding.num_embeddings + student.frozen_table.shape[0] - 1
    assert count == unknown + 1 and (mask == 0).any() and (rows >= 10).any() and (rows == unknown).any()
    assert torch.equal(rows, ids)
    assert torch.equal(mask, batch["attention_mask"] * (ids != unknown)) and mask.dtype == batch["attention_mask"].dtype
