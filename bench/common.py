"""Shared helpers of the benchmark scripts: machine description, matmul peak, timing, JSON output."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("MTA4DPR_PROGRESS", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SCIFACT = ROOT.parent / "shared" / "data" / "scifact"


def scifact_dir() -> Path:
    """The SciFact collection: $MTA4DPR_SCIFACT, else ../shared/data/scifact beside the repository."""
    return Path(os.environ.get("MTA4DPR_SCIFACT", SCIFACT))


def quiet_transformers():
    """Warnings and library logs off; transformers' own through the core's switch, which does not import it where
    no model is loaded yet (frozen scorers load theirs at first use)."""
    import logging
    import warnings

    from mta4dpr_core.report.notebook import quiet_transformers as quiet_core

    warnings.filterwarnings("ignore")
    for name in ("transformers", "sentence_transformers", "torch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    quiet_core()


def machine() -> dict:
    """The machine, and the malloc settings every run applies (``config/allocator.py``), applied here too so that
    a benchmark times what a run does; ``MTA4DPR_KEEP_FREED_MEMORY=0`` times glibc's defaults instead."""
    import torch

    from mta4dpr_core.config.allocator import keep_freed_memory

    heap_kept = keep_freed_memory()

    model = "unknown"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_average_1m": round(load[0], 2),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "heap_kept": heap_kept,
    }


def matmul_flops(size: int = 2048, repeats: int = 8, dtype=None) -> float:
    """Measured FLOP/s of a large square float32 ``torch.matmul`` (best of ``repeats``)."""
    import torch

    dtype = dtype or torch.float32
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def median(values):
    return statistics.median(values) if values else float("nan")


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def write_json(path, obj):
    if path:
        from mta4dpr_core.store.atomic import atomic_write_json

        atomic_write_json(path, obj)


def noise_note(info: dict) -> str:
    return (
        f"Machine: {info['cpu']}, {info['cores']} cores, torch {info['torch']} with {info['torch_threads']} threads; "
        f"malloc: {'freed memory kept in the heap (config/allocator.py)' if info.get('heap_kept') else 'glibc defaults'}; "
        f"1-min load average {info['load_average_1m']} at the start (the cores are shared: figures are noisy)."
    )
