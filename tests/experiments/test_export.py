"""Round trips of ``mta4dpr_core.experiments.export`` on tiny generated models and data (no downloads).

* a tiny BertModel (built from a config) as a transformer student, every pooling: the exported
  directory loaded with ``SentenceTransformer(path)`` gives the student's embeddings within 1e-5;
* a tiny static student, plain and vocabulary-restricted, the same through ``StaticEmbedding``;
* a checkpoint (``atomic.save_torch``) of a restricted static student loads back through ``load_student``;
* training data written to Parquet and JSON Lines reads back (pandas; HF ``datasets`` when installed)
  equal to what was written;
* the student spec of a run: recorded, else the one candidate whose shapes fit; a mismatch is one line;
* exported files and directories get ordinary permissions (0644 / 0755 under umask 022);
* on a real trained run of a student size (a 64-d static student from ``study.student_sizes``, SciFact,
  smoke-sized): ``export data`` and ``export student`` work from the run alone, print no third-party
  noise, and the exported student loaded with sentence-transformers alone, following its README,
  scores the package's own nDCG@10 for the run within 0.1 points.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from conftest import make_training_data, tiny_static_encoder

from mta4dpr_core.experiments import export

TEXTS = [
    "the cat sat on the mat",
    "dog",
    "red blue cats runs fast fast fast",
    "unknownword",
    "the the the",
    "a dog on a red mat and a blue cat",
]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    from transformers import BertConfig, BertModel, BertTokenizerFast

    directory = tmp_path_factory.mktemp("bert")
    words = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
    ] + "the a and cat dog sat on mat runs fast ##s red blue".split()
    (directory / "vocab.txt").write_text("\n".join(words))
    tokenizer = BertTokenizerFast(vocab_file=str(directory / "vocab.txt"))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(words),
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
    )
    return BertModel(config), tokenizer


def _sentence_transformer(path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device="cpu")


@pytest.mark.parametrize(
    "pooling, normalize", [("cls_last3", True), ("cls_last3", False), ("cls", True), ("mean", True), ("mean", False)]
)
def test_transformer_student_round_trip(tiny_bert, pooling, normalize, tmp_path):
    from mta4dpr_core.retrieval.encoders import TransformerEncoder

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
    from mta4dpr_core.retrieval.encoders import TransformerEncoder

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
    from mta4dpr_core.config.params import DEFAULTS
    from mta4dpr_core.experiments import experiment
    from mta4dpr_core.store.atomic import save_torch

    trained = tiny_static_encoder(4, 8, dim=16).restrict_vocabulary([1, 2, 5, 6, 7, 8], [9, 10])
    with torch.no_grad():
        trained.embedding.weight.mul_(2.0)
    save_torch(tmp_path / "iteration2" / "state.pt", {"model": trained.state_dict(), "history": [], "pool": []})
    save_torch(tmp_path / "iteration1" / "state.pt", {"model": {}, "history": [], "pool": []})
    monkeypatch.setattr(
        experiment, "build_student", lambda spec, cache_dir=None, seed=0: tiny_static_encoder(4, 8, dim=16)
    )
    assert export.last_iteration(tmp_path) == 2
    params = {
        **DEFAULTS,
        "models": {**DEFAULTS["models"], "student": {"kind": "static", "model": "tiny"}},
        "output": {**DEFAULTS["output"], "cache_dir": str(tmp_path / "cache")},
    }
    loaded = export.load_student(params, tmp_path / "iteration2" / "state.pt")
    np.testing.assert_array_equal(loaded.encode(STATIC_TEXTS, 64), trained.encode(STATIC_TEXTS, 64))
    with pytest.raises(export.ExportError, match="no readable checkpoint"):
        export.load_student(params, tmp_path / "missing.pt")


def _rows(with_texts):
    data, passages = make_training_data(n_queries=6, n_docs=30, k=4, m=2, n_positives=2)
    data.candidates[1, -1] = -1  # padding
    data.teacher_scores[2, 3] = np.nan  # a pair not scored
    data.origin[5] = 1  # a mined row
    # the data's query list is the split's: rows 0..5 trained, two more held out for eval
    data.query_ids += ["e1", "e2"]
    data.query_texts += ["evaluation query one", "ünïcode 查询 🙂"]
    corpus_ids = [f"doc-{j}" for j in range(30)]
    positives = [[i, i + 1] for i in range(6)] + [[7], [8, 9]]
    return export.training_data_rows(data, corpus_ids, 3, passages if with_texts else None, positives, [6, 7]), data


def _same(a, b):
    if isinstance(a, float) or isinstance(b, float):
        return (a is None and b is None) or (
            a is not None and b is not None and (math.isclose(a, b, rel_tol=1e-6) or (math.isnan(a) and math.isnan(b)))
        )
    if isinstance(a, (list, tuple, np.ndarray)) or isinstance(b, (list, tuple, np.ndarray)):
        if a is None or b is None:
            return a is None and b is None
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
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
    for wrote, read in zip(rows, back, strict=True):
        for column in export.COLUMNS:
            assert _same(wrote[column], read[column]), (column, wrote[column], read[column])


def test_training_data_reads_with_hf_datasets(tmp_path):
    datasets = pytest.importorskip("datasets")
    rows, _ = _rows(True)
    out = export.write_rows(rows, tmp_path / "data.parquet")
    loaded = datasets.load_dataset("parquet", data_files=str(out), split="train")
    assert loaded.num_rows == len(rows) and loaded[0]["candidate_ids"] == rows[0]["candidate_ids"]


def test_rows_from_saved_training_data(tmp_path):
    from mta4dpr_core.method.construction import TrainingData

    data, _ = make_training_data(n_queries=4, n_docs=10, k=3, m=2, n_positives=1)
    data.save(tmp_path / "it1")
    loaded = TrainingData.load(tmp_path / "it1")
    ids = [f"d{j}" for j in range(10)]
    assert export.training_data_rows(loaded, ids, 1) == export.training_data_rows(data, ids, 1)


def test_cli_reports_missing_run_and_bad_set(tmp_path, capsys):
    import yaml

    profile = tmp_path / "p.yaml"
    profile.write_text(
        yaml.safe_dump(
            {
                "profile": "p",
                "models": {
                    "teacher": {"kind": "bm25", "name": "bm25"},
                    "student": {"kind": "static", "model": "wordllama"},
                },
            }
        )
    )
    run_dir = tmp_path / "seed1" / "mta4dpr-x"
    code = export.main(["student", "--profile", str(profile), "--run-dir", str(run_dir), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "no stored iteration" in err
    code = export.main(
        [
            "data",
            "--profile",
            str(profile),
            "--set",
            "training.stepz=3",
            "--run-dir",
            str(run_dir),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "--set training.stepz=3" in err and "did you mean `training.steps`?" in err
    assert not (tmp_path / "o").exists()


# --- which student a run holds ------------------------------------------------------------------


def _tiny_builder(monkeypatch):
    """build_student -> a tiny static encoder of the spec's ``dim`` (default 16); ``normalize`` honoured."""
    from mta4dpr_core.experiments import experiment

    def build(spec, cache_dir=None, seed=0, data_root=None):
        student = tiny_static_encoder(4, 8, dim=spec.get("dim", 16))
        student.normalize = spec.get("normalize", True)
        return student

    monkeypatch.setattr(experiment, "build_student", build)


