"""Text encoders: one small interface for every dual encoder.

Every encoder has ``encode(texts, max_length, batch_size) -> float32 [n, dim]``.
Encoding is batched over texts sorted by length (less padding), runs under
``torch.inference_mode`` and shows tqdm progress. Trainable encoders (the
transformer and the static one) are ``nn.Module`` s with ``tokenize`` and
``forward(batch) -> embeddings`` used by the trainer.

Pooling ``cls_last3`` is the paper's student representation: the mean of the
[CLS] vectors of the last three layers.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from ..config import progress
from ..config.models import ResolvedModel, default_cache_dir, resolve_model
from ..config.precision import autocast_dtype, dtype_name
from .static_pooling import map_table_rows, static_mean_pool

if TYPE_CHECKING:  # annotations only: transformers loads where a transformer encoder is built
    from transformers import BatchEncoding

log = logging.getLogger(__name__)
POOLINGS = ("cls", "mean", "cls_last3")
# "auto": bf16 where the device computes it natively, else float32 (mta4dpr_core/config/precision.py)
INFERENCE_DTYPES = {None: None, "auto": "auto", "bf16": torch.bfloat16, "fp16": torch.float16}


_TEXT_IDS: dict = {}  # tokenizer digest -> {text: token ids (untruncated)}
_EMPTY_IDS = np.zeros(1, dtype=np.int32)  # an empty text is the padding token
_TEXT_IDS_LIMIT = 200_000
# (tokenizer, vocabulary, max_length, batch_size, texts) -> a static encoder's batches of table rows and masks
_TABLE_BATCHES: OrderedDict = OrderedDict()
_TABLE_BATCHES_BYTES = 256 << 20  # held per process, least recently used out first (the 40,873-passage DL pool: 85 MB)


def length_sorted_batches(texts: Sequence[str], batch_size: int) -> list[np.ndarray]:
    """Indices in batches of similar length (longest first), to minimise padding."""
    order = np.argsort([-len(t) for t in texts], kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def encode_in_batches(
    embed_batch: Callable[[list[str]], np.ndarray], texts: Sequence[str], batch_size: int, desc: str = "encode"
) -> np.ndarray:
    """Run ``embed_batch(list_of_texts) -> np.ndarray`` over length-sorted batches, restoring order."""
    texts = list(texts)
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    out = None
    batches = length_sorted_batches(texts, batch_size)
    for idx in progress.progress_bar(
        batches, desc=desc, total=len(batches), disable=len(texts) <= batch_size, unit="batch"
    ):
        emb = embed_batch([texts[i] for i in idx])
        if out is None:
            out = np.empty((len(texts), emb.shape[1]), dtype=np.float32)
        out[idx] = emb
    return out


def set_attention_dropout(model: nn.Module, probability: float) -> int:
    """Set the attention-probability dropout of every Hugging Face self-attention module of ``model`` (BERT-style
    modules keep it as ``self.dropout``, read as ``dropout.p`` when they call SDPA); returns how many were set.

    With dropout, PyTorch's SDPA on the CPU falls back to its math path (it materialises the [B, H, L, L]
    probabilities and draws a Bernoulli mask over them: 60% of a MiniLM training step at 16 x 8 x 144 tokens);
    at 0 it takes the fused flash kernel."""
    count = 0
    for name, module in model.named_modules():
        if name.endswith("attention.self") and isinstance(getattr(module, "dropout", None), nn.Dropout):
            module.dropout.p = float(probability)
            count += 1
    return count


def check_transformer_options(pooling: str, inference_dtype: str | None) -> None:
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    if inference_dtype not in INFERENCE_DTYPES:
        raise ValueError(
            f"inference_dtype must be one of {sorted(k for k in INFERENCE_DTYPES if k)} or None, got {inference_dtype!r}"
        )


def inference_dtype_on(inference_dtype: str | None, device: torch.device) -> torch.dtype | None:
    """The dtype ``encode`` autocasts to on ``device`` (None: float32)."""
    dtype = INFERENCE_DTYPES[inference_dtype]
    return autocast_dtype("auto", device) if dtype == "auto" else dtype


def transformer_identity(
    name: str, pooling: str, normalize: bool, layers: int, inference_dtype: str | None, device: torch.device
) -> dict[str, str | int | bool]:
    """What a transformer encoder's encodings are cached under (``TransformerEncoder.identity``)."""
    identity = {"class": "transformer", "name": name, "pooling": pooling, "normalize": normalize, "layers": layers}
    if inference_dtype:  # float32 keeps its historical cache keys
        # the precision actually used: "auto" encodes in bf16 on one machine and float32 on another
        identity["inference_dtype"] = dtype_name(inference_dtype_on(inference_dtype, device))
    return identity


