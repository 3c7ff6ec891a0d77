"""Philox dropout (retrieval/philox_dropout.py): the generator against Random123's known answers, the mask against
that generator, the masks' law, autograd, and the swap into a Hugging Face BERT and out again."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_bert
from torch import nn

from mta4dpr_core.retrieval.philox_dropout import (
    ATTENTION_NAME,
    PhiloxDropout,
    _dropout_forward,
    apply_dropout,
    keep_threshold,
    math_attention,
    philox4x32_10,
    philox_dropout,
)

# Random123's kat_vectors, the three philox4x32 10-round lines: counter (4 words), key (2 words), output (4 words)
KNOWN_ANSWERS = [
    ([0x0, 0x0, 0x0, 0x0], [0x0, 0x0], [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
    ([0xFFFFFFFF] * 4, [0xFFFFFFFF] * 2, [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
    (
        [0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344],
        [0xA4093822, 0x299F31D0],
        [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1],
    ),
]


@pytest.mark.parametrize("counter, key, expected", KNOWN_ANSWERS)
def test_philox_gives_random123s_known_answers(counter, key, expected):
    got = philox4x32_10(np.array([counter], np.uint32), np.array(key, np.uint32))
    assert got[0].tolist() == expected


@pytest.mark.parametrize("n", [1, 4, 7, 1001])
def test_mask_is_philox_word_i_mod_4_at_counter_i_div_4(n):
    """Element i is kept iff word i % 4 of Philox at counter (i // 4, 0, 0, 0) lies under the threshold; the tail
    of a length that is not a multiple of 4 included."""
    key = np.array([0x12345678, 0x9ABCDEF0], np.uint32)
    threshold = keep_threshold(0.3)
    x = np.arange(1, n + 1, dtype=np.float32)
    out, keep = np.empty_like(x), np.empty(n, np.bool_)
    scale = np.float32(1 / 0.7)
    _dropout_forward(x, out, keep, np.uint64(threshold), scale, np.uint64(key[0]), np.uint64(key[1]))
    blocks = (n + 3) // 4
    counters = np.zeros((blocks, 4), np.uint32)
    counters[:, 0] = np.arange(blocks)
    words = philox4x32_10(counters, key).ravel()[:n]
    np.testing.assert_array_equal(keep, words.astype(np.uint64) < threshold)
    np.testing.assert_array_equal(out, np.where(keep, x * scale, np.float32(0)))


def test_threshold_and_keep_rate():
    assert keep_threshold(0.1) == round(0.9 * 2**32) and keep_threshold(0.0) == 2**32
    with pytest.raises(ValueError, match="dropout probability"):
        keep_threshold(1.0)
    n, p = 1 << 22, 0.1
    kept = (apply_dropout(torch.ones(n), p, key=(7, 11)) != 0).double().mean().item()
    # a binomial proportion: 5 standard deviations
    assert abs(kept - (1 - p)) < 5 * np.sqrt(p * (1 - p) / n)


def test_output_and_gradient_are_torchs_formula_with_this_mask():
    """torch's native dropout computes x.mul(mask).mul_(1 / (1 - p)) and the same for the gradient: so does this,
    to the bit, with its own mask."""
    torch.manual_seed(0)
    x = torch.randn(3, 5, 7, requires_grad=True)
    y = apply_dropout(x, 0.25, key=(3, 4))
    keep = y != 0
    scale = 1.0 / (1.0 - 0.25)
    assert torch.equal(y, x.detach().mul(keep).mul_(scale))
    grad = torch.randn_like(y)
    y.backward(grad)
    assert torch.equal(x.grad, grad.mul(keep).mul_(scale))


def test_key_from_torchs_generator_so_a_seeded_step_repeats():
    x = torch.ones(64, 64)
    torch.manual_seed(5)
    first = apply_dropout(x, 0.5)
    torch.manual_seed(5)
    assert torch.equal(apply_dropout(x, 0.5), first)
    assert not torch.equal(apply_dropout(x, 0.5), first)  # the next draw: another key


def test_probability_zero_and_other_dtypes():
    x = torch.randn(4, 4)
    assert apply_dropout(x, 0.0) is x
    half = torch.ones(1000, dtype=torch.bfloat16)  # not the compiled pass's: torch's own dropout
    assert apply_dropout(half, 0.5).dtype == torch.bfloat16
    module = PhiloxDropout(0.5).eval()
    assert module(x) is x


def _bert(dropout=0.1):
    return tiny_bert(hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)


def test_math_attention_is_sdpa_at_probability_zero():
    torch.manual_seed(1)
    q, k, v = (torch.randn(2, 3, 6, 8) for _ in range(3))
    mask = torch.ones(2, 1, 6, 6, dtype=torch.bool)
    mask[1, :, :, 4:] = False  # the second sequence's last two keys are padding
    expected = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=0.3)
    torch.testing.assert_close(math_attention(q, k, v, mask, 0.3, 0.0), expected, atol=1e-6, rtol=1e-5)


def test_swap_in_and_out_of_a_bert():
    model = _bert()
    dropouts = sum(type(m) is nn.Dropout for m in model.modules())
    with philox_dropout(model) as swapped:
        assert swapped == dropouts > 0
        assert all(type(m) is not nn.Dropout for m in model.modules())
        assert model.config._attn_implementation == ATTENTION_NAME
    assert sum(type(m) is nn.Dropout for m in model.modules()) == dropouts
    assert model.config._attn_implementation == "sdpa"


def test_evaluation_inside_the_swap_is_the_models_own():
    model = _bert().eval()
    ids = torch.tensor([[2, 7, 9, 11, 3, 0], [2, 5, 3, 0, 0, 0]])
    mask = (ids != 0).long()
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=mask).last_hidden_state
        with philox_dropout(model):
            got = model(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.equal(got, expected)


def test_training_inside_the_swap_honours_padding_and_repeats():
    """Under the swap, padded keys still take no part: changing the padding's token ids changes no bit of the
    real tokens' states (transformers builds no mask for an attention name without a mask function). The same
    seed gives the same states; another gives others."""
    model = _bert().train()
    ids = torch.tensor([[2, 7, 9, 11, 3, 0, 0], [2, 5, 3, 0, 0, 0, 0]])
    mask = (ids != 0).long()
    other_padding = torch.where(mask.bool(), ids, torch.full_like(ids, 13))

    def states(input_ids, seed):
        torch.manual_seed(seed)
        return model(input_ids=input_ids, attention_mask=mask).last_hidden_state

    with philox_dropout(model):
        first = states(ids, 0)
        assert torch.equal(states(ids, 0), first)
        assert torch.equal(states(other_padding, 0)[mask.bool()], first[mask.bool()])
        assert not torch.equal(states(ids, 1), first)
        # with dropout, the swap's output is not the eval output
        model.eval()
        with torch.no_grad():
            assert not torch.equal(model(input_ids=ids, attention_mask=mask).last_hidden_state, first.detach())
