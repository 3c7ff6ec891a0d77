"""The inputs of a profile's first training iteration, saved and compared across machines.

A static student's training is not chaotic: the compiled pass and autograd differ by float rounding at every
step and still end 150 steps within 4e-7 of each other (``docs/cold-runs.md``). So when two CPUs give different
training traces from the first steps on, the inputs differ. This tool writes what iteration 1 trains on, for one
seed, as arrays (candidate passages, positives, teacher and assistant scores, fitted temperatures) with their
digests, and compares two such files: which query rows hold other candidates, the largest score difference.

    .venv/bin/python tools/data_fingerprint.py write --profile mini --out results/fingerprints/mini-epyc.npz
    .venv/bin/python tools/data_fingerprint.py compare results/fingerprints/mini-epyc.npz other.npz

``--runs-dir`` builds everything in a separate run store (nothing cached is reused there), e.g. under forced
instruction sets (``ATEN_CPU_CAPABILITY``, ``ONEDNN_MAX_CPU_ISA``, ``MKL_ENABLE_INSTRUCTIONS``) with
``MTA4DPR_CACHE`` pointing to an empty folder too.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ARRAYS = ("candidates", "is_positive", "query_rows", "teacher_scores", "assistant_scores", "temperatures")


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def write(profile: str, seed: int, out: Path, runs_dir: str | None) -> dict:
    from mta4dpr_core.config.params import load_params, profile_path
    from mta4dpr_core.experiments.experiment import Setup
    from mta4dpr_core.experiments.iteration import fitted_temperatures
    from mta4dpr_core.method.construction import eval_query_mask

    params = load_params(profile_path(profile))
    if runs_dir:
        params["output"]["runs_dir"] = str(Path(runs_dir).resolve())
    setup = Setup.from_params(params)
    construction = params["construction"]
    pool = list(setup.assistants)
    data = setup.training_data(pool, eval_query_mask(setup.train, construction, seed), construction)
    arrays = {
        "candidates": np.asarray(data.candidates),
        "is_positive": np.asarray(data.is_positive),
        "query_rows": np.asarray(data.query_rows),
        "teacher_scores": np.asarray(data.teacher_scores, np.float32),
        "assistant_scores": np.asarray(data.assistant_scores, np.float32),
        "temperatures": np.asarray(list(fitted_temperatures(params, data, pool).values()), np.float64),
    }
    meta = {
        "profile": profile,
        "seed": seed,
        "cpu": _cpu(),
        "forced": {
            k: os.environ[k]
            for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "NUMBA_CPU_NAME")
            if k in os.environ
        },
        "digests": {name: hashlib.sha256(array.tobytes()).hexdigest()[:16] for name, array in arrays.items()},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=out.parent, suffix=".npz", delete=False) as handle:
        np.savez_compressed(handle, meta=json.dumps(meta), **arrays)
    os.chmod(handle.name, 0o644)
    os.replace(handle.name, out)
    return meta


def compare(first: Path, second: Path) -> dict:
    a, b = np.load(first), np.load(second)
    report = {"files": [str(first), str(second)], "meta": [json.loads(str(x["meta"])) for x in (a, b)]}
    if a["candidates"].shape != b["candidates"].shape:
        report["candidates"] = f"shapes differ: {a['candidates'].shape} vs {b['candidates'].shape}"
        return report
    rows = (a["candidates"] != b["candidates"]).any(1)
    same_set = np.array([set(x) == set(y) for x, y in zip(a["candidates"], b["candidates"], strict=True)])
    report["query rows"] = int(len(rows))
    report["rows with other candidates or order"] = int(rows.sum())
    report["rows with another candidate set"] = int((~same_set).sum())
    comparable = ~rows  # scores compare column by column where the candidates are the same
    for name in ("teacher_scores", "assistant_scores"):
        x, y = a[name], b[name]
        x, y = (x[comparable], y[comparable]) if x.ndim == 2 else (x[:, comparable], y[:, comparable])
        # padding slots hold NaN on both sides; a NaN on one side only is a difference
        both_missing = np.isnan(x) & np.isnan(y)
        gaps = np.where(both_missing, 0.0, np.abs(x.astype(np.float64) - y))
        report[f"{name}: largest difference (same candidates)"] = float(
            np.nan_to_num(gaps, nan=np.inf).max(initial=0.0)
        )
        report[f"{name}: values that differ"] = int((gaps != 0).sum())
    report["temperatures"] = [a["temperatures"].tolist(), b["temperatures"].tolist()]
    report["is_positive equal"] = bool(np.array_equal(a["is_positive"], b["is_positive"]))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    writer = commands.add_parser("write", help="save iteration 1's inputs of a profile and seed")
    writer.add_argument("--profile", default="mini")
    writer.add_argument("--seed", type=int, default=13)
    writer.add_argument("--out", type=Path, required=True)
    writer.add_argument("--runs-dir", default=None, help="a separate run store (builds everything anew there)")
    comparer = commands.add_parser("compare", help="where two saved inputs differ")
    comparer.add_argument("first", type=Path)
    comparer.add_argument("second", type=Path)
    args = parser.parse_args()
    if args.command == "write":
        print(json.dumps(write(args.profile, args.seed, args.out, args.runs_dir), indent=1))
    else:
        print(json.dumps(compare(args.first, args.second), indent=1))


if __name__ == "__main__":
    main()
