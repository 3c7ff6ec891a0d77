"""Encoders: pooling, truncation, agreement with reference libraries, batching, the encoding cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_static_encoder

from mta4dpr_core.config.models import resolve_model
from mta4dpr_core.retrieval.data import Corpus
from mta4dpr_core.retrieval.encoders import (
    OnnxEncoder,
    StaticEncoder,
    TransformerEncoder,
    encode_in_batches,
    length_sorted_batches,
)
from mta4dpr_core.retrieval.scorers import DenseScorer

TEXTS = [
    "Vitamin D deficiency increases fracture risk.",
    "a",
    "The quick brown fox jumps over the lazy dog and keeps running far away from the farm.",
    "Low vitamin D raises the risk of bone fractures.",
]


@pytest.fixture(scope="module")
def minilm_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(resolve_model("all-MiniLM-L6-v2").path))


@pytest.fixture(scope="module")
def tiny_bert():
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    return BertModel(config).eval()


# --- pooling -----------------------------------------------------------------------------------


def test_pooling_modes_by_hand(tiny_bert, minilm_tokenizer):
    batch = minilm_tokenizer(TEXTS, padding=True, truncation=True, max_length=32, return_tensors="pt")
    with torch.no_grad():
        out = tiny_bert(**batch, output_hidden_states=True)
    hidden = out.hidden_states
    assert len(hidden) == 5  # embeddings + 4 layers
    mask = batch["attention_mask"].unsqueeze(-1).float()
    expected = {
        "cls": hidden[4][:, 0],
        "mean": (hidden[4] * mask).sum(1) / mask.sum(1),
        "cls_last3": (hidden[2][:, 0] + hidden[3][:, 0] + hidden[4][:, 0]) / 3,
    }
    got = {}
    for pooling in ("cls", "mean", "cls_last3"):
        encoder = TransformerEncoder(tiny_bert, minilm_tokenizer, pooling=pooling, normalize=False)
        got[pooling] = encoder.encode(TEXTS, max_length=32, batch_size=8)
        np.testing.assert_allclose(got[pooling], expected[pooling].numpy(), atol=1e-5, err_msg=pooling)
    assert not np.allclose(got["cls"], got["cls_last3"], atol=1e-3)
    normalized = TransformerEncoder(tiny_bert, minilm_tokenizer, pooling="cls_last3", normalize=True).encode(TEXTS, 32)
    np.testing.assert_allclose(np.linalg.norm(normalized, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(
        normalized, got["cls_last3"] / np.linalg.norm(got["cls_last3"], axis=1, keepdims=True), atol=1e-5
    )


def test_unknown_pooling_rejected(tiny_bert, minilm_tokenizer):
    with pytest.raises(ValueError, match="pooling must be one of"):
        TransformerEncoder(tiny_bert, minilm_tokenizer, pooling="max")


def test_mean_pooling_ignores_padding(tiny_bert, minilm_tokenizer):
    encoder = TransformerEncoder(tiny_bert, minilm_tokenizer, pooling="mean")
    alone = encoder.encode(["a"], max_length=32)
    padded = encoder.encode(["a", TEXTS[2]], max_length=32)  # "a" padded to the long text's length
    np.testing.assert_allclose(padded[0], alone[0], atol=1e-5)


def test_layer_truncation_equals_intermediate_hidden_state(minilm_encoder):
    truncated = TransformerEncoder.from_name("all-MiniLM-L6-v2", pooling="cls", normalize=False, num_layers=3)
    assert truncated.model.config.num_hidden_layers == 3
    assert len(truncated.model.encoder.layer) == 3
    assert truncated.identity()["layers"] == 3
    batch = minilm_encoder.tokenize(TEXTS, 32)
    with torch.no_grad():
        full = minilm_encoder.model(**batch, output_hidden_states=True).hidden_states
    assert len(full) == 7
    np.testing.assert_allclose(truncated.encode(TEXTS, max_length=32), full[3][:, 0].numpy(), atol=1e-4)
    with pytest.raises(ValueError, match="cannot truncate"):
        TransformerEncoder.from_name("all-MiniLM-L6-v2", num_layers=7)


# --- agreement with the reference libraries ----------------------------------------------------


def test_minilm_mean_pooled_equals_sentence_transformers(minilm_encoder):
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(resolve_model("all-MiniLM-L6-v2").path), device="cpu")
    expected = reference.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    ours = minilm_encoder.encode(TEXTS, max_length=256, batch_size=2)
    assert ours.shape == (4, 384) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, expected, atol=1e-4)


def test_onnx_minilm_l3():
    resolved = resolve_model("paraphrase-MiniLM-L3-v2")
    encoder = OnnxEncoder(resolved, normalize=True, threads=1)
    vectors = encoder.encode(TEXTS, max_length=64)
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # output "461" is the attention-masked mean of the token embeddings (the model's last hidden state)
    batch = encoder.tokenizer(TEXTS, padding=True, truncation=True, max_length=64, return_tensors="np")
    feeds = {k: v.astype(np.int64) for k, v in batch.items() if k in encoder.input_names}
    outputs = dict(zip([o.name for o in encoder.session.get_outputs()], encoder.session.run(None, feeds), strict=True))
    tokens = next(v for v in outputs.values() if v.ndim == 3)
    mask = batch["attention_mask"][..., None]
    pooled = (tokens * mask).sum(1) / mask.sum(1)
    np.testing.assert_allclose(vectors, pooled / np.linalg.norm(pooled, axis=1, keepdims=True), atol=1e-5)
    # padding does not change a text's vector
    np.testing.assert_allclose(encoder.encode(["a"], max_length=64)[0], vectors[1], atol=1e-5)
    # it is a sentence encoder: the paraphrase pair is far closer than unrelated texts
    sims = vectors @ vectors.T
    assert sims[0, 3] > 0.7
    assert sims[0, 3] > sims[0, 2] + 0.5 and sims[0, 3] > sims[0, 1] + 0.5


def test_static_encoder_equals_wordllama_embed():
    from wordllama import WordLlama

    encoder = StaticEncoder.from_name("wordllama")
    reference = WordLlama.load(cache_dir=resolve_model("wordllama").path, disable_download=True)
    ours = encoder.encode(TEXTS, max_length=256)
    assert ours.shape == (4, 256)
    np.testing.assert_allclose(ours, reference.embed(TEXTS, norm=True), atol=1e-6)
    raw = StaticEncoder(encoder.embedding.weight.detach().numpy(), encoder.tokenizer, normalize=False).encode(
        TEXTS, 256
    )
    np.testing.assert_allclose(raw, reference.embed(TEXTS, norm=False), atol=1e-5)


# --- batching ----------------------------------------------------------------------------------


def test_length_sorted_batching_restores_order():
    rng = np.random.default_rng(0)
    texts = [f"{i} " + "x" * int(n) for i, n in enumerate(rng.integers(0, 50, size=23))]
    seen = []

    def embed(chunk):
        seen.append([len(t) for t in chunk])
        return np.array([[int(t.split()[0]), len(t)] for t in chunk], dtype=np.float32)

    out = encode_in_batches(embed, texts, batch_size=5)
    assert out.shape == (23, 2)
    np.testing.assert_array_equal(out[:, 0], np.arange(23))
    np.testing.assert_array_equal(out[:, 1], [len(t) for t in texts])
    assert [len(b) for b in seen] == [5, 5, 5, 5, 3]
    flat = [n for b in seen for n in b]
    assert flat == sorted(flat, reverse=True)  # longest first
    batches = length_sorted_batches(texts, 5)
    assert sorted(np.concatenate(batches).tolist()) == list(range(23))


def test_static_encoder_batch_size_does_not_change_vectors():
    encoder = tiny_static_encoder(5, 10)
    texts = ["q1 d2 d3", "d4", "q0 q1 q2 q3 d9", "unknownword d1", "d5 d5"]
    np.testing.assert_allclose(
        encoder.encode(texts, 16, batch_size=2), encoder.encode(texts, 16, batch_size=100), atol=1e-6
    )
    table = encoder.embedding.weight.detach().numpy()
    # word ids: [UNK]=0, q0..q4 = 1..5, d0..d9 = 6..15
    expected = table[[2, 8, 9]].mean(0)
    np.testing.assert_allclose(encoder.encode(["q1 d2 d3"], 16)[0], expected / np.linalg.norm(expected), atol=1e-6)
    # max_length truncates tokens
    first = table[2] / np.linalg.norm(table[2])
    np.testing.assert_allclose(encoder.encode(["q1 d2 d3"], 1)[0], first, atol=1e-6)


# --- the encoding cache ------------------------------------------------------------------------


class Counting:
    """Wraps an encoder and counts its ``encode`` calls."""

    def __init__(self, inner):
        self.inner, self.calls, self.texts = inner, 0, 0

    def identity(self):
        return self.inner.identity()

    def encode(self, texts, **kwargs):
        self.calls += 1
        self.texts += len(texts)
        return self.inner.encode(texts, **kwargs)


def test_encoding_cache_hit_and_corruption(tmp_path):
    corpus = Corpus(ids=[str(j) for j in range(20)], texts=[f"d{j} d{(j + 1) % 10}" for j in range(20)])
    encoder = Counting(tiny_static_encoder(3, 20))
    first = DenseScorer(encoder, "tiny", max_passage_length=16, cache_dir=tmp_path).prepare(corpus)
    assert encoder.calls == 1
    files = sorted((tmp_path / "encodings").glob("*.npy"))
    assert len(files) == 1 and files[0].with_name(files[0].name + ".sha256").exists()

    second = DenseScorer(encoder, "tiny", max_passage_length=16, cache_dir=tmp_path).prepare(corpus)
    assert encoder.calls == 1  # served from the cache
    np.testing.assert_array_equal(second.doc_embeddings, first.doc_embeddings)

    raw = bytearray(files[0].read_bytes())
    raw[-7] ^= 0xFF  # flip a byte inside the array data
    files[0].write_bytes(bytes(raw))
    third = DenseScorer(encoder, "tiny", max_passage_length=16, cache_dir=tmp_path).prepare(corpus)
    assert encoder.calls == 2  # corrupted: rebuilt
    np.testing.assert_array_equal(third.doc_embeddings, first.doc_embeddings)
    DenseScorer(encoder, "tiny", max_passage_length=16, cache_dir=tmp_path).prepare(corpus)
    assert encoder.calls == 2  # the rebuilt file verifies

    files[0].write_bytes(files[0].read_bytes()[:50])  # truncated
    DenseScorer(encoder, "tiny", max_passage_length=16, cache_dir=tmp_path).prepare(corpus)
    assert encoder.calls == 3

    # a different max length or different texts is a different cache entry
    DenseScorer(encoder, "tiny", max_passage_length=8, cache_dir=tmp_path).prepare(corpus)
    assert encoder.calls == 4
    changed = Corpus(ids=corpus.ids, texts=corpus.texts[:-1] + ["d0"])
    DenseScorer(encoder, "tiny", max_passage_length=16, cache_dir=tmp_path).prepare(changed)
    assert encoder.calls == 5


def test_query_encodings_cached_and_scores_are_inner_products(tmp_path):
    corpus = Corpus(ids=[str(j) for j in range(20)], texts=[f"d{j}" for j in range(20)])
    encoder = Counting(tiny_static_encoder(3, 20))
    scorer = DenseScorer(encoder, "tiny", cache_dir=tmp_path).prepare(corpus)
    queries = ["q0 d1", "q2"]
    scores, idx = scorer.search(["0", "1"], queries, 5)
    calls = encoder.calls
    doc_idx = np.array([[3, -1, 0], [19, 4, -1]])
    got = scorer.score(["0", "1"], queries, doc_idx)
    assert encoder.calls == calls  # same queries: no new encoding
    q = scorer.encode_queries(queries)
    for r in range(2):
        for c in range(3):
            if doc_idx[r, c] < 0:
                assert np.isnan(got[r, c])
            else:
                assert got[r, c] == pytest.approx(float(q[r] @ scorer.doc_embeddings[doc_idx[r, c]]), abs=1e-5)
    full = q @ scorer.doc_embeddings.T
    np.testing.assert_array_equal(idx[:, 0], full.argmax(1))
    np.testing.assert_allclose(scores[:, 0], full.max(1), atol=1e-5)


def test_minilm_scifact_encodings_come_from_the_cache(minilm_encoder, scifact):
    """The repository cache holds MiniLM encodings of the full SciFact corpus: preparing never encodes passages."""
    counting = Counting(minilm_encoder)
    scorer = DenseScorer(counting, "minilm", max_query_length=64, max_passage_length=256)
    path = scorer.cache_dir / "encodings" / f"{scorer.cache_key(scifact.corpus.texts, 256)}.npy"
    if not path.exists():
        pytest.skip(f"no cached MiniLM encodings of SciFact at {path} (encoding them takes minutes)")
    scorer.prepare(scifact.corpus)
    assert counting.calls == 0
    assert scorer.doc_embeddings.shape == (5183, 384)
    rows = [0, 1234, 5182]
    fresh = minilm_encoder.encode([scifact.corpus.texts[i] for i in rows], max_length=256)
    np.testing.assert_allclose(scorer.doc_embeddings[rows], fresh, atol=1e-4)


def _gather_mean(student, batch):
    """The plain definition: gather every token's row, mask, average (the reference for the pooled product)."""
    ids, mask = batch["input_ids"], batch["attention_mask"]
    if hasattr(student, "id_map"):
        mapped = student.id_map[ids]
        table = torch.cat([student.embedding.weight, student.frozen_table])
        mask = mask * (mapped != table.shape[0] - 1)
        vectors = table[mapped]
    else:
        vectors = student.embedding.weight[ids]
    pooled = (vectors * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)
    return torch.nn.functional.normalize(pooled, dim=-1)


