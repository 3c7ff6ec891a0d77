"""Peak memory of the training loop's data path at two data sizes: it must not grow with the data.

For each size (default 50k and 500k queries) a child process writes a synthetic
TrainingData directory in the on-disk format ``TrainingData.save`` produces
(``.npy`` + ``.sha256`` + ``meta.json``; 101 candidates per query, 1 teacher + 4
assistants = 5 scorers; written in chunks through ``numpy.lib.format.open_memmap``).
A fresh child then opens it with ``TrainingData.load`` (memory-mapped, checksums
verified) and runs what ``train_student`` runs per step before the encoder:
``sample_batch`` -> ``batch_distributions`` (softmax, 11 fused assistants) ->
``select_assistant`` (KL) and the batch's document gather, for ``--steps`` steps
of 64 queries x (1 + 34) candidates. The child reports its peak RSS
(``getrusage(RUSAGE_SELF).ru_maxrss``), its RSS after imports (baseline), and the
peak anonymous / file-backed RSS sampled from ``/proc/self/status``. Batch rows
are read with ``construction.take_rows`` (``os.preadv``) as in ``train_student``;
``--contrast`` adds runs that gather rows through the mapping (plain fancy
indexing: every page fault maps a whole page-cache folio) and with a full load.

The query texts (``meta.json``) are left empty here: they are the one part of
TrainingData held in memory (about 40 MB of Python strings for 500k MS MARCO
queries); the score arrays are what grows to gigabytes.

Usage::

    .venv/bin/python bench/peak_memory.py                # 50k and 500k
    .venv/bin/python bench/peak_memory.py --sizes 20000 200000 --steps 200
    .venv/bin/python bench/peak_memory.py --contrast     # also: gather through the mapping, full load
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WIDTH, ASSISTANTS, N_DOCS, CHUNK = 101, 4, 8_841_823, 20_000


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def build(directory: Path, n: int):
    """Write a TrainingData directory with ``n`` queries chunk by chunk (bounded memory)."""
    from numpy.lib.format import open_memmap

    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(n)
    shapes = {
        "query_rows": ((n,), np.int64),
        "candidates": ((n, WIDTH), np.int64),
        "is_positive": ((n, WIDTH), np.bool_),
        "teacher_scores": ((n, WIDTH), np.float32),
        "assistant_scores": ((ASSISTANTS, n, WIDTH), np.float32),
        "origin": ((n,), np.int8),
    }
    arrays = {
        name: open_memmap(directory / f"{name}.npy", mode="w+", dtype=dtype, shape=shape)
        for name, (shape, dtype) in shapes.items()
    }
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        rows = stop - start
        arrays["query_rows"][start:stop] = np.arange(start, stop)
        candidates = rng.integers(0, N_DOCS, size=(rows, WIDTH), dtype=np.int64)
        candidates[rng.random(rows) < 0.05, -3:] = -1  # a few short lists (padding)
        arrays["candidates"][start:stop] = candidates
        positive = np.zeros((rows, WIDTH), bool)
        positive[:, 0] = True
        positive[rng.random(rows) < 0.1, 1] = True  # some queries have two positives
        arrays["is_positive"][start:stop] = positive
        arrays["teacher_scores"][start:stop] = rng.standard_normal((rows, WIDTH), dtype=np.float32) * 3
        for a in range(ASSISTANTS):
            arrays["assistant_scores"][a, start:stop] = rng.standard_normal((rows, WIDTH), dtype=np.float32) * (a + 1)
        arrays["origin"][start:stop] = 0
    for array in arrays.values():
        array.flush()
    del arrays
    for name in shapes:
        path = directory / f"{name}.npy"
        Path(str(path) + ".sha256").write_text(_sha256(path) + "\n")
    (directory / "meta.json").write_text(
        json.dumps(
            {"query_ids": [], "query_texts": [], "assistant_names": [f"a{i}" for i in range(ASSISTANTS)], "stats": {}}
        )
    )


def _status():
    """Current (anonymous, file-backed) RSS in MiB from /proc/self/status."""
    values = {}
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(("RssAnon:", "RssFile:", "VmRSS:")):
                key, value = line.split(":")
                values[key] = int(value.split()[0]) / 1024
    return values


def measure(directory: Path, steps: int, queries: int, negatives: int, mmap: bool, reads: bool = True):
    from mta4dpr_core.method import training
    from mta4dpr_core.method.construction import TrainingData, take_rows
    from mta4dpr_core.method.fusion import softmax
    from mta4dpr_core.method.selection import select_assistant
    from mta4dpr_core.method.training import TrainConfig, batch_distributions, sample_batch

    if not reads:  # contrast: gather batch rows through the mapping (the code before take_rows)
        take_rows = training.take_rows = lambda array, rows: np.asarray(array[rows])

    baseline = _status()
    t0 = time.perf_counter()
    data = TrainingData.load(directory, mmap=mmap)
    load_seconds = time.perf_counter() - t0
    assert data is not None, "training data rejected"
    config = TrainConfig(
        queries_per_batch=queries, negatives_per_query=negatives, assistant_temperatures=[0.05, 0.05, 1.0, 1.0]
    )
    rows = np.arange(len(data))
    peak_anon = peak_file = 0.0
    chosen_counts = np.zeros(2**ASSISTANTS - 1, int)
    t1 = time.perf_counter()
    for step in range(steps):
        rng = np.random.default_rng([config.seed, 1, step])
        batch_rows, columns = sample_batch(data, rows, config, rng)
        teacher, candidates = batch_distributions(data, batch_rows, columns, config)
        chosen, _ = select_assistant(softmax(teacher), candidates, "kl", config.rbo_p, rng)
        docs = np.take_along_axis(take_rows(data.candidates, batch_rows), columns, 1)
        assert docs.shape == (queries, negatives + 1) and candidates.shape == (
            2**ASSISTANTS - 1,
            queries,
            negatives + 1,
        )
        chosen_counts[chosen] += 1
        if step % 10 == 0 or step == steps - 1:
            now = _status()
            peak_anon, peak_file = max(peak_anon, now["RssAnon"]), max(peak_file, now["RssFile"])
    loop_seconds = time.perf_counter() - t1
    print(
        json.dumps(
            {
                "queries": len(data),
                "mmap": mmap,
                "reads": reads,
                "steps": steps,
                "bytes_on_disk": sum(p.stat().st_size for p in directory.glob("*.npy")),
                "baseline_rss_mb": baseline["VmRSS"],
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "peak_anon_mb": peak_anon,
                "peak_file_mb": peak_file,
                "load_seconds": load_seconds,
                "ms_per_step": 1000 * loop_seconds / steps,
                "assistants_chosen": int((chosen_counts > 0).sum()),
            }
        )
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 500_000])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--queries", type=int, default=64)
    parser.add_argument("--negatives", type=int, default=34)
    parser.add_argument(
        "--dir", default=None, help="where to write the synthetic data (default: a temporary directory, removed after)"
    )
    parser.add_argument(
        "--full-load", action="store_true", help="also measure mmap=False (loads everything; for contrast)"
    )
    parser.add_argument("--contrast", action="store_true", help="--full-load and --through-mapping")
    parser.add_argument("--json", default=None, help="write the measurements to this JSON file")
    parser.add_argument("--build", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--measure", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--no-mmap", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--through-mapping",
        action="store_true",
        help="also measure gathering rows through the mapping instead of take_rows (for contrast)",
    )
    args = parser.parse_args()
    if args.contrast:
        args.full_load = args.through_mapping = True
    if args.build:
        build(Path(args.build), args.sizes[0])
        return
    if args.measure:
        measure(
            Path(args.measure),
            args.steps,
            args.queries,
            args.negatives,
            mmap=not args.no_mmap,
            reads=not args.through_mapping,
        )
        return

    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="mta4dpr-peakmem-"))
    env = {**os.environ, "MTA4DPR_PROGRESS": "0"}
    results = []
    try:
        for n in args.sizes:
            directory = root / f"n{n}"
            if not (directory / "meta.json").exists():
                t0 = time.perf_counter()
                subprocess.run(
                    [sys.executable, __file__, "--build", str(directory), "--sizes", str(n)], check=True, env=env
                )
                print(f"built {n} queries in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            modes = [("mmap", [])]
            if args.through_mapping:
                modes.append(("mmap, rows gathered through the mapping", ["--through-mapping"]))
            if args.full_load:
                modes.append(("full load", ["--no-mmap"]))
            for label, flags in modes:
                command = [
                    sys.executable,
                    __file__,
                    "--measure",
                    str(directory),
                    "--steps",
                    str(args.steps),
                    "--queries",
                    str(args.queries),
                    "--negatives",
                    str(args.negatives),
                ] + flags
                out = subprocess.run(command, check=True, env=env, capture_output=True, text=True).stdout
                results.append({**json.loads(out.strip().splitlines()[-1]), "label": label})
                print(f"measured {n} ({label}): {results[-1]}", file=sys.stderr)
    finally:
        if not args.dir:
            shutil.rmtree(root, ignore_errors=True)

    mapped = [r for r in results if r["label"] == "mmap"]
    small, large = mapped[0], mapped[-1]
    lines = [
        "### Peak memory of the data path (sample_batch + batch_distributions + select_assistant)",
        "",
        f"{args.steps} steps of {args.queries} queries x {args.negatives + 1} candidates, 1 teacher + {ASSISTANTS} assistants "
        f"({2**ASSISTANTS - 1} candidate distributions), {WIDTH} candidates stored per query.",
        "",
        "| queries | on disk | load | peak RSS | RSS after imports | peak RSS - baseline | peak anon RSS | peak file RSS | ms/step |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['queries']:,} | {r['bytes_on_disk'] / 2**20:,.0f} MiB | {r['label']} | "
            f"{r['peak_rss_mb']:,.0f} MiB | {r['baseline_rss_mb']:,.0f} MiB | {r['peak_rss_mb'] - r['baseline_rss_mb']:,.0f} MiB | "
            f"{r['peak_anon_mb']:,.0f} MiB | {r['peak_file_mb']:,.0f} MiB | {r['ms_per_step']:.2f} |"
        )
    data_ratio = large["queries"] / small["queries"]
    rss_ratio = large["peak_rss_mb"] / small["peak_rss_mb"]
    lines += [
        "",
        f"- data size ratio: {data_ratio:.1f}x; peak RSS ratio (memory-mapped): **{rss_ratio:.2f}x**; "
        f"peak anonymous RSS ratio: {large['peak_anon_mb'] / small['peak_anon_mb']:.2f}x",
        f"- bounded: {'yes' if rss_ratio < 1.25 else 'NO'} (peak RSS grows {rss_ratio:.2f}x while the data grows {data_ratio:.0f}x)",
    ]
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(
            json.dumps({"results": results, "rss_ratio": rss_ratio, "data_ratio": data_ratio}, indent=2)
        )


if __name__ == "__main__":
    main()
