"""Everything a run needs, built from a params profile: data, teacher, assistants, student.

``Setup.from_params(params)`` loads the train/test splits (and the extra test sets),
builds and prepares the scorers, and knows how to make a fresh student and how to
evaluate any scorer on any split.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..config.allocator import keep_freed_memory
from ..config.errors import ParamsError
from ..config.models import check_models_available, student_specs
from ..config.params import resolve_path
from ..config.typed import typed
from ..method.construction import build_training_data
from ..method.warm_start import WarmStartConfig, warm_started
from ..retrieval.data import Collection, resolve_split, restrict_split, subsample_corpus, subsample_split
from ..retrieval.encoders import StaticEncoder, TransformerEncoder
from ..retrieval.metrics import drop_identical_ids, evaluate, run_from_arrays
from ..retrieval.pseudo_queries import pseudo_query_split, with_pseudo_queries
from ..retrieval.scorers import CrossEncoderScorer, DenseScorer, EnsembleScorer, build_scorer
from ..store.atomic import content_hash, texts_digest

log = logging.getLogger(__name__)
TEST_METRICS = ("MRR@10", "nDCG@10", "R@5", "R@20", "R@50", "R@100", "R@1000")
EXTRA_TEST_METRICS = ("nDCG@10", "MRR@10", "R@100")


def parameter_fingerprint(module: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


class StudentScorer(DenseScorer):
    """A (frozen copy of a) student as a scorer; its encodings are cached by a hash of its weights.

    A static student's encodings stay in memory only: it encodes the 40,873-passage DL pool in about a second,
    while writing and checksumming that encoding (42 MB, never read again: every trained student is new) cost
    about as much, in each of a profile's hundreds of evaluations. A transformer student's go to disk."""

    def __init__(self, student, name, max_query_length, max_passage_length, temperature, cache_dir, batch_size=256):
        super().__init__(
            student,
            name,
            max_query_length,
            max_passage_length,
            batch_size,
            temperature,
            cache_dir,
            cache=not isinstance(student, StaticEncoder),
        )

    @functools.cached_property
    def fingerprint(self) -> str:
        """A hash of the frozen copy's weights, computed only where a disk cache key needs it."""
        return parameter_fingerprint(self.encoder)

    def cache_key(self, texts, max_length):
        return content_hash(self.encoder.identity(), self.fingerprint, texts_digest(texts), max_length)


def _static_student(spec: dict, cache_dir, seed, data_root):
    student = StaticEncoder.from_name(
        spec.get("model", "wordllama"), normalize=spec.get("normalize", True), cache_dir=cache_dir
    )
    dim = spec.get("dim")
    if dim:
        # WordLlama is Matryoshka-trained: its leading dimensions are a smaller model.
        student.embedding = torch.nn.Embedding.from_pretrained(
            student.embedding.weight.data[:, :dim].clone(), freeze=False
        )
    return student


def _transformer_student(spec: dict, cache_dir, seed, data_root):
    student = TransformerEncoder.from_name(
        spec["model"],
        pooling=spec.get("pooling", "cls_last3"),
        normalize=spec.get("normalize", True),
        num_layers=spec.get("num_layers"),
        cache_dir=cache_dir,
        # the precision of its corpus encodings (evaluation, mining); training follows `training.amp`
        inference_dtype=spec.get("inference_dtype"),
    )
    if spec.get("warm_start") and data_root is not None:
        student = warm_started(student, spec, data_root, cache_dir)
        torch.manual_seed(seed)  # the warm start reseeds; each run's own seed rules from here
    return student


# every student kind of config/kinds.py (``student=True``) and the function that builds a fresh one
STUDENT_BUILDERS = {"static": _static_student, "hf": _transformer_student}


def build_student(spec: dict, cache_dir=None, seed=0, data_root=None):
    """A fresh trainable student: ``{kind: static, model: wordllama, dim: 256}`` or
    ``{kind: hf, model: ..., pooling: cls_last3, num_layers: 3}``, optionally with a ``warm_start``
    (``warm_start.py``; applied when ``data_root`` is given, cached per spec)."""
    torch.manual_seed(seed)
    kind = spec.get("kind")
    if kind not in STUDENT_BUILDERS:
        raise ParamsError("models.student.kind", f"expected one of {sorted(STUDENT_BUILDERS)}, got {kind!r}")
    return STUDENT_BUILDERS[kind](spec, cache_dir, seed, data_root)


