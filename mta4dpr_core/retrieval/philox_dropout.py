"""Dropout with counter-based masks (Philox-4x32-10) for a transformer trained on the CPU.

A dropout mask keeps element ``i`` of a call with key ``k`` iff ``u_i < t``, where ``u_i`` is word ``i mod 4`` of
Philox-4x32-10 (Salmon et al., SC 2011; the generator of cuRAND and of PyTorch's CUDA dropout) at counter
``i div 4`` and ``t = round((1 - p) 2^32)``; kept elements are scaled by ``1 / (1 - p)``, as ``nn.Dropout`` does::

    y_i = x_i * [u_i < t] / (1 - p),        P(keep) = t / 2^32   (within 2^-33 of 1 - p)

Why: PyTorch draws a CPU mask with ``bernoulli_``, whose MKL path it takes only when cpuinfo reports an Intel CPU;
elsewhere (AMD) it is one Mersenne-Twister draw per element on one thread, about 80 M elements/s. A BERT step of
16 queries x 8 passages of 144 tokens draws about 290 M mask elements (attention probabilities are [128, 12, 144,
144] per layer): about a quarter of the step on a 2-core AMD EPYC (``bench/training_step.py``). Philox's mask is
a pure function of ``(key, i)``: computed in one compiled pass with the multiply by the scale, and the same on
every thread count and vector width. The key (two 32-bit words) is drawn from torch's default generator, so a
run seeded per step stays resumable. The stream is another one than torch's: results change as with another seed.

:func:`philox_dropout` swaps a Hugging Face model's ``nn.Dropout`` modules and its attention function (the math
path of SDPA with this dropout on the probabilities) while training, and restores them after. Evaluation
(dropout 0) runs the model's own SDPA: its encodings are unchanged.

>>> import torch
>>> x = torch.ones(2, 5)
>>> y = apply_dropout(x, 0.5, key=(1, 2))
>>> sorted(set(y.flatten().tolist())) == [0.0, 2.0], bool(torch.equal(y, apply_dropout(x, 0.5, key=(1, 2))))
(True, True)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numba
import numpy as np
import torch
from torch import nn

# Philox-4x32's round multipliers and Weyl key increments (Random123)
_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
_W0, _W1 = np.uint64(0x9E3779B9), np.uint64(0xBB67AE85)
# typed constants: numba promotes uint64 with an int64 literal to float64
_MASK32, _32 = np.uint64(0xFFFFFFFF), np.uint64(32)
ATTENTION_NAME = "mta4dpr_philox_sdpa"


@numba.njit(cache=True, nogil=True, inline="always")
def _philox(c0, c1, c2, c3, k0, k1):  # pragma: no cover - compiled
    """Philox-4x32-10 of counter (c0..c3) under key (k0, k1); every argument and result a uint64 below 2^32."""
    for r in range(10):
        if r > 0:
            k0 = (k0 + _W0) & _MASK32
            k1 = (k1 + _W1) & _MASK32
        p0 = _M0 * c0
        p1 = _M1 * c2
        c0, c1, c2, c3 = (p1 >> _32) ^ c1 ^ k0, p1 & _MASK32, (p0 >> _32) ^ c3 ^ k1, p0 & _MASK32
    return c0, c1, c2, c3


@numba.njit(cache=True, nogil=True)
def philox4x32_10(counters: np.ndarray, key: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """Philox-4x32-10 of each row of ``counters`` [n, 4] (uint32) under ``key`` [2]: [n, 4] uint32 words."""
    out = np.empty(counters.shape, np.uint32)
    k0, k1 = np.uint64(key[0]), np.uint64(key[1])
    for n in range(counters.shape[0]):
        words = _philox(
            np.uint64(counters[n, 0]), np.uint64(counters[n, 1]), np.uint64(counters[n, 2]), np.uint64(counters[n, 3]),
            k0, k1,
        )  # fmt: skip
        for j in range(4):
            out[n, j] = words[j]
    return out


@numba.njit(cache=True, nogil=True)
def _dropout_forward(x, out, keep, threshold, scale, k0, k1):  # pragma: no cover - compiled
    """out = x * [u_i < threshold] * scale and keep = [u_i < threshold], element i from counter i // 4."""
    n = x.shape[0]
    zero = np.float32(0.0)
    nought = np.uint64(0)
    # whole blocks of four words, then the tail
    for block in range(n // 4):
        counter = np.uint64(block)
        w0, w1, w2, w3 = _philox(counter & _MASK32, counter >> _32, nought, nought, k0, k1)
        i = 4 * block
        keep[i], keep[i + 1], keep[i + 2], keep[i + 3] = w0 < threshold, w1 < threshold, w2 < threshold, w3 < threshold
        out[i] = x[i] * (scale if w0 < threshold else zero)
        out[i + 1] = x[i + 1] * (scale if w1 < threshold else zero)
        out[i + 2] = x[i + 2] * (scale if w2 < threshold else zero)
        out[i + 3] = x[i + 3] * (scale if w3 < threshold else zero)
    counter = np.uint64(n // 4)
    words = _philox(counter & _MASK32, counter >> _32, nought, nought, k0, k1)
    for i in range(4 * (n // 4), n):
        kept = words[i % 4] < threshold
        keep[i] = kept
        out[i] = x[i] * (scale if kept else zero)


@numba.njit(cache=True, nogil=True)
def _dropout_backward(grad, keep, out, scale):  # pragma: no cover - compiled
    for i in range(grad.shape[0]):
        out[i] = grad[i] * (scale if keep[i] else np.float32(0.0))


def keep_threshold(probability: float) -> int:
    """The 32-bit threshold under which a Philox word keeps its element: round((1 - p) 2^32)."""
    if not 0.0 <= probability < 1.0:
        raise ValueError(f"dropout probability must lie in [0, 1), got {probability}")
    return round((1.0 - probability) * 2**32)


def draw_key(generator: torch.Generator | None = None) -> tuple[int, int]:
    """Two 32-bit key words from torch's (default) generator."""
    words = torch.randint(0, 2**32, (2,), dtype=torch.int64, generator=generator)
    return int(words[0]), int(words[1])


class _PhiloxDropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, probability, key):
        flat = x.contiguous().view(-1)
        out = torch.empty_like(flat)
        keep = torch.empty(flat.shape, dtype=torch.bool)
        scale = np.float32(1.0 / (1.0 - probability))
        _dropout_forward(
            flat.numpy(), out.numpy(), keep.numpy(), np.uint64(keep_threshold(probability)), scale,
            np.uint64(key[0]), np.uint64(key[1]),
        )  # fmt: skip
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return out.view(x.shape)

    @staticmethod
    def backward(ctx, grad):
        (keep,) = ctx.saved_tensors
        flat = grad.contiguous().view(-1)
        out = torch.empty_like(flat)
        _dropout_backward(flat.numpy(), keep.numpy(), out.numpy(), ctx.scale)
        return out.view(grad.shape), None, None


def applies(x: torch.Tensor) -> bool:
    """Whether the compiled mask handles ``x``: a float32 CPU tensor (others keep torch's own dropout)."""
    return x.device.type == "cpu" and x.dtype == torch.float32


def apply_dropout(x: torch.Tensor, probability: float, key: tuple[int, int] | None = None) -> torch.Tensor:
    """``x`` with Philox dropout (key drawn from torch's default generator unless given); torch's own for a tensor
    the compiled pass does not handle, and ``x`` itself at probability 0."""
    if probability == 0.0:
        return x
    if not applies(x):
        return nn.functional.dropout(x, probability, training=True)
    return _PhiloxDropout.apply(x, probability, draw_key() if key is None else key)


class PhiloxDropout(nn.Dropout):
    """``nn.Dropout`` with :func:`apply_dropout`'s masks while training."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return apply_dropout(x, self.p) if self.training else x


def math_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scale: float,
    probability: float,
) -> torch.Tensor:
    """softmax(q k^T scale + mask) v with :func:`apply_dropout` on the probabilities ([B, H, L, d]); a boolean
    mask marks the keys that take part, as SDPA's does. As SDPA's own math path: the scale folded into the
    queries (a [B, H, L, d] product, not one over [B, H, L, L]) and the mask added in place, as -inf."""
    scores = torch.matmul(query * scale, key.transpose(-2, -1))
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            attention_mask = torch.zeros(attention_mask.shape, dtype=scores.dtype).masked_fill_(
                ~attention_mask, float("-inf")
            )
        scores.add_(attention_mask)
    return torch.matmul(apply_dropout(torch.softmax(scores, dim=-1), probability), value)


def philox_sdpa_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """Hugging Face attention function: :func:`math_attention` (SDPA's math path, which SDPA itself takes on the
    CPU with dropout) while training; otherwise the model's SDPA itself."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward  # noqa: PLC0415 (lazy: transformers loads in seconds; a static student never needs it)

    if dropout == 0.0 or not applies(query):
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    scale = query.shape[-1] ** -0.5 if scaling is None else scaling
    return math_attention(query, key, value, attention_mask, scale, dropout).transpose(1, 2).contiguous(), None


def _register_attention() -> None:
    from transformers import AttentionInterface  # noqa: PLC0415 (lazy: as above)
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask  # noqa: PLC0415 (lazy: as above)

    AttentionInterface.register(ATTENTION_NAME, philox_sdpa_attention)
    # without a mask function of its own name, transformers builds no padding mask at all
    ALL_MASK_ATTENTION_FUNCTIONS.register(ATTENTION_NAME, sdpa_mask)


@contextlib.contextmanager
def philox_dropout(model: nn.Module) -> Iterator[int]:
    """While inside: every ``nn.Dropout`` of ``model`` draws Philox masks, and a Hugging Face model's SDPA attention
    runs :func:`philox_sdpa_attention`; yields how many dropout modules were swapped. Restored on exit."""
    swapped = []
    for parent in model.modules():
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:
                replacement = PhiloxDropout(child.p, child.inplace)
                replacement.train(child.training)
                setattr(parent, name, replacement)
                swapped.append((parent, name, child))
    configs = []
    for module in model.modules():
        config = getattr(module, "config", None)
        if getattr(config, "_attn_implementation", None) == "sdpa" and all(config is not c for c, _ in configs):
            configs.append((config, config._attn_implementation))
    if configs:
        _register_attention()
        for config, _ in configs:
            config._attn_implementation = ATTENTION_NAME
    try:
        yield len(swapped)
    finally:
        for config, implementation in configs:
            config._attn_implementation = implementation
        for parent, name, child in swapped:
            child.train(getattr(parent, name).training)
            setattr(parent, name, child)


def dropout_masks(model: nn.Module, choice: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The dropout masks a training loop draws (``training.dropout_masks``, ``warm_start.dropout_masks``):
    :func:`philox_dropout` for ``"philox"`` on the CPU; otherwise nothing is swapped and torch draws them (its own
    Philox on CUDA)."""
    return philox_dropout(model) if choice == "philox" and device.type == "cpu" else contextlib.nullcontext()
