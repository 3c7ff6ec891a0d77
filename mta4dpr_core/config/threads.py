"""One thread per process, for the processes that run side by side on the cores (grid workers, bootstrap workers).

A forked worker inherits its parent's thread pools: torch's intra-op pool, and the OpenMP and OpenBLAS
pools of numpy and FAISS, each sized to every core. Two workers on two cores then run four or more
threads that wait on each other: the claims bootstrap (numpy matrix products) took 11.3 s for four
generator seeds in two workers against 4.7 s with one thread each. The limits change who computes,
not what: FAISS's search and, on Intel CPUs, numpy's matrix products give the same bits with one thread as
with two; OpenBLAS's kernels for AMD Zen differ in the last bits (``tests/config/test_threads.py``). Either
way a run uses the same thread counts every time, so its results repeat bit for bit on one machine.
"""

from __future__ import annotations

import sys


def one_thread_per_process():
    """Limit torch, the BLAS libraries and OpenMP (FAISS) of this process to one thread each."""

    import torch  # noqa: PLC0415 (lazy: torch not loaded by this module)
    from threadpoolctl import threadpool_limits  # noqa: PLC0415 (lazy: threadpoolctl not loaded by this module)

    torch.set_num_threads(1)
    threadpool_limits(limits=1)  # OpenBLAS / MKL / OpenMP libraries loaded so far (numpy's, FAISS's)
    if "faiss" in sys.modules:  # FAISS reads its own OpenMP setting
        sys.modules["faiss"].omp_set_num_threads(1)
