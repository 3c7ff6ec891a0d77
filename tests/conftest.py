"""Shared fixtures: the shared data directory, loaded collections, tiny synthetic training data.

The shared data lives at ``../shared/data`` relative to the repository root
(``mta4dpr_core.config.params.REPO_ROOT``); tests that need it are skipped with a clear
reason when it is missing. Tests marked ``slow`` run only with ``--runslow`` (or
``MTA4DPR_RUN_SLOW=1``).
"""

from __future__ import annotations

import os

# Before anything imports huggingface_hub / tqdm: never contact the hub, no progress bars.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MTA4DPR_PROGRESS", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mta4dpr_core.config.params import REPO_ROOT  # noqa: E402

DATA_ROOT = (REPO_ROOT / ".." / "shared" / "data").resolve()


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow") or os.environ.get("MTA4DPR_RUN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow test: run with --runslow or MTA4DPR_RUN_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data not found at {path} (expected ../shared/data next to the repository root)")
    return path


@pytest.fixture(scope="session")
def data_root() -> Path:
    return _require(DATA_ROOT)


@pytest.fixture(scope="session")
def scifact_dir(data_root) -> Path:
    return _require(data_root / "scifact")


@pytest.fixture(scope="session")
def trecdl_dir(data_root) -> Path:
    return _require(data_root / "msmarco-trecdl")


@pytest.fixture(scope="session")
def scifact(scifact_dir):
    """The full SciFact collection (5,183 passages, train and test splits)."""
    from mta4dpr_core.retrieval.data import load_collection

    return load_collection(scifact_dir)


@pytest.fixture(scope="session")
def trecdl(trecdl_dir):
    from mta4dpr_core.retrieval.data import load_collection

    return load_collection(trecdl_dir)


@pytest.fixture(scope="session")
def minilm_encoder():
    """all-MiniLM-L6-v2, mean pooled and normalised (the offline package); loaded once per session."""
    from mta4dpr_core.retrieval.encoders import TransformerEncoder

    return TransformerEncoder.from_name("all-MiniLM-L6-v2", pooling="mean", normalize=True)


# ---------------------------------------------------------------------------
# Tiny synthetic problems (no model files needed)
# ---------------------------------------------------------------------------


def word_tokenizer(words):
    """A whitespace word-level ``tokenizers.Tokenizer`` over ``words`` (id 0 = [UNK])."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit

    vocab = {"[UNK]": 0, **{w: i + 1 for i, w in enumerate(words)}}
    tokenizer = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = WhitespaceSplit()
    return tokenizer


def tiny_bert(seed=0, **config):
    """A randomly initialised BERT, 2 layers of width 32 unless ``config`` (BertConfig keys) says otherwise."""
    import torch  # noqa: PLC0415 (lazy, as the tests that need no model do not load transformers either)
    from transformers import BertConfig, BertModel  # noqa: PLC0415 (as above)

    defaults = dict(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48)
    torch.manual_seed(seed)
    return BertModel(BertConfig(**{**defaults, "max_position_embeddings": 32, **config}))


def tiny_static_encoder(n_queries, n_docs, dim=16, seed=0):
    """A real :class:`StaticEncoder` over words ``q0..``, ``d0..`` with random embeddings."""
    from mta4dpr_core.retrieval.encoders import StaticEncoder

    words = [f"q{i}" for i in range(n_queries)] + [f"d{j}" for j in range(n_docs)]
    table = np.random.default_rng(seed).normal(size=(len(words) + 1, dim)).astype(np.float32)
    return StaticEncoder(table, word_tokenizer(words), normalize=True, name="tiny")


def make_training_data(n_queries=12, n_docs=40, k=6, m=3, n_positives=1, seed=0):
    """A synthetic :class:`TrainingData`: query ``i`` (text ``q<i>``) has positives at doc ``i`` (and ``i+1``...),
    passage ``j`` has text ``d<j>``; the teacher scores positives high; assistants are noisy teachers.

    Returns (data, passages).
    """
    from mta4dpr_core.method.construction import TrainingData

    rng = np.random.default_rng(seed)
    width = n_positives + k
    candidates = np.full((n_queries, width), -1, dtype=np.int64)
    for i in range(n_queries):
        positives = [(i + j) % n_docs for j in range(n_positives)]
        others = [d for d in rng.permutation(n_docs).tolist() if d not in positives][:k]
        candidates[i] = positives + others
    is_positive = np.zeros(candidates.shape, bool)
    is_positive[:, :n_positives] = True
    teacher = rng.normal(size=candidates.shape).astype(np.float32) + 4.0 * is_positive
    assistants = np.stack([teacher + rng.normal(scale=1.0 + a, size=teacher.shape) for a in range(m)]).astype(
        np.float32
    )
    data = TrainingData(
        query_ids=[str(i) for i in range(n_queries)],
        query_texts=[f"q{i}" for i in range(n_queries)],
        query_rows=np.arange(n_queries, dtype=np.int64),
        candidates=candidates,
        is_positive=is_positive,
        teacher_scores=teacher,
        assistant_scores=assistants,
        assistant_names=[f"a{i}" for i in range(m)],
        origin=np.zeros(n_queries, np.int8),
        stats={"rows": n_queries},
    )
    passages = [f"d{j}" for j in range(n_docs)]
    return data, passages


class MatrixScorer:
    """A fake scorer with a fixed score matrix [n_queries, n_docs] keyed by query id; counts pairs scored."""

    temperature = 1.0

    def __init__(self, query_ids, matrix, name="fake"):
        self.row = {q: i for i, q in enumerate(query_ids)}
        self.matrix = np.asarray(matrix, dtype=np.float32)
        self.name = name
        self.score_calls, self.pairs_scored = 0, 0

    def prepare(self, corpus):
        self.corpus = corpus
        return self

    def full(self, query_ids):
        return self.matrix[[self.row[q] for q in query_ids]]

    def search(self, query_ids, query_texts, k):
        full = self.full(query_ids)
        k = min(k, full.shape[1])
        order = np.argsort(-full, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(full, order, 1), order.astype(np.int64)

    def score(self, query_ids, query_texts, doc_idx):
        doc_idx = np.asarray(doc_idx)
        self.score_calls += 1
        self.pairs_scored += int((doc_idx >= 0).sum())
        full = self.full(query_ids)
        out = np.take_along_axis(full, np.where(doc_idx >= 0, doc_idx, 0), 1)
        return np.where(doc_idx >= 0, out, np.nan).astype(np.float32)


# the training keys every tiny loop test shares (alpha and beta are TrainConfig's defaults, 0.2 and 1.0)
TINY_TRAINING = dict(
    steps=6,
    queries_per_batch=6,
    negatives_per_query=3,
    learning_rate=0.05,
    weight_decay=0.0,
    warmup_steps=1,
    max_query_length=8,
    max_passage_length=8,
    checkpoint_every=0,
    amp="off",
    gamma=1.0,
    student_temperature=0.1,
    assistant_temperatures=[1.0, 1.0, 1.0],
    seed=13,
)


def tiny_train_config(**overrides):
    """A ``TrainConfig`` for the tiny synthetic data of :func:`make_training_data`, with ``overrides``."""
    from mta4dpr_core.method.training import TrainConfig

    return TrainConfig(**{**TINY_TRAINING, **overrides})