def _fake_run(tmp_path, dim, result=None, restricted=True):
    from mta4dpr_core.store.atomic import save_torch

    run_dir = tmp_path / "runs" / "p" / "work" / "seed1" / "mta4dpr-0123456789abcdef0123"
    trained = tiny_static_encoder(4, 8, dim=dim)
    if restricted:
        trained.restrict_vocabulary([1, 2, 5, 6, 7, 8], [9, 10])
    save_torch(run_dir / "iteration1" / "state.pt", {"model": trained.state_dict()})
    if result is not None:
        (run_dir / "result.json").write_text(json.dumps(result))
    return run_dir, trained


def _tiny_params(tmp_path, sizes=()):
    from mta4dpr_core.config.params import DEFAULTS

    return {
        **DEFAULTS,
        "profile": "p",
        "models": {**DEFAULTS["models"], "student": {"kind": "static", "model": "tiny"}},
        "study": {**DEFAULTS["study"], "student_sizes": list(sizes)},
        "output": {**DEFAULTS["output"], "cache_dir": str(tmp_path / "cache")},
    }


def test_run_student_spec_finds_the_size_that_fits(tmp_path, monkeypatch):
    _tiny_builder(monkeypatch)
    params = _tiny_params(
        tmp_path, [{"kind": "static", "model": "tiny", "dim": 8}, {"kind": "static", "model": "tiny"}]
    )
    run_dir, trained = _fake_run(tmp_path, dim=8)
    assert export.run_student_spec(params, run_dir) == {"kind": "static", "model": "tiny", "dim": 8}
    loaded = export.load_student(params, run_dir / "iteration1" / "state.pt", export.run_student_spec(params, run_dir))
    np.testing.assert_array_equal(loaded.encode(STATIC_TEXTS, 64), trained.encode(STATIC_TEXTS, 64))


