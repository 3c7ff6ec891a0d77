"""Round trips of ``mta4dpr_core.export`` on tiny generated models and data (no downloads).

* a tiny BertModel (built from a config) as a transformer student, every pooling: the exported
  directory loaded with ``SentenceTransformer(path)`` gives the student's embeddings within 1e-5;
* a tiny static student, plain and vocabulary-restricted, the same through ``StaticEmbedding``;
* a checkpoint (``atomic.save_torch``) of a restricted static student loads back through ``load_student``;
* training data written to Parquet and JSON Lines reads back (pandas; HF ``datasets`` when installed)
  equal to what was written.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from conftest import make_training_data, tiny_static_encoder
from mta4dpr_core import export

TEXTS = ["the cat sat on the mat", "dog", "red blue cats runs fast fast fast", "unknownword", "the the the",
         "a dog on a red mat and a blue cat"]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    from transformers import BertConfig, BertModel, BertTokenizerFast

    directory = tmp_path_factory.mktemp("bert")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + "the a and cat dog sat on mat runs fast ##s red blue".split()
    (directory / "vocab.txt").write_text("\n".join(words))
    tokenizer = BertTokenizerFast(vocab_file=str(directory / "vocab.txt"))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(words), hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=37,
                        max_position_embeddings=64)
    return BertModel(config), tokenizer


def _sentence_transformer(path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device="cpu")


@pytest.mark.parametrize("pooling, normalize", [("cls_last3", True), ("cls_last3", False), ("cls", True), ("mean", True), ("mean", False)])
def test_transformer_student_round_trip(tiny_bert, pooling, normalize, tmp_path):
    from mta4dpr_core.encoders import TransformerEncoder

    model, tokenizer = tiny_bert
    student = TransformerEncoder(model, tokenizer, pooling=pooling, normalize=normalize)
    out = export.export_student(student, tmp_path / "student", max_seq_length=64)
    assert (out / "modules.json").exists() and not list(tmp_path.glob(".student.tmp-*"))
    loaded = _sentence_transformer(out)
    expected = student.encode(TEXTS, max_length=64, batch_size=2)
    got = loaded.encode(TEXTS, batch_size=4, convert_to_numpy=True)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    # stock modules only: no custom code needed to load it
    classes = [m["type"] for m in json.loads((out / "modules.json").read_text())]
    assert all(c.startswith("sentence_transformers.") for c in classes), classes
    assert json.loads((out / "mta4dpr_export.json").read_text())["student"]["pooling"] == pooling


def test_export_replaces_an_existing_directory(tiny_bert, tmp_path):
    from mta4dpr_core.encoders import TransformerEncoder

    model, tokenizer = tiny_bert
    out = tmp_path / "student"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    export.export_student(TransformerEncoder(model, tokenizer, pooling="cls", normalize=True), out, max_seq_length=64)
    assert not (out / "stale.txt").exists() and (out / "modules.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["student"]


STATIC_TEXTS = ["q0 d1 d2", "d3", "q1 q1 d4 d5 d6", "q2 d0"]


@pytest.mark.parametrize("restricted", [False, True])
def test_static_student_round_trip(restricted, tmp_path):
    student = tiny_static_encoder(4, 8, dim=16)
    if restricted:  # trainable: q0 q1 d0..d3 (ids 1, 2, 5..8), frozen: d4 d5 (ids 9, 10); q2, d6 unknown
        student.restrict_vocabulary([1, 2, 5, 6, 7, 8], [9, 10])
        with torch.no_grad():
            student.embedding.weight.add_(0.5)  # "trained"
    out = export.export_student(student, tmp_path / "static")
    got = _sentence_transformer(out).encode(STATIC_TEXTS, convert_to_numpy=True)
    np.testing.assert_allclose(got, student.encode(STATIC_TEXTS, max_length=64), atol=1e-5, rtol=0)


def test_load_student_from_a_checkpoint(tmp_path, monkeypatch):
    from mta4dpr_core import experiment
    from mta4dpr_core.atomic import save_torch
    from mta4dpr_core.params import DEFAULTS

    trained = tiny_static_encoder(4, 8, dim=16).restrict_vocabulary([1, 2, 5, 6, 7, 8], [9, 10])
    with torch.no_grad():
        trained.embedding.weight.mul_(2.0)
    save_torch(tmp_path / "iteration2" / "state.pt", {"model": trained.state_dict(), "history": [], "pool": []})
    save_torch(tmp_path / "iteration1" / "state.pt", {"model": {}, "history": [], "pool": []})
    monkeypatch.setattr(experiment, "build_student", lambda spec, cache_dir=None, seed=0: tiny_static_encoder(4, 8, dim=16))
    assert export.last_iteration(tmp_path) == 2
    params = {**DEFAULTS, "models": {**DEFAULTS["models"], "student": {"kind": "static", "model": "tiny"}},
              "output": {**DEFAULTS["output"], "cache_dir": str(tmp_path / "cache")}}
    loaded = export.load_student(params, tmp_path / "iteration2" / "state.pt")
    np.testing.assert_array_equal(loaded.encode(STATIC_TEXTS, 64), trained.encode(STATIC_TEXTS, 64))
    with pytest.raises(export.ExportError, match="no readable checkpoint"):
        export.load_student(params, tmp_path / "missing.pt")


def _rows(with_texts):
    data, passages = make_training_data(n_queries=6, n_docs=30, k=4, m=2, n_positives=2)
    data.candidates[1, -1] = -1          # padding
    data.teacher_scores[2, 3] = np.nan    # a pair not scored
    data.origin[5] = 1                    # a mined row
    # the data's query list is the split's: rows 0..5 trained, two more held out for eval
    data.query_ids += ["e1", "e2"]
    data.query_texts += ["evaluation query one", "ünïcode 查询 🙂"]
    corpus_ids = [f"doc-{j}" for j in range(30)]
    positives = [[i, i + 1] for i in range(6)] + [[7], [8, 9]]
    return export.training_data_rows(data, corpus_ids, 3, passages if with_texts else None, positives, [6, 7]), data


def _same(a, b):
    if isinstance(a, float) or isinstance(b, float):
        return (a is None and b is None) or (a is not None and b is not None and (math.isclose(a, b, rel_tol=1e-6) or
                                                                                  (math.isnan(a) and math.isnan(b))))
    if isinstance(a, (list, tuple, np.ndarray)) or isinstance(b, (list, tuple, np.ndarray)):
        if a is None or b is None:
            return a is None and b is None
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _normalise(value):
    if isinstance(value, np.ndarray):
        return [_normalise(v) for v in value.tolist()]
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return value


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
@pytest.mark.parametrize("with_texts", [False, True])
def test_training_data_round_trip(fmt, with_texts, tmp_path):
    import pandas as pd

    rows, data = _rows(with_texts)
    assert len(rows) == 8 and [r["is_eval"] for r in rows] == [False] * 6 + [True] * 2
    assert rows[0]["positive_ids"] == ["doc-0", "doc-1"] and rows[0]["candidate_ids"][:2] == ["doc-0", "doc-1"]
    assert len(rows[1]["candidate_ids"]) == 5 and rows[5]["origin"] == "mined" and rows[2]["teacher_scores"][3] is None
    assert rows[7]["positive_ids"] == ["doc-8", "doc-9"] and rows[7]["query_text"] == "ünïcode 查询 🙂"
    np.testing.assert_allclose(rows[0]["assistant_scores"][1], data.assistant_scores[1, 0], rtol=1e-6)
    out = export.write_rows(rows, tmp_path / f"data.{fmt}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"data.{fmt}"]
    frame = pd.read_parquet(out) if fmt == "parquet" else pd.read_json(out, lines=True, dtype=False)
    assert list(frame.columns) == list(export.COLUMNS)
    back = [{c: _normalise(v) for c, v in record.items()} for record in frame.to_dict("records")]
    assert len(back) == len(rows)
    for wrote, read in zip(rows, back):
        for column in export.COLUMNS:
            assert _same(wrote[column], read[column]), (column, wrote[column], read[column])


def test_training_data_reads_with_hf_datasets(tmp_path):
    datasets = pytest.importorskip("datasets")
    rows, _ = _rows(True)
    out = export.write_rows(rows, tmp_path / "data.parquet")
    loaded = datasets.load_dataset("parquet", data_files=str(out), split="train")
    assert loaded.num_rows == len(rows) and loaded[0]["candidate_ids"] == rows[0]["candidate_ids"]


def test_rows_from_saved_training_data(tmp_path):
    from mta4dpr_core.construction import TrainingData

    data, _ = make_training_data(n_queries=4, n_docs=10, k=3, m=2, n_positives=1)
    data.save(tmp_path / "it1")
    loaded = TrainingData.load(tmp_path / "it1")
    ids = [f"d{j}" for j in range(10)]
    assert export.training_data_rows(loaded, ids, 1) == export.training_data_rows(data, ids, 1)


def test_cli_reports_missing_run_and_bad_set(tmp_path, capsys):
    import yaml

    profile = tmp_path / "p.yaml"
    profile.write_text(yaml.safe_dump({"profile": "p", "models": {"teacher": {"kind": "bm25", "name": "bm25"},
                                                                  "student": {"kind": "static", "model": "wordllama"}}}))
    run_dir = tmp_path / "seed1" / "mta4dpr-x"
    code = export.main(["student", "--profile", str(profile), "--run-dir", str(run_dir), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "no stored iteration" in err
    code = export.main(["data", "--profile", str(profile), "--set", "training.stepz=3", "--run-dir", str(run_dir), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "--set training.stepz=3" in err and "did you mean `training.steps`?" in err
    assert not (tmp_path / "o").exists()
