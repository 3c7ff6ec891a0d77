"""glibc's malloc settings (config/allocator.py): a freed large tensor comes back from the heap, the bits stay.

With glibc's defaults every allocation above 32 MB is a fresh mapping, faulted in page by page each time."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from mta4dpr_core.config.allocator import SWITCH

# a child that applies the settings (or not), then allocates and frees a 64 MB tensor 30 times (a training step's
# activations, step after step), and prints whether the settings took, the minor page faults of the last five
# allocations and a digest of some arithmetic. The heap first grows (a freed chunk is a little short of an aligned
# request of the same size, until free neighbours merge): on this machine every allocation from the 12th on
# reused freed memory, where glibc's defaults fault all 16,384 pages in again every time.
CHILD = """
import hashlib, resource, torch
from mta4dpr_core.config.allocator import keep_freed_memory
applied = keep_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
last = 0
for step in range(30):
    before = faults()
    x = torch.ones(16 << 20)
    kept = torch.ones(1000)  # something small allocated after it, as a step's bookkeeping is
    last += faults() - before if step >= 25 else 0
    del x
g = torch.Generator().manual_seed(0)
a, b = torch.randn(300, 200, generator=g), torch.randn(200, 100, generator=g)
print(applied, last, hashlib.sha1((a @ b).softmax(-1).numpy().tobytes()).hexdigest())
"""
PAGES = (64 << 20) // 4096


def _child(switch):
    env = {**os.environ, SWITCH: switch}
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    applied, faults, digest = out.stdout.split()
    return applied == "True", int(faults), digest


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt's settings are glibc's")
def test_a_freed_large_tensor_is_reused_without_faulting_its_pages_in_again():
    applied, kept_faults, kept_digest = _child("1")
    assert applied
    assert kept_faults < PAGES, f"{kept_faults} page faults for the last five 64 MB tensors ({PAGES} pages each)"
    off, default_faults, default_digest = _child("0")
    assert not off
    assert kept_digest == default_digest  # where the memory comes from changes no float
