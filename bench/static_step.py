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

from common import machine, median, quiet_transformers, write_json


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


def timed_round(setup, data, new_student, config, steps, warmup, profiler=None, fused=True):
    """Seconds per counted step of one round (a fresh student, ``steps`` steps); ``fused=False``: the step
    through autograd (the reference path) instead of the compiled loss and gradient."""
    from dataclasses import replace

    from mta4dpr_core.method.training import train_student

    student = new_student()
    passages = setup.collection.corpus.texts
    train_student(
        student, data, passages, replace(config, steps=warmup), final_checkpoint=False, fused_static_step=fused
    )
    if profiler:
        profiler.enable()
    t0 = time.perf_counter()
    train_student(
        student, data, passages, replace(config, steps=steps), final_checkpoint=False, fused_static_step=fused
    )
    seconds = time.perf_counter() - t0
    if profiler:
        profiler.disable()
    return seconds / steps


def _median_seconds(repeats, function, *arguments):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        function(*arguments)
        times.append(time.perf_counter() - t0)
    return median(times)


def kernel_floor(setup, data, new_student, config, repeats=50):
    """Each compiled kernel of the step on one real batch, against the bytes it must move.

    The batch is the first one ``train_student`` draws. Bytes are the kernel's unavoidable traffic: the pooling
    forward reads every unmasked token's row (4 bytes x dim) and writes the pooled rows; its backward adds each
    token's scaled gradient into its row of the touched-row block (read and write) after zeroing that block;
    Adam reads parameter, both moments and gradient and writes the first three, for each touched element.
    The references are one-thread numpy on a buffer of the trainable table's size: a copy (read + write) and
    a gather of the same token rows (``np.take``), the best that plain streaming and plain gathering reach here.
    """
    import numpy as np
    import torch

    from mta4dpr_core.method.losses import MTA4DPRLoss
    from mta4dpr_core.method.row_adam import _row_adam
    from mta4dpr_core.method.static_step import static_loss_and_gradient
    from mta4dpr_core.method.training import batch_distributions, sample_batch
    from mta4dpr_core.retrieval.static_pooling import _pool_backward, _pool_forward

    student = new_student()
    table = student.embedding.weight.detach().numpy()
    frozen = student.frozen_table.numpy()
    rng = np.random.default_rng([config.seed, 1, 0])
    train_rows = np.arange(len(data))
    batch_rows, columns = sample_batch(data, train_rows, config, rng)
    docs = np.take_along_axis(np.asarray(data.candidates)[batch_rows], columns, 1).ravel()
    texts = setup.collection.corpus.texts
    batches = [
        student.tokenize([data.query_texts[data.query_rows[r]] for r in batch_rows], config.max_query_length),
        student.tokenize([texts[d] for d in docs], config.max_passage_length),
    ]
    # the whole compiled pass (pooling, normalisation, loss, its gradient, the pooling's backward) on this batch
    teacher, candidates = batch_distributions(data, batch_rows, columns, config)
    loss = MTA4DPRLoss(config.alpha, config.beta, config.gamma, config.student_temperature, config.in_batch_negatives)
    (query_ids, query_mask, _), (passage_ids, passage_mask, _) = (student.table_ids(b) for b in batches)
    pass_arguments = (
        student.embedding.weight, student.frozen_table, query_ids, query_mask, passage_ids, passage_mask,
        torch.tensor(teacher, dtype=torch.float32), torch.tensor(candidates[0], dtype=torch.float32), loss,
        student.normalize,
    )  # fmt: skip
    fused_seconds = _median_seconds(repeats, static_loss_and_gradient, *pass_arguments)
    report, totals = [], {"forward": 0.0, "backward": 0.0, "adam": 0.0}
    bytes_moved = {"forward": 0, "backward": 0, "adam": 0}
    dim = table.shape[1]
    gathered = []
    for batch in batches:
        ids, mask, _ = student.table_ids(batch)
        ids = np.ascontiguousarray(ids.numpy(), dtype=np.int64)
        mask = np.ascontiguousarray(mask.numpy(), dtype=np.float32)
        out = np.zeros((ids.shape[0], dim), np.float32)
        lengths = np.empty(ids.shape[0], np.float32)
        totals["forward"] += _median_seconds(repeats, _pool_forward, ids, mask, table, frozen, out, lengths)
        grad = np.ones_like(out)
        touched, values = _pool_backward(ids, mask, lengths, grad, table.shape[0])
        totals["backward"] += _median_seconds(repeats, _pool_backward, ids, mask, lengths, grad, table.shape[0])
        tokens = int(mask.sum())
        bytes_moved["forward"] += 4 * dim * (tokens + ids.shape[0])
        bytes_moved["backward"] += 4 * dim * (2 * tokens + 2 * len(touched))
        gathered.append(ids[mask > 0])
    # Adam over the passages' touched rows (the larger of the two tables' shares; a step updates their union)
    moments = [np.zeros_like(table), np.zeros_like(table)]
    f32 = np.float32
    totals["adam"] = _median_seconds(
        repeats, _row_adam, table, moments[0], moments[1], touched, values, f32(0.1), f32(0.001), f32(-0.0), f32(1e-8)
    )
    bytes_moved["adam"] = 4 * values.size * 7
    buffer = np.random.default_rng(0).random(table.size, dtype=np.float32)
    target = np.empty_like(buffer)
    copy_seconds = _median_seconds(repeats, np.copyto, target, buffer)
    copy_rate = 2 * buffer.nbytes / copy_seconds
    flat = np.concatenate(gathered)
    flat = flat[flat < table.shape[0]]
    sink = np.empty((len(flat), dim), np.float32)
    gather_seconds = _median_seconds(repeats, lambda: np.take(table, flat, axis=0, out=sink))
    gather_rate = 2 * sink.nbytes / gather_seconds
    for name in ("forward", "backward", "adam"):
        rate = bytes_moved[name] / totals[name]
        report.append(
            {
                "kernel": name,
                "ms": totals[name] * 1e3,
                "MB": bytes_moved[name] / 1e6,
                "GB_per_s": rate / 1e9,
                "of_copy": rate / copy_rate,
            }
        )
    return report, copy_rate, gather_rate, fused_seconds


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
    parser.add_argument(
        "--floor", action="store_true", help="time each compiled kernel on one batch against the bytes it must move"
    )
    parser.add_argument(
        "--reference", action="store_true", help="also time the step through autograd, in alternating rounds"
    )
    parser.add_argument("--json", default=None, help="write the figures to this JSON file")
    args = parser.parse_args()

    import torch

    quiet_transformers()
    torch.set_num_threads(1)
    info = machine()
    note = f"load average {info['load_average_1m']} at the start"
    setup, data, new_student, config = prepared(args.profile)
    per_step, reference = [], []
    for _ in range(args.rounds):
        per_step.append(timed_round(setup, data, new_student, config, args.steps, args.warmup))
        if args.reference:
            reference.append(timed_round(setup, data, new_student, config, args.steps, args.warmup, fused=False))
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
    if reference:
        lines.append(
            f"- through autograd (the reference path, rounds alternating with the above): {median(reference) * 1e3:.2f} "
            f"ms a step; the compiled pass is **{median(reference) / seconds:.2f}x** as fast"
        )
        result["reference_ms_per_step"] = median(reference) * 1e3
    if args.profile_top:
        profiler = cProfile.Profile()
        timed_round(setup, data, new_student, config, args.steps, args.warmup, profiler)
        rows, total = top_entries(profiler, args.profile_top)
        calls = sum(v[1] for v in pstats.Stats(profiler).stats.values())
        lines += [
            "",
            f"cProfile of {args.steps} steps ({total / args.steps * 1e3:.2f} ms a step of own time, "
            f"{calls / args.steps:,.0f} Python-level calls a step), "
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
    if args.floor:
        kernels, copy_rate, gather_rate, fused_seconds = kernel_floor(setup, data, new_student, config)
        kernel_ms = sum(k["ms"] for k in kernels)
        lines += [
            "",
            f"Where the floor is: the compiled kernels on one batch alone (median of 50 calls each), with the bytes "
            f"each touches. For scale, this core's one-thread numpy copy of a buffer the size of the trainable table "
            f"streams {copy_rate / 1e9:.1f} GB/s (read + write), and a numpy gather of the same token rows "
            f"{gather_rate / 1e9:.1f} GB/s; the kernels exceed the copy where their rows stay in cache:",
            "",
            "| kernel | ms | MB touched | GB/s |",
            "|---|---|---|---|",
        ]
        lines += [f"| {k['kernel']} | {k['ms']:.2f} | {k['MB']:.1f} | {k['GB_per_s']:.1f} |" for k in kernels]
        adam_ms = next(k["ms"] for k in kernels if k["kernel"] == "adam")
        pass_ms = fused_seconds * 1e3
        rest = seconds * 1e3 - pass_ms - adam_ms
        lines += [
            "",
            f"- The step runs one compiled pass (`method/static_step.py`: pooling, normalisation, the loss and its "
            f"gradient, the pooling's backward) and lazy Adam. On this batch the pass takes {pass_ms:.2f} ms (the "
            f"pooling kernels alone {kernel_ms - adam_ms:.2f} ms) and Adam {adam_ms:.2f} ms, "
            f"{(pass_ms + adam_ms) / seconds / 1e3:.0%} of the {seconds * 1e3:.2f} ms step: a step with nothing "
            f"around them would run {1e3 / (pass_ms + adam_ms):.0f} steps/s. The other {rest:.2f} ms are sampling, "
            f"the assistants' distributions and selection, collation and Python.",
        ]
        result["kernel_floor"] = {
            "kernels": kernels,
            "copy_bytes_per_second": copy_rate,
            "gather_bytes_per_second": gather_rate,
        }
    print("\n".join(lines))
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()