@pytest.mark.parametrize("restricted", [False, True])
def test_static_pooling_equals_gather_and_mean_with_the_same_gradient(restricted):
    from conftest import tiny_static_encoder

    student = tiny_static_encoder(4, 8, dim=16, seed=3)
    if restricted:  # trainable, frozen and unknown rows all present in the batch
        student.restrict_vocabulary([1, 2, 5, 6, 7, 8], [9, 10])
    texts = ["q0 d1 d1 d2 q0", "d3 d4 q3 d7", "q2", "d5 d5 d5 d6 q1 zzz", "zzz"]
    batch = student.tokenize(texts, max_length=16)
    ours = student(batch)
    reference = _gather_mean(student, batch)
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-6)
    weights = torch.randn_like(ours)
    (ours * weights).sum().backward()
    ours_grad = student.embedding.weight.grad
    ours_grad = ours_grad.to_dense() if ours_grad.is_sparse else ours_grad
    student.embedding.weight.grad = None
    (_gather_mean(student, batch) * weights).sum().backward()
    reference_grad = student.embedding.weight.grad
    reference_grad = reference_grad.to_dense() if reference_grad.is_sparse else reference_grad
    assert ours_grad.abs().sum() > 0
    torch.testing.assert_close(ours_grad, reference_grad, rtol=1e-5, atol=1e-6)