def onnx_output(resolved: ResolvedModel) -> str:
    """The ONNX graph output an encoder reads: the registry's ``output``, else paraphrase-MiniLM-L3-v2's "461"."""
    return resolved.extra.get("output", "461")


def onnx_identity(resolved: ResolvedModel, normalize: bool) -> dict[str, str | bool]:
    """What an ONNX encoder's encodings are cached under (``OnnxEncoder.identity``)."""
    return {
        "class": "onnx",
        "name": resolved.name,
        "output": onnx_output(resolved),
        "normalize": normalize,
    }


class TransformerEncoder(nn.Module):
    """A Hugging Face transformer dual encoder (shared weights for queries and passages).

    Example::

        enc = TransformerEncoder.from_name("all-MiniLM-L6-v2", pooling="mean", normalize=True)
        vectors = enc.encode(["a query"], max_length=32)
    """

    trainable = True

    def __init__(
        self, model, tokenizer, pooling="cls_last3", normalize=False, name="transformer", inference_dtype=None
    ):
        super().__init__()
        check_transformer_options(pooling, inference_dtype)
        self.model, self.tokenizer, self.pooling, self.normalize, self.name = model, tokenizer, pooling, normalize, name
        # opt-in reduced precision for ``encode`` only (autocast; weights stay float32):
        # about 2x on CPUs with AVX512-BF16 and on GPUs, at cosine >= 0.9999 to float32
        self.inference_dtype = inference_dtype
        # the wrapper takes the model's mode (from_pretrained gives eval): a new nn.Module is in train mode, and
        # encode() restores the mode it found, which would leave the model's dropout on for direct calls after it
        self.train(model.training)

    @classmethod
    def from_name(
        cls,
        name: str | ResolvedModel,
        pooling: str = "cls_last3",
        normalize: bool = False,
        num_layers: int | None = None,
        cache_dir: str | Path | None = None,
        inference_dtype: str | None = None,
    ) -> TransformerEncoder:
        from transformers import AutoModel, AutoTokenizer  # noqa: PLC0415 (lazy: transformers not loaded by this module)

        resolved = name if isinstance(name, ResolvedModel) else resolve_model(name, cache_dir)
        model = AutoModel.from_pretrained(str(resolved.path))
        if num_layers:
            layers = getattr(getattr(model, "encoder", None), "layer", None)
            if layers is None or num_layers > len(layers):
                raise ValueError(f"cannot truncate {resolved.name} to {num_layers} layers")
            model.encoder.layer = layers[:num_layers]
            model.config.num_hidden_layers = num_layers
        tokenizer = AutoTokenizer.from_pretrained(str(resolved.path))
        return cls(model, tokenizer, pooling, normalize, name=resolved.name, inference_dtype=inference_dtype)

    @property
    def dim(self) -> int:
        return self.model.config.hidden_size

    def identity(self) -> dict[str, str | int | bool]:
        return transformer_identity(
            self.name,
            self.pooling,
            self.normalize,
            self.model.config.num_hidden_layers,
            getattr(self, "inference_dtype", None),
            next(self.model.parameters()).device,
        )

    def _inference_dtype(self):
        return inference_dtype_on(getattr(self, "inference_dtype", None), next(self.model.parameters()).device)

    def tokenize(self, texts: Sequence[str], max_length: int) -> BatchEncoding:
        return self.tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        device = next(self.model.parameters()).device
        batch = {k: v.to(device) for k, v in batch.items()}
        output = self.model(**batch, output_hidden_states=self.pooling == "cls_last3")
        if self.pooling == "cls":
            pooled = output.last_hidden_state[:, 0]
        elif self.pooling == "cls_last3":
            pooled = torch.stack([h[:, 0] for h in output.hidden_states[-3:]]).mean(0)
        else:
            mask = batch["attention_mask"].unsqueeze(-1).to(output.last_hidden_state.dtype)
            pooled = (output.last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return nn.functional.normalize(pooled, dim=-1) if self.normalize else pooled

    def encode(
        self, texts: Sequence[str], max_length: int = 256, batch_size: int = 64, desc: str = "encode"
    ) -> np.ndarray:
        was_training = self.training
        self.eval()
        dtype = self._inference_dtype()
        device_type = next(self.model.parameters()).device.type
        with torch.inference_mode(), torch.autocast(device_type, dtype=dtype, enabled=dtype is not None):
            result = encode_in_batches(
                lambda chunk: self(self.tokenize(chunk, max_length)).float().cpu().numpy(), texts, batch_size, desc
            )
        self.train(was_training)
        return result


def _unique_with_inverse(ids: torch.Tensor, size: int):
    """``torch.unique(ids, return_inverse=True)`` for ids in ``[0, size)``, by a presence table instead of a
    sort: the same sorted unique ids and the same inverse, in a fraction of the time for a batch of 37k
    token ids over a vocabulary of tens of thousands (a sort was a tenth of a training step).

    >>> _unique_with_inverse(torch.tensor([[5, 2], [2, 7]]), 10)
    (tensor([2, 5, 7]), tensor([[1, 0],
            [0, 2]]))
    """
    present = torch.zeros(size, dtype=torch.bool, device=ids.device)
    present[ids.reshape(-1)] = True
    unique = present.nonzero().squeeze(1)
    position = torch.empty(size, dtype=torch.long, device=ids.device)
    position[unique] = torch.arange(unique.numel(), device=ids.device)
    return unique, position[ids]


class StaticEncoder(nn.Module):
    """Static token embeddings, mean pooled: the fast, trainable student (WordLlama or model2vec).

    ``e(text) = mean_{t in tokens(text)} E[t]`` (L2-normalised when ``normalize``).
    """

    trainable = True

    def __init__(self, embedding: np.ndarray, tokenizer, normalize=True, name="static"):
        super().__init__()
        self.embedding = nn.Embedding.from_pretrained(
            torch.tensor(np.asarray(embedding, dtype=np.float32)), freeze=False, padding_idx=None
        )
        self.tokenizer, self.normalize, self.name = tokenizer, normalize, name
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()

    @classmethod
    def from_name(cls, name: str, normalize: bool = True, cache_dir: str | Path | None = None) -> StaticEncoder:
        """``wordllama`` or ``model2vec:<transformer name>`` (distilled once, cached)."""
        if name.startswith("model2vec:"):
            return cls.from_model2vec(name.split(":", 1)[1], normalize=normalize, cache_dir=cache_dir)
        resolved = resolve_model(name, cache_dir)
        if resolved.format != "wordllama":
            raise ValueError(f"{name!r} is not a static model (use 'wordllama' or 'model2vec:<model>')")
        from wordllama import WordLlama  # noqa: PLC0415 (lazy: wordllama not loaded by this module)

        model = WordLlama.load(cache_dir=resolved.path, disable_download=True)
        return cls(model.embedding, model.tokenizer, normalize, name="wordllama")

    @classmethod
    def from_model2vec(
        cls, source: str, normalize: bool = True, pca_dims: int = 256, cache_dir: str | Path | None = None
    ) -> StaticEncoder:
        from model2vec import StaticModel  # noqa: PLC0415 (lazy: model2vec not loaded by this module)

        cache_dir = Path(cache_dir or default_cache_dir())
        resolved = resolve_model(source, cache_dir)
        key = hashlib.sha256(f"{resolved.name}|{pca_dims}".encode()).hexdigest()[:12]
        target = cache_dir / "models" / f"model2vec-{key}"
        if not (target / "config.json").exists():
            from model2vec.distill import distill  # noqa: PLC0415 (lazy: model2vec not loaded by this module)

            log.info("distilling a model2vec static model from %s (once)", resolved.name)
            static = distill(model_name=str(resolved.path), pca_dims=pca_dims)
            target.parent.mkdir(parents=True, exist_ok=True)
            # staged beside the target, so that the rename stays on one file system
            staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".m2v-"))
            static.save_pretrained(str(staging / "m"))
            try:
                if target.exists() and not (target / "config.json").exists():
                    shutil.rmtree(target)  # a partial copy (written in place before this rename existed)
                os.replace(staging / "m", target)
            except OSError:
                # another process (a second run, the tests beside a run) renamed its copy into place first: the same
                # distillation of the same model, so keep that one
                if not (target / "config.json").exists():
                    raise
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        static = StaticModel.from_pretrained(str(target))
        return cls(static.embedding, static.tokenizer, normalize, name=f"model2vec:{resolved.name}")

    @property
    def dim(self) -> int:
        return self.embedding.embedding_dim

    def identity(self) -> dict[str, str | int | bool]:
        return {
            "class": "static",
            "name": self.name,
            "normalize": self.normalize,
            "vocab": self.embedding.num_embeddings,
            "dim": self.embedding.embedding_dim,
        }

    def _tokenizer_key(self):
        """A digest of the tokenizer (its JSON), so a memo is never shared by two vocabularies."""
        key = getattr(self, "_tokenizer_digest", None)
        if key is None:
            try:
                key = hashlib.sha256(self.tokenizer.to_str().encode()).hexdigest()[:16]
            except AttributeError:  # not a tokenizers.Tokenizer: this object only
                key = f"object-{id(self.tokenizer)}"
            self._tokenizer_digest = key
        return key

    def token_ids(self, texts: Sequence[str], max_length: int) -> list[np.ndarray]:
        """Token ids of each text (no special tokens), truncated to ``max_length``; never empty.

        Memoised per text, untruncated, as int32 arrays: a training run tokenises the same queries
        and passages at every step (a quarter of a static student's step before this memo), and the
        vocabulary pass of :meth:`mta4dpr_core.experiments.experiment.Setup.vocabulary` fills it before the
        grid's workers fork, so they never tokenise a corpus again."""
        texts = list(texts)
        memo = _TEXT_IDS.setdefault(self._tokenizer_key(), {})
        missing = [t for t in dict.fromkeys(texts) if t not in memo]
        if missing:
            if len(memo) + len(missing) > _TEXT_IDS_LIMIT:
                memo.clear()
            encodings = self.tokenizer.encode_batch(missing, add_special_tokens=False)
            memo.update((t, np.asarray(e.ids, dtype=np.int32)) for t, e in zip(missing, encodings, strict=True))
        return [memo[t][:max_length] if len(memo[t]) else _EMPTY_IDS for t in texts]

    def collate(self, rows: Sequence[np.ndarray]) -> dict[str, torch.Tensor]:
        """Pad lists of token ids into ``{input_ids, attention_mask}``."""
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        present = np.arange(lengths.max()) < lengths[:, None]
        ids = np.zeros(present.shape, dtype=np.int64)
        ids[present] = np.concatenate(rows)  # row-major: each row's ids in order, left-aligned
        return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(present.astype(np.float32))}

    def tokenize(self, texts: Sequence[str], max_length: int) -> dict[str, torch.Tensor]:
        return self.collate(self.token_ids(texts, max_length))

    def restrict_vocabulary(self, trainable_ids: Iterable[int], frozen_ids: Iterable[int] = ()) -> StaticEncoder:
        """Keep only the embedding rows a run uses: ``trainable_ids`` (tokens of the training
        queries and passages) as a sparse, trainable table, ``frozen_ids`` (tokens seen only at
        evaluation) as a frozen buffer, everything else as a masked-out unknown row.

        WordLlama's vocabulary has 128k tokens: a dense AdamW step and a checkpoint of the full
        33M-parameter table cost far more than the rows a corpus uses. Rows never seen in
        training would get no gradient anyway, so freezing them changes nothing.
        """
        original = self.id_map.numel() if hasattr(self, "id_map") else self.embedding.num_embeddings
        weight = self.full_table() if hasattr(self, "id_map") else self.embedding.weight.data
        trainable = sorted({int(t) for t in trainable_ids if 0 <= int(t) < original})
        frozen = sorted({int(t) for t in frozen_ids if 0 <= int(t) < original} - set(trainable))
        id_map = torch.full((original,), len(trainable) + len(frozen), dtype=torch.long)
        id_map[torch.as_tensor(trainable, dtype=torch.long)] = torch.arange(len(trainable))
        if frozen:
            id_map[torch.as_tensor(frozen, dtype=torch.long)] = len(trainable) + torch.arange(len(frozen))
        self.embedding = nn.Embedding.from_pretrained(
            weight[torch.as_tensor(trainable, dtype=torch.long)].clone(), freeze=False, sparse=True
        )
        frozen_rows = weight[torch.as_tensor(frozen, dtype=torch.long)] if frozen else weight[:0]
        self.register_buffer("frozen_table", torch.cat([frozen_rows, torch.zeros(1, weight.shape[1])]).clone())
        self.register_buffer("id_map", id_map)
        return self

    def full_table(self) -> torch.Tensor:
        """The embedding of every original token id (unknown ids get zeros)."""
        table = torch.cat([self.embedding.weight.data, self.frozen_table])
        return table[self.id_map]

    def sparse_parameters(self) -> list[nn.Parameter]:
        return [self.embedding.weight] if self.embedding.sparse else []

    def _rows(self, unique):
        """Embedding rows of the sorted (mapped) ids ``unique``: trainable rows through the sparse
        embedding (its gradient then has one row per distinct token), frozen rows from the buffer."""
        if not hasattr(self, "id_map"):
            return self.embedding(unique)
        count = self.embedding.num_embeddings
        split = int(torch.searchsorted(unique, torch.tensor(count, device=unique.device)))
        if split == unique.numel():  # training texts have trainable tokens only: no copy into a concatenation
            return self.embedding(unique)
        return torch.cat([self.embedding(unique[:split]), self.frozen_table[unique[split:] - count]])

    def __deepcopy__(self, memo):
        """A copy with its own weights that shares the tokenizer: the tokenizer never changes after
        construction, and deep-copying it re-parses a 128k-token vocabulary (0.1 s, for every frozen
        copy a run evaluates)."""
        memo[id(self.tokenizer)] = self.tokenizer
        copied = self.__class__.__new__(self.__class__)
        memo[id(self)] = copied
        copied.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return copied

    def table_ids(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, int]:
        """(row ids into the trainable table, then the frozen rows; the mask; the row count) of a batch: with a
        restricted vocabulary, tokens never seen in training or evaluation texts are masked out."""
        device = self.embedding.weight.device
        ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
        if hasattr(self, "id_map"):
            rows = self.embedding.num_embeddings + self.frozen_table.shape[0]  # the last is the unknown row
            if device.type == "cpu":
                return (*map_table_rows(ids, mask, self.id_map, rows - 1), rows)
            ids = self.id_map[ids.clamp(max=self.id_map.numel() - 1)]
            return ids, mask * (ids != rows - 1), rows
        rows = self.embedding.num_embeddings
        return ids.clamp(max=rows - 1), mask, rows

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Mean of the token vectors of each text (masked). On the CPU, compiled loops that touch each token
        once (:mod:`.static_pooling`); on a GPU, ``counts @ rows / length``:

        A batch of 144 passages of 256 tokens holds about 37k tokens but only a few thousand
        distinct ones: looking each distinct row up once and pooling with a [texts x distinct]
        count matrix costs one small matrix product forward and backward, instead of gathering
        (and back-propagating into) a [37k x dim] tensor, and the sparse gradient arrives with
        one row per distinct token, already coalesced for SparseAdam.
        """
        device = self.embedding.weight.device
        ids, mask, rows = self.table_ids(batch)
        if device.type == "cpu":
            return self._pool_table_rows(ids, mask)
        unique, inverse = _unique_with_inverse(ids, rows)
        counts = torch.zeros(ids.shape[0], unique.numel(), dtype=self.embedding.weight.dtype, device=device)
        counts.scatter_add_(1, inverse, mask.to(counts.dtype))
        pooled = (counts @ self._rows(unique)) / mask.sum(1, keepdim=True).clamp(min=1.0)
        return nn.functional.normalize(pooled, dim=-1) if self.normalize else pooled

    def encode(
        self, texts: Sequence[str], max_length: int = 256, batch_size: int = 512, desc: str = "encode"
    ) -> np.ndarray:
        """A run re-encodes the same corpora after every iteration, and only the embedding table changes: on the
        CPU the batches of table rows come from :meth:`_table_batches`' memo, elsewhere the token ids from
        :meth:`token_ids`'."""
        texts = list(texts)
        was_training = self.training
        self.eval()
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        with torch.inference_mode():
            if self.embedding.weight.device.type == "cpu":
                batches = self._table_batches(texts, max_length, batch_size)
                for idx, ids, mask in progress.progress_bar(
                    batches, desc=desc, total=len(batches), disable=len(batches) <= 1, unit="batch"
                ):
                    out[idx] = self._pool_table_rows(ids, mask).numpy()
            else:
                rows = self.token_ids(texts, max_length)
                batches = length_sorted_batches(texts, batch_size)
                for idx in progress.progress_bar(
                    batches, desc=desc, total=len(batches), disable=len(batches) <= 1, unit="batch"
                ):
                    out[idx] = self(self.collate([rows[i] for i in idx])).cpu().numpy()
        self.train(was_training)
        return out

    def _pool_table_rows(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The CPU forward from :meth:`table_ids`' rows and mask: compiled mean pooling, then normalisation."""
        frozen = self.frozen_table if hasattr(self, "id_map") else self.embedding.weight[:0]
        pooled = static_mean_pool(self.embedding.weight, ids, mask, frozen, sparse_grad=self.embedding.sparse)
        return nn.functional.normalize(pooled, dim=-1) if self.normalize else pooled

    def _vocabulary_key(self) -> str:
        """A digest of what maps token ids to table rows (the id map and the tables' row counts). Computed at
        each call, not kept: ``load_state_dict`` overwrites the ``id_map`` buffer in place."""
        digest = hashlib.blake2b(digest_size=16)
        digest.update(f"{self.embedding.num_embeddings}|".encode())
        if hasattr(self, "id_map"):
            digest.update(f"{self.frozen_table.shape[0]}|".encode())
            digest.update(self.id_map.numpy().tobytes())
        return digest.hexdigest()

    def _table_batches(
        self, texts: list[str], max_length: int, batch_size: int
    ) -> list[tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
        """(indices, table rows, mask) of each length-sorted batch of ``texts``, as :meth:`forward` maps them.

        Memoised per (tokenizer, vocabulary, texts, lengths): a run encodes the same corpora after every
        iteration with the same vocabulary, and only the table's values change. Looking the token ids up,
        padding them and mapping them to rows was half of encoding the 40,873-passage TREC DL pool with a static
        student (0.86 s, 0.45 s with the batches kept; the same batches, so the same bits)."""
        key = (self._tokenizer_key(), self._vocabulary_key(), max_length, batch_size, tuple(texts))
        batches = _TABLE_BATCHES.get(key)
        if batches is not None:
            _TABLE_BATCHES.move_to_end(key)
            return batches
        rows = self.token_ids(texts, max_length)
        batches = []
        for idx in length_sorted_batches(texts, batch_size):
            ids, mask, _ = self.table_ids(self.collate([rows[i] for i in idx]))
            batches.append((idx, ids, mask))
        _TABLE_BATCHES[key] = batches
        held = {k: sum(ids.nbytes + mask.nbytes for _, ids, mask in b) for k, b in _TABLE_BATCHES.items()}
        while len(_TABLE_BATCHES) > 1 and sum(held.values()) > _TABLE_BATCHES_BYTES:
            held.pop(_TABLE_BATCHES.popitem(last=False)[0])
        return batches


class OnnxEncoder:
    """An ONNX dual encoder (inference only), e.g. paraphrase-MiniLM-L3-v2 whose output "461" is mean pooled."""

    trainable = False

    def __init__(self, resolved: ResolvedModel, normalize=True, threads=None):
        import onnxruntime as ort  # noqa: PLC0415 (lazy: onnxruntime not loaded by this module)
        from transformers import AutoTokenizer  # noqa: PLC0415 (lazy: transformers not loaded by this module)

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(resolved.path), options, providers=["CPUExecutionProvider"])
        self.tokenizer = AutoTokenizer.from_pretrained(str(resolved.extra["tokenizer"]))
        self.output = onnx_output(resolved)
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.resolved, self.normalize, self.name = resolved, normalize, resolved.name

    def identity(self) -> dict[str, str | bool]:
        return onnx_identity(self.resolved, self.normalize)

    def _embed(self, chunk, max_length):
        batch = self.tokenizer(chunk, padding=True, truncation=True, max_length=max_length, return_tensors="np")
        feeds = {k: v.astype(np.int64) for k, v in batch.items() if k in self.input_names}
        emb = self.session.run([self.output], feeds)[0].astype(np.float32)
        if self.normalize:
            emb /= np.linalg.norm(emb, axis=1, keepdims=True).clip(min=1e-12)
        return emb

    def encode(
        self, texts: Sequence[str], max_length: int = 128, batch_size: int = 64, desc: str = "encode"
    ) -> np.ndarray:
        return encode_in_batches(lambda chunk: self._embed(chunk, max_length), texts, batch_size, desc)


class SentenceTransformerEncoder:
    """A sentence-transformers model, inference only (its own pooling and normalisation)."""

    trainable = False

    def __init__(self, resolved: ResolvedModel, normalize=True):
        from sentence_transformers import SentenceTransformer  # noqa: PLC0415 (lazy: sentence_transformers not loaded by this module)

        self.model = SentenceTransformer(str(resolved.path), device="cuda" if torch.cuda.is_available() else "cpu")
        self.normalize, self.name = normalize, resolved.name

    def identity(self) -> dict[str, str | bool]:
        return {"class": "sentence-transformers", "name": self.name, "normalize": self.normalize}

    def encode(
        self, texts: Sequence[str], max_length: int = 256, batch_size: int = 64, desc: str = "encode"
    ) -> np.ndarray:
        self.model.max_seq_length = max_length
        return np.asarray(
            self.model.encode(
                list(texts),
                batch_size=batch_size,
                normalize_embeddings=self.normalize,
                show_progress_bar=False,
                convert_to_numpy=True,
            ),
            dtype=np.float32,
        )


def default_device() -> torch.device:
    """The first CUDA device when there is one, else the CPU."""
    return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")


class DeferredEncoder:
    """A frozen encoder that loads its model at the first use that needs it.

    A frozen scorer's encodings are cached by its identity (``DenseScorer._encode_cached``), and the identity
    needs no weights. With a warm cache every notebook kernel and every runner process would still load
    transformers (5-7 s of imports on 2 cores) and build the model only to read cached arrays; deferred, it
    never does. At the first ``encode`` (or any other attribute) the real encoder is built, and its identity
    must equal the one given here: a mismatch would file encodings under another model's key.

    >>> built = []
    >>> class Probe:
    ...     def identity(self):
    ...         return {"class": "probe"}
    ...     def encode(self, texts, **kwargs):
    ...         return [len(t) for t in texts]
    >>> deferred = DeferredEncoder(lambda: built.append(1) or Probe(), {"class": "probe"}, name="probe")
    >>> deferred.identity(), built
    ({'class': 'probe'}, [])
    >>> deferred.encode(["ab", "c"]), built
    ([2, 1], [1])
    """

    trainable = False

    def __init__(self, build: Callable[[], Encoder], identity: dict, name: str):
        self._build, self._identity, self._encoder, self.name = build, identity, None, name

    def identity(self) -> dict:
        return dict(self._identity)

    @property
    def loaded(self) -> Encoder:
        """The real encoder, built on first access."""
        if self._encoder is None:
            encoder = self._build()
            if encoder.identity() != self._identity:
                raise RuntimeError(
                    f"{self.name}: the loaded encoder's identity {encoder.identity()} differs from the one its "
                    f"cached encodings were looked up under, {self._identity}"
                )
            self._encoder = encoder
        return self._encoder

    def encode(self, texts: Sequence[str], *args, **kwargs) -> np.ndarray:
        return self.loaded.encode(texts, *args, **kwargs)

    def __getattr__(self, name):
        if name.startswith("_"):  # copy and pickle probe dunders before __init__ has run
            raise AttributeError(name)
        return getattr(self.loaded, name)


def _configured_layers(resolved: ResolvedModel) -> int | None:
    """``num_hidden_layers`` of a Hugging Face checkpoint's config.json, or None where it does not say."""
    try:
        layers = json.loads((Path(resolved.path) / "config.json").read_text()).get("num_hidden_layers")
    except (OSError, ValueError):
        return None
    return layers if isinstance(layers, int) and not isinstance(layers, bool) else None


def _deferred_hf_encoder(spec, cache_dir):
    pooling, inference_dtype, num_layers = (
        spec.get("pooling", "cls_last3"),
        spec.get("inference_dtype"),
        spec.get("num_layers"),
    )
    check_transformer_options(pooling, inference_dtype)
    resolved = resolve_model(spec.get("model"), cache_dir)
    layers = _configured_layers(resolved) if resolved.format == "transformers" else None
    if layers is None:  # nothing to key the cache by without the model: build it now
        return _hf_encoder(spec, cache_dir, resolved)
    if num_layers:
        if num_layers > layers:
            raise ValueError(f"cannot truncate {resolved.name} to {num_layers} layers")
        layers = num_layers
    identity = transformer_identity(
        resolved.name, pooling, spec.get("normalize", False), layers, inference_dtype, default_device()
    )
    return DeferredEncoder(lambda: _hf_encoder(spec, cache_dir, resolved), identity, resolved.name)


def _deferred_onnx_encoder(spec, cache_dir):
    resolved = _resolved_onnx(spec, cache_dir)
    normalize = spec.get("normalize", True)
    return DeferredEncoder(
        lambda: OnnxEncoder(resolved, normalize=normalize), onnx_identity(resolved, normalize), resolved.name
    )


def _hf_encoder(spec, cache_dir, resolved=None):
    encoder = TransformerEncoder.from_name(
        resolved or spec.get("model"),
        pooling=spec.get("pooling", "cls_last3"),
        normalize=spec.get("normalize", False),
        num_layers=spec.get("num_layers"),
        cache_dir=cache_dir,
        inference_dtype=spec.get("inference_dtype"),
    )
    # a frozen scorer encodes on the GPU when there is one (the paper profile's assistants and
    # first stage encode 8.8M passages); a trainable student is placed by train_student
    return encoder.to(default_device())


def _sentence_transformers_encoder(spec, cache_dir):
    return SentenceTransformerEncoder(
        resolve_model(spec.get("model"), cache_dir), normalize=spec.get("normalize", True)
    )


def _resolved_onnx(spec, cache_dir) -> ResolvedModel:
    model = spec.get("model")
    resolved = resolve_model(model, cache_dir)
    if resolved.format != "onnx":
        raise ValueError(f"{model!r} resolved to {resolved.path}, which is not an ONNX model")
    return resolved


def _onnx_encoder(spec, cache_dir):
    return OnnxEncoder(_resolved_onnx(spec, cache_dir), normalize=spec.get("normalize", True))


def _static_encoder(spec, cache_dir):
    return StaticEncoder.from_name(spec.get("model"), normalize=spec.get("normalize", True), cache_dir=cache_dir)


# what build_encoder returns: every dense encoder has encode(texts, max_length) and identity()
Encoder = TransformerEncoder | StaticEncoder | OnnxEncoder | SentenceTransformerEncoder

# the dense kinds of config/kinds.py (``encoder=True``) and the function that builds each
ENCODER_BUILDERS = {
    "hf": _hf_encoder,
    "sentence_transformers": _sentence_transformers_encoder,
    "onnx": _onnx_encoder,
    "static": _static_encoder,
}


# the kinds whose model can wait for its first use (DeferredEncoder); a static table loads in a fraction of a second
DEFERRED_BUILDERS = {"hf": _deferred_hf_encoder, "onnx": _deferred_onnx_encoder}


def build_encoder(spec: dict, cache_dir: Path | None = None, deferred: bool = False) -> Encoder | DeferredEncoder:
    """Build an encoder from a params spec: ``{kind: hf|sentence_transformers|onnx|static, model: ..., ...}``.

    ``hf`` specs may add ``inference_dtype: auto`` (bf16 where native, else float32), ``bf16`` or
    ``fp16`` to encode under autocast (opt-in; about 2x faster on AVX512-BF16 CPUs and GPUs, not
    bit-identical to float32). Frozen scorers default to float32 so that the teacher's and the
    assistants' scores are the same on every CPU kind.

    ``deferred``: an ``hf`` or ``onnx`` model is resolved and its spec checked now, but loaded at its first use
    (``DeferredEncoder``), for frozen scorers whose encodings are usually cached."""
    kind = spec.get("kind")
    if kind not in ENCODER_BUILDERS:
        raise ValueError(f"unknown encoder kind {kind!r}; expected one of {sorted(ENCODER_BUILDERS)}")
    if deferred and kind in DEFERRED_BUILDERS:
        return DEFERRED_BUILDERS[kind](spec, cache_dir)
    return ENCODER_BUILDERS[kind](spec, cache_dir)
