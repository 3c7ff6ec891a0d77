"""Student training for one iteration (Algorithm 1, lines 4-7).

Each step: sample Q queries, each with 1 positive and n negatives drawn from its k
hard negatives (seeded by (seed, iteration, step), so a resumed run draws the same
batches); pick the assistant for the batch; take one AdamW step on
alpha*CL + beta*KL(teacher||student) + gamma*KL(assistant||student).

Checkpoints (model, optimizer, scheduler, step, selection record) are written
atomically every ``checkpoint_every`` steps and at the end; training resumes from
the latest valid one. Under ``torchrun`` (DDP) every rank draws the same global
batch, trains on its slice, and passage embeddings are all-gathered so in-batch
negatives and the loss equal a single-process run on the global batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from ..config import progress
from ..config.precision import autocast_dtype
from ..config.schema import SCHEMA
from ..retrieval.encoders import default_device, set_attention_dropout
from ..retrieval.philox_dropout import dropout_masks
from ..store.atomic import save_torch, try_load_torch
from .construction import TrainingData, take_rows
from .fusion import candidate_distributions, fused_assistant_subsets, softmax
from .losses import MTA4DPRLoss
from .row_adam import RowSparseAdam
from .selection import select_assistant
from .static_step import fused_step_applies, static_student_step

log = logging.getLogger(__name__)


# The profile keys whose TrainConfig default differs from the schema's: the one place such a difference is
# stated (tests/method/test_train_config.py checks it). ``training.amp``: a profile (default ``auto``) always
# sets it; a TrainConfig built directly (tests, benches) trains in float32.
DIRECT_DEFAULTS = {"training.amp": "off"}


def _profile(section: str, key: str):
    """A field read from the profile's ``section.key`` (:func:`..experiments.iteration.train_config`), its
    default the schema's (or :data:`DIRECT_DEFAULTS`'s)."""
    dotted = f"{section}.{key}"
    default = DIRECT_DEFAULTS[dotted] if dotted in DIRECT_DEFAULTS else SCHEMA[section][key].default
    return field(default=default, metadata={"profile": (section, key)})


def _run_time(default=None, factory=None):
    """A field the run sets itself (seed, fitted temperatures, the per-iteration choice...), not a profile key."""
    if factory is not None:
        return field(default_factory=factory, metadata={"run_time": True})
    return field(default=default, metadata={"run_time": True})


@dataclass
class TrainConfig:
    """One iteration's training settings. A field marked ``_profile(section, key)`` is the profile's key of
    that name (default: :data:`..config.schema.SCHEMA`'s); a ``_run_time`` field is set by the run."""

    steps: int = _profile("training", "steps")
    queries_per_batch: int = _profile("training", "queries_per_batch")
    negatives_per_query: int = _profile("training", "negatives_per_query")
    learning_rate: float = _profile("training", "learning_rate")
    weight_decay: float = _profile("training", "weight_decay")
    warmup_steps: int = _profile("training", "warmup_steps")
    max_query_length: int = _profile("training", "max_query_length")
    max_passage_length: int = _profile("training", "max_passage_length")
    checkpoint_every: int = _profile("training", "checkpoint_every")
    amp: str = _profile("training", "amp")
    attention_dropout: float | None = _profile("training", "attention_dropout")
    dropout_masks: str = _profile("training", "dropout_masks")
    alpha: float = _profile("loss", "alpha")
    beta: float = _profile("loss", "beta")
    gamma: float = _profile("loss", "gamma")
    student_temperature: float = _profile("loss", "student_temperature")
    in_batch_negatives: bool = _profile("loss", "in_batch_negatives")
    teacher_temperature: float = _run_time(1.0)  # the teacher spec's optional `temperature`
    assistant_temperatures: list = _run_time(factory=list)  # fitted on iteration 1's rows, per pool member
    selection: str = _profile("selection", "method")
    rbo_p: float = _profile("selection", "rbo_p")
    fusion: bool = _profile("fusion", "enabled")
    fusion_weights: list | None = _run_time()  # fusion.weights when they fit the pool's size
    fixed_assistant: int | None = _run_time()  # per-iteration selection (the rewrite): one candidate for all batches
    seed: int = _run_time(13)


def profile_fields() -> dict:
    """``{TrainConfig field: (profile section, key)}`` for every field a profile sets."""
    return {f.name: f.metadata["profile"] for f in fields(TrainConfig) if "profile" in f.metadata}


def sample_batch(
    data: TrainingData, rows: np.ndarray, config: TrainConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(row indices [B], candidate columns [B, 1 + n]) with the positive in column 0."""
    batch_rows = rng.choice(rows, size=min(config.queries_per_batch, len(rows)), replace=False)
    positive = take_rows(data.is_positive, batch_rows).astype(bool)
    negative = (take_rows(data.candidates, batch_rows) >= 0) & ~positive
    noise = rng.random(positive.shape)
    pos_col = np.argmax(np.where(positive, noise, -1.0), axis=1)
    n = config.negatives_per_query
    keys = np.where(negative, noise, np.inf)
    neg_cols = np.argsort(keys, axis=1, kind="stable")[:, :n]
    counts = negative.sum(1)
    for i in np.where(counts < n)[0]:  # too few negatives: sample them with replacement
        valid = np.where(negative[i])[0]
        if len(valid):
            neg_cols[i] = rng.choice(valid, size=n, replace=True)
    return batch_rows, np.concatenate([pos_col[:, None], neg_cols], axis=1)


def batch_distributions(
    data: TrainingData, batch_rows: np.ndarray, columns: np.ndarray, config: TrainConfig
) -> tuple[np.ndarray, np.ndarray | None]:
    """Teacher logits [B, C] and candidate assistants' distributions [A, B, C] for a batch."""
    teacher = np.take_along_axis(take_rows(data.teacher_scores, batch_rows), columns, 1) / config.teacher_temperature
    m = data.assistant_scores.shape[0]
    if m == 0:
        return teacher, None
    scores = np.stack(
        [np.take_along_axis(take_rows(data.assistant_scores[a], batch_rows), columns, 1) for a in range(m)]
    )
    temps = np.asarray(config.assistant_temperatures or [1.0] * m, dtype=np.float64)[:, None, None]
    probs = softmax(scores / temps)
    subsets = fused_assistant_subsets(m) if config.fusion and m >= 2 else []
    return teacher, candidate_distributions(probs, subsets, config.fusion_weights)


def _has_accelerator() -> bool:
    """Whether any device besides the CPU is present (CUDA, MPS, XPU, MTIA), as torch.manual_seed seeds them all."""
    backends = (torch.cuda, torch.backends.mps, getattr(torch, "xpu", None), getattr(torch, "mtia", None))
    return any(backend is not None and backend.is_available() for backend in backends)


def _world():
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _gather_with_grad(local: torch.Tensor, counts=None) -> torch.Tensor:
    """All ranks' tensors concatenated in rank order; this rank's slice keeps its gradient.

    ``counts`` (rows per rank, the same list on every rank) allows unequal slices:
    each slice is padded to the largest for the collective and trimmed after it.
    """
    rank, world = _world()
    if world == 1:
        return local
    counts = [local.shape[0]] * world if counts is None else [int(c) for c in counts]
    if counts[rank] != local.shape[0]:
        raise ValueError(f"rank {rank}: {local.shape[0]} rows but counts say {counts[rank]}")
    width = max(counts)
    padded = local.detach()
    if width > local.shape[0]:
        padded = torch.cat([padded, padded.new_zeros((width - local.shape[0],) + tuple(local.shape[1:]))])
    gathered = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(gathered, padded.contiguous())
    parts = [g[:c] for g, c in zip(gathered, counts, strict=True)]
    parts[rank] = local
    return torch.cat(parts)


class _DualForward(torch.nn.Module):
    """Queries and passages through the encoder in ONE call, so DDP sees one forward per
    backward (its documented contract; DDP prepares its gradient reduction per forward call)."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, queries, passages):
        return self.encoder(queries), self.encoder(passages)


class Tokenized:
    """Tokenizes texts by index with a fixed max length (a static encoder memoises each text's
    token ids itself: passages recur across batches and iterations)."""

    def __init__(self, encoder, texts, max_length):
        self.encoder, self.texts, self.max_length = encoder, texts, max_length

    def batch(self, indices: Sequence[int]) -> dict:
        return self.encoder.tokenize([self.texts[i] for i in indices], self.max_length)


class StudentOptimizer:
    """AdamW (with linear warm-up and decay) for dense parameters; SparseAdam, i.e. lazy Adam,
    for sparse embedding tables (the static student), which only updates the rows a batch
    touches. SparseAdam has no weight decay."""

    def __init__(self, student, config: TrainConfig):
        sparse = list(getattr(student, "sparse_parameters", lambda: [])())
        sparse_ids = {id(p) for p in sparse}
        dense = [p for p in student.parameters() if p.requires_grad and id(p) not in sparse_ids]
        self.optimizers = []
        if dense:
            # foreach: one multi-tensor kernel per operation instead of a loop over parameters, the same bits
            # (torch defaults to it on CUDA only; on the CPU it took an AdamW step over MiniLM's word embeddings and
            # one FFN matrix, 12.3M parameters, from 88 to 60 ms). `fused` would be faster still but rounds
            # differently (2e-7): results would move.
            self.optimizers.append(
                torch.optim.AdamW(dense, lr=config.learning_rate, weight_decay=config.weight_decay, foreach=True)
            )
        if sparse:
            if config.weight_decay:
                log.warning("weight decay is not applied to sparse embedding tables (SparseAdam)")
            # SparseAdam's arithmetic on the touched rows by index: bit-identical, faster (row_adam.py)
            self.optimizers.append(RowSparseAdam(sparse, lr=config.learning_rate))
        warmup, steps = max(1, config.warmup_steps), config.steps
        schedule = lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup)))  # noqa: E731
        self.schedulers = [torch.optim.lr_scheduler.LambdaLR(o, schedule) for o in self.optimizers]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for optimizer, scheduler in zip(self.optimizers, self.schedulers, strict=True):
            optimizer.step()
            scheduler.step()

    def state_dict(self) -> dict:
        return {
            "optimizers": [o.state_dict() for o in self.optimizers],
            "schedulers": [s.state_dict() for s in self.schedulers],
        }

    def load_state_dict(self, state: dict) -> None:
        for optimizer, saved in zip(self.optimizers, state["optimizers"], strict=True):
            optimizer.load_state_dict(saved)
        for scheduler, saved in zip(self.schedulers, state["schedulers"], strict=True):
            scheduler.load_state_dict(saved)


def train_student(
    student: torch.nn.Module,
    data: TrainingData,
    passages: Sequence[str],
    config: TrainConfig,
    checkpoint_dir: Path | None = None,
    iteration: int = 1,
    log_every: int = 0,
    final_checkpoint: bool = True,
    fused_static_step: bool = True,
) -> list[dict]:
    """Train ``student`` in place on ``data``; return the per-step record (loss terms, selected assistant).

    ``final_checkpoint=False``: no checkpoint after the last step, for a caller that stores the trained
    student itself (a run's ``state.pt``) and deletes the checkpoints then."""
    threads = torch.get_num_threads()
    if not torch.cuda.is_available() and getattr(student, "sparse_parameters", lambda: [])():
        # a static student's ops are tiny: intra-op threads only add synchronisation (on a busy
        # 2-core machine a 8x40 log_softmax took 4 ms with 2 threads and 3 us with 1)
        torch.set_num_threads(1)
    try:
        with dropout_masks(student, config.dropout_masks, default_device()):
            return _train_student(
                student, data, passages, config, checkpoint_dir, iteration, log_every, final_checkpoint,
                fused_static_step,
            )  # fmt: skip
    finally:
        torch.set_num_threads(threads)


def _train_student(  # noqa: PLR0913, C901 (the training loop in one piece, as sentence-transformers' fit)
    student, data, passages, config, checkpoint_dir, iteration, log_every, final_checkpoint, fused_static_step
):
    rank, world = _world()
    device = default_device()
    student.to(device)
    model = _DualForward(student)
    if dist.is_available() and dist.is_initialized():
        # under torchrun always DDP, so a 1-GPU job runs the multi-GPU code path (NCCL all-reduce included);
        # find_unused_parameters: e.g. BERT's pooler gets no gradient (its grad stays None, as in one process)
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True
        )
    optimizer = StudentOptimizer(student, config)
    loss_fn = MTA4DPRLoss(
        config.alpha, config.beta, config.gamma, config.student_temperature, config.in_batch_negatives
    )
    amp_dtype = autocast_dtype(config.amp, device)
    # a static student on the CPU: loss and gradient in one compiled pass, autograd's framework left out
    fused = fused_static_step and fused_step_applies(student, device, world, amp_dtype)
    if config.attention_dropout is not None:
        if set_attention_dropout(getattr(student, "model", student), config.attention_dropout) == 0:
            log.warning("training.attention_dropout: the student has no attention dropout to set; ignored")

    record, start = [], 0
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
    if checkpoint_dir is not None:
        state = try_load_torch(checkpoint_dir / "last.pt")
        if state is not None and state.get("iteration") == iteration:
            snapshot = {k: v.clone() for k, v in student.state_dict().items()}
            try:
                student.load_state_dict(state["model"])
                optimizer.load_state_dict(state["optimizer"])
                start, record = state["step"], state["record"]
                log.info("resumed iteration %d from step %d", iteration, start)
            except (RuntimeError, ValueError, KeyError) as error:  # a checkpoint of an incompatible student
                log.warning(
                    "%s: checkpoint does not fit this student, training from step 0 (%s)",
                    checkpoint_dir / "last.pt",
                    str(error).splitlines()[0],
                )
                student.load_state_dict(snapshot)
                optimizer = StudentOptimizer(student, config)

    # rows with no negative left (tiny corpora) cannot form a candidate list: skip them
    train_rows = (
        np.concatenate(
            [
                start_row
                + np.where(
                    (
                        (np.asarray(data.candidates[start_row : start_row + 65536]) >= 0)
                        & ~np.asarray(data.is_positive[start_row : start_row + 65536])
                    ).any(1)
                )[0]
                for start_row in range(0, len(data), 65536)
            ]
        )
        if len(data)
        else np.zeros(0, np.int64)
    )
    query_tokens = Tokenized(student, data.query_texts, config.max_query_length)
    passage_tokens = Tokenized(student, passages, config.max_passage_length)
    student.train()
    bar = progress.progress_bar(
        range(start, config.steps),
        desc=f"train iteration {iteration}",
        total=config.steps,
        initial=start,
        disable=rank != 0,
        unit="step",
    )
    # torch.manual_seed also queues a seed for each accelerator not yet initialised, formatting a stack trace
    # for each (about 0.3 ms, a few percent of a static student's step); with none present, the CPU's
    # generator is all it seeds
    seed_torch = torch.manual_seed if _has_accelerator() else torch.default_generator.manual_seed
    for step in bar:
        t0 = time.perf_counter()
        rng = np.random.default_rng([config.seed, iteration, step])
        # torch's RNG (dropout) is seeded per step too, so a run resumed from a checkpoint (or a
        # finished iteration) draws the same masks as an uninterrupted one
        seed_torch(int(np.random.default_rng([config.seed, iteration, step, rank, 1]).integers(2**62)))
        batch_rows, columns = sample_batch(data, train_rows, config, rng)
        teacher_logits, candidates = batch_distributions(data, batch_rows, columns, config)
        t_select = time.perf_counter()
        chosen, values = -1, None
        if candidates is not None and config.gamma:
            if config.fixed_assistant is not None:
                chosen = config.fixed_assistant
            else:
                chosen, values = select_assistant(
                    softmax(teacher_logits), candidates, config.selection, config.rbo_p, rng
                )
        select_seconds = time.perf_counter() - t_select
        # this rank's slice of the global batch (slices may differ by one query)
        if len(batch_rows) < world:
            raise ValueError(f"a batch of {len(batch_rows)} queries cannot be split over {world} ranks")
        slices = np.array_split(np.arange(len(batch_rows)), world)
        shard = slices[rank]
        docs = take_rows(data.candidates, batch_rows)[shard[:, None], columns[shard]]
        queries = query_tokens.batch(take_rows(data.query_rows, batch_rows[shard]))
        passages_batch = passage_tokens.batch(docs.ravel())
        assistant_probs = candidates[chosen] if chosen >= 0 else None
        optimizer.zero_grad(set_to_none=True)
        if fused:  # the arrays as they are: the pass reads numpy
            terms = static_student_step(student, queries, passages_batch, teacher_logits, assistant_probs, loss_fn)
        else:
            teacher_t = torch.tensor(teacher_logits, dtype=torch.float32, device=device)
            assistant_t = (
                None if assistant_probs is None else torch.tensor(assistant_probs, dtype=torch.float32, device=device)
            )
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                q, p = model(queries, passages_batch)
            q, p = q.float(), p.float()
            if world > 1:
                # Every rank computes the global-batch loss over all-gathered embeddings whose
                # local slice carries the gradient; the sum of the ranks' gradients is then the
                # single-process gradient, and DDP's averaging is undone by scaling with world.
                counts = [len(part) for part in slices]
                q = _gather_with_grad(q, counts)
                p = _gather_with_grad(p, [c * columns.shape[1] for c in counts])
            terms = loss_fn(q, p, teacher_t, assistant_t)
            (terms["total"] * world).backward()
        optimizer.step()
        entry = {
            "step": step + 1,
            "assistant": int(chosen),
            "select_seconds": select_seconds,
            "step_seconds": time.perf_counter() - t0,
            **{k: float(v.detach()) for k, v in terms.items()},
        }
        record.append(entry)
        bar.set_postfix(
            {
                name: f"{entry[name]:.3f}"
                for name in ("total", "contrastive", "kl_teacher", "kl_assistant")
                if name in entry
            },
            refresh=False,
        )
        if log_every and (step + 1) % log_every == 0 and rank == 0:
            log.info("iteration %d step %d loss %.4f", iteration, step + 1, entry["total"])
        done = step + 1 == config.steps
        due = final_checkpoint if done else bool(config.checkpoint_every) and (step + 1) % config.checkpoint_every == 0
        if checkpoint_dir is not None and rank == 0 and due:
            save_torch(
                checkpoint_dir / "last.pt",
                {
                    "iteration": iteration,
                    "step": step + 1,
                    "model": student.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "record": record,
                },
            )
    bar.close()
    student.eval()
    return record