def test_static_token_memo_is_per_tokenizer():
    from conftest import tiny_static_encoder

    one, two = tiny_static_encoder(2, 3), tiny_static_encoder(5, 3)  # same name "tiny", other vocabularies
    assert [r.tolist() for r in one.token_ids(["d0 q1"], 8)] == [[3, 2]]
    assert [r.tolist() for r in two.token_ids(["d0 q1"], 8)] == [[6, 2]]
    assert [r.tolist() for r in one.token_ids(["d0 q1", "d2", ""], 1)] == [[3], [5], [0]]  # truncated; empty -> padding


def test_static_encode_keeps_its_table_batches_and_gives_the_forward_bits():
    """``encode`` keeps each corpus' batches of table rows (``_table_batches``) across calls: the vectors are the
    bits ``forward`` gives on the same batches, after the table changes too (rows, not values, are kept)."""
    from mta4dpr_core.retrieval import encoders

    student = tiny_static_encoder(6, 20, dim=16, seed=4).restrict_vocabulary(range(1, 15), range(15, 24))
    texts = [f"q{i % 6} d{i % 20} d{(3 * i) % 20} q{(i + 1) % 6} zzz" for i in range(37)] + ["", "d7"]

    def by_forward():
        out = np.empty((len(texts), student.dim), np.float32)
        rows = student.token_ids(texts, 8)
        with torch.inference_mode():
            for idx in encoders.length_sorted_batches(texts, 5):
                out[idx] = student(student.collate([rows[i] for i in idx])).numpy()
        return out

    first = student.encode(texts, 8, batch_size=5)
    assert first.tobytes() == by_forward().tobytes()
    held = len(encoders._TABLE_BATCHES)
    with torch.no_grad():
        student.embedding.weight.add_(torch.randn_like(student.embedding.weight))
    second = student.encode(texts, 8, batch_size=5)
    assert len(encoders._TABLE_BATCHES) == held  # served from the memo
    assert second.tobytes() == by_forward().tobytes()
    assert not np.array_equal(first, second)