def test_a_recorded_student_spec_wins(tmp_path, monkeypatch):
    _tiny_builder(monkeypatch)
    recorded = {"kind": "static", "model": "tiny", "dim": 8, "normalize": False}
    params = _tiny_params(tmp_path, [{"kind": "static", "model": "tiny", "dim": 8}])
    run_dir, _ = _fake_run(tmp_path, dim=8, result={"student_spec": recorded})
    assert export.run_student_spec(params, run_dir) == recorded


def test_a_student_that_fits_no_spec_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    import yaml

    _tiny_builder(monkeypatch)
    run_dir, _ = _fake_run(tmp_path, dim=8)
    profile = tmp_path / "p.yaml"
    profile.write_text(
        yaml.safe_dump(
            {
                "profile": "p",
                "models": {"teacher": {"kind": "bm25", "name": "bm25"}, "student": {"kind": "static", "model": "tiny"}},
                "output": {"cache_dir": str(tmp_path / "cache")},
            }
        )
    )
    with pytest.raises(export.ExportError, match=r"fit none of the profile's students .*dimension 16.*--student"):
        export.run_student_spec(_tiny_params(tmp_path), run_dir)
    for argv in (
        ["student", "--run-dir", str(run_dir)],  # nothing fits: 16-d profile
        ["student", "--run-dir", str(run_dir), "--student", "{kind: static, model: tiny, dim: 4}"],
        ["data", "--run-dir", str(run_dir), "--student", "{kind: static, model: tiny, dim: 4}"],
        ["student", "--checkpoint", str(run_dir / "iteration1" / "state.pt")],
    ):  # a run's checkpoint: the run's spec
        code = export.main([*argv, "--profile", str(profile), "--out", str(tmp_path / "out")])
        captured = capsys.readouterr()
        assert code == 2 and captured.out == "", argv
        assert (
            captured.err.startswith("error: ") and captured.err.count("\n") == 1 and "Traceback" not in captured.err
        ), captured.err
        assert "--student" in captured.err and ("[6, 8]" in captured.err or "dimension" in captured.err), captured.err
    assert not (tmp_path / "out").exists()
    # several specs fit (same shapes, different normalisation): ambiguous, also one line
    params = _tiny_params(
        tmp_path,
        [
            {"kind": "static", "model": "tiny", "dim": 8},
            {"kind": "static", "model": "tiny", "dim": 8, "normalize": False},
        ],
    )
    with pytest.raises(export.ExportError, match="fit several students"):
        export.run_student_spec(params, run_dir)


# --- permissions ------------------------------------------------------------------------------


@pytest.fixture
def umask_022():
    import os

    old = os.umask(0o022)
    yield
    os.umask(old)


def _modes(root):
    import os
    import stat

    files, dirs = {}, {}
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        (dirs if path.is_dir() else files)[str(path.relative_to(root))] = oct(mode)
    return files, dirs


def test_exported_files_are_0644(tmp_path, umask_022):
    student = tiny_static_encoder(4, 8, dim=16)
    out = export.export_student(student, tmp_path / "static", max_seq_length=64, max_query_length=32)
    files, dirs = _modes(out)
    assert files and set(files.values()) == {"0o644"}, files
    assert set(dirs.values()) == {"0o755"}, dirs
    rows, _ = _rows(False)
    for name in ("data.parquet", "data.jsonl"):
        written = export.write_rows(rows, tmp_path / name)
        assert _modes(written)[0] == {".": "0o644"}


# --- a real trained run of a student size (SciFact) ------------------------------------------------

SIZE_SPEC = {"kind": "static", "model": "wordllama", "dim": 64}


@pytest.fixture(scope="module")
def size_run(tmp_path_factory, scifact_dir):
    """A smoke-sized MTA4DPR run (60 train queries, 20 test queries, 300 passages, 2 iterations of 10
    steps) of a 64-d static student from ``study.student_sizes``, made as the Table 6 study makes it."""
    import yaml

    from mta4dpr_core.config.params import REPO_ROOT, load_params, profile_path
    from mta4dpr_core.experiments.experiment import Setup
    from mta4dpr_core.experiments.iteration import deep_update, run_mta4dpr

    directory = tmp_path_factory.mktemp("size-run")
    params = load_params(profile_path("smoke"))
    params = deep_update(
        params,
        {
            "data": {
                "root": str(scifact_dir.parent),
                "max_train_queries": 60,
                "max_test_queries": 20,
                "max_corpus": 300,
                "extra_test": [],
            },
            "training": {"steps": 10, "checkpoint_every": 5},
            "iterations": {"count": 2},
            "study": {"student_sizes": [SIZE_SPEC]},
            "output": {
                "runs_dir": str(directory / "runs"),
                "results_dir": str(directory / "results"),
                "cache_dir": str(REPO_ROOT / ".cache"),
            },
        },
    )
    profile = directory / "profile.yaml"
    profile.write_text(yaml.safe_dump(params, sort_keys=False))
    setup = Setup.from_params(params)
    result = run_mta4dpr(setup, params["seeds"][0], student_spec=SIZE_SPEC, evaluate_test="final")
    (run_dir,) = (setup.work_dir / f"seed{params['seeds'][0]}").glob("mta4dpr-*")
    return setup, params, profile, run_dir, result


