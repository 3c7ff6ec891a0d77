"""Collections on disk: BEIR layout, MS MARCO TSV layout, TREC run files.

Every loader validates as it reads and raises :class:`DataError` naming the file
and line: malformed JSON or TSV, a missing ``_id``, duplicate ids, empty texts,
non-UTF-8 bytes, qrels naming unknown queries or documents, an empty corpus.

Layouts:
- BEIR: ``corpus.jsonl[.gz]``, ``queries.jsonl``, ``qrels/<split>.tsv`` (header
  ``query-id corpus-id score``).
- MS MARCO TSV: ``collection.tsv`` (pid, text), ``queries.<split>.tsv`` (qid, text),
  ``qrels.<split>.tsv`` (TREC 4 columns ``qid 0 pid grade`` or 3 columns).
- ``ir_datasets:<id>`` loads through ir_datasets (users with internet).
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Collection as Collection_
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config.errors import DataError


@dataclass
class Corpus:
    ids: list
    texts: list
    path: str = ""
    index: dict = field(default_factory=dict)
    titles: list = field(default_factory=list)  # BEIR titles (also inside texts); empty for layouts without

    def __post_init__(self):
        if not self.index:
            self.index = {doc_id: i for i, doc_id in enumerate(self.ids)}

    def __len__(self):
        return len(self.ids)


@dataclass
class Split:
    """Queries of one split with their relevance judgments (grades)."""

    name: str
    query_ids: list
    query_texts: list
    qrels: dict  # qid -> {doc_id: grade}
    relevance_level: int = 1  # grade counted as relevant by binary metrics
    # how many leading queries are labelled ones (None: all): pseudo-queries follow them and are never held out
    # as eval queries, whose judgments must be real ones
    labelled: int | None = None

    def __len__(self):
        return len(self.query_ids)

    @property
    def labelled_mask(self) -> np.ndarray | None:
        """True for the labelled queries; None when every query is labelled (no pseudo-queries follow)."""
        return None if self.labelled is None else np.arange(len(self)) < self.labelled

    def positives(self, corpus: Corpus) -> list:
        """Per query, the corpus indices of its relevant passages."""
        return [
            [
                corpus.index[d]
                for d, g in sorted(self.qrels.get(q, {}).items())
                if g >= self.relevance_level and d in corpus.index
            ]
            for q in self.query_ids
        ]


@dataclass
class Collection:
    name: str
    corpus: Corpus
    splits: dict  # split name -> Split


def _open_text(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return open(path, "rb")


def _lines(path: Path):
    """Yield (line number, raw bytes); a corrupt or truncated gzip stream is a DataError naming
    the line being read when it failed (zlib.error is not an OSError, so it is caught by name)."""
    line_no = 0
    try:
        with _open_text(path) as handle:
            for line_no, raw in enumerate(handle, start=1):
                yield line_no, raw
    except (EOFError, OSError, zlib.error) as error:
        what = "corrupt or truncated gzip data" if path.suffix == ".gz" else "cannot read file"
        raise DataError(path, f"{what} ({error})", line_no + 1) from None


def _decode(raw: bytes, path, line_no):
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(
            path, f"not valid UTF-8 (byte {error.start}: {raw[error.start : error.start + 1]!r})", line_no
        ) from None


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each non-blank line."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file does not exist")
    for line_no, raw in _lines(path):
        text = _decode(raw, path, line_no).strip()
        if not text:
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as error:
            raise DataError(path, f"malformed JSON ({error.msg} at column {error.colno})", line_no) from None
        if not isinstance(obj, dict):
            raise DataError(path, f"expected a JSON object, got {type(obj).__name__}", line_no)
        yield line_no, obj


def read_tsv(
    path: str | Path, columns: int, header_first: str | None = None, allow: Sequence[int] | None = None
) -> Iterator[tuple[int, list[str]]]:
    """Yield (line number, fields) with exactly ``columns`` fields (or one of ``allow``)."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file does not exist")
    allowed = set(allow or [columns])
    for line_no, raw in _lines(path):
        text = _decode(raw, path, line_no).rstrip("\r\n")
        if not text.strip():
            continue
        fields = text.split("\t") if "\t" in text else text.split()
        if line_no == 1 and header_first and fields[0] == header_first:
            continue
        if len(fields) not in allowed:
            raise DataError(
                path,
                f"expected {' or '.join(map(str, sorted(allowed)))} tab-separated columns, got {len(fields)}",
                line_no,
            )
        yield line_no, fields