def test_static_encode_memo_follows_the_vocabulary():
    """Batches are kept per vocabulary: restricting it again, or loading another ``id_map`` into the buffer in
    place (``load_state_dict``), maps the texts afresh."""
    texts = ["q0 d1 d2", "d3 q4 d5 d5", "d9 q1"]
    student = tiny_static_encoder(5, 10, dim=8, seed=2).restrict_vocabulary(range(1, 16))
    wide = student.encode(texts, 8)
    narrow = tiny_static_encoder(5, 10, dim=8, seed=2).restrict_vocabulary(range(1, 16))
    narrow.restrict_vocabulary([2, 7, 8])  # only q1, d1, d2 stay trainable; the rest becomes unknown
    fresh = tiny_static_encoder(5, 10, dim=8, seed=2).restrict_vocabulary(range(1, 16))
    fresh.restrict_vocabulary([2, 7, 8])
    assert narrow.encode(texts, 8).tobytes() == fresh.encode(texts, 8).tobytes()
    assert not np.array_equal(narrow.encode(texts, 8), wide)
    # the same shapes, another id map loaded in place: rows 1 and 2 swap
    swapped = {k: v.clone() for k, v in student.state_dict().items()}
    swapped["id_map"][[1, 2]] = swapped["id_map"][[2, 1]]
    before = student.encode(texts, 8)
    student.load_state_dict(swapped)
    after = student.encode(texts, 8)
    reference = tiny_static_encoder(5, 10, dim=8, seed=2).restrict_vocabulary(range(1, 16))
    reference.load_state_dict(swapped)
    assert after.tobytes() == reference(reference.tokenize(texts, 8)).detach().numpy().tobytes()
    assert not np.array_equal(before, after)


