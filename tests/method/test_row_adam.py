"""RowSparseAdam must be SparseAdam, bit for bit: same parameters, same moments, after many steps with a
learning-rate schedule, on coalesced and uncoalesced gradients, and it must resume from SparseAdam's state."""

import copy

import pytest
import torch

from mta4dpr_core.method.row_adam import RowSparseAdam


def _train(optimizer_class, steps=40, rows=500, dim=16, duplicates=False, state=None):
    torch.manual_seed(0)
    table = torch.nn.Embedding(rows, dim, sparse=True)
    optimizer = optimizer_class(table.parameters(), lr=1e-2)
    if state is not None:
        table.load_state_dict(state[0])
        optimizer.load_state_dict(state[1])
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min((s + 1) / 5, (steps - s) / (steps - 5)))
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        ids = torch.randint(0, rows, (120,), generator=generator) if duplicates else torch.randperm(rows)[:60]
        weights = torch.randn(len(ids), dim, generator=generator)
        optimizer.zero_grad()
        (table(ids) * weights).sum().backward()
        optimizer.step()
        schedule.step()
    return table, optimizer


@pytest.mark.parametrize("duplicates", [False, True])
def test_bit_identical_to_sparse_adam(duplicates):
    reference, reference_optimizer = _train(torch.optim.SparseAdam, duplicates=duplicates)
    ours, ours_optimizer = _train(RowSparseAdam, duplicates=duplicates)
    assert torch.equal(reference.weight, ours.weight)
    for key in ("exp_avg", "exp_avg_sq", "step"):
        a, b = reference_optimizer.state_dict()["state"][0][key], ours_optimizer.state_dict()["state"][0][key]
        assert torch.equal(torch.as_tensor(a), torch.as_tensor(b)), key


def test_bit_identical_when_updated_in_slices(monkeypatch):
    """The touched rows are updated a slice at a time; with slices of 3 rows every step spans many slices."""
    import mta4dpr_core.method.row_adam as row_adam

    monkeypatch.setattr(row_adam, "_SLICE_ELEMENTS", 3 * 16)
    reference, reference_optimizer = _train(torch.optim.SparseAdam, duplicates=True)
    ours, ours_optimizer = _train(RowSparseAdam, duplicates=True)
    assert torch.equal(reference.weight, ours.weight)
    for key in ("exp_avg", "exp_avg_sq"):
        a, b = reference_optimizer.state_dict()["state"][0][key], ours_optimizer.state_dict()["state"][0][key]
        assert torch.equal(a, b), key


def test_resumes_from_sparse_adam_state():
    table, optimizer = _train(torch.optim.SparseAdam, steps=10)
    state = (table.state_dict(), optimizer.state_dict())
    # deep copies: loading a state dict shares its moment tensors, which the steps then change in place
    reference, _ = _train(torch.optim.SparseAdam, steps=10, state=copy.deepcopy(state))
    ours, _ = _train(RowSparseAdam, steps=10, state=copy.deepcopy(state))
    assert torch.equal(reference.weight, ours.weight)


def test_dense_gradient_is_refused():
    weight = torch.nn.Parameter(torch.zeros(3, 2))
    optimizer = RowSparseAdam([weight], lr=0.1)
    weight.grad = torch.ones(3, 2)
    with pytest.raises(RuntimeError, match="sparse gradients"):
        optimizer.step()