def _require_id(obj, path, line_no):
    if "_id" not in obj:
        raise DataError(path, "missing `_id`", line_no)
    doc_id = str(obj["_id"]).strip()
    if not doc_id:
        raise DataError(path, "empty `_id`", line_no)
    return doc_id


def _unique_records(path):
    """Yield ``(line number, id, object)`` of a BEIR JSONL file; a repeated ``_id`` is a :class:`DataError` naming
    both lines."""
    seen = {}
    for line_no, obj in read_jsonl(path):
        record_id = _require_id(obj, path, line_no)
        if record_id in seen:
            raise DataError(path, f"duplicate id {record_id!r} (first on line {seen[record_id]})", line_no)
        seen[record_id] = line_no
        yield line_no, record_id, obj


def load_beir_corpus(path: str | Path) -> Corpus:
    path = Path(path)
    ids, texts, titles = [], [], []
    for line_no, doc_id, obj in _unique_records(path):
        title = str(obj.get("title") or "").strip()
        body = str(obj.get("text") or "").strip()
        if not title and not body:
            raise DataError(path, f"empty text for id {doc_id!r}", line_no)
        ids.append(doc_id)
        titles.append(title)
        texts.append(f"{title} {body}".strip() if title else body)
    if not ids:
        raise DataError(path, "empty corpus: no passages")
    return Corpus(ids=ids, texts=texts, path=str(path), titles=titles)


def load_beir_queries(path: str | Path) -> dict:
    path = Path(path)
    queries = {}
    for line_no, query_id, obj in _unique_records(path):
        text = str(obj.get("text") or "").strip()
        if not text:
            raise DataError(path, f"empty text for query {query_id!r}", line_no)
        queries[query_id] = text
    if not queries:
        raise DataError(path, "no queries")
    return queries


def load_qrels(path: str | Path, queries: dict, corpus: Corpus) -> dict:
    """Read qrels (BEIR 3-column with header, or TREC 4-column); every id must exist."""
    path = Path(path)
    qrels, seen = {}, {}
    for line_no, fields in read_tsv(path, 3, header_first="query-id", allow=(3, 4)):
        query_id, doc_id, grade = (
            (fields[0], fields[1], fields[2]) if len(fields) == 3 else (fields[0], fields[2], fields[3])
        )
        try:
            grade = int(grade)
        except ValueError:
            raise DataError(path, f"relevance grade must be an integer, got {grade!r}", line_no) from None
        if query_id not in queries:
            raise DataError(path, f"qrels name unknown query {query_id!r}", line_no)
        if doc_id not in corpus.index:
            raise DataError(path, f"qrels name unknown document {doc_id!r}", line_no)
        if (query_id, doc_id) in seen:
            raise DataError(
                path,
                f"duplicate judgment for ({query_id}, {doc_id}) (first on line {seen[(query_id, doc_id)]})",
                line_no,
            )
        seen[(query_id, doc_id)] = line_no
        qrels.setdefault(query_id, {})[doc_id] = grade
    if not qrels:
        raise DataError(path, "no judgments")
    return qrels


def load_msmarco_tsv_corpus(path: str | Path) -> Corpus:
    path = Path(path)
    ids, texts, seen = [], [], {}
    for line_no, (doc_id, text) in read_tsv(path, 2):
        if doc_id in seen:
            raise DataError(path, f"duplicate id {doc_id!r} (first on line {seen[doc_id]})", line_no)
        if not text.strip():
            raise DataError(path, f"empty text for id {doc_id!r}", line_no)
        seen[doc_id] = line_no
        ids.append(doc_id)
        texts.append(text.strip())
    if not ids:
        raise DataError(path, "empty corpus: no passages")
    return Corpus(ids=ids, texts=texts, path=str(path))