@dataclass
class Setup:
    params: dict
    collection: Collection
    train: object
    test: object
    extra_tests: dict  # name -> (Collection, Split)
    teacher: object
    assistants: list
    cache_dir: Path
    work_dir: Path
    scorer_specs: dict = field(default_factory=dict)

    @functools.cached_property
    def config(self):
        """The profile as frozen dataclasses (``config/typed.py``): ``setup.config.training.steps``. ``params`` stays
        the mapping that run keys hash."""
        return typed(self.params)

    @classmethod
    def from_params(cls, params: dict, prepare=True):  # noqa: C901 (the Setup's construction, step by step in the order its docstring gives)
        check_models_available(params)  # a missing local model path stops here, before any work
        keep_freed_memory()  # large tensors reused from the heap, not faulted in again at every batch
        config = typed(params)
        data = config.data
        root = resolve_path(data.root)
        for key, spec in student_specs(params):
            texts = spec.get("warm_start") and root / WarmStartConfig.from_spec(spec["warm_start"]).texts
            if texts and not texts.is_dir():
                raise ParamsError(
                    f"{key}.warm_start.texts",
                    f"{texts}: no such corpus directory for the [CLS] warm start (a folder under data.root)",
                )
        collection, train = resolve_split(root, data.train)
        test_collection, test = resolve_split(root, data.test)
        if test_collection is not collection:
            raise ParamsError(
                "data.test",
                "train and test must come from the same collection (extra collections go in data.extra_test)",
            )
        train = subsample_split(train, data.max_train_queries, seed=1)
        test = subsample_split(test, data.max_test_queries, seed=2)
        judged = {d for s in (train, test) for q in s.query_ids for d in s.qrels[q]}
        corpus = subsample_corpus(collection.corpus, data.max_corpus, judged, seed=3)
        if corpus is not collection.corpus:
            collection = Collection(collection.name, corpus, collection.splits)
            train, test = restrict_split(train, corpus), restrict_split(test, corpus)
        pseudo = data.pseudo_queries  # the schema's defaults where a mapping built by hand leaves it out
        if pseudo.kinds:
            test_positives = {d for q in test.query_ids for d, g in test.qrels[q].items() if g >= test.relevance_level}
            generated = pseudo_query_split(
                corpus,
                pseudo.kinds,
                seed=pseudo.seed,
                per_passage=pseudo.per_passage,
                max_queries=pseudo.max_queries,
                exclude_texts=list(test.query_texts) + list(train.query_texts),
                exclude_passages=test_positives if pseudo.exclude_test_positives else (),
                min_words=pseudo.min_words,
            )
            train = with_pseudo_queries(train, generated)
        extra = {}
        for spec in data.extra_test:
            extra_collection, split = resolve_split(root, spec)
            split = subsample_split(split, data.max_extra_test_queries, seed=4)
            extra_corpus = subsample_corpus(
                extra_collection.corpus,
                data.max_corpus,
                {d for q in split.query_ids for d in split.qrels[q]},
                seed=5,
            )
            if extra_corpus is not extra_collection.corpus:
                extra_collection = Collection(extra_collection.name, extra_corpus, extra_collection.splits)
                split = restrict_split(split, extra_corpus)
            extra[spec] = (extra_collection, split)
        cache_dir = resolve_path(config.output.cache_dir)
        work_dir = resolve_path(config.output.runs_dir) / config.profile / "work"
        models = config.models
        if not models.teacher:
            raise ParamsError("models.teacher", "a teacher spec is required")
        runs_root = root
        teacher = build_scorer(models.teacher, cache_dir, runs_root)
        assistants = [build_scorer(spec, cache_dir, runs_root) for spec in models.assistants]
        setup = cls(params, collection, train, test, extra, teacher, assistants, cache_dir, work_dir)
        if prepare:
            for scorer in [teacher, *assistants]:
                scorer.prepare(collection.corpus)
            setup.encode_training_queries()
        return setup

    def encode_training_queries(self):
        """Encode every training query once, in split order, with each dense scorer of the teacher and the
        assistants (their per-text query caches keep the vectors; forked grid workers inherit them).

        A transformer's encoding of a text moves with its batch-mates' padding (about 1e-7). Without this,
        the queries a run mines were encoded in whichever batch first needed them, which depends on what
        ran before in the same process, and under two workers on which worker stored a teacher pair score
        first: two cold runs of the same code differed by up to 0.2 nDCG@10. With it a query's vector, and
        so every teacher and assistant score, is a function of the split alone."""
        texts = list(self.train.query_texts)
        for scorer in [self.teacher, *self.assistants]:
            for member in getattr(scorer, "members", [scorer]):
                if isinstance(member, DenseScorer):
                    member.encode_queries(texts)

    def training_data(self, pool, eval_mask, construction=None, previous_student=None, mining=None):
        """One iteration's training data (``construction.build_training_data``) on the training split,
        with ``construction`` settings (the profile's by default) and ``pool`` as the assistants."""
        construction = construction or self.params["construction"]
        return build_training_data(
            self.train,
            self.collection.corpus,
            pool,
            self.teacher,
            k=construction["k"],
            rrf_c=construction["rrf_c"],
            eval_mask=eval_mask,
            work_dir=self.work_dir,
            previous_student=previous_student,
            mining=construction["mining"] if mining is None else mining,
            mining_max_rank=construction["mining_max_rank"],
        )

    def new_student(self, seed, spec=None):
        spec = spec or self.config.models.student
        student = build_student(spec, self.cache_dir, seed, data_root=resolve_path(self.config.data.root))
        if hasattr(student, "restrict_vocabulary") and spec.get("restrict_vocabulary", True):
            trainable, frozen = self.vocabulary(student, spec.get("model", "wordllama"))
            student.restrict_vocabulary(trainable, frozen)
        return student

    def training_texts(self):
        return list(self.collection.corpus.texts) + list(self.train.query_texts)

    def evaluation_texts(self):
        texts = list(self.test.query_texts)
        for collection, split in self.extra_tests.values():
            texts += list(collection.corpus.texts) + list(split.query_texts)
        return texts

    def vocabulary(self, student, key):
        """Token ids of the training texts and of the evaluation-only texts (computed once)."""
        if not hasattr(self, "_vocabularies"):
            self._vocabularies = {}
        if key not in self._vocabularies:
            sets = []
            for texts in (self.training_texts(), self.evaluation_texts()):
                rows = student.token_ids(texts, max_length=10_000)
                sets.append(np.unique(np.concatenate(rows)).tolist() if rows else [])
            self._vocabularies[key] = tuple(sets)
        return self._vocabularies[key]

    def student_scorer(self, student, name, cache_name=None):
        """A frozen copy of ``student`` as a scorer; ``cache_name`` keys its pair-score store (unique per run)."""
        training = self.config.training
        scorer = StudentScorer(
            copy.deepcopy(student).cpu().eval(),
            name,
            training.max_query_length,
            training.max_passage_length,
            self.config.loss.student_temperature,
            self.cache_dir,
        )
        scorer.cache_name = cache_name or name
        return scorer.prepare(self.collection.corpus)

    def evaluate(
        self,
        scorer,
        split=None,
        collection=None,
        names=("MRR@10", "nDCG@10", "R@100"),
        depth=None,
        query_mask=None,
        per_query=False,
        keep_prepared=False,
    ):
        """Retrieve the top ``depth`` for ``split``'s queries over ``collection``'s corpus and score them
        (means, or ``{metric: {query id: value}}`` with ``per_query``). The scorer is prepared on that corpus
        unless it already is, and prepared back on the training collection's afterwards unless
        ``keep_prepared``."""
        split = split or self.test
        collection = collection or self.collection
        depth = depth or max(100, max(int(n.split("@")[1]) for n in names))
        depth = min(depth, len(collection.corpus))
        ids, texts = split.query_ids, split.query_texts
        if query_mask is not None:
            ids = [q for q, keep in zip(ids, query_mask, strict=True) if keep]
            texts = [t for t, keep in zip(texts, query_mask, strict=True) if keep]
        switched = collection.corpus is not getattr(scorer, "corpus", None)
        if switched:
            scorer.prepare(collection.corpus)
        try:
            scores, indices = scorer.search(ids, texts, depth)
        finally:
            if switched and not keep_prepared:
                scorer.prepare(self.collection.corpus)
        run = run_from_arrays(ids, collection.corpus.ids, scores, indices)
        if self.params.get("evaluation", {}).get("ignore_identical_ids"):  # queries that are also passages
            run = drop_identical_ids(run)
        return evaluate(run, {q: split.qrels[q] for q in ids}, names, split.relevance_level, per_query=per_query)

    def evaluate_all(self, scorer, names=TEST_METRICS, extra_tests=True):
        """Test split plus every extra test set: ``{"test": {metric: mean}, "msmarco-trecdl/dl19": {...},
        "per_query": {"test": {metric: {query id: value}}, ...}}`` (per-query values feed the paired statistics)."""
        out, per_query = {}, {}
        blocks = [("test", self.test, self.collection, names)] + [
            (spec, split, collection, EXTRA_TEST_METRICS)
            for spec, (collection, split) in self.extra_tests.items()
            if extra_tests
        ]
        # extra test sets over one corpus (TREC DL 2019 and 2020 share their pool) are searched with the
        # scorer prepared once: a student's encoding of that corpus was done twice, and the training
        # corpus re-encoded in between
        try:
            for key, split, collection, metrics in blocks:
                values = self.evaluate(scorer, split, collection, names=metrics, per_query=True, keep_prepared=True)
                per_query[key] = {m: {q: float(values[m].get(q, 0.0)) for q in split.query_ids} for m in metrics}
                out[key] = {
                    m: float(np.mean(list(per_query[key][m].values()))) if split.query_ids else 0.0 for m in metrics
                }
        finally:
            if getattr(scorer, "corpus", None) is not self.collection.corpus:
                scorer.prepare(self.collection.corpus)
        out["per_query"] = per_query
        return out

    def all_scorers(self):
        return {"teacher": self.teacher, **{a.name: a for a in self.assistants}}


def uses_transformer(scorer) -> bool:
    """Whether scoring with ``scorer`` runs a transformer over passages (costly on a large extra corpus)."""

    if isinstance(scorer, EnsembleScorer):
        return any(uses_transformer(member) for member in scorer.members)
    if isinstance(scorer, CrossEncoderScorer):
        return True
    encoder = getattr(scorer, "encoder", None)
    return encoder is not None and not isinstance(encoder, StaticEncoder)


def seed_everything(seed: int):
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
