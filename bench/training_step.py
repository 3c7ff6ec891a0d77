"""One distillation training step: our train_student against a sentence-transformers step.

Same student (all-MiniLM-L6-v2, mean pooling + L2 norm, float32, AdamW), same
batch: 16 queries x 8 passages (1 positive + 7 negatives) from SciFact train,
query length 32, passage length 144. The batches are the ones ``train_student``
samples (same seed), so both sides see exactly the same texts.

- ours: ``mta4dpr_core.method.training.train_student`` on a TrainingData over SciFact
  train (random hard-negative lists, synthetic teacher and 4 assistants' scores):
  sampling, per-batch assistant selection (KL over 15 candidates), tokenisation,
  forward, MTA4DPR loss (contrastive with in-batch negatives + KL to teacher + KL
  to assistant), backward, AdamW step. ``step_seconds`` from its record.
- sentence-transformers: ``SentenceTransformer`` + ``losses.DistillKLDivLoss`` on
  (query, positive, negative_1..7) columns with the teacher scores as labels:
  tokenisation (``model.tokenize``), forward through the loss (ST merges the
  candidate columns into one forward pass), backward, ``torch.optim.AdamW`` step.

The two alternate in rounds (the cores are shared); the first step of the first
round is a warm-up and is not counted. Reported: median seconds per step, queries/s.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
from common import machine, matmul_flops, median, noise_note, quiet_transformers, scifact_dir, write_json


def synthetic_training_data(split, corpus, width=31, assistants=4, seed=0):
    """A TrainingData over ``split``: its positives first, random negatives, random scores."""
    from mta4dpr_core.method.construction import TrainingData

    rng = np.random.default_rng(seed)
    positives = split.positives(corpus)
    rows = [i for i, p in enumerate(positives) if p]
    n = len(rows)
    candidates = rng.integers(0, len(corpus), size=(n, width), dtype=np.int64)
    is_positive = np.zeros((n, width), bool)
    for r, i in enumerate(rows):
        candidates[r, 0] = positives[i][0]
        is_positive[r, 0] = True
    return TrainingData(
        list(split.query_ids),
        list(split.query_texts),
        np.asarray(rows, np.int64),
        candidates,
        is_positive,
        rng.normal(size=(n, width)).astype(np.float32) * 3,
        rng.normal(size=(assistants, n, width)).astype(np.float32),
        [f"a{i}" for i in range(assistants)],
        np.zeros(n, np.int8),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=16)
    parser.add_argument("--passages", type=int, default=8, help="per query: 1 positive + (passages - 1) negatives")
    parser.add_argument("--query-length", type=int, default=32)
    parser.add_argument("--passage-length", type=int, default=144)
    parser.add_argument("--steps", type=int, default=1, help="timed steps per round (round 0 adds one warm-up step)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--amp", choices=["off", "bf16"], default="off", help="both sides: float32, or bf16 autocast (same kernels)"
    )
    parser.add_argument(
        "--attention-dropout",
        type=float,
        default=None,
        help="both sides: attention-probability dropout (default: the model's, 0.1); 0 lets SDPA take its fused "
        "CPU flash kernel, which has no dropout (with dropout it falls back to the math path)",
    )
    parser.add_argument(
        "--dropout-masks",
        choices=["torch", "philox"],
        nargs="+",
        default=["philox"],
        help="ours: training.dropout_masks, one timed arm each, rotating with sentence-transformers' in every round "
        "(which always draws torch's bernoulli_ masks); the first is the headline",
    )
    parser.add_argument(
        "--profile-top",
        type=int,
        default=0,
        help="after the timed rounds, one step of each arm under torch.profiler: its top N ops by self CPU time",
    )
    parser.add_argument(
        "--layers",
        type=int,
        default=None,
        help="both sides: keep the first N transformer layers (mini_transformer's student: 3); default all 6",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch's intra-op threads (a grid worker of mini_transformer runs one); default torch's own",
    )
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    quiet_transformers()

    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import DistillKLDivLoss

    from mta4dpr_core.config.models import resolve_model
    from mta4dpr_core.method.training import TrainConfig, sample_batch, train_student
    from mta4dpr_core.retrieval.data import load_collection
    from mta4dpr_core.retrieval.encoders import TransformerEncoder

    if args.threads:
        torch.set_num_threads(args.threads)
    info = machine()
    collection = load_collection(scifact_dir(), splits=["train"])
    corpus, split = collection.corpus, collection.splits["train"]
    data = synthetic_training_data(split, corpus)
    resolved = resolve_model("all-MiniLM-L6-v2")

    def config(round_number, masks="torch"):
        steps = args.steps + (1 if round_number == 0 else 0)
        return TrainConfig(
            steps=steps,
            queries_per_batch=args.queries,
            negatives_per_query=args.passages - 1,
            learning_rate=3e-5,
            warmup_steps=1,
            max_query_length=args.query_length,
            max_passage_length=args.passage_length,
            checkpoint_every=0,
            amp=args.amp,
            assistant_temperatures=[1.0] * 4,
            dropout_masks=masks,
            seed=100 + round_number,
        )

    torch.manual_seed(0)
    ours = TransformerEncoder.from_name(resolved, pooling="mean", normalize=True, num_layers=args.layers)
    theirs = SentenceTransformer(str(resolved.path), device="cpu")
    if args.layers:  # the same cut as ours: the first N layers
        bert = theirs[0].auto_model
        bert.encoder.layer = bert.encoder.layer[: args.layers]
        bert.config.num_hidden_layers = args.layers
    loss_fn = DistillKLDivLoss(theirs)
    if args.attention_dropout is not None:
        from mta4dpr_core.retrieval.encoders import set_attention_dropout

        set_attention_dropout(ours.model, args.attention_dropout)
        set_attention_dropout(theirs[0].auto_model, args.attention_dropout)
    optimizer = torch.optim.AdamW(theirs.parameters(), lr=3e-5, weight_decay=0.01)
    amp_dtype = torch.bfloat16 if args.amp == "bf16" else None

    def step_flops(cfg, rng_step, round_number):
        """Matmul FLOPs of one step (forward + backward = 3x forward): 2 x non-embedding params per token in the
        dense layers, and 4 L^2 h per layer and sequence in attention, on the padded batch shapes."""
        rng = np.random.default_rng([cfg.seed, 1, rng_step])
        batch_rows, columns = sample_batch(data, np.arange(len(data)), cfg, rng)
        queries = [data.query_texts[data.query_rows[r]] for r in batch_rows]
        docs = np.take_along_axis(data.candidates[batch_rows], columns, 1).ravel()
        shapes = [
            tuple(ours.tokenize(queries, args.query_length)["input_ids"].shape),
            tuple(ours.tokenize([corpus.texts[d] for d in docs], args.passage_length)["input_ids"].shape),
        ]
        config_ = ours.model.config
        dense = sum(p.numel() for n, p in ours.model.named_parameters() if "embeddings" not in n and p.dim() == 2)
        total = 0
        for sequences, length in shapes:
            total += 2 * dense * sequences * length
            total += 4 * config_.num_hidden_layers * sequences * length * length * config_.hidden_size
        return 3 * total

    def theirs_round(round_number, steps=None):
        cfg, times = config(round_number), []
        theirs.train()
        for step in range(cfg.steps if steps is None else steps):
            start = time.perf_counter()
            rng = np.random.default_rng([cfg.seed, 1, step])  # the batch train_student draws at this step
            batch_rows, columns = sample_batch(data, np.arange(len(data)), cfg, rng)
            queries = [data.query_texts[data.query_rows[r]] for r in batch_rows]
            docs = np.take_along_axis(data.candidates[batch_rows], columns, 1)
            labels = torch.tensor(np.take_along_axis(data.teacher_scores[batch_rows], columns, 1))
            theirs.max_seq_length = args.query_length
            features = [theirs.tokenize(queries)]
            theirs.max_seq_length = args.passage_length
            features += [theirs.tokenize([corpus.texts[d] for d in docs[:, j]]) for j in range(docs.shape[1])]
            with torch.autocast("cpu", dtype=amp_dtype, enabled=amp_dtype is not None):
                loss = loss_fn(features, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            times.append(time.perf_counter() - start)
        return times[1:] if round_number == 0 else times

    def ours_round(round_number, masks):
        record = train_student(ours, data, corpus.texts, config(round_number, masks))
        record = record[1:] if round_number == 0 else record
        return [r["step_seconds"] for r in record], record

    def profiled_step(arm, top):
        """(top ``top`` ops by self CPU time as (name, calls, seconds, share), total self CPU seconds) of one step
        (round 1's first step: no warm-up) under torch.profiler."""
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
            if arm == "sentence-transformers":
                theirs_round(1, steps=1)
            else:
                train_student(ours, data, corpus.texts, replace(config(1, arm), steps=1))
        events = profiler.key_averages()
        total = sum(e.self_cpu_time_total for e in events) / 1e6
        ranked = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
        rows = [(e.key, e.count, e.self_cpu_time_total / 1e6, e.self_cpu_time_total / 1e6 / total) for e in ranked]
        return {"top": rows, "total_self_cpu_seconds": total}

    def round_speedups(arm_times, reference_times):
        """sentence-transformers' median step over the arm's, per round (both lists hold args.steps a round)."""
        chunks = [slice(r * args.steps, (r + 1) * args.steps) for r in range(args.rounds)]
        return [median(reference_times[c]) / median(arm_times[c]) for c in chunks]

    # every arm once a round, the order rotating so that none always runs first (or after the same one)
    arms = [*args.dropout_masks, "sentence-transformers"]
    times = {arm: [] for arm in arms}
    select_times = []
    for round_number in range(args.rounds):
        shift = round_number % len(arms)
        for arm in arms[shift:] + arms[:shift]:
            if arm == "sentence-transformers":
                times[arm] += theirs_round(round_number)
            else:
                arm_times, record = ours_round(round_number, arm)
                times[arm] += arm_times
                select_times += [r["select_seconds"] for r in record]
    ours_times, theirs_times = times[args.dropout_masks[0]], times["sentence-transformers"]
    profiles = {arm: profiled_step(arm, args.profile_top) for arm in arms} if args.profile_top else {}

    ours_step, theirs_step = median(ours_times), median(theirs_times)
    flops = median(
        [step_flops(config(r), s, r) for r in range(args.rounds) for s in range(1 if r == 0 else 0, config(r).steps)]
    )
    peak = matmul_flops(2048, dtype=torch.bfloat16 if amp_dtype else torch.float32)
    result = {
        "machine": info,
        "queries": args.queries,
        "passages_per_query": args.passages,
        "lengths": [args.query_length, args.passage_length],
        "layers": ours.model.config.num_hidden_layers,
        "ours_step_seconds": ours_times,
        "sentence_transformers_step_seconds": theirs_times,
        "ours_median": ours_step,
        "sentence_transformers_median": theirs_step,
        "ours_queries_per_second": args.queries / ours_step,
        "sentence_transformers_queries_per_second": args.queries / theirs_step,
        "speedup": theirs_step / ours_step,
        "ours_select_seconds_median": median(select_times),
        "amp": args.amp,
        "attention_dropout": args.attention_dropout,
        "dropout_masks": args.dropout_masks,
        "arms_step_seconds": times,
        "profiles": profiles,
        "arms_speedup": {arm: theirs_step / median(times[arm]) for arm in args.dropout_masks},
        "rounds": args.rounds,
        "arms_round_speedups": {arm: round_speedups(times[arm], theirs_times) for arm in args.dropout_masks},
        "step_flops": flops,
        "ours_flops_per_second": flops / ours_step,
        "sentence_transformers_flops_per_second": flops / theirs_step,
        "matmul_peak_flops_per_second": peak,
        "ours_fraction_of_peak": flops / ours_step / peak,
    }
    lines = [
        f"### Training step (all-MiniLM-L6-v2 student{f', first {args.layers} layers' if args.layers else ''}, "
        f"{'bf16 autocast' if amp_dtype else 'float32'}, AdamW)",
        "",
        f"{args.queries} queries x {args.passages} passages (1 positive + {args.passages - 1} negatives), lengths "
        f"{args.query_length}/{args.passage_length}, SciFact train texts; {args.rounds} alternating rounds of "
        f"{args.steps} timed steps each (+1 warm-up step in the first); attention dropout "
        f"{'the model default (0.1)' if args.attention_dropout is None else args.attention_dropout} on both sides; "
        f"our dropout masks: {', '.join(args.dropout_masks)} (sentence-transformers: torch's).",
        "",
        "| trainer | median s/step | queries/s |",
        "|---|---|---|",
        *(
            f"| ours: train_student (MTA4DPR loss, selection over 15 candidates), {arm} dropout masks | "
            f"{median(times[arm]):.2f} | {args.queries / median(times[arm]):.2f} |"
            for arm in args.dropout_masks
        ),
        f"| sentence-transformers + DistillKLDivLoss | {theirs_step:.2f} | {args.queries / theirs_step:.2f} |",
        "",
        *(
            f"- speed-up, {arm} dropout masks: **{speedup:.2f}x** (goal >= 1.0x); round by round (the median "
            f"step of each side in the same round): {', '.join(f'{r:.2f}' for r in result['arms_round_speedups'][arm])}"
            for arm, speedup in result["arms_speedup"].items()
        ),
        f"- matmul work {flops / 1e12:.2f} TFLOP a step (padded shapes, forward + backward): ours "
        f"{flops / ours_step / 1e9:.0f} GFLOP/s, sentence-transformers {flops / theirs_step / 1e9:.0f} GFLOP/s; "
        f"this CPU's {'bf16' if amp_dtype else 'float32'} matmul peak (2048^2, {info['torch_threads']} threads) "
        f"{peak / 1e9:.0f} GFLOP/s: ours at **{flops / ours_step / peak:.0%} of peak**",
        f"- {noise_note(info)}",
    ]
    for arm, profile in profiles.items():
        lines += ["", f"Profile of one step, {arm} (self CPU time {profile['total_self_cpu_seconds']:.1f} s): top ops"]
        lines += [
            f"- `{name}` {share:.1%} ({calls} calls, {seconds:.2f} s)" for name, calls, seconds, share in profile["top"]
        ]
    print("\n".join(lines))
    write_json(args.json, result)


if __name__ == "__main__":
    main()
