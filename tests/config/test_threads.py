"""``one_thread_per_process`` limits every thread pool of a process to one thread, and changes no result:
FAISS's exact search gives the same bits with one thread as with all cores, and so do numpy's matrix products,
except under OpenBLAS's kernels for AMD Zen: there the two-thread product of a [1024 x 300] by [300 x 340]
matrix differs from the one-thread product in the last bits (6e-5 on values of about 30, measured on a 2-core
AMD EPYC on 2026-12-06), so on Zen the products are compared to float32 rounding. A run computes the same
things with the same thread counts every time, so its tables stay bit-identical on one machine either way."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import numpy as np, torch
from threadpoolctl import threadpool_info
from mta4dpr_core.retrieval.search import build_index, exact_search
from mta4dpr_core.config.threads import one_thread_per_process

rng = np.random.default_rng(0)
docs = rng.standard_normal((3000, 64)).astype(np.float32)
queries = rng.standard_normal((200, 64)).astype(np.float32)
counts = rng.integers(0, 4, (1024, 300)).astype(np.float32)
matrix = rng.standard_normal((300, 340)).astype(np.float32)

def compute():
    scores, indices = exact_search(queries, k=50, index=build_index(docs))
    return scores, indices, counts @ matrix

before = compute()
one_thread_per_process()
after = compute()
assert torch.get_num_threads() == 1
assert all(pool["num_threads"] == 1 for pool in threadpool_info()), threadpool_info()
zen = any(pool.get("architecture") == "Zen" for pool in threadpool_info() if pool["internal_api"] == "openblas")
for name, a, b in zip(("scores", "indices", "product"), before, after):
    if name == "product" and zen:
        assert np.allclose(a, b, rtol=1e-6, atol=1e-6 * np.abs(a).max()), np.abs(a - b).max()
    else:
        assert np.array_equal(a, b), name
print("same")
"""


def test_one_thread_per_process_limits_every_pool_and_changes_no_result():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "same"