def test_unique_with_inverse_is_torch_unique():
    """The static student's presence-table unique: the same sorted ids and inverse as ``torch.unique``."""
    from mta4dpr_core.retrieval.encoders import _unique_with_inverse

    generator = torch.Generator().manual_seed(3)
    for size, shape in ((1, (2, 3)), (50, (7, 40)), (20_000, (144, 256))):
        ids = torch.randint(0, size, shape, generator=generator)
        unique, inverse = _unique_with_inverse(ids, size)
        expected_unique, expected_inverse = torch.unique(ids, return_inverse=True)
        assert torch.equal(unique, expected_unique)
        assert torch.equal(inverse, expected_inverse)


def test_a_copied_static_encoder_shares_its_tokenizer_not_its_weights():
    import copy

    encoder = tiny_static_encoder(12, 30, seed=1)
    copied = copy.deepcopy(encoder)
    assert copied.tokenizer is encoder.tokenizer
    assert copied.embedding.weight is not encoder.embedding.weight
    assert torch.equal(copied.embedding.weight, encoder.embedding.weight)
    with torch.no_grad():
        copied.embedding.weight.add_(1.0)
    assert not torch.equal(copied.embedding.weight, encoder.embedding.weight)
    texts = ["a small test", "another text"]
    assert np.array_equal(copy.deepcopy(encoder).encode(texts), encoder.encode(texts))


