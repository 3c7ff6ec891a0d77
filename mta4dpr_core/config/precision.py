"""Which floating-point precision a step runs in: ``auto``, ``off``, ``bf16`` or ``fp16``.

``auto`` (the default for training and the [CLS] warm start) is bf16 autocast where the
device computes bf16 natively and float32 elsewhere:

    auto -> bf16   on CUDA, or on a CPU whose oneDNN build can use AVX512-BF16 or AMX
    auto -> float32 on any other CPU (AVX2-only, or a capability forced down)

Why not bf16 everywhere: on a CPU without native bf16, autocast emulates it. Measured on
one machine, an ``nn.Linear(384, 1536)`` forward and backward over 4,096 tokens took
156 ms in float32 and 6,191 ms under bf16 autocast with the capability forced to AVX2
(``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2``), about 40x slower; an AMD Zen 3
showed 21x. With native bf16 the same step is 2.7x *faster* than float32.

The check asks oneDNN itself (it honours ``ONEDNN_MAX_CPU_ISA``, so a forced AVX2 run is
treated as an AVX2 machine) and falls back to the CPU flags when that query is missing.

>>> import torch
>>> autocast_dtype("off", torch.device("cpu")) is None
True
>>> autocast_dtype("auto", torch.device("cpu")) in (None, torch.bfloat16)
True
"""

from __future__ import annotations

import functools
import os
import warnings

import torch

SETTINGS = ("auto", "off", "bf16", "fp16")
# measured on an AVX2-only CPU (module docstring; bench/student_precision.py prints it on any machine)
EMULATED_BF16_SLOWDOWN = "20-40x slower than float32"


@functools.lru_cache(maxsize=None)
def cpu_native_bf16() -> bool:
    """True when this process's CPU kernels compute bf16 natively (AVX512-BF16 or AMX via oneDNN)."""
    query = getattr(getattr(torch.ops, "mkldnn", None), "_is_mkldnn_bf16_supported", None)
    if query is not None:
        try:
            return bool(query())
        except RuntimeError:
            pass
    if os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper() in (
        "SSE41",
        "AVX",
        "AVX2",
        "AVX2_VNNI",
        "AVX512_CORE",
        "AVX512_CORE_VNNI",
    ):
        return False
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def native_bf16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_native_bf16()


def autocast_dtype(setting: str, device: torch.device, where: str = "training.amp"):
    """The autocast dtype for ``setting`` on ``device`` (None: float32, autocast off)."""
    if setting not in SETTINGS:
        raise ValueError(f"{where}: must be one of {', '.join(SETTINGS)}, got {setting!r}")
    if setting == "off":
        return None
    if setting == "auto":
        return torch.bfloat16 if native_bf16(device) else None
    if setting == "bf16" and device.type == "cpu" and not cpu_native_bf16():
        warnings.warn(
            f"{where}: bf16 on a CPU without native bf16 (no AVX512-BF16/AMX, or the capability is forced down) is "
            f"emulated, {EMULATED_BF16_SLOWDOWN}; use 'auto' to get float32 here",
            RuntimeWarning,
            stacklevel=2,
        )
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[setting]


def dtype_name(dtype) -> str:
    return "float32" if dtype is None else str(dtype).replace("torch.", "")


def describe(device: torch.device | None = None) -> dict:
    """What the manifest records about this machine's precision: capability, native bf16, what ``auto`` picks."""
    device = device or torch.device("cpu")
    return {
        "device": device.type,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16": native_bf16(device),
        "auto": dtype_name(autocast_dtype("auto", device)),
        **{
            k: os.environ[k]
            for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")
            if k in os.environ
        },
    }
