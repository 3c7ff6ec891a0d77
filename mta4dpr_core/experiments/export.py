"""Outputs usable elsewhere: a trained student as a sentence-transformers model, and each
iteration's training data as Parquet / JSONL.

Command line (run from the repository root; ``--profile`` as for the runner, and ``--set KEY=VALUE``
overrides exactly as ``runner --set``, e.g. to match a run made with overrides)::

    # the student of one finished MTA4DPR run (last stored iteration unless --iteration N)
    python -m mta4dpr_core.experiments.export student --profile mini \\
        --run-dir runs/mini/work/seed13/mta4dpr-<key> [--iteration N] --out exported/student
    # a run of another student than the profile's (e.g. a Table 6 size) is recognised by itself;
    # --student names its spec where it cannot be (see "Which student" below)
    python -m mta4dpr_core.experiments.export student --profile mini --run-dir ... --student "{kind: static, model: wordllama, dim: 128}" --out ...
    # or straight from a checkpoint file written with atomic.save_torch ({"model": state_dict, ...})
    python -m mta4dpr_core.experiments.export student --profile mini --checkpoint path/to/state.pt --out exported/student

    # every stored iteration's training data of that run (rebuilt from the stored iterations and the
    # cached pair scores: the run itself does not keep its training data)
    python -m mta4dpr_core.experiments.export data --profile mini --run-dir runs/mini/work/seed13/mta4dpr-<key> \\
        --out exported/data.parquet [--format parquet|jsonl] [--texts]
    # or from directories written by ``TrainingData.save`` (iteration 1, 2, ... in the order given)
    python -m mta4dpr_core.experiments.export data --profile mini --data-dir dir1 dir2 --out exported/data.jsonl

Everything is written atomically: a student is built in a temporary sibling directory and renamed
into place; a data file is written to a temporary sibling file and renamed. The files get ordinary
permissions (0666 and 0777 less the umask: 0644 and 0755 under the usual umask 022), not the 0600 of a
temporary file. Third-party loading noise (transformers' load report and weight-loading bars) is
silenced while students are built and exported.

Which student
-------------
A run stores its student's weights (``iteration<N>/state.pt``, ``snapshots/student@<N>.pt``) but the
student is rebuilt from a spec before they are loaded, so export needs the spec the run was made with,
which is not always the profile's ``models.student`` (``study.student_sizes`` runs use their own). In
order: ``--student`` (a YAML/JSON mapping); the spec recorded by the run (a ``student_spec`` key in its
``result.json`` or ``iteration<N>/state.json``, where the run recorded one); the candidate (the run's
``models.student`` or one of ``study.student_sizes``) whose run key equals the run directory's (exact,
while the core code is unchanged since the run); else the single candidate whose shapes fit the stored
weights. No candidate fitting, or several, is a one-line error that says to pass ``--student``; a
checkpoint that does not fit the spec is one too, never a traceback.

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
the run's ``training.max_passage_length``; the student encoded queries at ``training.max_query_length``);
a static model truncates through its ``tokenizer.json`` (``max_seq_length`` tokens, no special tokens,
as the student did), gives a text without any token a zero vector (the student uses token 0), and,
without normalisation, averages over tokens outside a restricted vocabulary as zeros (the student
leaves them out; with normalisation, the default, the direction is the same). The exported
directory's ``README.md`` says how to reproduce the package's metrics with sentence-transformers alone
(text joining, truncation per side, pooling, normalisation, search).

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
import contextlib
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
import yaml

from ..config.errors import Mta4dprError
from ..config.params import add_profile_arguments, apply_overrides, load_params, profile_path, resolve_path
from ..config.typed import typed
from ..method.construction import TrainingData, eval_query_mask
from ..store.atomic import code_digest, content_hash, read_json, try_load_torch
from .runs import VARIANTS, deep_update

log = logging.getLogger(__name__)

COLUMNS = (
    "iteration",
    "row",
    "query_id",
    "query_text",
    "is_eval",
    "origin",
    "positive_ids",
    "negative_ids",
    "negative_texts",
    "candidate_ids",
    "is_positive",
    "teacher_scores",
    "assistant_names",
    "assistant_scores",
)


class ExportError(Mta4dprError):
    """An export cannot be made (missing checkpoint, unknown student, ...)."""


@contextlib.contextmanager
def quiet_third_party():
    """No transformers warnings (its "LOAD REPORT ... UNEXPECTED" table for a checkpoint with extra
    buffers), no weight-loading bars and no sentence-transformers info lines while inside."""
    saved = []
    try:
        from transformers.utils import logging as hf_logging  # noqa: PLC0415 (lazy: transformers not loaded by this module)

        saved.append(("hf", hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()))
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass
    quiet = [logging.getLogger(name) for name in ("sentence_transformers", "huggingface_hub")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(quiet, levels, strict=True):
            logger.setLevel(level)
        for _, verbosity, bars in saved:
            hf_logging.set_verbosity(verbosity)
            if bars:
                hf_logging.enable_progress_bar()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def ordinary_permissions(path) -> Path:
    """Give ``path`` (a file, or a directory and everything below it) the modes an ordinary write
    would: 0666/0777 less the umask (0644/0755 under umask 022). Temporary files and directories
    (mkstemp, mkdtemp) are created 0600/0700."""
    path, mask = Path(path), _umask()
    if path.is_dir():
        for root, _dirs, files in os.walk(path):
            os.chmod(root, 0o777 & ~mask)
            for name in files:
                if not os.path.islink(os.path.join(root, name)):
                    os.chmod(os.path.join(root, name), 0o666 & ~mask)
    else:
        os.chmod(path, 0o666 & ~mask)
    return path


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
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling  # noqa: PLC0415 (lazy: sentence_transformers not loaded by this module)

    from ..retrieval.encoders import StaticEncoder, TransformerEncoder  # noqa: PLC0415 (lazy: numba not loaded by this module)

    student = student.cpu().eval() if isinstance(student, torch.nn.Module) else student
    if isinstance(student, TransformerEncoder):
        from sentence_transformers.base.modules import Transformer  # noqa: PLC0415 (lazy: sentence_transformers not loaded by this module)

        hf_dir = work_dir / "hf"
        model = student.model
        had = getattr(model.config, "output_hidden_states", False)
        model.config.output_hidden_states = student.pooling == "cls_last3"
        try:
            model.save_pretrained(str(hf_dir))
        finally:
            model.config.output_hidden_states = had
        student.tokenizer.save_pretrained(str(hf_dir))
        with quiet_third_party():
            transformer = Transformer(str(hf_dir), max_seq_length=max_seq_length or 512)
        dim = transformer.get_embedding_dimension()
        modules = [transformer]
        if student.pooling == "cls_last3":
            from sentence_transformers.sentence_transformer.modules import WeightedLayerPooling  # noqa: PLC0415 (lazy: sentence_transformers not loaded by this module)

            layers = model.config.num_hidden_layers
            modules.append(WeightedLayerPooling(dim, num_hidden_layers=layers, layer_start=max(0, layers - 2)))
            modules.append(Pooling(dim, pooling_mode="cls"))
        else:
            modules.append(Pooling(dim, pooling_mode=student.pooling))
    elif isinstance(student, StaticEncoder):
        from sentence_transformers.sentence_transformer.modules import StaticEmbedding  # noqa: PLC0415 (lazy: sentence_transformers not loaded by this module)
        from tokenizers import Tokenizer  # noqa: PLC0415 (lazy: tokenizers not loaded by this module)

        table = student.full_table() if hasattr(student, "id_map") else student.embedding.weight.data
        tokenizer = Tokenizer.from_str(student.tokenizer.to_str())  # a copy: StaticEmbedding changes its padding
        if max_seq_length:  # the student truncated passages at max_passage_length tokens (no special tokens)
            tokenizer.enable_truncation(int(max_seq_length))
        else:
            tokenizer.no_truncation()
        modules = [StaticEmbedding(tokenizer, embedding_weights=table.detach().float().cpu().clone())]
    else:
        raise ExportError(f"cannot export a {type(student).__name__}: only transformer and static students")
    if student.normalize:
        modules.append(Normalize())
    return modules


def export_student(student, out, max_seq_length=None, metadata=None, max_query_length=None) -> Path:
    """Write ``student`` as a sentence-transformers directory at ``out`` (atomically, ordinary
    permissions); return ``out``. ``max_seq_length``: the passage truncation (tokens) the directory
    applies to every text; ``max_query_length``: the query truncation the package used, for the README."""
    from sentence_transformers import SentenceTransformer  # noqa: PLC0415 (lazy: sentence_transformers not loaded by this module)

    out = Path(out)
    staging = _staging_dir(out)
    scratch = Path(tempfile.mkdtemp(prefix="mta4dpr-export-"))
    try:
        with quiet_third_party():
            modules = sentence_transformer_modules(student, scratch, max_seq_length)
            model = SentenceTransformer(modules=modules, device="cpu")
            model.save(str(staging / "model"))
        info = {
            "exported_by": "mta4dpr_core.experiments.export",
            "student": student.identity(),
            "max_seq_length": max_seq_length,
            "max_query_length": max_query_length,
            **(metadata or {}),
        }
        (staging / "model" / "mta4dpr_export.json").write_text(json.dumps(info, indent=2, default=str))
        (staging / "model" / "README.md").write_text(export_readme(student, max_query_length, max_seq_length, metadata))
        ordinary_permissions(staging / "model")
        _replace_dir(staging / "model", out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
    return out


def export_readme(student, max_query_length=None, max_passage_length=None, metadata=None) -> str:
    """The exported directory's README: what it is, and how to reproduce the package's metrics with
    sentence-transformers alone."""
    from ..retrieval.encoders import StaticEncoder  # noqa: PLC0415 (lazy: numba not loaded by this module)

    static = isinstance(student, StaticEncoder)
    identity = student.identity()
    q = int(max_query_length) if max_query_length else None
    p = int(max_passage_length) if max_passage_length else None
    metadata = metadata or {}
    source = ", ".join(
        f"{key} `{metadata[key]}`"
        for key in ("profile", "run_dir", "checkpoint", "iteration")
        if metadata.get(key) is not None
    )
    if static:
        pooling = (
            "the mean of the static token vectors of the text (tokens without special tokens; a token the run "
            "never saw, outside its restricted vocabulary, has a zero vector)"
        )
        counting = "tokens of `tokenizer.json`, without special tokens"
        set_query = f"model[0].tokenizer.enable_truncation({q})" if q else None
        set_passage = f"model[0].tokenizer.enable_truncation({p})" if p else "model[0].tokenizer.no_truncation()"
        here = f"`tokenizer.json` truncates every text at {p} tokens" if p else "`tokenizer.json` does not truncate"
    else:
        pooling = {
            "cls": "the [CLS] vector of the last layer",
            "mean": "the mean of the last layer's token vectors (attention-masked)",
            "cls_last3": (
                "the mean of the [CLS] vectors of the last three layers (here: `WeightedLayerPooling` over the last "
                "three layers with equal weights, then `Pooling(cls)`)"
            ),
        }[student.pooling]
        counting = "tokenizer tokens, [CLS] and [SEP] included"
        set_query = f"model.max_seq_length = {q}" if q else None
        set_passage = f"model.max_seq_length = {p}" if p else None
        here = f"`max_seq_length` is {p}" if p else "`max_seq_length` is the model's"
    normalise = (
        "L2-normalised (the `Normalize` module), so the inner product is the cosine"
        if student.normalize
        else "not normalised: the score is the raw inner product"
    )
    truncation = (
        f"queries at {q} and passages at {p} {counting}"
        if q and p
        else f"passages at {p} {counting}"
        if p
        else "none recorded"
    )
    lines = [
        f"# MTA4DPR student ({identity.get('class')}, {identity.get('name')})",
        "",
        "A student trained by MTA4DPR (multi-teacher-assistant distillation for dense passage retrieval), exported by "
        "`python -m mta4dpr_core.experiments.export` with stock sentence-transformers modules only: `SentenceTransformer(path)` loads it, "
        "without `mta4dpr_core` or `trust_remote_code`." + (f" Source: {source}." if source else ""),
        "",
        f"Student: `{json.dumps(identity, sort_keys=True)}`"
        + (f"; spec `{json.dumps(metadata['student_spec'], sort_keys=True)}`" if metadata.get("student_spec") else "")
        + ".",
        "",
        "## Reproducing the package's metrics",
        "",
        "The package's figures (nDCG@10, MRR@10, R@k) come from exactly this procedure:",
        "",
        "1. **Passage text**: a BEIR passage's `title` and `text`, each stripped, joined by one space "
        '(`f"{title} {text}".strip()`; the text alone when the title is empty).',
        "2. **Query text**: the query's `text`, stripped. No prefix or prompt on either side.",
        f"3. **Truncation**: {truncation}. In this directory {here}"
        + (
            f", i.e. the passage length: encode queries after `{set_query}` and passages after `{set_passage}`."
            if set_query
            else "."
        ),
        f"4. **Pooling**: {pooling}.",
        f"5. **Normalisation**: {normalise}.",
        "6. **Search and metrics**: exact inner-product search over the whole corpus (FAISS `IndexFlatIP`), top 100 per query; "
        "nDCG@10 with the graded judgments, MRR@10 and recall at the split's relevance level (1; 2 for TREC DL passage), "
        "all through `ir_measures` (pytrec_eval, identical to trec_eval); a query with no retrieved passage scores 0.",
        "",
        "```python",
        "import numpy as np",
        "from sentence_transformers import SentenceTransformer",
        "",
        'model = SentenceTransformer(path, device="cpu")',
    ]
    if set_query:
        lines += [set_query, "queries = model.encode(query_texts, convert_to_numpy=True)", set_passage]
    else:
        lines += ["queries = model.encode(query_texts, convert_to_numpy=True)"]
    lines += [
        "passages = model.encode([f\"{d['title'].strip()} {d['text'].strip()}\".strip() for d in corpus], convert_to_numpy=True)",
        "scores = queries @ passages.T            # inner product (cosine when normalised)",
        'top = np.argsort(-scores, axis=1, kind="stable")[:, :100]',
        "# then e.g. ir_measures.calc_aggregate([ir_measures.nDCG@10], qrels, run)",
        "```",
        "",
        "Without step 3's per-side truncation (one `max_seq_length` for both sides) a query longer than the query length "
        "is encoded in full; on SciFact and MS MARCO queries this changes nothing or almost nothing. Known exact differences: "
        "a text with no token at all gets a zero vector here (the package uses token 0).",
        "",
    ]
    return "\n".join(lines)


def _shape_like_state(student, state: dict):
    """Give a fresh static student the restricted-vocabulary layout of ``state`` (id_map, frozen_table)."""
    if "id_map" in state and not hasattr(student, "id_map"):
        rows, dim = state["embedding.weight"].shape
        student.embedding = torch.nn.Embedding(rows, dim, sparse=True)
        student.register_buffer("frozen_table", torch.zeros_like(state["frozen_table"]))
        student.register_buffer("id_map", torch.zeros_like(state["id_map"]))
    return student


def last_iteration(run_dir: Path):
    found = [
        int(m.group(1))
        for p in Path(run_dir).glob("iteration*/state.pt")
        if (m := re.fullmatch(r"iteration(\d+)", p.parent.name))
    ]
    return max(found) if found else None


def _state_dict(state):
    return state.get("model", state) if isinstance(state, dict) and "model" in state else state


def _shape(tensor) -> str:
    return "[" + ", ".join(str(n) for n in tensor.shape) + "]"


def spec_mismatch(student, state: dict):
    """Why the weights ``state`` cannot be a ``student``'s (a short phrase), or None when they fit.

    A static student's checkpoint may hold a restricted vocabulary (``id_map``, ``frozen_table``): it
    fits when it covers the student's whole vocabulary and has its dimension."""
    expected = student.state_dict()
    if "id_map" in state and "embedding.weight" in state and "embedding.weight" in expected:
        vocabulary = student.id_map.numel() if hasattr(student, "id_map") else expected["embedding.weight"].shape[0]
        dim = expected["embedding.weight"].shape[1]
        if state["id_map"].numel() != vocabulary:
            return f"a vocabulary of {state['id_map'].numel()} tokens where the spec's student has {vocabulary}"
        if state["embedding.weight"].shape[1] != dim:
            return f"embedding.weight {_shape(state['embedding.weight'])} where the spec's student has dimension {dim}"
        return None
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = (
            [f"missing {missing[0]}" + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")] if missing else []
        ) + (
            [f"unexpected {unexpected[0]}" + (f" and {len(unexpected) - 1} more" if len(unexpected) > 1 else "")]
            if unexpected
            else []
        )
        return "weights " + ", ".join(parts)
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            return f"{key} {_shape(state[key])} where the spec's student has {_shape(tensor)}"
    return None


def _build(spec: dict, params: dict, cache: dict | None = None):
    """A fresh student of ``spec`` (unrestricted; cached in ``cache`` by spec)."""

    from .experiment import build_student  # noqa: PLC0415 (lazy: ir_measures, numba not loaded by this module)

    key = json.dumps(spec, sort_keys=True, default=str)
    if cache is not None and key in cache:
        return cache[key]
    try:
        with quiet_third_party():
            student = build_student(spec, resolve_path(typed(params).output.cache_dir))
    except Mta4dprError:
        raise
    except Exception as error:  # an unknown model, a missing file: one line
        raise ExportError(
            f"cannot build the student {json.dumps(spec, sort_keys=True)}: {type(error).__name__}: "
            f"{' '.join(str(error).split())}"
        ) from None
    if cache is not None:
        cache[key] = student
    return student


def load_student(params: dict, checkpoint, student_spec=None):
    """A student of ``student_spec`` (default: the profile's) with the weights stored in ``checkpoint``
    (a state.pt or snapshot); a checkpoint that does not fit the spec is an :class:`ExportError`."""

    state = try_load_torch(checkpoint)
    if state is None:
        raise ExportError(f"{checkpoint}: no readable checkpoint (missing or corrupted)")
    state = _state_dict(state)
    spec = student_spec or typed(params).models.student
    student = _build(spec, params)
    mismatch = spec_mismatch(student, state)
    if mismatch is not None:
        raise ExportError(
            f"{checkpoint}: does not fit the student {json.dumps(spec, sort_keys=True)}: it holds {mismatch}; "
            "pass the spec the run was made with as --student (e.g. one of the profile's study.student_sizes)"
        )
    student = _shape_like_state(student, state)
    try:
        student.load_state_dict(state)
    except RuntimeError as error:
        raise ExportError(
            f"{checkpoint}: does not fit the student {json.dumps(spec, sort_keys=True)} "
            f"({str(error).splitlines()[-1].strip()}); pass the run's spec as --student"
        ) from None
    return student.eval()


def recorded_student_spec(run_dir):
    """The student spec a run recorded (``student_spec`` in its result.json or an iteration's
    state.json), or None where the run recorded none."""

    run_dir = Path(run_dir)
    stored = read_json(run_dir / "result.json") or {}
    if isinstance(stored.get("student_spec"), dict):
        return stored["student_spec"]
    for path in sorted(run_dir.glob("iteration*/state.json")):
        spec = (read_json(path) or {}).get("student_spec")
        if isinstance(spec, dict):
            return spec
    return None


def _candidates(params: dict, stored: dict):
    """(label, spec given to run_mta4dpr, effective spec) of every student a run of this profile can have."""
    run_params = stored.get("params") or params
    main = typed(run_params).models.student
    out = [("models.student", None, main)]
    profile_student = typed(params).models.student
    if profile_student != main:
        out.append(("the profile's models.student", profile_student, profile_student))
    seen = []
    for source in (run_params, params):
        for index, spec in enumerate((source.get("study") or {}).get("student_sizes") or []):
            if spec not in seen:
                seen.append(spec)
                out.append((f"study.student_sizes[{index}]", spec, spec))
    return out


def run_student_spec(params: dict, run_dir, checkpoint=None) -> dict:  # noqa: C901 (which student a run trained, resolved from its stored params in one readable chain)
    """The student spec of the run in ``run_dir`` (see "Which student" in the module docstring)."""

    run_dir = Path(run_dir)
    recorded = recorded_student_spec(run_dir)
    if recorded is not None:
        return recorded
    seed, variant, run_key = _parse_run_dir(run_dir)
    stored = read_json(run_dir / "result.json") or {}
    candidates = _candidates(params, stored)
    if stored.get("params") and stored.get("assistants") is not None:
        # the run key as run_mta4dpr made it: exact while the core code is the run's
        relevant = {key: value for key, value in stored["params"].items() if key not in ("study", "output", "profile")}
        digest = code_digest()
        for _label, given, spec in candidates:
            if content_hash(relevant, seed, stored["assistants"], given, variant, digest) == run_key:
                return spec
    if checkpoint is None:
        iteration = last_iteration(run_dir)
        if iteration is None:
            raise ExportError(f"{run_dir}: no stored iteration (iteration<N>/state.pt)")
        checkpoint = run_dir / f"iteration{iteration}" / "state.pt"
    state = try_load_torch(checkpoint)
    if state is None:
        raise ExportError(f"{checkpoint}: no readable checkpoint (missing or corrupted)")
    state = _state_dict(state)
    distinct, cache = [], {}
    for label, _, spec in candidates:
        if all(spec != other for _, other in distinct):
            distinct.append((label, spec))
    fitting, reasons = [], []
    for label, spec in distinct:
        mismatch = spec_mismatch(_build(spec, params, cache), state)
        if mismatch is None:
            fitting.append((label, spec))
        else:
            reasons.append(f"{label} {json.dumps(spec, sort_keys=True)}: {mismatch}")
    if len(fitting) == 1:
        log.info("%s: the student is %s %s (the only spec whose shapes fit the stored weights)", run_dir, *fitting[0])
        return fitting[0][1]
    if not fitting:
        raise ExportError(
            f"{run_dir}: recorded no student spec and its weights fit none of the profile's students "
            f"({'; '.join(reasons)}); pass the spec the run was made with as --student"
        )
    raise ExportError(
        f"{run_dir}: recorded no student spec and its weights fit several students "
        f"({'; '.join(f'{label} {json.dumps(spec, sort_keys=True)}' for label, spec in fitting)}); "
        "pass the one the run was made with as --student"
    )


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
        negatives = [d for d, p in zip(docs, positive, strict=True) if not p]
        rows.append(
            {
                "iteration": int(iteration),
                "row": row,
                "query_id": str(data.query_ids[split_row]),
                "query_text": data.query_texts[split_row],
                "is_eval": False,
                "origin": "mined" if int(data.origin[row]) == 1 else "base",
                "positive_ids": [str(corpus_ids[d]) for d, p in zip(docs, positive, strict=True) if p],
                "negative_ids": [str(corpus_ids[d]) for d in negatives],
                "negative_texts": [corpus_texts[d] for d in negatives] if corpus_texts is not None else None,
                "candidate_ids": [str(corpus_ids[d]) for d in docs],
                "is_positive": [bool(p) for p in positive],
                "teacher_scores": _floats(teacher[row][valid].tolist()),
                "assistant_names": names,
                "assistant_scores": [_floats(assistants[a, row][valid].tolist()) for a in range(assistants.shape[0])],
            }
        )
    for split_row in eval_rows if eval_rows is not None else []:
        split_row = int(split_row)
        rows.append(
            {
                "iteration": int(iteration),
                "row": len(rows),
                "query_id": str(data.query_ids[split_row]),
                "query_text": data.query_texts[split_row],
                "is_eval": True,
                "origin": "eval",
                "positive_ids": [str(corpus_ids[d]) for d in (positives[split_row] if positives is not None else [])],
                "negative_ids": [],
                "negative_texts": [] if corpus_texts is not None else None,
                "candidate_ids": [],
                "is_positive": [],
                "teacher_scores": [],
                "assistant_names": names,
                "assistant_scores": [],
            }
        )
    return rows


def arrow_schema():
    import pyarrow as pa  # noqa: PLC0415 (lazy: pyarrow not loaded by this module)

    strings, floats = pa.list_(pa.string()), pa.list_(pa.float32())
    return pa.schema(
        [
            ("iteration", pa.int64()),
            ("row", pa.int64()),
            ("query_id", pa.string()),
            ("query_text", pa.string()),
            ("is_eval", pa.bool_()),
            ("origin", pa.string()),
            ("positive_ids", strings),
            ("negative_ids", strings),
            ("negative_texts", strings),
            ("candidate_ids", strings),
            ("is_positive", pa.list_(pa.bool_())),
            ("teacher_scores", floats),
            ("assistant_names", strings),
            ("assistant_scores", pa.list_(floats)),
        ]
    )


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
            import pyarrow as pa  # noqa: PLC0415 (lazy: pyarrow not loaded by this module)
            import pyarrow.parquet as pq  # noqa: PLC0415 (lazy: pyarrow not loaded by this module)

            pq.write_table(pa.Table.from_pylist(list(rows), schema=arrow_schema()), temp)
        else:
            with open(temp, "w", encoding="utf-8") as stream:
                for row in rows:
                    stream.write(json.dumps({c: row[c] for c in COLUMNS}, ensure_ascii=False, allow_nan=False) + "\n")
        ordinary_permissions(temp)  # mkstemp made it 0600
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


def rebuild_training_data(params: dict, run_dir, texts=False, student_spec=None):
    """Rows of every stored iteration of the run in ``run_dir``, its training data rebuilt exactly as
    ``iteration.run_mta4dpr`` built it (same pool, previous student, eval split; cached pair scores).
    ``student_spec``: the run's student (default: found by :func:`run_student_spec`)."""
    from .experiment import Setup  # noqa: PLC0415 (lazy: ir_measures, numba not loaded by this module)

    run_dir = Path(run_dir)
    seed, variant, run_key = _parse_run_dir(run_dir)
    stored = read_json(run_dir / "result.json") or {}
    run_params = stored.get("params") or deep_update(params, VARIANTS.get(variant, {}))
    count = last_iteration(run_dir)
    if count is None:
        raise ExportError(f"{run_dir}: no stored iteration (iteration<N>/state.pt)")
    # the run's student, checked against its last weights before any work
    spec = student_spec or run_student_spec(params, run_dir)
    last = run_dir / f"iteration{count}" / "state.pt"
    if student_spec is not None and (weights := try_load_torch(last)) is not None:
        mismatch = spec_mismatch(_build(spec, params), _state_dict(weights))
        if mismatch is not None:
            raise ExportError(
                f"{last}: does not fit the student {json.dumps(spec, sort_keys=True)}: it holds {mismatch}; "
                "pass the spec the run was made with as --student"
            )
    with quiet_third_party():
        setup = Setup.from_params(params)
    split, corpus = setup.train, setup.collection.corpus
    names = stored.get("assistants")
    pool = [a for a in setup.assistants if a.name in names] if names else list(setup.assistants)
    construction = run_params["construction"]
    eval_mask = eval_query_mask(split, construction, seed)
    positives = split.positives(corpus)
    rows, previous = [], None
    for iteration in range(1, count + 1):
        data = setup.training_data(pool, eval_mask, construction, previous_student=previous)
        rows += training_data_rows(
            data, corpus.ids, iteration, corpus.texts if texts else None, positives, np.where(eval_mask)[0]
        )
        state = try_load_torch(run_dir / f"iteration{iteration}" / "state.pt")
        if state is None:
            raise ExportError(f"{run_dir}: iteration{iteration}/state.pt is missing or corrupted")
        student = _run_student(setup, seed, spec, state["model"], run_dir / f"iteration{iteration}" / "state.pt")
        previous = setup.student_scorer(student, f"student@{iteration}", f"{run_key}-{iteration}")
        by_name = {a.name: a for a in setup.assistants}
        meta = (
            read_json(run_dir / f"iteration{iteration}" / "state.json") or state
        )  # pool names: state.json, or older state.pt
        if "pool" not in meta:
            raise ExportError(f"{run_dir}: iteration{iteration}/state.json is missing (the pool of the next iteration)")
        pool = []
        for name in meta["pool"]:
            if name in by_name:
                pool.append(by_name[name])
                continue
            snapshot = run_dir / "snapshots" / f"{name}.pt"
            weights = try_load_torch(snapshot)
            if weights is None:
                raise ExportError(f"{snapshot}: the snapshot of {name} is missing or corrupted")
            pool.append(
                setup.student_scorer(
                    _run_student(setup, 0, spec, weights, snapshot), name, f"{run_key}-{name.rsplit('@', 1)[-1]}"
                )
            )
    return rows


def _run_student(setup, seed, spec, weights, path):
    """``setup.new_student(seed, spec)`` with ``weights``; a mismatch is a one-line :class:`ExportError`."""
    with quiet_third_party():
        student = setup.new_student(seed, spec)
    try:
        student.load_state_dict(weights)
    except RuntimeError as error:
        detail = next(
            (
                line.strip()
                for line in str(error).splitlines()
                if "size mismatch" in line or "Missing" in line or "Unexpected" in line
            ),
            str(error).splitlines()[-1].strip(),
        )
        raise ExportError(
            f"{path}: does not fit the student {json.dumps(spec, sort_keys=True)} ({detail}); "
            "pass the spec the run was made with as --student"
        ) from None
    return student


def stored_training_data_rows(params: dict, directories, texts=False):
    """Rows of directories written by ``TrainingData.save`` (iteration 1, 2, ... in order)."""
    from .experiment import Setup  # noqa: PLC0415 (lazy: ir_measures, numba not loaded by this module)

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
    path = Path(args.profile) if args.profile.endswith((".yaml", ".yml")) else profile_path(args.profile)
    params = load_params(path)
    return apply_overrides(params, args.overrides) if args.overrides else params


def _student_option(text):
    if not text:
        return None

    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ExportError(f"--student {text!r}: not YAML ({' '.join(str(error).split())})") from None
    if not isinstance(spec, dict) or "kind" not in spec:
        raise ExportError(
            f'--student {text!r}: expected a mapping with a `kind`, e.g. "{{kind: static, model: wordllama, dim: 128}}"'
        )
    return spec


def _run_training_params(params, run_dir):
    """The training section the run was made with (its result.json), else the profile's."""

    stored = (read_json(Path(run_dir) / "result.json") or {}) if run_dir is not None else {}
    return (stored.get("params") or {}).get("training") or params["training"]


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m mta4dpr_core.experiments.export", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("student", "data"):
        sub = commands.add_parser(name)
        add_profile_arguments(sub, "profile overrides, as for the runner")
        sub.add_argument(
            "--student",
            metavar="SPEC",
            help="the run's student spec as a YAML/JSON mapping, e.g. "
            '"{kind: static, model: wordllama, dim: 128}" (default: the run\'s own, see the module docstring)',
        )
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
            source.add_argument(
                "--data-dir", nargs="+", help="directories written by TrainingData.save, iteration 1, 2, ..."
            )
            sub.add_argument(
                "--format", choices=("parquet", "jsonl"), help="default: from the --out suffix (.jsonl or else parquet)"
            )
            sub.add_argument("--texts", action="store_true", help="also write the hard negatives' texts")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        with quiet_third_party():
            out = _command(args)
        print(out)
    except Mta4dprError as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    return 0


def _command(args) -> Path:
    """Run one parsed command; return the path written."""
    params = _params(args)
    spec = _student_option(args.student)
    if args.command == "student":
        run_dir = Path(args.run_dir) if args.run_dir else None
        if run_dir is not None:
            iteration = args.iteration or last_iteration(run_dir)
            if iteration is None:
                raise ExportError(f"{args.run_dir}: no stored iteration (iteration<N>/state.pt)")
            checkpoint = run_dir / f"iteration{iteration}" / "state.pt"
        else:
            checkpoint, iteration = Path(args.checkpoint), args.iteration
            # a checkpoint inside a run directory (iteration<N>/state.pt, snapshots/<name>.pt) is that run's
            if re.fullmatch(r"seed-?\d+", checkpoint.resolve().parent.parent.parent.name) and re.fullmatch(
                r"iteration\d+|snapshots", checkpoint.resolve().parent.name
            ):
                run_dir = checkpoint.resolve().parent.parent
        if spec is None and run_dir is not None:
            spec = run_student_spec(params, run_dir, checkpoint)
        training = _run_training_params(params, run_dir)
        student = load_student(params, checkpoint, spec)
        out = export_student(
            student,
            args.out,
            args.max_seq_length or training["max_passage_length"],
            {
                "checkpoint": str(checkpoint),
                "iteration": iteration,
                "profile": typed(params).profile,
                "run_dir": str(run_dir) if run_dir else None,
                "student_spec": spec or typed(params).models.student,
            },
            max_query_length=training["max_query_length"],
        )
    else:
        rows = (
            rebuild_training_data(params, args.run_dir, args.texts, spec)
            if args.run_dir
            else stored_training_data_rows(params, args.data_dir, args.texts)
        )
        out = write_rows(rows, args.out, args.format)
    return out


if __name__ == "__main__":
    sys.exit(main())
