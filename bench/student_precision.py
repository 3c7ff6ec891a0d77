"""Transformer-student training step: float32 against bf16 autocast, per student depth.

The ``mini_transformer`` student (all-MiniLM-L6-v2 cut to ``--layers``, mean pooling,
L2 norm, temperature 0.02, AdamW) runs ``mta4dpr_core.method.training.train_student`` on a
synthetic TrainingData over SciFact train (as ``training_step.py``), at the profile's
batch shape: 8 queries x (1 positive + 3 negatives), lengths 32/96. Everything a step
does is timed (sampling, selection, tokenisation, forward, loss, backward, AdamW).

On the machine it runs on: CUDA when there is one, else the CPU (bf16 autocast on a CPU
pays off only with AVX512-BF16 or AMX). The two precisions alternate in rounds, the same
batches (same seeds) in both; the first step of each run is a warm-up and is not counted.
Also reported: the loss of the last step in each precision (bf16 must train the same
model, not a different one), and where a step's time goes with ``--profile-steps``.

    .venv/bin/python bench/student_precision.py --layers 2 3 6 --steps 6 --rounds 2
    .venv/bin/python bench/student_precision.py --model /path/to/all-MiniLM-L6-v2 --json out.json
"""

from __future__ import annotations

import argparse
import copy

from common import machine, median, noise_note, quiet_transformers, scifact_dir, write_json
from training_step import synthetic_training_data


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="all-MiniLM-L6-v2", help="a model name or a local directory")
    parser.add_argument("--layers", type=int, nargs="+", default=[2, 3, 6])
    parser.add_argument("--queries", type=int, default=8)
    parser.add_argument("--passages", type=int, default=4, help="per query: 1 positive + (passages - 1) negatives")
    parser.add_argument("--query-length", type=int, default=32)
    parser.add_argument("--passage-length", type=int, default=96)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per run (+1 warm-up step)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    quiet_transformers()

    import torch

    from mta4dpr_core.config.models import resolve_model
    from mta4dpr_core.method.training import TrainConfig, train_student
    from mta4dpr_core.retrieval.data import load_collection
    from mta4dpr_core.retrieval.encoders import TransformerEncoder

    info = machine()
    device = f"cuda: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else f"cpu ({info['cores']} cores)"
    collection = load_collection(scifact_dir(), splits=["train"])
    corpus, split = collection.corpus, collection.splits["train"]
    data = synthetic_training_data(split, corpus)
    resolved = resolve_model(args.model)

    def config(amp, round_number):
        return TrainConfig(
            steps=args.steps + 1,
            queries_per_batch=args.queries,
            negatives_per_query=args.passages - 1,
            learning_rate=1e-4,
            warmup_steps=1,
            max_query_length=args.query_length,
            max_passage_length=args.passage_length,
            checkpoint_every=0,
            amp=amp,
            assistant_temperatures=[1.0] * 4,
            seed=200 + round_number,
        )

    rows, result = [], {"machine": info, "device": device, "layers": {}}
    for layers in args.layers:
        torch.manual_seed(0)
        base = TransformerEncoder.from_name(resolved, pooling="mean", normalize=True, num_layers=layers)
        times = {"fp32": [], "bf16": []}
        last_loss = {}
        for round_number in range(args.rounds):
            order = ("fp32", "bf16") if round_number % 2 == 0 else ("bf16", "fp32")
            for amp in order:
                student = copy.deepcopy(base)  # the same start and the same batches for both precisions
                # the training setting for float32 is `off` (no autocast)
                record = train_student(
                    student, data, corpus.texts, config("off" if amp == "fp32" else amp, round_number)
                )
                times[amp] += [r["step_seconds"] for r in record[1:]]
                last_loss[amp] = record[-1]["total"]
        fp32, bf16 = median(times["fp32"]), median(times["bf16"])
        result["layers"][layers] = {
            "fp32_step_seconds": times["fp32"],
            "bf16_step_seconds": times["bf16"],
            "fp32_median": fp32,
            "bf16_median": bf16,
            "speedup": fp32 / bf16,
            "last_loss": last_loss,
        }
        rows.append(
            f"| {layers} | {fp32 * 1000:.1f} | {bf16 * 1000:.1f} | **{fp32 / bf16:.2f}x** | "
            f"{last_loss['fp32']:.3f} / {last_loss['bf16']:.3f} |"
        )
    lines = [
        f"### Transformer student step, float32 vs bf16 autocast ({device})",
        "",
        f"all-MiniLM-L6-v2 cut to n layers, mean pooling; {args.queries} queries x {args.passages} passages, lengths "
        f"{args.query_length}/{args.passage_length}; {args.rounds} alternating rounds of {args.steps} timed steps "
        "(+1 warm-up) per precision.",
        "",
        "| layers | fp32 ms/step | bf16 ms/step | bf16 speed-up | last-step loss fp32 / bf16 |",
        "|---|---|---|---|---|",
        *rows,
        "",
        f"- {noise_note(info)}",
    ]
    print("\n".join(lines))
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()
