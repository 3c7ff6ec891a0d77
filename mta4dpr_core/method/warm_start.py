"""[CLS] warm start: give a mean-pooling checkpoint a usable [CLS] before MTA4DPR trains it.

The paper's student (SimLM, cut to 6 layers) was pretrained with a [CLS] bottleneck, so the
mean of [CLS] over its last three layers already ranks passages. The offline checkpoints here
were trained for mean pooling: all-MiniLM-L6-v2's [CLS], cut to 3 layers, is one constant
vector (cosine 1.000 between unrelated texts; its residual is 0.2% of its norm), and
contrastive training cannot leave that point: with L2-normalised vectors the gradient of
``cos(q, p)`` is ``(p - cos(q, p) q) / |q|``, which vanishes when every ``p`` equals ``q``.

The warm start stands in for the [CLS] pretraining the paper's checkpoint had. It distils the
target's embedding (``target``, mean-pooled, L2-normalised) into the student's own pooling on
unlabelled passages and on query-length crops of them::

    L = mean_x [ 1 - cos(student(x), target(x)) ]

No query and no relevance judgment is read: the texts are a corpus named in the profile
(``texts``, under ``data.root``; mini_transformer uses the MS MARCO DL pool, not SciFact). The
result is one checkpoint per student spec, computed once and cached, shared by every seed and
variant, like a downloaded pretrained model.

Example::

    student = TransformerEncoder.from_name("all-MiniLM-L6-v2", pooling="cls_last3", normalize=True, num_layers=3)
    target = TransformerEncoder.from_name("all-MiniLM-L6-v2", pooling="mean", normalize=True)
    log = warm_start(student, target, passages[:4000], WarmStartConfig(steps=400))
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ..config import progress
from ..config.precision import autocast_dtype, dtype_name
from ..config.warm_start_config import WarmStartConfig  # noqa: F401  (the settings; re-exported)
from ..retrieval.data import load_corpus
from ..retrieval.encoders import TransformerEncoder, default_device
from ..retrieval.philox_dropout import dropout_masks
from ..store.atomic import atomic_write_json, content_hash, read_json, save_torch, try_load_torch

log = logging.getLogger(__name__)


def query_length_crops(texts: Sequence[str], rng: random.Random, shortest: int = 4, longest: int = 12) -> list[str]:
    """One contiguous span of ``shortest``..``longest`` words per text: the [CLS] must also work on
    query-length inputs, and the corpus has no queries we may read."""
    crops = []
    for text in texts:
        words = text.split()
        length = rng.randint(shortest, longest)
        start = rng.randint(0, max(0, len(words) - length))
        crops.append(" ".join(words[start : start + length]))
    return crops


def warm_start(
    student: torch.nn.Module, target: torch.nn.Module, texts: Sequence[str], config: WarmStartConfig
) -> list[float]:
    """Train ``student`` in place so its pooled vector matches ``target``'s (cosine loss); the loss log."""
    rng = random.Random(config.seed)
    torch.manual_seed(config.seed)
    vectors = torch.as_tensor(
        target.encode(texts, max_length=config.max_length, batch_size=128, desc="warm-start targets")
    )
    vectors = torch.nn.functional.normalize(vectors.float(), dim=-1)
    device = next(student.parameters()).device
    # foreach: as train_student's optimizer (the same bits as the per-parameter loop, faster on the CPU)
    optimizer = torch.optim.AdamW(student.parameters(), lr=config.learning_rate, weight_decay=0.01, foreach=True)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / config.warmup_steps) * max(0.0, 1 - step / config.steps)
    )
    amp_dtype = autocast_dtype(config.amp, device, where="models.student.warm_start.amp")
    losses = []
    student.train()
    bar = progress.progress_bar(range(config.steps), desc="[CLS] warm start", total=config.steps)
    with dropout_masks(student, config.dropout_masks, device):
        for _step in bar:
            rows = rng.sample(range(len(texts)), min(config.batch_size, len(texts)))
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                pooled = student(student.tokenize([texts[r] for r in rows], config.max_length))
            pooled = torch.nn.functional.normalize(pooled.float(), dim=-1)
            loss = (1 - (pooled * vectors[rows].to(device)).sum(-1)).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(float(loss.detach()))
            bar.set_postfix(cosine_loss=f"{losses[-1]:.3f}", refresh=False)
    student.eval()
    return losses


def warm_started(student: torch.nn.Module, spec: dict, data_root: Path, cache_dir: Path) -> torch.nn.Module:
    """``student`` with the cached warm start of ``spec`` loaded (computed and cached on first use)."""

    config, student_identity, path = _cache_entry(spec, cache_dir)
    state = try_load_torch(path)
    if state is not None:
        student.load_state_dict(state)
        return student.eval()
    corpus = load_corpus(Path(data_root) / config.texts)
    rng = random.Random(config.seed)
    passages = [corpus.texts[i] for i in rng.sample(range(len(corpus)), min(config.passages, len(corpus)))]
    texts = passages + query_length_crops(passages, rng)
    # the targets are encoded in the precision the steps train in (`amp`): bf16 where native, float32 elsewhere
    target = TransformerEncoder.from_name(
        config.target,
        pooling="mean",
        normalize=True,
        cache_dir=cache_dir,
        inference_dtype={"auto": "auto", "bf16": "bf16", "off": None}[config.amp],
    )
    started = time.time()
    log.info(
        "warm start of the student's [CLS] (%d steps on %d texts of %s); cached after",
        config.steps,
        len(texts),
        config.texts,
    )
    losses = warm_start(student, target, texts, config)
    save_torch(path, student.state_dict())
    atomic_write_json(
        path.with_suffix(".json"),
        {
            "config": asdict(config),
            "precision": dtype_name(autocast_dtype(config.amp, next(student.parameters()).device)),
            "student": student_identity,
            "texts": len(texts),
            "seconds": round(time.time() - started, 1),
            "loss_first_10": float(np.mean(losses[:10])),
            "loss_last_10": float(np.mean(losses[-10:])),
        },
    )
    return student


def warm_start_report(cache_dir: Path, spec: dict) -> dict | None:
    """The stored summary of ``spec``'s warm start (config, time, cosine loss before and after), or None."""
    return read_json(_cache_entry(spec, cache_dir)[2].with_suffix(".json"))


def _cache_entry(spec: dict, cache_dir):
    config = WarmStartConfig.from_spec(spec["warm_start"])
    # how the trained student is later encoded (`inference_dtype`) does not change its warm start
    student_identity = {k: v for k, v in spec.items() if k not in ("warm_start", "inference_dtype")}
    # the precision actually used is part of the key: `auto` trains in bf16 on one CPU and float32 on another
    precision = dtype_name(autocast_dtype(config.amp, default_device(), where="models.student.warm_start.amp"))
    # v2: the targets are encoded under the same `amp` as the training steps (v1 encoded them in float32)
    settings = asdict(config)
    if settings["dropout_masks"] == "torch":
        # the masks of every warm start cached before the key existed: those caches keep their keys
        del settings["dropout_masks"]
    key = content_hash("warm-start-v2", student_identity, settings, precision)
    return config, student_identity, Path(cache_dir) / "warm_start" / f"{key}.pt"
