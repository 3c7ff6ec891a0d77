"""Keep freed memory in the heap: glibc's malloc settings for PyTorch on the CPU.

PyTorch's CPU allocator takes every tensor from ``malloc``. glibc serves a large request with a fresh mapping
(above its mmap threshold, which starts at 128 KB and adapts up to 32 MB) and gives the memory back to the
system on ``free``, so a transformer step that allocates its activations anew (MiniLM's attention probabilities
for 128 passages of 144 tokens are 127 MB in float32) faults every page back in, zero-filled, at every step.
:func:`keep_freed_memory` turns that off for the process: no mappings for large requests (``M_MMAP_MAX`` 0) and
up to 1 GB of freed memory kept at the top of the heap (``M_TRIM_THRESHOLD``). A reused 64 MB tensor then faults
no page in (``tests/config/test_allocator.py``), and the arithmetic is untouched: the same bits come out.

Measured on a 2-core AMD EPYC (``bench/perf_notes.md``): one all-MiniLM-L6-v2 training step (16 queries x 8
passages, lengths 32/144, float32) 14.4 s median over 5 steps with glibc's defaults (17.5 s falling to 13.1 s as
glibc's threshold adapts), 11.35 s with these settings from the first step on.

The price: the process keeps its peak heap (up to 1 GB of it free) instead of returning it. Set
``MTA4DPR_KEEP_FREED_MEMORY=0`` to keep glibc's defaults (e.g. to time them). Elsewhere than glibc (macOS, musl)
this does nothing.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_MAX = -4
TRIM_THRESHOLD = 1 << 30
SWITCH = "MTA4DPR_KEEP_FREED_MEMORY"

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Apply the settings once per process; True where glibc took them (a forked worker inherits them)."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get(SWITCH, "1") == "0" or not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return _applied
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return _applied
    _applied = mallopt(M_MMAP_MAX, 0) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    return _applied
