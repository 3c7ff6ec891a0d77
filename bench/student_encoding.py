"""Corpus encoding by the transformer student: float32 against bf16 autocast (``inference_dtype: auto``).

The student of ``params/mini_transformer.yaml`` (all-MiniLM-L6-v2 cut to 3 layers, [CLS] of the last
three layers), SciFact passages at the training length (96 tokens), batch 256, on one thread as a grid
worker runs it. Prints seconds per 1,000 passages for each precision, their ratio, and the smallest
cosine between the two encodings of a passage. On a CPU without native bf16, ``auto`` is float32 and
the ratio is about 1.

    python bench/student_encoding.py [--passages 2000] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

from common import quiet_transformers, scifact_dir


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    quiet_transformers()
    from mta4dpr_core.retrieval.data import load_corpus
    from mta4dpr_core.retrieval.encoders import TransformerEncoder

    texts = load_corpus(scifact_dir()).texts[: args.passages]
    seconds, vectors = {}, {}
    for dtype in (None, "auto"):
        encoder = TransformerEncoder.from_name(
            "all-MiniLM-L6-v2", pooling="cls_last3", normalize=True, num_layers=3, inference_dtype=dtype
        )
        started = time.perf_counter()
        vectors[dtype] = encoder.encode(texts, max_length=96, batch_size=256, desc="encode")
        seconds[dtype] = time.perf_counter() - started
    per_thousand = {k: 1000 * v / len(texts) for k, v in seconds.items()}
    cosine = float((vectors[None] * vectors["auto"]).sum(1).min())
    print(f"float32: {per_thousand[None]:.1f} s per 1,000 passages ({args.threads} thread(s))")
    print(f"auto   : {per_thousand['auto']:.1f} s per 1,000 passages")
    print(f"ratio float32/auto: {per_thousand[None] / per_thousand['auto']:.2f}x; smallest cosine {cosine:.6f}")


if __name__ == "__main__":
    main()