def load_msmarco_tsv_queries(path: str | Path) -> dict:
    path = Path(path)
    queries = {}
    for line_no, (query_id, text) in read_tsv(path, 2):
        if query_id in queries:
            raise DataError(path, f"duplicate id {query_id!r}", line_no)
        if not text.strip():
            raise DataError(path, f"empty text for query {query_id!r}", line_no)
        queries[query_id] = text.strip()
    return queries


# Binary metrics count grade >= 2 on TREC DL passage judgments (NIST convention).
RELEVANCE_LEVELS = {"msmarco-trecdl": 2}

_COLLECTION_CACHE: dict = {}


CORPUS_LOADERS = {"beir": load_beir_corpus, "msmarco": load_msmarco_tsv_corpus}


def _corpus_file(directory: Path) -> tuple:
    """(layout, corpus file) of a collection directory: ``beir`` (corpus.jsonl[.gz]) or ``msmarco`` (collection.tsv)."""
    if not directory.exists():
        raise DataError(directory, "data directory does not exist (set `data.root` in the params profile)")
    for layout, name in (("beir", "corpus.jsonl"), ("beir", "corpus.jsonl.gz"), ("msmarco", "collection.tsv")):
        if (directory / name).exists():
            return layout, directory / name
    raise DataError(directory, "no corpus.jsonl[.gz] (BEIR layout) or collection.tsv (MS MARCO layout) found")


def load_corpus(directory: str | Path) -> Corpus:
    """Only the passages of a collection directory (BEIR or MS MARCO TSV layout); no queries needed."""
    layout, path = _corpus_file(Path(directory))
    return CORPUS_LOADERS[layout](path)


def load_collection(directory: str | Path, splits: Sequence[str] | None = None) -> Collection:
    """Load a collection directory (BEIR or MS MARCO TSV layout), cached per process."""
    directory = Path(directory)
    key = (str(directory.resolve()), tuple(sorted(splits)) if splits else None)
    if key in _COLLECTION_CACHE:
        return _COLLECTION_CACHE[key]
    name = directory.name
    level = RELEVANCE_LEVELS.get(name, 1)
    layout, corpus_path = _corpus_file(directory)
    corpus = CORPUS_LOADERS[layout](corpus_path)
    if layout == "beir":
        queries = load_beir_queries(directory / "queries.jsonl")
        qrels_dir = directory / "qrels"
        available = sorted(p.stem for p in qrels_dir.glob("*.tsv")) if qrels_dir.exists() else []
        qrels_path = lambda split: qrels_dir / f"{split}.tsv"  # noqa: E731
    else:
        queries = {}
        for query_file in sorted(directory.glob("queries.*.tsv")):
            queries.update(load_msmarco_tsv_queries(query_file))
        available = sorted(p.name[len("qrels.") : -len(".tsv")] for p in directory.glob("qrels.*.tsv"))
        qrels_path = lambda split: directory / f"qrels.{split}.tsv"  # noqa: E731
    wanted = splits or available
    result = {}
    for split in wanted:
        if split not in available:
            raise DataError(directory, f"split {split!r} not found; available: {available}")
        qrels = load_qrels(qrels_path(split), queries, corpus)
        query_ids = sorted(qrels, key=_natural_key)
        result[split] = Split(split, query_ids, [queries[q] for q in query_ids], qrels, level)
    collection = Collection(name=name, corpus=corpus, splits=result)
    _COLLECTION_CACHE[key] = collection
    return collection


def load_ir_datasets(dataset_id: str) -> Collection:  # pragma: no cover - needs internet
    """Load through ir_datasets (e.g. ``msmarco-passage/dev/small``); for users with internet."""
    import ir_datasets  # noqa: PLC0415 (lazy: ir_datasets not loaded by this module)

    dataset = ir_datasets.load(dataset_id)
    corpus = Corpus(ids=[], texts=[])
    for doc in dataset.docs_iter():
        corpus.ids.append(doc.doc_id)
        corpus.texts.append(getattr(doc, "text", ""))
    corpus.__post_init__()
    queries = {q.query_id: q.text for q in dataset.queries_iter()}
    qrels = {}
    for qrel in dataset.qrels_iter():
        qrels.setdefault(qrel.query_id, {})[qrel.doc_id] = qrel.relevance
    query_ids = sorted(qrels, key=_natural_key)
    split = Split(dataset_id, query_ids, [queries[q] for q in query_ids], qrels)
    return Collection(dataset_id, corpus, {dataset_id: split})


