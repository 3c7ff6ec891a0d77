"""The static student's training step on one thread: steps per second and a profile of where a step goes.

The profile's own data and student: the iteration-1 training data of ``--profile`` (default mini; its
assistants' candidates, teacher and assistant scores, built as a run builds them and cached in runs/), its
static student with the run's restricted vocabulary, its TrainConfig (batch, negatives, lengths, loss
weights, fused assistants, KL selection). ``train_student`` runs ``--steps`` steps; the first
``--warmup`` are not counted (memo of token ids, optimizer state allocation).

Prints steps/s (median over ``--rounds`` rounds) and, with ``--profile-top N``, the top N functions of a
cProfile of one round by their own time (tottime), as ``bench/run_all.py`` and ``results/perf.md`` report.

    .venv/bin/python bench/static_step.py --steps 400 --rounds 3 --profile-top 5
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time

from common import machine, median, write_json


def prepared(profile: str, seed: int = 0):
    """(setup, data, student factory, TrainConfig) of the profile's iteration 1, seed ``seed``."""
    from mta4dpr_core.config.params import load_params, profile_path
    from mta4dpr_core.experiments.experiment import Setup
    from mta4dpr_core.experiments.iteration import fitted_temperatures, train_config
    from mta4dpr_core.method.construction import eval_query_mask

    params = load_params(profile_path(profile))
    setup = Setup.from_params(params)
    construction = params["construction"]
    eval_mask = eval_query_mask(setup.train, construction, seed)
    pool = list(setup.assistants)
    data = setup.training_data(pool, eval_mask, construction)
    temperatures = fitted_temperatures(params, data, pool)
    config = train_config(params, pool, seed, temperatures=temperatures)
    return setup, data, lambda: setup.new_student(seed), config


def timed_round(setup, data, new_student, config, steps, warmup, profiler=None):
    """Seconds per counted step of one round (a fresh student, ``steps`` steps)."""
    from dataclasses import replace

    from mta4dpr_core.method.training import train_student

    student = new_student()
    passages = setup.collection.corpus.texts
    train_student(student, data, passages, replace(config, steps=warmup), final_checkpoint=False)
    if profiler:
        profiler.enable()
    t0 = time.perf_counter()
    train_student(student, data, passages, replace(config, steps=steps), final_checkpoint=False)
    seconds = time.perf_counter() - t0
    if profiler:
        profiler.disable()
    return seconds / steps


def top_entries(profiler, count):
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    rows = []
    total = sum(v[2] for v in stats.stats.values())
    for (filename, line, name), (_, calls, tottime, _cumtime, _) in sorted(
        stats.stats.items(), key=lambda item: -item[1][2]
    )[:count]:
        where = f"{'/'.join(filename.rsplit('/', 2)[-2:])}:{line}({name})"
        rows.append(
            {"function": where, "calls": calls, "tottime_s": tottime, "share": tottime / total if total else 0.0}
        )
    return rows, total


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="mini")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile-top", type=int, default=0, help="print the top N functions of a cProfile round")
    parser.add_argument("--json", default=None, help="write the figures to this JSON file")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    info = machine()
    note = f"load average {info['load_average_1m']} at the start"
    setup, data, new_student, config = prepared(args.profile)
    per_step = [timed_round(setup, data, new_student, config, args.steps, args.warmup) for _ in range(args.rounds)]
    seconds = median(per_step)
    lines = [
        "### Static student training step (one thread)",
        "",
        f"Profile {args.profile}'s iteration-1 data and student: {config.queries_per_batch} queries x "
        f"{1 + config.negatives_per_query} passages, {len(data.assistant_names)} assistants, selection "
        f"{config.selection}, fusion {'on' if config.fusion else 'off'}; median of {args.rounds} rounds of "
        f"{args.steps} steps after {args.warmup} warm-up steps; {note}.",
        "",
        f"- **{seconds * 1e3:.2f} ms a step, {1 / seconds:.0f} steps/s** (goal >= 200 steps/s)",
    ]
    result = {"machine": info, "ms_per_step": seconds * 1e3, "steps_per_second": 1 / seconds, "load": note}
    if args.profile_top:
        profiler = cProfile.Profile()
        timed_round(setup, data, new_student, config, args.steps, args.warmup, profiler)
        rows, total = top_entries(profiler, args.profile_top)
        lines += [
            "",
            f"cProfile of {args.steps} steps ({total / args.steps * 1e3:.2f} ms a step of own time), "
            f"top {args.profile_top} functions by own time:",
            "",
            "| share | ms a step | calls a step | function |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {row['share']:.1%} | {row['tottime_s'] / args.steps * 1e3:.2f} | {row['calls'] / args.steps:g} | "
            f"`{row['function']}` |"
            for row in rows
        ]
        result["profile"] = rows
    print("\n".join(lines))
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()
