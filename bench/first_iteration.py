"""A profile's first MTA4DPR iteration, cold, timed phase by phase on the machine (and CPU capability) it runs on.

Builds the profile's Setup with empty caches (a temporary cache and runs directory), then times:
the setup (data loading, frozen scorers), the student's [CLS] warm start (``--warm-start-steps``
of it, plus encoding its 8,000 target texts once), and one iteration of
Algorithm 1 (retrieval, RRF, teacher scores, training, evaluation). It prints the precision
``amp: auto`` resolved to. Run it once under the machine's own capability and once forced down
to compare (the forced run is what an AVX2-only CPU sees):

    .venv/bin/python bench/first_iteration.py --profile mini_transformer --json /tmp/native.json
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 \
        .venv/bin/python bench/first_iteration.py --profile mini_transformer --json /tmp/avx2.json
    .venv/bin/python bench/first_iteration.py --compare /tmp/native.json /tmp/avx2.json
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time

from common import machine, quiet_transformers, write_json


def measure(args) -> dict:
    quiet_transformers()
    from mta4dpr_core.config import precision
    from mta4dpr_core.config.params import from_mapping, load_params, profile_path
    from mta4dpr_core.experiments.experiment import Setup
    from mta4dpr_core.experiments.iteration import run_mta4dpr
    from mta4dpr_core.retrieval.encoders import default_device

    params = load_params(profile_path(args.profile))
    student = params["models"]["student"]
    profile_steps = (student.get("warm_start") or {}).get("steps")
    scratch = tempfile.mkdtemp(prefix="first-iteration-")
    raw = copy.deepcopy(params)
    raw["iterations"]["count"] = 1
    raw["seeds"] = [args.seed]
    raw["output"] = {
        **raw["output"],
        "cache_dir": f"{scratch}/cache",
        "runs_dir": f"{scratch}/runs",
        "results_dir": f"{scratch}/results",
    }
    if profile_steps:
        raw["models"]["student"] = {**student, "warm_start": {**student["warm_start"], "steps": args.warm_start_steps}}
    params = from_mapping(raw, source=f"{args.profile} (first iteration)")
    device = default_device()
    result = {
        "profile": args.profile,
        "machine": machine(),
        "precision": precision.describe(device),
        "training_precision": precision.dtype_name(precision.autocast_dtype(params["training"]["amp"], device)),
    }
    started = time.perf_counter()
    setup = Setup.from_params(params)
    result["setup_seconds"] = time.perf_counter() - started
    if profile_steps:
        started = time.perf_counter()
        setup.new_student(args.seed)  # computes and caches the warm start; the run below loads it
        seconds = time.perf_counter() - started
        # includes encoding the warm start's 8,000 target texts once (a fixed cost), so no per-step extrapolation
        result.update(
            warm_start_steps=args.warm_start_steps, warm_start_seconds=seconds, profile_warm_start_steps=profile_steps
        )
    started = time.perf_counter()
    run = run_mta4dpr(setup, args.seed)
    result["iteration_seconds"] = time.perf_counter() - started
    result["test_nDCG@10"] = run.final["test"]["nDCG@10"] if "test" in (run.final or {}) else None
    return result


def compare(paths):
    runs = [json.load(open(p)) for p in paths]
    print(
        "| capability | training precision | setup (cold encodings) s | warm start s (steps, incl. target encoding) | iteration 1 s |"
    )
    print("|---|---|---|---|---|")
    for r in runs:
        print(
            f"| {r['precision']['cpu_capability']} | {r['training_precision']} | {r['setup_seconds']:.0f} | "
            f"{r.get('warm_start_seconds', float('nan')):.0f} ({r.get('warm_start_steps')}) | {r['iteration_seconds']:.0f} |"
        )
    base = runs[0]
    for r in runs[1:]:
        print(
            f"{r['precision']['cpu_capability']} / {base['precision']['cpu_capability']}: iteration 1 "
            f"{r['iteration_seconds'] / base['iteration_seconds']:.2f}x, warm start "
            f"{r.get('warm_start_seconds', 0) / max(base.get('warm_start_seconds', 0), 1e-9):.2f}x, setup "
            f"{r['setup_seconds'] / base['setup_seconds']:.2f}x"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="mini_transformer")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--warm-start-steps", type=int, default=40, help="warm-start steps timed (extrapolated to the profile's)"
    )
    parser.add_argument("--json", default=None)
    parser.add_argument("--compare", nargs="+", default=None, help="print a comparison of earlier --json outputs")
    args = parser.parse_args()
    if args.compare:
        compare(args.compare)
        return
    result = measure(args)
    print(json.dumps(result, indent=1, default=str))
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()