def _natural_key(value: str):
    return (0, int(value), "") if value.isdigit() else (1, 0, value)


def resolve_split(root: str | Path, spec: str) -> tuple[Collection, Split]:
    """``"scifact/train"`` -> (Collection, Split), reading ``<root>/scifact``."""
    if spec.startswith("ir_datasets:"):
        collection = load_ir_datasets(spec.split(":", 1)[1])
        return collection, next(iter(collection.splits.values()))
    if "/" not in spec:
        raise DataError(root, f"dataset spec {spec!r} must look like '<collection>/<split>', e.g. 'scifact/train'")
    collection_name, split_name = spec.rsplit("/", 1)
    collection = load_collection(Path(root) / collection_name)
    if split_name not in collection.splits:
        raise DataError(
            Path(root) / collection_name, f"split {split_name!r} not found; available: {sorted(collection.splits)}"
        )
    return collection, collection.splits[split_name]


def subsample_split(split: Split, max_queries: int | None, seed: int = 0) -> Split:
    """Keep the first ``max_queries`` queries of a fixed shuffle (deterministic)."""
    if not max_queries or max_queries >= len(split):
        return split
    order = np.random.default_rng(seed).permutation(len(split))[:max_queries]
    keep = sorted(order.tolist())
    query_ids = [split.query_ids[i] for i in keep]
    return Split(
        split.name,
        query_ids,
        [split.query_texts[i] for i in keep],
        {q: split.qrels[q] for q in query_ids},
        split.relevance_level,
    )


def subsample_corpus(corpus: Corpus, max_corpus: int | None, keep_ids: Collection_ = (), seed: int = 0) -> Corpus:
    """Keep the passages in ``keep_ids`` (judged ones) plus a fixed random sample, ``max_corpus`` in all.

    If the judged passages alone exceed ``max_corpus``, a fixed random subset of them is kept.
    """
    if not max_corpus or max_corpus >= len(corpus):
        return corpus
    keep = sorted({corpus.index[d] for d in keep_ids if d in corpus.index})
    if len(keep) > max_corpus:
        keep = np.random.default_rng(seed).permutation(keep)[:max_corpus].tolist()
    keep = set(keep)
    rest = [i for i in np.random.default_rng(seed).permutation(len(corpus)).tolist() if i not in keep]
    chosen = sorted(keep | set(rest[: max(0, max_corpus - len(keep))]))
    return Corpus(
        ids=[corpus.ids[i] for i in chosen],
        texts=[corpus.texts[i] for i in chosen],
        path=corpus.path,
        titles=[corpus.titles[i] for i in chosen] if corpus.titles else [],
    )


def restrict_split(split: Split, corpus: Corpus) -> Split:
    """Drop judgments on passages not in ``corpus`` (after subsampling) and queries left without positives."""
    qrels = {q: {d: g for d, g in split.qrels[q].items() if d in corpus.index} for q in split.query_ids}
    keep = [i for i, q in enumerate(split.query_ids) if any(g >= split.relevance_level for g in qrels[q].values())]
    query_ids = [split.query_ids[i] for i in keep]
    return Split(
        split.name,
        query_ids,
        [split.query_texts[i] for i in keep],
        {q: qrels[q] for q in query_ids},
        split.relevance_level,
    )


def load_trec_run(path: str | Path) -> dict:
    """Read a TREC run (``qid Q0 docid rank score tag``, optionally gzipped) into {qid: {docid: score}}."""
    path = Path(path)
    run = {}
    for line_no, fields in read_tsv(path, 6):
        query_id, _, doc_id, _, score, _ = fields
        try:
            score = float(score)
        except ValueError:
            raise DataError(path, f"score must be a number, got {score!r}", line_no) from None
        run.setdefault(query_id, {})[doc_id] = score
    if not run:
        raise DataError(path, "empty run")
    return run
