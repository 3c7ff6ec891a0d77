"""MTA4DPR's cost over teacher-only KD at equal steps, measured cold, as the paper's Table 8 does.

The paper (Table 8, a 6-layer student on MS MARCO) reports training 7.53 h vs 7.12 h (+5.8%) and
data construction 12.9 h vs 8.2 h (+57%) for MTA4DPR against traditional KD. Here both runs of
the profile (one seed) start from an empty cache each (no encodings, pair scores or runs reused
between them), and the run history's own clocks give the time spent building training data
(retrieval, RRF, teacher and assistant scores, mining) and training (steps, selection included).
The DL pools are left out: they are test sets, not training cost.

What it can and cannot compare: this package's "no assistant" baseline is teacher-only KD with the
*same* data construction as MTA4DPR (the assistants still retrieve the negatives, so that the two
differ only in the loss; equal data work), so its data-construction overhead is expected to be
near zero by design. The paper's traditional KD builds its data without assistants, which is
where its +57% comes from; that baseline is not a variant here, so the +57% is not tested.

    .venv/bin/python bench/cost_overhead.py --profile mini --seed 13 --out results/mini
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time

from common import machine, quiet_transformers, write_json

PAPER = {"training": (7.53, 7.12), "data construction": (12.9, 8.2)}  # hours: MTA4DPR, traditional KD (Table 8)


def cold_run(profile: str, variant: str, seed: int) -> dict:
    from mta4dpr_core.config.params import from_mapping, load_params, profile_path
    from mta4dpr_core.experiments.experiment import Setup
    from mta4dpr_core.experiments.iteration import run_mta4dpr

    raw = copy.deepcopy(load_params(profile_path(profile)))
    scratch = tempfile.mkdtemp(prefix=f"cost-{variant}-")
    raw["seeds"] = [seed]
    raw["data"]["extra_test"] = []
    raw["output"] = {
        **raw["output"],
        "cache_dir": f"{scratch}/cache",
        "runs_dir": f"{scratch}/runs",
        "results_dir": f"{scratch}/results",
    }
    params = from_mapping(raw, source=f"{profile} (cold cost, {variant})")
    started = time.perf_counter()
    setup = Setup.from_params(params)
    setup_seconds = time.perf_counter() - started
    started = time.perf_counter()
    run = run_mta4dpr(setup, seed, variant)
    history = run.history
    return {
        "variant": variant,
        "setup seconds": setup_seconds,
        "run seconds": time.perf_counter() - started,
        "data construction seconds": sum(h.construction_seconds for h in history),
        "training seconds": sum(h.training_seconds for h in history),
        "selection seconds": sum(h.select_seconds for h in history),
        "steps": len(run.get("selections", [])) or None,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="mini")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--out", default=None, help="write cost_overhead.md and .json here")
    args = parser.parse_args()
    quiet_transformers()
    runs = {variant: cold_run(args.profile, variant, args.seed) for variant in ("mta4dpr", "no_assistants")}
    ours, base = runs["mta4dpr"], runs["no_assistants"]
    lines = [
        f"## MTA4DPR's cost over teacher-only KD at equal steps, cold (`{args.profile}`, seed {args.seed}; "
        f"{machine()['cpu']}, {machine()['cores']} cores)",
        "",
        "| cost | MTA4DPR (s) | no assistant (s) | overhead | paper (Table 8) |",
        "|---|---|---|---|---|",
    ]
    for name, key in (
        ("training", "training seconds"),
        ("data construction", "data construction seconds"),
        ("setup (cold encodings)", "setup seconds"),
    ):
        overhead = (ours[key] - base[key]) / base[key] if base[key] else float("nan")
        paper = PAPER.get(name)
        paper_text = f"{paper[0]} h vs {paper[1]} h: {100 * (paper[0] - paper[1]) / paper[1]:+.1f}%" if paper else "–"
        lines.append(f"| {name} | {ours[key]:.1f} | {base[key]:.1f} | {100 * overhead:+.1f}% | {paper_text} |")
    share = ours["selection seconds"] / ours["training seconds"] if ours["training seconds"] else float("nan")
    lines += [
        "",
        f"Per-batch assistant selection: {ours['selection seconds']:.2f} s, {100 * share:.2f}% of MTA4DPR's training time.",
        "The baseline shares MTA4DPR's data construction (equal data work), so the data-construction overhead is ~0 by "
        "design; the paper's +57% (traditional KD without assistants) is not tested here.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    print(json.dumps(runs, indent=1))
    if args.out:
        from pathlib import Path

        from mta4dpr_core.store.atomic import atomic_write_text

        atomic_write_text(Path(args.out) / "cost_overhead.md", text)
        write_json(Path(args.out) / "cost_overhead.json", {"machine": machine(), "runs": runs})


if __name__ == "__main__":
    main()