def test_export_data_of_a_student_size_run(size_run, tmp_path, capfd, umask_022):
    """The issue's case: rebuilding the data of a 64-d student's run used to stop with "size mismatch"."""
    import pandas as pd

    setup, params, profile, run_dir, result = size_run
    out = tmp_path / "data.parquet"
    code = export.main(["data", "--profile", str(profile), "--run-dir", str(run_dir), "--out", str(out)])
    captured = capfd.readouterr()
    assert code == 0, captured.err
    assert captured.err == "" and captured.out.strip() == str(out)  # no LOAD REPORT, no loading bars
    frame = pd.read_parquet(out)
    assert sorted(frame["iteration"].unique().tolist()) == [1, 2]
    assert (frame[~frame["is_eval"]].groupby("iteration").size() == [h.rows for h in result.history]).all()
    assert _modes(out)[0] == {".": "0o644"}


def _read_beir(directory, query_ids, doc_ids):
    """Raw BEIR texts, joined as the exported README says (title + " " + text), without mta4dpr_core."""
    import gzip

    docs, queries = {}, {}
    wanted = set(doc_ids)
    with gzip.open(directory / "corpus.jsonl.gz", "rt", encoding="utf-8") as handle:
        for line in handle:
            obj = json.loads(line)
            if obj["_id"] in wanted:
                title, text = str(obj.get("title") or "").strip(), str(obj.get("text") or "").strip()
                docs[obj["_id"]] = f"{title} {text}".strip()
    with open(directory / "queries.jsonl", encoding="utf-8") as handle:
        for line in handle:
            obj = json.loads(line)
            if obj["_id"] in set(query_ids):
                queries[obj["_id"]] = str(obj["text"]).strip()
    return [queries[q] for q in query_ids], [docs[d] for d in doc_ids]


def test_exported_student_size_matches_the_package_metric(size_run, scifact_dir, tmp_path, capfd, umask_022):
    """SentenceTransformer(path) alone, following the export's README, scores the run's recorded test
    nDCG@10 (the package's own figure) within 0.1 points; the files are 0644; nothing noisy is printed."""
    from sentence_transformers import SentenceTransformer

    from mta4dpr_core.retrieval.metrics import evaluate

    setup, params, profile, run_dir, result = size_run
    out = tmp_path / "student"
    code = export.main(["student", "--profile", str(profile), "--run-dir", str(run_dir), "--out", str(out)])
    captured = capfd.readouterr()
    assert code == 0, captured.err
    assert captured.err == "" and captured.out.strip() == str(out)
    info = json.loads((out / "mta4dpr_export.json").read_text())
    assert info["student_spec"] == SIZE_SPEC and info["student"]["dim"] == 64
    readme = (out / "README.md").read_text()
    assert "enable_truncation(64)" in readme and "enable_truncation(256)" in readme and "{title} {text}" in readme
    files, dirs = _modes(out)
    assert set(files.values()) == {"0o644"} and set(dirs.values()) == {"0o755"}, (files, dirs)

    split, corpus = setup.test, setup.collection.corpus
    query_texts, passage_texts = _read_beir(scifact_dir, split.query_ids, corpus.ids)
    assert passage_texts == list(corpus.texts)  # the README's joining is the package's

    model = SentenceTransformer(str(out), device="cpu")
    model[0].tokenizer.enable_truncation(64)
    queries = model.encode(query_texts, convert_to_numpy=True)
    model[0].tokenizer.enable_truncation(256)
    passages = model.encode(passage_texts, convert_to_numpy=True)
    scores = queries @ passages.T
    top = np.argsort(-scores, axis=1, kind="stable")[:, :100]
    run = {q: {corpus.ids[j]: float(scores[i, j]) for j in top[i]} for i, q in enumerate(split.query_ids)}
    ours = 100 * evaluate(run, split.qrels, ("nDCG@10",), split.relevance_level)["nDCG@10"]
    package = 100 * result.final["test"]["nDCG@10"]
    print(
        f"nDCG@10 on {len(split.query_ids)} SciFact test queries over {len(corpus)} passages: "
        f"sentence-transformers {ours:.4f}, package {package:.4f}, difference {ours - package:+.4f}"
    )
    assert abs(ours - package) <= 0.1
