"""Data construction time of iterations 2 and 3 as a fraction of iteration 1.

``mta4dpr_core.method.construction.build_training_data`` on SciFact train (the
non-eval queries, k = 30, RRF c = 60), with cheap scorers:

- teacher: z-scored 0.3 BM25 + 0.7 all-MiniLM-L6-v2 (the ``mini`` profile's);
- assistants: model2vec (static), WordLlama (static), all-MiniLM-L6-v2, BM25.

Caches as in a run: corpus encodings come from the repository's ``.cache``
(linked into a fresh cache directory, so nothing there is touched; the MiniLM
corpus encoding would otherwise take minutes); query encodings and the pair-score
stores (teacher and assistant scores) start empty, so iteration 1 pays for them.
Between iterations the student (WordLlama) trains 20 steps, is wrapped as a
scorer (its corpus encoding, not timed here, as in ``iteration.run_mta4dpr``),
mines its failures in the next construction and replaces the worst assistant
(taken here as the previous student, else WordLlama), as in Algorithm 1.
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import tempfile
import time
from pathlib import Path

from common import machine, noise_note, quiet_transformers, scifact_dir, write_json

TEACHER = {
    "name": "teacher",
    "kind": "ensemble",
    "temperature": 1.0,
    "weights": [0.3, 0.7],
    "members": [
        {"name": "bm25", "kind": "bm25"},
        {
            "name": "minilm-l6",
            "kind": "hf",
            "model": "all-MiniLM-L6-v2",
            "pooling": "mean",
            "normalize": True,
            "max_query_length": 64,
            "max_passage_length": 256,
        },
    ],
}
ASSISTANTS = [
    {
        "name": "model2vec",
        "kind": "static",
        "model": "model2vec:all-MiniLM-L6-v2",
        "max_query_length": 64,
        "max_passage_length": 256,
        "temperature": 0.05,
    },
    {
        "name": "wordllama",
        "kind": "static",
        "model": "wordllama",
        "max_query_length": 64,
        "max_passage_length": 256,
        "temperature": 0.05,
    },
    {
        "name": "minilm-l6",
        "kind": "hf",
        "model": "all-MiniLM-L6-v2",
        "pooling": "mean",
        "normalize": True,
        "max_query_length": 64,
        "max_passage_length": 256,
        "temperature": 0.05,
    },
    {"name": "bm25", "kind": "bm25", "temperature": 1.0},
]


def link_corpus_encodings(source: Path, target: Path, scorers, corpus):
    """Link the cached corpus encodings of ``scorers`` from ``source`` into ``target``."""
    (target / "encodings").mkdir(parents=True, exist_ok=True)
    linked = []
    for scorer in scorers:
        if not hasattr(scorer, "cache_key"):
            continue
        name = f"{scorer.cache_key(corpus.texts, scorer.max_passage_length)}.npy"
        for suffix in ("", ".sha256"):
            if (source / "encodings" / (name + suffix)).exists() and not (
                target / "encodings" / (name + suffix)
            ).exists():
                os.symlink(source / "encodings" / (name + suffix), target / "encodings" / (name + suffix))
        linked.append(scorer.name)
    return linked


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--k", type=int, default=30)
    parser.add_argument("--train-steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    quiet_transformers()

    from mta4dpr_core.config.models import default_cache_dir
    from mta4dpr_core.experiments.experiment import StudentScorer
    from mta4dpr_core.method.construction import build_training_data, split_eval_queries
    from mta4dpr_core.method.training import TrainConfig, train_student
    from mta4dpr_core.retrieval.encoders import StaticEncoder
    from mta4dpr_core.retrieval.scorers import DenseScorer, build_scorer

    info = machine()
    from mta4dpr_core.retrieval.data import load_collection

    collection = load_collection(scifact_dir(), splits=["train"])
    corpus, split = collection.corpus, collection.splits["train"]
    root = Path(tempfile.mkdtemp(prefix="mta4dpr-construction-"))
    try:
        cache_dir, work_dir = root / "cache", root / "work"
        cache_dir.mkdir()
        if (Path(default_cache_dir()) / "models").exists():  # distilled model2vec models
            os.symlink(Path(default_cache_dir()) / "models", cache_dir / "models")
        teacher = build_scorer(TEACHER, cache_dir)
        pool = [build_scorer(spec, cache_dir) for spec in ASSISTANTS]
        dense = [s for s in [*teacher.members, *pool] if isinstance(s, DenseScorer)]
        link_corpus_encodings(Path(default_cache_dir()), cache_dir, dense, corpus)
        t0 = time.perf_counter()
        for scorer in [teacher, *pool]:
            scorer.prepare(corpus)
        prepare_seconds = time.perf_counter() - t0
        eval_mask = split_eval_queries(len(split), 0.05, args.seed, 8)

        student = StaticEncoder.from_name("wordllama")
        config = TrainConfig(
            steps=args.train_steps,
            queries_per_batch=16,
            negatives_per_query=8,
            learning_rate=1e-3,
            warmup_steps=2,
            max_query_length=64,
            max_passage_length=256,
            checkpoint_every=0,
            assistant_temperatures=[a.temperature for a in pool],
            seed=args.seed,
        )
        previous, timings, stats = None, [], []
        for iteration in range(1, args.iterations + 1):
            start = time.perf_counter()
            data = build_training_data(
                split,
                corpus,
                pool,
                teacher,
                k=args.k,
                rrf_c=60,
                eval_mask=eval_mask,
                work_dir=work_dir,
                previous_student=previous,
                mining=True,
                mining_max_rank=15,
            )
            timings.append(time.perf_counter() - start)
            stats.append(
                {key: data.stats.get(key) for key in ("rows", "mined_queries", "pairs_scored", "pairs_cached")}
            )
            print(f"iteration {iteration}: {timings[-1]:.1f} s {stats[-1]}", flush=True)
            if iteration == args.iterations:
                break
            config.assistant_temperatures = [a.temperature for a in pool]
            config.seed = args.seed + iteration
            train_student(student, data, corpus.texts, config, iteration=iteration)
            scorer = StudentScorer(copy.deepcopy(student).eval(), f"student@{iteration}", 64, 256, 0.02, cache_dir)
            scorer.cache_name = f"bench-student-{iteration}"
            scorer.prepare(corpus)
            worst = next((i for i, a in enumerate(pool) if a.name.startswith("student@")), 1)
            pool[worst] = scorer
            previous = scorer
    finally:
        shutil.rmtree(root, ignore_errors=True)

    ratios = [t / timings[0] for t in timings[1:]]
    result = {
        "machine": info,
        "seconds": timings,
        "ratios": ratios,
        "stats": stats,
        "prepare_seconds": prepare_seconds,
        "queries": int((~eval_mask).sum()),
        "k": args.k,
    }
    lines = [
        "### Data construction per iteration (build_training_data, SciFact train)",
        "",
        f"{int((~eval_mask).sum())} training queries, k = {args.k}; teacher 0.3 BM25 + 0.7 MiniLM-L6; assistants model2vec, "
        f"WordLlama, MiniLM-L6, BM25 (a new student replaces one each iteration); scorers prepared once in {prepare_seconds:.0f} s "
        "(not counted).",
        "",
        "| iteration | seconds | fraction of iteration 1 | rows | mined | pairs scored | pairs cached |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, (seconds, stat) in enumerate(zip(timings, stats, strict=True), start=1):
        fraction = seconds / timings[0]
        lines.append(
            f"| {i} | {seconds:.1f} | {fraction:.0%} | {stat['rows']} | {stat['mined_queries']} | {stat['pairs_scored']} | {stat['pairs_cached']} |"
        )
    lines += [
        "",
        f"- iterations 2..{args.iterations} cost **{', '.join(f'{r:.0%}' for r in ratios)}** of iteration 1 (goal <= 30%)",
        f"- {noise_note(info)}",
    ]
    print("\n".join(lines))
    write_json(args.json, result)


if __name__ == "__main__":
    main()
