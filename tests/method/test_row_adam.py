"""RowSparseAdam must be SparseAdam: the same moments bit for bit and the same parameters to the last bit of a
sqrt (PyTorch's vectorised sqrt is not always correctly rounded, the compiled loop's is), after many steps with a
learning-rate schedule, on coalesced and uncoalesced gradients; it must equal a float32 NumPy transcription of
SparseAdam's update bit for bit, and resume from SparseAdam's state."""

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
def test_matches_sparse_adam(duplicates):
    reference, reference_optimizer = _train(torch.optim.SparseAdam, duplicates=duplicates)
    ours, ours_optimizer = _train(RowSparseAdam, duplicates=duplicates)
    assert torch.allclose(reference.weight, ours.weight, rtol=1e-6, atol=1e-8)
    for key in ("exp_avg", "exp_avg_sq", "step"):
        a, b = reference_optimizer.state_dict()["state"][0][key], ours_optimizer.state_dict()["state"][0][key]
        assert torch.equal(torch.as_tensor(a), torch.as_tensor(b)), key


def test_bit_identical_to_a_numpy_transcription():
    """Every operation in float32, in SparseAdam's order, with NumPy's correctly rounded sqrt."""
    import math

    import numpy as np

    rng = np.random.default_rng(0)
    rows, dim = 300, 24
    param = torch.from_numpy(rng.normal(size=(rows, dim)).astype(np.float32))
    table = torch.nn.Parameter(param.clone())
    optimizer = RowSparseAdam([table], lr=3e-3)
    p, m, v = param.numpy().copy(), np.zeros((rows, dim), np.float32), np.zeros((rows, dim), np.float32)
    f32 = np.float32
    for step in range(1, 13):
        touched = np.sort(rng.choice(rows, 90, replace=False))
        values = rng.normal(size=(90, dim)).astype(np.float32)
        table.grad = torch.sparse_coo_tensor(
            torch.from_numpy(touched)[None], torch.from_numpy(values), (rows, dim), check_invariants=True
        )
        optimizer.step()
        m_update = (values - m[touched]) * f32(1 - 0.9)
        v_update = (values * values - v[touched]) * f32(1 - 0.999)
        m[touched] = m[touched] + m_update
        v[touched] = v[touched] + v_update
        step_size = f32(-(3e-3 * math.sqrt(1 - 0.999**step) / (1 - 0.9**step)))
        p[touched] = p[touched] + step_size * (m[touched] / (np.sqrt(v[touched]) + f32(1e-8)))
    assert np.array_equal(table.detach().numpy(), p)
    state = optimizer.state[table]
    assert np.array_equal(state["exp_avg"].numpy(), m) and np.array_equal(state["exp_avg_sq"].numpy(), v)


def test_resumes_from_sparse_adam_state():
    table, optimizer = _train(torch.optim.SparseAdam, steps=10)
    state = (table.state_dict(), optimizer.state_dict())
    # deep copies: loading a state dict shares its moment tensors, which the steps then change in place
    reference, _ = _train(torch.optim.SparseAdam, steps=10, state=copy.deepcopy(state))
    ours, _ = _train(RowSparseAdam, steps=10, state=copy.deepcopy(state))
    assert torch.allclose(reference.weight, ours.weight, rtol=1e-6, atol=1e-8)


def test_dense_gradient_is_refused():
    weight = torch.nn.Parameter(torch.zeros(3, 2))
    optimizer = RowSparseAdam([weight], lr=0.1)
    weight.grad = torch.ones(3, 2)
    with pytest.raises(RuntimeError, match="sparse gradients"):
        optimizer.step()