def test_set_attention_dropout_reaches_every_self_attention_and_nothing_else():
    """training.attention_dropout: BERT's attention modules read ``dropout.p`` when they call SDPA; hidden dropout
    (the other nn.Dropout modules) keeps the model's value."""
    from transformers import BertConfig, BertModel

    from mta4dpr_core.retrieval.encoders import set_attention_dropout

    model = BertModel(BertConfig(hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64))
    assert set_attention_dropout(model, 0.0) == 3
    probabilities = {name: m.p for name, m in model.named_modules() if isinstance(m, torch.nn.Dropout)}
    assert {p for name, p in probabilities.items() if name.endswith("attention.self.dropout")} == {0.0}
    assert {p for name, p in probabilities.items() if not name.endswith("attention.self.dropout")} == {0.1}


def test_pair_scores_in_row_slices_are_the_one_shot_scores(tmp_path, monkeypatch):
    # the gather of passage vectors is sliced by rows to bound memory; the scores must not move by a bit
    corpus = Corpus(ids=[str(j) for j in range(20)], texts=[f"d{j} d{(j + 1) % 10}" for j in range(20)])
    scorer = DenseScorer(tiny_static_encoder(3, 20), "tiny", max_passage_length=16, cache_dir=tmp_path).prepare(corpus)
    queries = [f"d{j} d{j + 3}" for j in range(7)]
    doc_idx = np.random.default_rng(0).integers(-1, 20, size=(7, 11))
    whole = scorer.score(None, queries, doc_idx)
    monkeypatch.setattr(DenseScorer, "_GATHER_BYTES", 1)  # one row at a time
    sliced = scorer.score(None, queries, doc_idx)
    np.testing.assert_array_equal(sliced, whole)
    assert np.isnan(whole[doc_idx < 0]).all() and not np.isnan(whole[doc_idx >= 0]).any()
    vectors = scorer.encode_queries(queries)
    expected = np.einsum("qd,qcd->qc", vectors, scorer.doc_embeddings[np.where(doc_idx >= 0, doc_idx, 0)])
    np.testing.assert_array_equal(whole[doc_idx >= 0], expected[doc_idx >= 0])


def test_model2vec_cache_keeps_the_copy_another_process_renamed_first(tmp_path, monkeypatch):
    """Two processes distilling into one cold cache (two runs, or the tests beside a run): the one that finishes
    second finds the other's copy in place, keeps it and leaves no staging directory, rather than deleting a
    directory the other may be reading from."""
    import hashlib

    import model2vec.distill
    from conftest import word_tokenizer
    from model2vec import StaticModel

    words = ["alpha", "beta", "gamma"]
    vectors = {seed: np.random.default_rng(seed).normal(size=(len(words) + 1, 4)).astype(np.float32) for seed in (1, 2)}
    # the cache's name for this distillation (StaticEncoder.from_model2vec)
    resolved = resolve_model("all-MiniLM-L6-v2", tmp_path)
    target = tmp_path / "models" / f"model2vec-{hashlib.sha256(f'{resolved.name}|4'.encode()).hexdigest()[:12]}"

    def distill_while_another_process_finishes(model_name, pca_dims):
        StaticModel(vectors[1], word_tokenizer(words)).save_pretrained(str(target))
        return StaticModel(vectors[2], word_tokenizer(words))

    monkeypatch.setattr(model2vec.distill, "distill", distill_while_another_process_finishes)
    encoder = StaticEncoder.from_model2vec("all-MiniLM-L6-v2", pca_dims=4, cache_dir=tmp_path)
    assert np.array_equal(encoder.embedding.weight.detach().numpy(), vectors[1])
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]
