"""Per-batch assistant selection time as a share of one training step.

m = 4 assistants -> 11 fused -> 15 candidate distributions per batch. For each
method (KL, Spearman's footrule, RBO with p = 0.9) it times, over many batches:

- select: ``select_assistant(softmax(teacher), candidates)``, what ``train_student``
  records as ``select_seconds``;
- fuse + select: also ``batch_distributions`` (gathering the batch's scores,
  softmax per assistant, the 11 fused distributions), the whole per-batch cost of
  the assistant machinery.

against one ``train_student`` step of two students:

- the static WordLlama student (the embedded default), batch 64 queries x 35
  candidates (1 + 34 negatives, the paper's batch), lengths 64/256;
- the all-MiniLM-L6-v2 student, batch 16 x 8, lengths 32/144 (as
  ``bench/training_step.py``; ``--training-json`` reuses its median step time
  instead of timing one here).

The paper reports 5.8% for its selection; the goal here is < 1%.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from common import machine, median, noise_note, quiet_transformers, scifact_dir, write_json
from training_step import synthetic_training_data

METHODS = ("kl", "footrule", "rbo")


def time_selection(data, config, batches, method):
    from mta4dpr_core.method.fusion import softmax
    from mta4dpr_core.method.selection import select_assistant
    from mta4dpr_core.method.training import batch_distributions, sample_batch

    rows = np.arange(len(data))
    select, total = [], []
    for step in range(batches):
        rng = np.random.default_rng([config.seed, 1, step])
        batch_rows, columns = sample_batch(data, rows, config, rng)
        start = time.perf_counter()
        teacher, candidates = batch_distributions(data, batch_rows, columns, config)
        middle = time.perf_counter()
        chosen, _ = select_assistant(softmax(teacher), candidates, method, config.rbo_p, rng)
        end = time.perf_counter()
        assert candidates.shape[0] == 15
        select.append(end - middle)
        total.append(end - start)
    return median(select), median(total)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--static-steps", type=int, default=5)
    parser.add_argument(
        "--training-json", default=None, help="bench/training_step.py --json output (its MiniLM step time)"
    )
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    quiet_transformers()

    from mta4dpr_core.method.training import TrainConfig, train_student
    from mta4dpr_core.retrieval.data import load_collection
    from mta4dpr_core.retrieval.encoders import StaticEncoder, TransformerEncoder

    info = machine()
    collection = load_collection(scifact_dir(), splits=["train"])
    corpus, split = collection.corpus, collection.splits["train"]
    data = synthetic_training_data(split, corpus, width=101)
    shapes = {
        "static": TrainConfig(
            steps=args.static_steps + 1,
            queries_per_batch=64,
            negatives_per_query=34,
            learning_rate=1e-3,
            warmup_steps=1,
            max_query_length=64,
            max_passage_length=256,
            checkpoint_every=0,
            assistant_temperatures=[1.0] * 4,
            seed=7,
        ),
        "minilm": TrainConfig(
            steps=2,
            queries_per_batch=16,
            negatives_per_query=7,
            learning_rate=3e-5,
            warmup_steps=1,
            max_query_length=32,
            max_passage_length=144,
            checkpoint_every=0,
            assistant_temperatures=[1.0] * 4,
            seed=7,
        ),
    }
    selection = {
        name: {m: time_selection(data, config, args.batches, m) for m in METHODS} for name, config in shapes.items()
    }

    record = train_student(StaticEncoder.from_name("wordllama"), data, corpus.texts, shapes["static"])
    step = {"static": median([r["step_seconds"] for r in record[1:]])}
    if args.training_json:
        step["minilm"] = json.loads(open(args.training_json).read())["ours_median"]
        minilm_source = "bench/training_step.py median"
    else:
        record = train_student(
            TransformerEncoder.from_name("all-MiniLM-L6-v2", pooling="mean", normalize=True),
            data,
            corpus.texts,
            shapes["minilm"],
        )
        step["minilm"] = record[-1]["step_seconds"]
        minilm_source = "one step after a warm-up"

    result = {"machine": info, "batches": args.batches, "step_seconds": step, "selection_seconds": {}, "percent": {}}
    lines = [
        "### Assistant selection per batch (m = 4 -> 11 fused -> 15 candidates)",
        "",
        f"Median over {args.batches} batches. Static step: median of {args.static_steps} WordLlama steps (64 x 35, lengths 64/256) = "
        f"{step['static'] * 1000:.0f} ms; MiniLM step (16 x 8, lengths 32/144; {minilm_source}) = {step['minilm']:.1f} s.",
        "",
        "| method | batch | select | % of step | fuse + select | % of step |",
        "|---|---|---|---|---|---|",
    ]
    for name in shapes:
        for method in METHODS:
            select, total = selection[name][method]
            pct_select, pct_total = 100 * select / step[name], 100 * total / step[name]
            result["selection_seconds"][f"{name}/{method}"] = {"select": select, "fuse_select": total}
            result["percent"][f"{name}/{method}"] = {"select": pct_select, "fuse_select": pct_total}
            batch = "64 x 35" if name == "static" else "16 x 8"
            lines.append(
                f"| {method} | {batch} ({name} step) | {select * 1e6:.0f} us | {pct_select:.3f}% | {total * 1e6:.0f} us | {pct_total:.3f}% |"
            )
    worst = max(v["fuse_select"] for v in result["percent"].values())
    worst_select = max(v["select"] for v in result["percent"].values())
    result["worst_percent_select"], result["worst_percent_fuse_select"] = worst_select, worst
    lines += [
        "",
        f"- worst case: select **{worst_select:.2f}%**, fuse + select **{worst:.2f}%** of a training step "
        f"(goal < 1%; the paper reports 5.8%)",
        f"- {noise_note(info)}",
    ]
    print("\n".join(lines))
    write_json(args.json, result)


if __name__ == "__main__":
    main()
