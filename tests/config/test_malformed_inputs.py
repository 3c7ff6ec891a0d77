"""Malformed inputs: each gives ONE clear error naming the file and line (data) or the params key
(params), never a traceback, and the runner exits 2 having written nothing to the results directory.

Data files are small slices of the real SciFact files (BEIR layout) copied under ``tmp_path`` and
edited, or tiny hand-written MS MARCO TSV files. Every case is checked twice: against the loader /
validator (the exception, its ``path``/``line`` or ``key``) and through ``runner.main`` in-process
(exit code 2, one ``error: ...`` line on stderr, no results directory). A few representative cases
also run the runner CLI as a subprocess.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mta4dpr_core import runner
from mta4dpr_core.config.errors import DataError, ModelNotFoundError, ParamsError
from mta4dpr_core.config.params import REPO_ROOT, load_params
from mta4dpr_core.retrieval.data import load_collection, load_trec_run, resolve_split

SOME_LINE = object()  # the error names a line, which one depends on where the gzip stream broke


# ---------------------------------------------------------------------------------------------
# Building blocks: a BEIR slice of SciFact, a tiny MS MARCO TSV collection, profiles
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scifact_slice(scifact_dir):
    """Raw lines (bytes) of a small, consistent slice of SciFact: 6 train + 6 test judgments,
    their queries, their passages plus the first 12 of the corpus."""
    qrels = {}
    for split in ("train", "test"):
        lines = (scifact_dir / "qrels" / f"{split}.tsv").read_bytes().splitlines(keepends=True)
        qrels[split] = lines[:7]  # header + 6 judgments
    judged = [line.split(b"\t") for split in qrels.values() for line in split[1:]]
    query_ids = {fields[0].decode() for fields in judged}
    doc_ids = {fields[1].decode() for fields in judged}
    queries = [
        line
        for line in (scifact_dir / "queries.jsonl").read_bytes().splitlines(keepends=True)
        if json.loads(line)["_id"] in query_ids
    ]
    with gzip.open(scifact_dir / "corpus.jsonl.gz", "rb") as handle:
        corpus = [line for number, line in enumerate(handle) if number < 12 or json.loads(line)["_id"] in doc_ids]
    assert len(queries) == len(query_ids) and len(corpus) >= len(doc_ids)
    return {
        "corpus.jsonl": corpus,
        "queries.jsonl": queries,
        "qrels/train.tsv": qrels["train"],
        "qrels/test.tsv": qrels["test"],
    }


class Files:
    """Line-level edits of the files of one collection directory (line numbers are 1-based)."""

    def __init__(self, directory: Path):
        self.dir = directory

    def lines(self, name):
        return (self.dir / name).read_bytes().splitlines(keepends=True)

    def write(self, name, lines):
        (self.dir / name).parent.mkdir(parents=True, exist_ok=True)
        (self.dir / name).write_bytes(b"".join(lines))

    def edit(self, name, line_no, change):
        lines = self.lines(name)
        lines[line_no - 1] = change(lines[line_no - 1])
        self.write(name, lines)

    def append(self, name, line) -> int:
        lines = self.lines(name) + [line]
        self.write(name, lines)
        return len(lines)

    def json_line(self, name, line_no):
        return json.loads(self.lines(name)[line_no - 1])


@pytest.fixture
def beir(tmp_path, scifact_slice):
    """``<tmp>/data/toy``: the SciFact slice, plain (uncompressed) files."""
    files = Files(tmp_path / "data" / "toy")
    for name, lines in scifact_slice.items():
        files.write(name, lines)
    return files


@pytest.fixture
def tsv(tmp_path):
    """``<tmp>/data/tsvtoy``: a hand-written MS MARCO TSV collection."""
    files = Files(tmp_path / "data" / "tsvtoy")
    files.write(
        "collection.tsv",
        [
            b"0\tThe capital of France is Paris.\n",
            b"1\tBerlin is the capital of Germany.\n",
            b"2\tRome is an old city.\n",
            b"3\tMadrid is in Spain.\n",
        ],
    )
    files.write("queries.train.tsv", [b"100\twhat is the capital of france\n", b"101\twhere is berlin\n"])
    files.write("queries.test.tsv", [b"200\twhich city is old\n", b"201\twhere is madrid\n"])
    files.write("qrels.train.tsv", [b"100\t0\t0\t1\n", b"101\t0\t1\t1\n"])
    files.write("qrels.test.tsv", [b"200\t0\t2\t1\n", b"201\t0\t3\t1\n"])
    return files


def base_profile(tmp_path) -> dict:
    """The smoke profile with every output directory under ``tmp_path``."""
    params = yaml.safe_load((REPO_ROOT / "params" / "smoke.yaml").read_text())
    params["profile"] = "malformed"
    params["output"] = {
        "runs_dir": str(tmp_path / "runs"),
        "results_dir": str(tmp_path / "results"),
        "cache_dir": str(tmp_path / "cache"),
    }
    return params


def write_profile(tmp_path, params, name="profile.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def data_profile(tmp_path, collection) -> Path:
    params = base_profile(tmp_path)
    params["data"].update(
        root=str(tmp_path / "data"), train=f"{collection}/train", test=f"{collection}/test", extra_test=[]
    )
    return write_profile(tmp_path, params)


def run_main(profile: Path, capsys):
    """``python -m mta4dpr_core.runner --profile <profile> --no-notebooks --only 04``, in-process."""
    capsys.readouterr()
    code = runner.main(["--profile", str(profile), "--no-notebooks", "--only", "04"])
    return code, capsys.readouterr().err


def location_pattern(path, line):
    if line is None:
        return re.escape(f"{path}: ")
    return re.escape(f"{path}:") + (r"\d+" if line is SOME_LINE else str(line)) + ": "


def assert_one_clear_line(message: str, location: str, fragment: str):
    assert "\n" not in message.strip(), f"not one line: {message!r}"
    assert "Traceback" not in message
    assert re.search(location, message), f"{location!r} not in {message!r}"
    assert fragment in message, f"{fragment!r} not in {message!r}"


def assert_runner_fails_cleanly(code, err, location, fragment, tmp_path, exact=True):
    assert code == 2, err
    error_lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1, err
    if exact:  # nothing else on stderr
        assert err.strip() == error_lines[0], err
    assert "Traceback" not in err
    assert_one_clear_line(error_lines[0], location, fragment)
    results = tmp_path / "results"
    assert not results.exists() or not any(results.rglob("*")), sorted(results.rglob("*"))


# ---------------------------------------------------------------------------------------------
# Data cases: (edit the files) -> (file, line, message fragment)
# ---------------------------------------------------------------------------------------------


def truncated_json_line(files):
    files.edit("corpus.jsonl", 3, lambda line: line[: len(line) // 2] + b"\n")
    return "corpus.jsonl", 3, "malformed JSON"


def missing_id(files):
    def drop_id(line):
        obj = json.loads(line)
        del obj["_id"]
        return json.dumps(obj).encode() + b"\n"

    files.edit("corpus.jsonl", 2, drop_id)
    return "corpus.jsonl", 2, "missing `_id`"


def empty_id(files):
    files.edit("queries.jsonl", 1, lambda line: json.dumps({**json.loads(line), "_id": "  "}).encode() + b"\n")
    return "queries.jsonl", 1, "empty `_id`"


def duplicate_corpus_id(files):
    first = files.lines("corpus.jsonl")[0]
    line = files.append("corpus.jsonl", first)
    return "corpus.jsonl", line, f"duplicate id {json.loads(first)['_id']!r} (first on line 1)"


def duplicate_query_id(files):
    first = files.lines("queries.jsonl")[0]
    line = files.append("queries.jsonl", first)
    return "queries.jsonl", line, f"duplicate id {json.loads(first)['_id']!r} (first on line 1)"


def qrels_unknown_document(files):
    files.edit("qrels/test.tsv", 2, lambda line: b"\t".join([line.split(b"\t")[0], b"999999999", b"1\n"]))
    return "qrels/test.tsv", 2, "qrels name unknown document '999999999'"


def qrels_unknown_query(files):
    files.edit("qrels/test.tsv", 3, lambda line: b"\t".join([b"no-such-query"] + line.split(b"\t")[1:]))
    return "qrels/test.tsv", 3, "qrels name unknown query 'no-such-query'"


def qrels_duplicate_judgment(files):
    line = files.append("qrels/train.tsv", files.lines("qrels/train.tsv")[1])
    return "qrels/train.tsv", line, "duplicate judgment"


def qrels_wrong_column_count(files):
    files.edit("qrels/test.tsv", 4, lambda line: b"\t".join(line.split(b"\t")[:2]) + b"\n")
    return "qrels/test.tsv", 4, "expected 3 or 4 tab-separated columns, got 2"


def qrels_non_integer_grade(files):
    files.edit("qrels/train.tsv", 2, lambda line: b"\t".join(line.split(b"\t")[:2] + [b"high\n"]))
    return "qrels/train.tsv", 2, "relevance grade must be an integer, got 'high'"


def non_utf8_bytes(files):
    files.edit("corpus.jsonl", 4, lambda line: line.replace(b'"text": "', b'"text": "\xff\xfe', 1))
    return "corpus.jsonl", 4, "not valid UTF-8"


def json_line_not_an_object(files):
    files.edit("corpus.jsonl", 2, lambda line: b'["not", "an", "object"]\n')
    return "corpus.jsonl", 2, "expected a JSON object, got list"


def empty_passage_text(files):
    def blank(line):
        obj = json.loads(line)
        return json.dumps({**obj, "title": "", "text": "   "}).encode() + b"\n"

    files.edit("corpus.jsonl", 5, blank)
    return "corpus.jsonl", 5, "empty text for id"


def empty_query_text(files):
    files.edit("queries.jsonl", 2, lambda line: json.dumps({**json.loads(line), "text": ""}).encode() + b"\n")
    return "queries.jsonl", 2, "empty text for query"


def empty_corpus_file(files):
    files.write("corpus.jsonl", [])
    return "corpus.jsonl", None, "empty corpus: no passages"


def corrupt_gzip(files):
    data = gzip.compress(b"".join(files.lines("corpus.jsonl")), mtime=0)
    middle = len(data) // 2
    (files.dir / "corpus.jsonl").unlink()
    (files.dir / "corpus.jsonl.gz").write_bytes(
        data[:middle] + bytes(b ^ 0x5A for b in data[middle : middle + 64]) + data[middle + 64 :]
    )
    return "corpus.jsonl.gz", SOME_LINE, "corrupt or truncated gzip data"


def truncated_gzip(files):
    data = gzip.compress(b"".join(files.lines("corpus.jsonl")), mtime=0)
    (files.dir / "corpus.jsonl").unlink()
    (files.dir / "corpus.jsonl.gz").write_bytes(data[: len(data) * 2 // 3])
    return "corpus.jsonl.gz", SOME_LINE, "corrupt or truncated gzip data"


BEIR_CASES = [
    truncated_json_line,
    missing_id,
    empty_id,
    duplicate_corpus_id,
    duplicate_query_id,
    qrels_unknown_document,
    qrels_unknown_query,
    qrels_duplicate_judgment,
    qrels_wrong_column_count,
    qrels_non_integer_grade,
    non_utf8_bytes,
    json_line_not_an_object,
    empty_passage_text,
    empty_query_text,
    empty_corpus_file,
    corrupt_gzip,
    truncated_gzip,
]


def collection_tsv_wrong_column_count(files):
    files.edit("collection.tsv", 2, lambda line: b"1\tBerlin\tis the capital of Germany.\n")
    return "collection.tsv", 2, "expected 2 tab-separated columns, got 3"


def collection_tsv_missing_text_column(files):
    files.edit("collection.tsv", 4, lambda line: b"3\n")
    return "collection.tsv", 4, "expected 2 tab-separated columns, got 1"


def collection_tsv_empty_text(files):
    files.edit("collection.tsv", 3, lambda line: b"2\t \n")
    return "collection.tsv", 3, "empty text for id '2'"


def collection_tsv_duplicate_id(files):
    line = files.append("collection.tsv", b"0\tParis again.\n")
    return "collection.tsv", line, "duplicate id '0' (first on line 1)"


def queries_tsv_duplicate_id(files):
    line = files.append("queries.train.tsv", b"100\tthe same id twice\n")
    return "queries.train.tsv", line, "duplicate id '100'"


def trec_qrels_non_integer_grade(files):
    files.edit("qrels.test.tsv", 2, lambda line: b"201\t0\t3\t1.5\n")
    return "qrels.test.tsv", 2, "relevance grade must be an integer, got '1.5'"


def trec_qrels_unknown_document(files):
    files.edit("qrels.train.tsv", 1, lambda line: b"100\t0\t77\t1\n")
    return "qrels.train.tsv", 1, "qrels name unknown document '77'"


def collection_tsv_non_utf8(files):
    files.edit("collection.tsv", 3, lambda line: b"2\tRome is an \xe9old city.\n")
    return "collection.tsv", 3, "not valid UTF-8"


TSV_CASES = [
    collection_tsv_wrong_column_count,
    collection_tsv_missing_text_column,
    collection_tsv_empty_text,
    collection_tsv_duplicate_id,
    queries_tsv_duplicate_id,
    trec_qrels_non_integer_grade,
    trec_qrels_unknown_document,
    collection_tsv_non_utf8,
]


def _check_data_case(files, case, tmp_path, capsys):
    name, line, fragment = case(files)
    path = files.dir / name
    with pytest.raises(DataError) as caught:
        load_collection(files.dir)
    error = caught.value
    assert error.path == str(path) and error.line == (error.line if line is SOME_LINE else line)
    if line is SOME_LINE:
        assert isinstance(error.line, int) and error.line >= 1
    assert_one_clear_line(str(error), "^" + location_pattern(path, line), fragment)
    code, err = run_main(data_profile(tmp_path, files.dir.name), capsys)
    assert_runner_fails_cleanly(code, err, location_pattern(path, line), fragment, tmp_path)


@pytest.mark.parametrize("case", BEIR_CASES, ids=lambda case: case.__name__)
def test_malformed_beir_data(case, beir, tmp_path, capsys):
    _check_data_case(beir, case, tmp_path, capsys)


@pytest.mark.parametrize("case", TSV_CASES, ids=lambda case: case.__name__)
def test_malformed_msmarco_tsv_data(case, tsv, tmp_path, capsys):
    _check_data_case(tsv, case, tmp_path, capsys)


def test_the_unedited_slices_load(beir, tsv):
    """The cases above fail because of their edit, not because the slices are broken."""
    toy = load_collection(beir.dir)
    assert set(toy.splits) == {"train", "test"} and len(toy.corpus) >= 12
    assert set(load_collection(tsv.dir).splits) == {"train", "test"}


def test_trec_run_with_non_numeric_score(tmp_path):
    path = tmp_path / "run.trec"
    path.write_text("1 Q0 d1 1 12.5 bm25\n1 Q0 d2 2 twelve bm25\n")
    with pytest.raises(DataError) as caught:
        load_trec_run(path)
    assert_one_clear_line(str(caught.value), "^" + location_pattern(path, 2), "score must be a number, got 'twelve'")


def test_missing_data_path(tmp_path, capsys):
    """``data.root`` pointing nowhere: the error names the directory and the params key to fix."""
    params = base_profile(tmp_path)
    params["data"]["root"] = str(tmp_path / "nowhere")
    with pytest.raises(DataError, match="data directory does not exist"):
        resolve_split(tmp_path / "nowhere", "scifact/train")
    code, err = run_main(write_profile(tmp_path, params), capsys)
    assert_runner_fails_cleanly(
        code, err, re.escape(f"{tmp_path / 'nowhere' / 'scifact'}: "), "set `data.root`", tmp_path
    )


def test_split_that_does_not_exist(beir, tmp_path, capsys):
    params = base_profile(tmp_path)
    params["data"].update(root=str(tmp_path / "data"), train="toy/dev", test="toy/test", extra_test=[])
    code, err = run_main(write_profile(tmp_path, params), capsys)
    assert_runner_fails_cleanly(
        code, err, re.escape(f"{beir.dir}: "), "split 'dev' not found; available: ['test', 'train']", tmp_path
    )


# ---------------------------------------------------------------------------------------------
# Params cases: (edit the profile mapping) -> (key, message fragment); or raw YAML text
# ---------------------------------------------------------------------------------------------


def _set(params, dotted, value):
    node = params
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def _single_assistant(params):
    params["models"]["assistants"] = params["models"]["assistants"][:1]


def _duplicate_assistant_names(params):
    params["models"]["assistants"][1]["name"] = params["models"]["assistants"][0]["name"]


PARAMS_CASES = [
    (
        "unknown_key",
        lambda p: p["training"].update(stpes=10),
        "training.stpes",
        "unknown key; did you mean `training.steps`?",
    ),
    ("unknown_section", lambda p: p.update(trainng={"steps": 1}), "trainng", "did you mean `training`?"),
    ("wrong_type", lambda p: _set(p, "training.steps", "ten"), "training.steps", "expected an integer, got 'ten'"),
    (
        "boolean_for_integer",
        lambda p: _set(p, "training.steps", True),
        "training.steps",
        "expected an integer, got True",
    ),
    ("section_not_a_mapping", lambda p: p.update(training=5), "training", "expected a mapping, got 5"),
    ("negative_k", lambda p: _set(p, "construction.k", -1), "construction.k", "must be >= 0, got -1"),
    ("zero_steps", lambda p: _set(p, "training.steps", 0), "training.steps", "must be > 0, got 0"),
    (
        "loss_weights_all_zero",
        lambda p: p.update(loss={"alpha": 0, "beta": 0, "gamma": 0.0}),
        "loss",
        "alpha, beta and gamma are all zero",
    ),
    ("fusion_with_one_assistant", _single_assistant, "fusion.enabled", "fusion needs at least 2 assistants, got 1"),
    (
        "unknown_selection_method",
        lambda p: _set(p, "selection.method", "kll"),
        "selection.method",
        "did you mean 'kl'?",
    ),
    (
        "eval_fraction_out_of_range",
        lambda p: _set(p, "construction.eval_fraction", 1.5),
        "construction.eval_fraction",
        "must be in [0, 1), got 1.5",
    ),
    ("rbo_p_out_of_range", lambda p: _set(p, "selection.rbo_p", 1.0), "selection.rbo_p", "must be in (0, 1)"),
    ("duplicate_assistant_names", _duplicate_assistant_names, "models.assistants", "assistant names must be unique"),
    (
        "dataset_spec_without_slash",
        lambda p: _set(p, "data.train", "scifact"),
        "data.train",
        "dataset spec 'scifact' must look like '<collection>/<split>'",
    ),
    (
        "extra_test_spec_without_split",
        lambda p: _set(p, "data.extra_test", ["msmarco-trecdl/"]),
        "data.extra_test[0]",
        "must look like '<collection>/<split>'",
    ),
    (
        "negative_data_limit",
        lambda p: _set(p, "data.max_corpus", -5),
        "data.max_corpus",
        "non-negative integer, got -5",
    ),
    (
        "unknown_model_kind",
        lambda p: p["models"]["assistants"][0].update(kind="onxx"),
        "models.assistants[0].kind",
        "did you mean 'onnx'?",
    ),
    (
        "dense_model_without_model_name",
        lambda p: p["models"]["assistants"][1].pop("model"),
        "models.assistants[1].model",
        "needs `model`",
    ),
    (
        "unknown_student_kind",
        lambda p: _set(p, "models.student", {"kind": "statik", "model": "wordllama"}),
        "models.student.kind",
        "did you mean 'static'?",
    ),
    (
        "fusion_weights_wrong_length",
        lambda p: _set(p, "fusion.weights", [1.0, 2.0, 3.0]),
        "fusion.weights",
        "expected a list of 2 numbers",
    ),
    ("no_seeds", lambda p: p.update(seeds=[]), "seeds", "expected a non-empty list of integers"),
]


@pytest.mark.parametrize("name, change, key, fragment", PARAMS_CASES, ids=[case[0] for case in PARAMS_CASES])
def test_malformed_params(name, change, key, fragment, tmp_path, capsys):
    params = base_profile(tmp_path)
    change(params)
    profile = write_profile(tmp_path, params)
    with pytest.raises(ParamsError) as caught:
        load_params(profile)
    assert caught.value.key == key
    assert_one_clear_line(str(caught.value), "^" + re.escape(f"{profile}: params key `{key}`: "), fragment)
    code, err = run_main(profile, capsys)
    assert_runner_fails_cleanly(code, err, re.escape(f"`{key}`"), fragment, tmp_path)


YAML_CASES = [
    # (name, file bytes, line named, fragment)
    ("invalid_yaml_tab", b"profile: broken\nseeds: [13]\ntraining:\n\tsteps: 3\n", 4, "not valid YAML:4:"),
    ("invalid_yaml_unclosed_bracket", b"profile: broken\nseeds: [13\ntraining: {steps: 3}\n", 3, "not valid YAML:3:"),
    ("params_file_not_utf8", b"profile: broken\nseeds: [13]\n# caf\xe9\n", 3, "not valid UTF-8"),
    ("params_file_is_a_list", b"- profile\n- seeds\n", None, "params key `<root>`: a params profile must be a mapping"),
]


@pytest.mark.parametrize("name, text, line, fragment", YAML_CASES, ids=[case[0] for case in YAML_CASES])
def test_malformed_params_file(name, text, line, fragment, tmp_path, capsys):
    profile = tmp_path / "profile.yaml"
    profile.write_bytes(text)
    location = re.escape(f"{profile}:{line}: " if line else f"{profile}: ")
    with pytest.raises(ParamsError) as caught:
        load_params(profile)
    assert_one_clear_line(str(caught.value), "^" + location, fragment)
    code, err = run_main(profile, capsys)
    assert_runner_fails_cleanly(code, err, location, fragment, tmp_path)


def test_params_file_that_does_not_exist(tmp_path, capsys):
    profile = tmp_path / "no-such-profile.yaml"
    code, err = run_main(profile, capsys)
    assert_runner_fails_cleanly(code, err, re.escape(f"{profile}: "), "params file does not exist", tmp_path)


# ---------------------------------------------------------------------------------------------
# A model name that resolves nowhere (HF_HUB_OFFLINE=1: the hub is tried and fails fast)
# ---------------------------------------------------------------------------------------------

GHOST = "no-such-org/no-such-model-xyz"


def test_model_that_resolves_nowhere(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    params = base_profile(tmp_path)
    params["data"].update(extra_test=[], max_train_queries=10, max_test_queries=5, max_corpus=50)
    params["models"]["assistants"][0]["model"] = GHOST
    code, err = run_main(write_profile(tmp_path, params), capsys)
    # the teacher's transformer loads before the assistant fails and may log to stderr: only the error line is checked
    assert_runner_fails_cleanly(
        code,
        err,
        re.escape(f"model '{GHOST}' resolved nowhere; tried:"),
        f"local path {GHOST} (does not exist)",
        tmp_path,
        exact=False,
    )
    line = next(line for line in err.splitlines() if line.startswith("error: "))
    assert f"offline packages (none ships {GHOST}" in line and f"Hugging Face hub {GHOST}" in line
    from mta4dpr_core.config.models import resolve_model

    with pytest.raises(ModelNotFoundError):
        resolve_model(GHOST, cache_dir=tmp_path)


# ---------------------------------------------------------------------------------------------
# The runner CLI as a subprocess, for representative cases
# ---------------------------------------------------------------------------------------------


def run_cli(profile: Path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "MTA4DPR_PROGRESS": "0"}
    return subprocess.run(
        [sys.executable, "-m", "mta4dpr_core.runner", "--profile", str(profile), "--no-notebooks", "--only", "04"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _cli_truncated_json(tmp_path, beir, tsv):
    name, line, fragment = truncated_json_line(beir)
    return data_profile(tmp_path, "toy"), location_pattern(beir.dir / name, line), fragment


def _cli_collection_tsv_columns(tmp_path, beir, tsv):
    name, line, fragment = collection_tsv_wrong_column_count(tsv)
    return data_profile(tmp_path, "tsvtoy"), location_pattern(tsv.dir / name, line), fragment


def _cli_unknown_key(tmp_path, beir, tsv):
    params = base_profile(tmp_path)
    params.setdefault("selection", {})["methd"] = "kl"
    return (
        write_profile(tmp_path, params),
        re.escape("params key `selection.methd`"),
        "did you mean `selection.method`?",
    )


def _cli_invalid_yaml(tmp_path, beir, tsv):
    profile = tmp_path / "broken.yaml"
    profile.write_text("profile: broken\ntraining:\n  steps: [3\n  queries_per_batch: 4\n")
    return profile, re.escape(f"{profile}:4: "), "not valid YAML:4:"


def _cli_model_nowhere(tmp_path, beir, tsv):
    params = base_profile(tmp_path)
    params["data"].update(extra_test=[])
    params["models"]["teacher"]["members"][1]["model"] = GHOST  # the first model loaded: nothing else on stderr
    return (
        write_profile(tmp_path, params),
        re.escape(f"model '{GHOST}' resolved nowhere; tried:"),
        f"Hugging Face hub {GHOST}",
    )


@pytest.mark.parametrize(
    "case",
    [_cli_truncated_json, _cli_collection_tsv_columns, _cli_unknown_key, _cli_invalid_yaml, _cli_model_nowhere],
    ids=lambda case: case.__name__[5:],
)
def test_runner_cli_fails_cleanly(case, tmp_path, beir, tsv):
    profile, location, fragment = case(tmp_path, beir, tsv)
    result = run_cli(profile)
    assert_runner_fails_cleanly(result.returncode, result.stderr, location, fragment, tmp_path)
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").rglob("*.done.json"))


def test_at_least_24_malformed_inputs():
    count = (
        len(BEIR_CASES) + len(TSV_CASES) + len(PARAMS_CASES) + len(YAML_CASES) + 5
    )  # + run file, data root, split, no file, model
    assert count >= 24


# ---------------------------------------------------------------------------------------------
# --set KEY=VALUE overrides: validated like profile keys, errors name the key and say --set
# ---------------------------------------------------------------------------------------------

SET_CASES = [
    # (name, assignment, key named, message fragment)
    ("set_unknown_key", "training.stepz=10", "training.stepz", "unknown key; did you mean `training.steps`?"),
    ("set_unknown_section", "trainig.steps=10", "trainig", "unknown key; did you mean `training`?"),
    ("set_wrong_type", "training.steps=many", "training.steps", "expected an integer, got 'many' (a string)"),
    ("set_wrong_type_list", "seeds=7", "seeds", "expected a list, got 7"),
    ("set_bad_value", "training.steps=-3", "training.steps", "must be >= 0, got -3"),
    ("set_not_an_assignment", "training.steps", "training.steps", "expected KEY=VALUE"),
]


@pytest.mark.parametrize("name, assignment, key, fragment", SET_CASES, ids=[case[0] for case in SET_CASES])
def test_malformed_set_override(name, assignment, key, fragment, tmp_path, capsys):
    from mta4dpr_core.config.params import apply_overrides

    profile = write_profile(tmp_path, base_profile(tmp_path))
    with pytest.raises(ParamsError) as caught:
        apply_overrides(load_params(profile), [assignment])
    assert caught.value.key == key
    assert_one_clear_line(
        str(caught.value),
        "^" + re.escape(f"--set {assignment}") + r".*: params key " + re.escape(f"`{key}`: "),
        fragment,
    )
    capsys.readouterr()
    code = runner.main(
        ["--profile", str(profile), "--no-notebooks", "--only", "04", "--set", "training.steps=3", assignment]
    )
    err = capsys.readouterr().err
    assert_runner_fails_cleanly(code, err, re.escape("--set ") + r".*" + re.escape(f"`{key}`"), fragment, tmp_path)


def test_set_overrides_merge_and_parse_yaml(tmp_path):
    from mta4dpr_core.config.params import apply_overrides

    params = load_params(write_profile(tmp_path, base_profile(tmp_path)))
    changed = apply_overrides(
        params,
        [
            "data.train=mine/train",
            "data.test=mine/test",
            "training.steps=10",
            "seeds=[1, 2]",
            "models.student.dim=64",
            "evaluation.ignore_identical_ids=true",
            "profile=mine",
        ],
    )
    assert changed["data"]["train"] == "mine/train" and changed["data"]["test"] == "mine/test"
    assert changed["training"]["steps"] == 10 and changed["seeds"] == [1, 2] and changed["profile"] == "mine"
    assert changed["models"]["student"] == {**params["models"]["student"], "dim": 64}
    assert changed["evaluation"]["ignore_identical_ids"] is True
    assert params["training"]["steps"] != 10  # the input is not modified
