"""Outputs usable elsewhere: a trained student as a sentence-transformers model, and each
iteration's training data as Parquet / JSONL.

Command line (run from the repository root; ``--profile`` as for the runner, and ``--set KEY=VALUE``
overrides exactly as ``runner --set``, e.g. to match a run made with overrides)::

    # the student of one finished MTA4DPR run (last stored iteration unless --iteration N)
    python -m mta4dpr_core.export student --profile mini \\
        --run-dir runs/mini/work/seed13/mta4dpr-<key> [--iteration N] --out exported/student
    # or straight from a checkpoint file written with atomic.save_torch ({"model": state_dict, ...})
    python -m mta4dpr_core.export student --profile mini --checkpoint path/to/state.pt --out exported/student

    # every stored iteration's training data of that run (rebuilt from the stored iterations and the
    # cached pair scores: the run itself does not keep its training data)
    python -m mta4dpr_core.export data --profile mini --run-dir runs/mini/work/seed13/mta4dpr-<key> \\
        --out exported/data.parquet [--format parquet|jsonl] [--texts]
    # or from directories written by ``TrainingData.save`` (iteration 1, 2, ... in the order given)
    python -m mta4dpr_core.export data --profile mini --data-dir dir1 dir2 --out exported/data.jsonl

Everything is written atomically: a student is built in a temporary sibling directory and renamed
into place; a data file is written to a temporary sibling file and renamed.

Student format
--------------
A sentence-transformers directory (``modules.json`` + one folder per module), loaded with
``SentenceTransformer(path)``; only stock sentence-transformers modules are used, so loading needs
neither ``mta4dpr_core`` nor ``trust_remote_code``:

* transformer students: ``Transformer`` (the Hugging Face model and tokenizer) + ``Pooling`` + ``Normalize``
  (when the student normalises). Pooling ``cls`` and ``mean`` map to ``Pooling(pooling_mode=cls|mean)``.
  ``cls_last3`` (mean of the [CLS] vectors of the last three layers) is ``Transformer`` with
  ``output_hidden_states=true`` in its config, then ``WeightedLayerPooling`` over the last three layers
  with equal weights (the mean of the layers' token vectors), then ``Pooling(cls)``: the [CLS] vector of
  a mean is the mean of the [CLS] vectors.
* static students (WordLlama or model2vec based, possibly vocabulary-restricted): sentence-transformers'
  ``StaticEmbedding`` format (``tokenizer.json`` + ``model.safetensors`` holding ``embedding.weight``, the
  full vocabulary: rows the restricted student never kept are zero) + ``Normalize``. This is also the
  format ``StaticEmbedding.from_model2vec`` produces; model2vec itself can use it as
  ``StaticModel(vectors, Tokenizer.from_file(".../tokenizer.json"))``.

Embeddings equal the student's ``encode`` within 1e-5 when texts fit the maximum length. Known
differences: ``SentenceTransformer`` truncates every text at one ``max_seq_length`` (default here:
``training.max_passage_length``; the student encoded queries at ``training.max_query_length``);
static models never truncate, give a text without any token a zero vector (the student uses token
0), and, without normalisation, average over tokens outside a restricted vocabulary as zeros (the
student leaves them out; with normalisation, the default, the direction is the same).

Data schema (one row per training row; Parquet via pyarrow, or JSON Lines; pandas and HF ``datasets``
read both)
-----------------------------------------------------------------------------------------------------
=====================  =====================  ===========================================================
column                 type                   meaning
=====================  =====================  ===========================================================
iteration              int64                  MTA4DPR iteration (1-based)
row                    int64                  row within the iteration's data (eval rows follow)
query_id               string
query_text             string
is_eval                bool                   held-out eval query (no candidates: not trained on)
origin                 string                 ``base``, ``mined`` (a previous student's failure) or ``eval``
positive_ids           list<string>           relevant passages (qrels grade >= the split's level)
negative_ids           list<string>           hard negatives (RRF of the assistants' top k)
negative_texts         list<string>           their texts (only with ``--texts``; else null)
candidate_ids          list<string>           positives then negatives (padding dropped)
is_positive            list<bool>             per candidate
teacher_scores         list<float32>          raw teacher logits per candidate (null where not scored)
assistant_names        list<string>           the iteration's assistant pool
assistant_scores       list<list<float32>>    [assistant][candidate] raw scores
=====================  =====================  ===========================================================
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from .errors import Mta4dprError

log = logging.getLogger(__name__)

COLUMNS = ("iteration", "row", "query_id", "query_text", "is_eval", "origin", "positive_ids", "negative_ids", "negative_texts",
           "candidate_ids", "is_positive", "teacher_scores", "assistant_names", "assistant_scores")


class ExportError(Mta4dprError):
    """An export cannot be made (missing checkpoint, unknown student, ...)."""


# ---------------------------------------------------------------------------------------------
# Students
# ---------------------------------------------------------------------------------------------

def _staging_dir(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))


def _replace_dir(staging: Path, out: Path):
    """Move ``staging`` to ``out``; an existing ``out`` is replaced (renamed aside first, then removed)."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
    os.replace(staging, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def sentence_transformer_modules(student, work_dir: Path, max_seq_length=None):
    """The stock sentence-transformers modules equivalent to ``student`` (a TransformerEncoder or StaticEncoder)."""
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling

    from .encoders import StaticEncoder, TransformerEncoder

    student = student.cpu().eval() if isinstance(student, torch.nn.Module) else student
    if isinstance(student, TransformerEncoder):
        from sentence_transformers.base.modules import Transformer

        hf_dir = work_dir / "hf"
        model = student.model
        had = getattr(model.config, "output_hidden_states", False)
        model.config.output_hidden_states = student.pooling == "cls_last3"
        try:
            model.save_pretrained(str(hf_dir))
        finally:
            model.config.output_hidden_states = had
        student.tokenizer.save_pretrained(str(hf_dir))
        transformer = Transformer(str(hf_dir), max_seq_length=max_seq_length or 512)
        dim = transformer.get_embedding_dimension()
        modules = [transformer]
        if student.pooling == "cls_last3":
            from sentence_transformers.sentence_transformer.modules import WeightedLayerPooling

            layers = model.config.num_hidden_layers
            modules.append(WeightedLayerPooling(dim, num_hidden_layers=layers, layer_start=max(0, layers - 2)))
            modules.append(Pooling(dim, pooling_mode="cls"))
        else:
            modules.append(Pooling(dim, pooling_mode=student.pooling))
    elif isinstance(student, StaticEncoder):
        from sentence_transformers.sentence_transformer.modules import StaticEmbedding
        from tokenizers import Tokenizer

        table = student.full_table() if hasattr(student, "id_map") else student.embedding.weight.data
        tokenizer = Tokenizer.from_str(student.tokenizer.to_str())  # a copy: StaticEmbedding changes its padding
        modules = [StaticEmbedding(tokenizer, embedding_weights=table.detach().float().cpu().clone())]
    else:
        raise ExportError(f"cannot export a {type(student).__name__}: only transformer and static students")
    if student.normalize:
        modules.append(Normalize())
    return modules


def export_student(student, out, max_seq_length=None, metadata=None) -> Path:
    """Write ``student`` as a sentence-transformers directory at ``out`` (atomically); return ``out``."""
    from sentence_transformers import SentenceTransformer

    out = Path(out)
    staging = _staging_dir(out)
    scratch = Path(tempfile.mkdtemp(prefix="mta4dpr-export-"))
    try:
        modules = sentence_transformer_modules(student, scratch, max_seq_length)
        model = SentenceTransformer(modules=modules, device="cpu")
        model.save(str(staging / "model"))
        info = {"exported_by": "mta4dpr_core.export", "student": student.identity(), **(metadata or {})}
        (staging / "model" / "mta4dpr_export.json").write_text(json.dumps(info, indent=2, default=str))
        _replace_dir(staging / "model", out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
    return out


def _shape_like_state(student, state: dict):
    """Give a fresh static student the restricted-vocabulary layout of ``state`` (id_map, frozen_table)."""
    if "id_map" in state and not hasattr(student, "id_map"):
        rows, dim = state["embedding.weight"].shape
        student.embedding = torch.nn.Embedding(rows, dim, sparse=True)
        student.register_buffer("frozen_table", torch.zeros_like(state["frozen_table"]))
        student.register_buffer("id_map", torch.zeros_like(state["id_map"]))
    return student


def last_iteration(run_dir: Path):
    found = [int(m.group(1)) for p in Path(run_dir).glob("iteration*/state.pt") if (m := re.fullmatch(r"iteration(\d+)", p.parent.name))]
    return max(found) if found else None


def load_student(params: dict, checkpoint, student_spec=None):
    """A student of the profile's kind with the weights stored in ``checkpoint`` (a state.pt or snapshot)."""
    from .atomic import try_load_torch
    from .experiment import build_student
    from .params import resolve_path

    state = try_load_torch(checkpoint)
    if state is None:
        raise ExportError(f"{checkpoint}: no readable checkpoint (missing or corrupted)")
    state = state.get("model", state) if isinstance(state, dict) and "model" in state else state
    spec = student_spec or params["models"]["student"]
    student = _shape_like_state(build_student(spec, resolve_path(params["output"]["cache_dir"])), state)
    try:
        student.load_state_dict(state)
    except RuntimeError as error:
        raise ExportError(f"{checkpoint}: does not fit the profile's student {spec} ({str(error).splitlines()[0]}); "
                          "use the profile (and --set overrides) the run was made with") from None
    return student.eval()


# ---------------------------------------------------------------------------------------------
# Training data
# ---------------------------------------------------------------------------------------------

def _floats(values):
    return [None if (v is None or (isinstance(v, float) and math.isnan(v))) else float(v) for v in values]


def training_data_rows(data, corpus_ids, iteration, corpus_texts=None, positives=None, eval_rows=None):
    """Rows (dicts, see the module docstring) of one :class:`TrainingData`.

    ``corpus_ids`` maps the data's document indices to ids; ``corpus_texts`` (optional) adds the
    negatives' texts; ``eval_rows`` (split rows of the held-out eval queries) adds one row per eval
    query with its ``positives`` (per split row, document indices) and no candidates.
    """
    rows = []
    names = list(data.assistant_names)
    candidates, is_positive = np.asarray(data.candidates), np.asarray(data.is_positive)
    teacher, assistants = np.asarray(data.teacher_scores), np.asarray(data.assistant_scores)
    for row, split_row in enumerate(np.asarray(data.query_rows).tolist()):
        valid = candidates[row] >= 0
        docs = candidates[row][valid].tolist()
        positive = is_positive[row][valid].tolist()
        negatives = [d for d, p in zip(docs, positive) if not p]
        rows.append({
            "iteration": int(iteration), "row": row, "query_id": str(data.query_ids[split_row]),
            "query_text": data.query_texts[split_row], "is_eval": False,
            "origin": "mined" if int(data.origin[row]) == 1 else "base",
            "positive_ids": [str(corpus_ids[d]) for d, p in zip(docs, positive) if p],
            "negative_ids": [str(corpus_ids[d]) for d in negatives],
            "negative_texts": [corpus_texts[d] for d in negatives] if corpus_texts is not None else None,
            "candidate_ids": [str(corpus_ids[d]) for d in docs], "is_positive": [bool(p) for p in positive],
            "teacher_scores": _floats(teacher[row][valid].tolist()), "assistant_names": names,
            "assistant_scores": [_floats(assistants[a, row][valid].tolist()) for a in range(assistants.shape[0])],
        })
    for split_row in (eval_rows if eval_rows is not None else []):
        split_row = int(split_row)
        rows.append({
            "iteration": int(iteration), "row": len(rows), "query_id": str(data.query_ids[split_row]),
            "query_text": data.query_texts[split_row], "is_eval": True, "origin": "eval",
            "positive_ids": [str(corpus_ids[d]) for d in (positives[split_row] if positives is not None else [])],
            "negative_ids": [], "negative_texts": [] if corpus_texts is not None else None, "candidate_ids": [], "is_positive": [],
            "teacher_scores": [], "assistant_names": names, "assistant_scores": [],
        })
    return rows


def arrow_schema():
    import pyarrow as pa

    strings, floats = pa.list_(pa.string()), pa.list_(pa.float32())
    return pa.schema([("iteration", pa.int64()), ("row", pa.int64()), ("query_id", pa.string()), ("query_text", pa.string()),
                      ("is_eval", pa.bool_()), ("origin", pa.string()), ("positive_ids", strings), ("negative_ids", strings),
                      ("negative_texts", strings), ("candidate_ids", strings), ("is_positive", pa.list_(pa.bool_())),
                      ("teacher_scores", floats), ("assistant_names", strings), ("assistant_scores", pa.list_(floats))])


def write_rows(rows, out, fmt=None) -> Path:
    """Write rows as Parquet (``.parquet``) or JSON Lines (``.jsonl``), atomically."""
    out = Path(out)
    fmt = fmt or ("jsonl" if out.suffix in (".jsonl", ".json") else "parquet")
    if fmt not in ("parquet", "jsonl"):
        raise ExportError(f"unknown data format {fmt!r}; expected parquet or jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.tmp-")
    os.close(handle)
    try:
        if fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.Table.from_pylist(list(rows), schema=arrow_schema()), temp)
        else:
            with open(temp, "w", encoding="utf-8") as stream:
                for row in rows:
                    stream.write(json.dumps({c: row[c] for c in COLUMNS}, ensure_ascii=False, allow_nan=False) + "\n")
        os.replace(temp, out)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
    return out


def _parse_run_dir(run_dir: Path):
    seed = re.fullmatch(r"seed(-?\d+)", run_dir.parent.name)
    variant, _, key = run_dir.name.rpartition("-")
    if seed is None or not variant:
        raise ExportError(f"{run_dir}: not a run directory (expected .../seed<S>/<variant>-<key>)")
    return int(seed.group(1)), variant, key


def rebuild_training_data(params: dict, run_dir, texts=False):
    """Rows of every stored iteration of the run in ``run_dir``, its training data rebuilt exactly as
    ``iteration.run_mta4dpr`` built it (same pool, previous student, eval split; cached pair scores)."""
    from .atomic import read_json, try_load_torch
    from .construction import build_training_data, split_eval_queries
    from .experiment import Setup
    from .iteration import VARIANTS, _load_snapshot, deep_update

    run_dir = Path(run_dir)
    seed, variant, run_key = _parse_run_dir(run_dir)
    stored = read_json(run_dir / "result.json") or {}
    run_params = stored.get("params") or deep_update(params, VARIANTS.get(variant, {}))
    setup = Setup.from_params(params)
    split, corpus = setup.train, setup.collection.corpus
    names = stored.get("assistants")
    pool = [a for a in setup.assistants if a.name in names] if names else list(setup.assistants)
    construction = run_params["construction"]
    eval_mask = split_eval_queries(len(split), construction["eval_fraction"], seed, construction["min_eval_queries"])
    positives = split.positives(corpus)
    count = last_iteration(run_dir)
    if count is None:
        raise ExportError(f"{run_dir}: no stored iteration (iteration<N>/state.pt)")
    rows, previous = [], None
    for iteration in range(1, count + 1):
        data = build_training_data(split, corpus, pool, setup.teacher, k=construction["k"], rrf_c=construction["rrf_c"],
                                   eval_mask=eval_mask, work_dir=setup.work_dir, previous_student=previous,
                                   mining=construction["mining"], mining_max_rank=construction["mining_max_rank"])
        rows += training_data_rows(data, corpus.ids, iteration, corpus.texts if texts else None, positives, np.where(eval_mask)[0])
        state = try_load_torch(run_dir / f"iteration{iteration}" / "state.pt")
        if state is None:
            raise ExportError(f"{run_dir}: iteration{iteration}/state.pt is missing or corrupted")
        student = setup.new_student(seed)
        student.load_state_dict(state["model"])
        previous = setup.student_scorer(student, f"student@{iteration}", f"{run_key}-{iteration}")
        by_name = {a.name: a for a in setup.assistants}
        meta = read_json(run_dir / f"iteration{iteration}" / "state.json") or state  # pool names: state.json, or older state.pt
        pool = [by_name.get(n) or setup.student_scorer(_load_snapshot(setup, run_dir, n, None), n, f"{run_key}-{n.rsplit('@', 1)[-1]}")
                for n in meta["pool"]]
    return rows


def stored_training_data_rows(params: dict, directories, texts=False):
    """Rows of directories written by ``TrainingData.save`` (iteration 1, 2, ... in order)."""
    from .construction import TrainingData
    from .experiment import Setup

    setup = Setup.from_params(params, prepare=False)
    corpus = setup.collection.corpus
    rows = []
    for iteration, directory in enumerate(directories, start=1):
        data = TrainingData.load(directory, mmap=True)
        if data is None:
            raise ExportError(f"{directory}: no readable training data (meta.json and checksummed .npy files)")
        rows += training_data_rows(data, corpus.ids, iteration, corpus.texts if texts else None)
    return rows


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

def _params(args):
    from .params import apply_overrides, load_params, profile_path

    path = Path(args.profile) if args.profile.endswith((".yaml", ".yml")) else profile_path(args.profile)
    params = load_params(path)
    return apply_overrides(params, args.overrides) if args.overrides else params


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m mta4dpr_core.export", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("student", "data"):
        sub = commands.add_parser(name)
        sub.add_argument("--profile", default="mini", help="name of params/<profile>.yaml, or a path to a YAML file")
        sub.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", dest="overrides", help="profile overrides, as for the runner")
        sub.add_argument("--out", required=True, help="output directory (student) or file (data)")
        if name == "student":
            source = sub.add_mutually_exclusive_group(required=True)
            source.add_argument("--run-dir", help="runs/<profile>/work/seed<S>/<variant>-<key>")
            source.add_argument("--checkpoint", help="a state.pt (or snapshot) file")
            sub.add_argument("--iteration", type=int, help="iteration to export (default: the last stored one)")
            sub.add_argument("--max-seq-length", type=int, help="default: training.max_passage_length")
        else:
            source = sub.add_mutually_exclusive_group(required=True)
            source.add_argument("--run-dir", help="rebuild every stored iteration's data of this run")
            source.add_argument("--data-dir", nargs="+", help="directories written by TrainingData.save, iteration 1, 2, ...")
            sub.add_argument("--format", choices=("parquet", "jsonl"), help="default: from the --out suffix (.jsonl or else parquet)")
            sub.add_argument("--texts", action="store_true", help="also write the hard negatives' texts")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        params = _params(args)
        if args.command == "student":
            if args.run_dir:
                iteration = args.iteration or last_iteration(Path(args.run_dir))
                if iteration is None:
                    raise ExportError(f"{args.run_dir}: no stored iteration (iteration<N>/state.pt)")
                checkpoint = Path(args.run_dir) / f"iteration{iteration}" / "state.pt"
            else:
                checkpoint, iteration = Path(args.checkpoint), args.iteration
            student = load_student(params, checkpoint)
            out = export_student(student, args.out, args.max_seq_length or params["training"]["max_passage_length"],
                                 {"checkpoint": str(checkpoint), "iteration": iteration, "profile": params["profile"]})
        else:
            rows = rebuild_training_data(params, args.run_dir, args.texts) if args.run_dir else \
                stored_training_data_rows(params, args.data_dir, args.texts)
            out = write_rows(rows, args.out, args.format)
        print(out)
    except Mta4dprError as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
