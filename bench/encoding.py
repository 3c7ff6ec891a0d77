"""Passage encoding throughput: our TransformerEncoder.encode against SentenceTransformer.encode.

Same model (all-MiniLM-L6-v2 through ``mta4dpr_core.config.models.resolve_model``), same
texts (a seeded sample of SciFact corpus passages), same max length (256), same
batch size (64), both float32 with mean pooling and L2 normalisation. Both sort
texts by character length before batching, so they see the same batches. The
sample is split into chunks and the two encoders alternate chunk by chunk (the
cores are shared; alternating spreads load changes over both).

Achieved FLOP/s counts the useful work of a BERT forward on the real (unpadded)
tokens of each passage of length n (CLS and SEP included)::

    FLOPs(n) = 2 * W * n  +  4 * L * h * n^2
    W = sum over the L layers of the weight-matrix sizes = L * (4 h^2 + 2 h i)
        (Q, K, V, output projections and the two feed-forward matrices)

the first term being one multiply-add per weight per token, the second the
attention scores Q K^T and the weighted sum A V (2 n^2 h each per layer).
Embeddings, layer norms, softmax, GELU, biases and the (unused) pooler are left
out. For all-MiniLM-L6-v2 (L=6, h=384, i=1536) that is 21.2 MFLOP per token plus
9.2 kFLOP x n per token of attention. The executed count (padded to each batch's
longest passage) is reported too. The machine's peak is the best of several
2048 x 2048 float32 ``torch.matmul`` runs, measured between chunks.

``--bf16`` adds our encoder with ``inference_dtype="bf16"`` (autocast, opt-in; not
bit-identical) on the same passages, with its cosine agreement to float32.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import machine, matmul_flops, median, noise_note, quiet_transformers, scifact_dir, write_json


def bert_flops(lengths, layers, hidden, intermediate):
    weights = layers * (4 * hidden * hidden + 2 * hidden * intermediate)
    lengths = np.asarray(lengths, dtype=np.float64)
    return float((2 * weights * lengths + 4 * layers * hidden * lengths**2).sum())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=1000)
    parser.add_argument("--chunks", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--bf16", action="store_true", help="also time inference_dtype='bf16' (opt-in reduced precision)"
    )
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    quiet_transformers()

    from sentence_transformers import SentenceTransformer

    from mta4dpr_core.config.models import resolve_model
    from mta4dpr_core.retrieval.data import load_collection
    from mta4dpr_core.retrieval.encoders import TransformerEncoder, length_sorted_batches

    info = machine()
    corpus = load_collection(scifact_dir(), splits=["test"]).corpus
    rng = np.random.default_rng(args.seed)
    sample = [
        corpus.texts[i] for i in np.sort(rng.choice(len(corpus), size=min(args.passages, len(corpus)), replace=False))
    ]
    resolved = resolve_model("all-MiniLM-L6-v2")
    ours = TransformerEncoder.from_name(resolved, pooling="mean", normalize=True)
    theirs = SentenceTransformer(str(resolved.path), device="cpu")
    theirs.max_seq_length = args.max_length
    config = ours.model.config
    shape = (config.num_hidden_layers, config.hidden_size, config.intermediate_size)

    lengths = np.array(
        [len(ids) for ids in ours.tokenizer(sample, truncation=True, max_length=args.max_length)["input_ids"]]
    )
    useful = bert_flops(lengths, *shape)
    chunks = np.array_split(np.arange(len(sample)), args.chunks)
    executed = 0.0
    for chunk in chunks:
        for batch in length_sorted_batches([sample[i] for i in chunk], args.batch_size):
            executed += len(batch) * bert_flops([lengths[chunk][batch].max()], *shape)

    def ours_encode(texts):
        return ours.encode(texts, max_length=args.max_length, batch_size=args.batch_size)

    def theirs_encode(texts):
        return np.asarray(
            theirs.encode(
                texts,
                batch_size=args.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            ),
            dtype=np.float32,
        )

    warm = sample[: min(16, len(sample))]
    ours_encode(warm), theirs_encode(warm)
    peaks, seconds = [], {"ours": 0.0, "sentence-transformers": 0.0}
    outputs = {"ours": [], "sentence-transformers": []}
    for number, chunk in enumerate(chunks):
        peaks.append(matmul_flops(repeats=5))
        texts = [sample[i] for i in chunk]
        order = [("ours", ours_encode), ("sentence-transformers", theirs_encode)]
        for name, fn in order if number % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            outputs[name].append(fn(texts))
            seconds[name] += time.perf_counter() - start
    peaks.append(matmul_flops(repeats=5))
    ours_vectors, theirs_vectors = np.concatenate(outputs["ours"]), np.concatenate(outputs["sentence-transformers"])
    max_diff = float(np.abs(ours_vectors - theirs_vectors).max())

    result = {
        "machine": info,
        "passages": len(sample),
        "mean_tokens": float(lengths.mean()),
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "seconds": seconds,
        "max_abs_diff": max_diff,
        "passages_per_second": {k: len(sample) / v for k, v in seconds.items()},
        "useful_flop": useful,
        "executed_flop": executed,
        "matmul_flops_median": median(peaks),
        "matmul_flops_best": max(peaks),
    }
    result["speedup_vs_sentence_transformers"] = seconds["sentence-transformers"] / seconds["ours"]
    result["ours_flops"] = useful / seconds["ours"]
    result["ours_flops_executed"] = executed / seconds["ours"]
    result["fraction_of_matmul"] = result["ours_flops"] / result["matmul_flops_median"]

    if args.bf16:
        ours.inference_dtype = "bf16"
        ours_encode(warm)
        start = time.perf_counter()
        low = ours_encode(sample)
        result["bf16_seconds"] = time.perf_counter() - start
        ours.inference_dtype = None
        result["bf16_speedup_vs_sentence_transformers"] = seconds["sentence-transformers"] / result["bf16_seconds"]
        cosine = (low * ours_vectors).sum(1) / (np.linalg.norm(low, axis=1) * np.linalg.norm(ours_vectors, axis=1))
        result["bf16_min_cosine"] = float(cosine.min())
        top_fp32 = np.argsort(-(ours_vectors[:50] @ ours_vectors.T), axis=1)[:, 1:11]
        top_bf16 = np.argsort(-(low[:50] @ low.T), axis=1)[:, 1:11]
        result["bf16_top10_overlap"] = float(
            np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top_fp32, top_bf16, strict=True)])
        )

    pps = result["passages_per_second"]
    lines = [
        "### Encoding throughput (all-MiniLM-L6-v2, float32, mean pooling + L2 norm)",
        "",
        f"{len(sample)} SciFact corpus passages (seed {args.seed}; mean {lengths.mean():.0f} tokens, "
        f"{(lengths == args.max_length).mean():.0%} truncated at {args.max_length}), batch size {args.batch_size}, "
        f"{args.chunks} alternating chunks.",
        "",
        "| encoder | passages/s | seconds |",
        "|---|---|---|",
        f"| ours: TransformerEncoder.encode | {pps['ours']:.2f} | {seconds['ours']:.1f} |",
        f"| SentenceTransformer.encode | {pps['sentence-transformers']:.2f} | {seconds['sentence-transformers']:.1f} |",
    ]
    if args.bf16:
        lines.append(
            f"| ours, inference_dtype=bf16 (opt-in) | {len(sample) / result['bf16_seconds']:.2f} | {result['bf16_seconds']:.1f} |"
        )
    lines += [
        "",
        f"- speed-up vs sentence-transformers: **{result['speedup_vs_sentence_transformers']:.2f}x** (goal >= 1.3x); "
        f"max |difference| of the embeddings {max_diff:.1e}",
        f"- achieved: {result['ours_flops'] / 1e9:.1f} GFLOP/s useful ({result['ours_flops_executed'] / 1e9:.1f} GFLOP/s executed incl. padding) "
        f"vs float32 matmul {result['matmul_flops_median'] / 1e9:.1f} GFLOP/s (median between chunks; best {result['matmul_flops_best'] / 1e9:.1f}): "
        f"**{result['fraction_of_matmul']:.0%}** of matmul (goal >= 70%)",
        f"- FLOPs per passage: 2*W*n + 4*L*h*n^2 with W = L*(4h^2 + 2hi) = {shape[0] * (4 * shape[1] ** 2 + 2 * shape[1] * shape[2]) / 1e6:.1f}M weights; "
        f"{useful / 1e12:.2f} TFLOP useful, {executed / 1e12:.2f} TFLOP executed",
    ]
    if args.bf16:
        lines.append(
            f"- bf16 (opt-in): **{result['bf16_speedup_vs_sentence_transformers']:.2f}x** sentence-transformers float32; "
            f"min cosine to float32 {result['bf16_min_cosine']:.5f}, top-10 neighbour overlap {result['bf16_top10_overlap']:.3f}"
        )
    lines.append(f"- {noise_note(info)}")
    print("\n".join(lines))
    write_json(args.json, result)


if __name__ == "__main__":
    main()
