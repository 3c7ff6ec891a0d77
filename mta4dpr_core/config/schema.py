"""The profile schema: one declaration per key (default, type, bounds, choices, help).

Every key a profile may set is declared once here, as a :class:`Key`. ``params.py`` derives
its defaults and every rule from this table (the default's type is the key's type), and
``docs/params.md`` is generated from it (``python -m mta4dpr_core.config.schema``;
``tests/config/test_params.py`` checks that the page is current). Model specs (``models.*``,
``study.student_sizes``, ...) are free-form mappings, checked by kind in ``params._check_model_spec``.

Example::

    >>> SCHEMA["training"]["steps"].default
    100
    >>> defaults()["loss"]["gamma"]
    15.0
    >>> sorted(key for key, rule in rules("choices").items() if key.startswith("training"))
    ['training.amp', 'training.dropout_masks']
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Key:
    """One profile key. ``bound``: ``">= 0"``, ``"> 0"``, ``"[0, 1)"`` or ``"(0, 1)"``; ``choices``: the allowed
    values (``each_of``: the allowed items of a list); ``free_form``: a mapping or list checked elsewhere."""

    default: Any
    help: str
    bound: str | None = None
    choices: frozenset | None = None
    each_of: frozenset | None = None
    free_form: bool = False


def _choices(*values):
    return frozenset(values)


SCHEMA: dict = {
    "profile": Key("smoke", "the profile's name: its runs go to `runs/<profile>`, its tables to `results/<profile>`"),
    "seeds": Key([13], "the seeds every main comparison runs over (a non-empty list of integers)"),
    "data": {
        "root": Key("../shared/data", "the folder the dataset specs are relative to"),
        "train": Key(
            "scifact/train", "training queries: `<collection>/<split>` (BEIR or MS MARCO TSV) or `ir_datasets:<id>`"
        ),
        "test": Key("scifact/test", "test queries, in the same form"),
        "extra_test": Key([], "further test sets (zero-shot), in the same form"),
        "max_train_queries": Key(None, "keep at most this many training queries (null: all)"),
        "max_test_queries": Key(None, "keep at most this many test queries (null: all)"),
        "max_corpus": Key(None, "keep at most this many passages, judged ones first (null: all)"),
        "max_extra_test_queries": Key(None, "keep at most this many queries of each extra test set (null: all)"),
        "pseudo_queries": {
            "kinds": Key(
                [],
                "training queries cut out of the training corpus, added after the labelled ones (empty: none): "
                "`title`, `sentence` (inverse cloze), `span` (random crop); each one's positive is its passage",
                each_of=_choices("title", "sentence", "span"),
            ),
            "per_passage": Key(1, "pseudo-queries of each kind per passage (titles: one)", bound="> 0"),
            "max_queries": Key(
                None, "at most this many pseudo-queries, over a fixed shuffle of the passages (null: all)"
            ),
            "exclude_test_positives": Key(
                True, "no passage judged relevant to a test query is a source (off: transductive training)"
            ),
            "min_words": Key(4, "the shortest title or sentence kept, in words", bound="> 0"),
            "seed": Key(0, "the seed of the shuffle and of the sentences and spans drawn"),
        },
    },
    "models": {
        "teacher": Key(
            {},
            "the teacher's scorer spec (`kind`: hf, onnx, static, bm25, run, ensemble, cross_encoder, ...)",
            free_form=True,
        ),
        "assistants": Key([], "the assistants' scorer specs, each with a unique `name`", free_form=True),
        "student": Key(
            {}, "the student's spec (`kind`: static or hf), optionally with a [CLS] `warm_start`", free_form=True
        ),
        "independent_teacher": Key(
            True, "refuse a teacher that shares a member, copy or distillation with an assistant"
        ),
        "independent_student": Key(
            True,
            "refuse an assistant that is the student's starting model, a copy, cut or distillation of it, or its warm-start target",
        ),
    },
    "construction": {
        "k": Key(
            30, "hard negatives kept per query after Reciprocal Rank Fusion (and retrieved per assistant)", bound="> 0"
        ),
        "rrf_c": Key(60, "the constant c of Reciprocal Rank Fusion, 1 / (c + rank)", bound=">= 0"),
        "eval_fraction": Key(
            0.01, "the share of training queries held out as the eval set (fixed per run)", bound="[0, 1)"
        ),
        "min_eval_queries": Key(1, "at least this many eval queries", bound=">= 0"),
        "mining": Key(True, "add the queries the teacher ranks right at top-1 and the previous student gets wrong"),
        "mining_max_rank": Key(15, "a mined query's positive sits at the student's rank 2..this", bound=">= 0"),
        "encode_batch_size": Key(64, "batch size of the assistants' encodings during construction", bound="> 0"),
    },
    "fusion": {
        "enabled": Key(True, "every subset of >= 2 assistants becomes a fused assistant (needs 2 assistants)"),
        "weights": Key(
            None,
            "the revised paper's weighted fusion: one non-negative weight per assistant (null: the mean)",
            free_form=True,
        ),
        "min_size": Key(2, "the smallest fused subset"),
        "temperature_rule": Key(
            "kl",
            "how the assistants' temperatures are fitted on iteration-1 training rows",
            choices=_choices("kl", "entropy", "fixed"),
        ),
    },
    "selection": {
        "method": Key(
            "kl",
            "per-batch choice of the assistant closest to the teacher (`validation`: the revised paper's per-iteration choice)",
            choices=_choices("kl", "footrule", "rbo", "random", "validation"),
        ),
        "rbo_p": Key(0.9, "the persistence p of rank-biased overlap", bound="(0, 1)"),
        "per_iteration": Key(False, "choose one assistant per iteration instead of per batch"),
    },
    "loss": {
        "alpha": Key(0.2, "weight of the contrastive term", bound=">= 0"),
        "beta": Key(1.0, "weight of KL(teacher || student)", bound=">= 0"),
        "gamma": Key(15.0, "weight of KL(assistant || student)", bound=">= 0"),
        "assistant_scores": Key(
            "assistants",
            "the assistants' training distributions: their own scores, or the teacher's (the `assistants_are_teacher` control)",
            choices=_choices("assistants", "teacher"),
        ),
        "teacher_mix": Key(
            0.0,
            "lambda of the dose-response sweep (a mechanism test outside the claim family): each assistant's training "
            "logits become lambda * teacher + (1 - lambda) * its own, each over its fitted temperature "
            "(0 = the assistants' own, 1 = the teacher's)",
            bound="[0, 1]",
        ),
        "student_temperature": Key(0.02, "the student's temperature tau on its (normalised) scores"),
        "in_batch_negatives": Key(True, "the contrastive term also uses the other queries' passages"),
    },
    "training": {
        "steps": Key(100, "optimiser steps per iteration", bound="> 0"),
        "queries_per_batch": Key(16, "queries per batch", bound="> 0"),
        "negatives_per_query": Key(8, "hard negatives per query in a batch", bound=">= 0"),
        "learning_rate": Key(3e-5, "AdamW's learning rate (linear warm-up, then linear decay)", bound=">= 0"),
        "weight_decay": Key(0.01, "AdamW's weight decay", bound=">= 0"),
        "warmup_steps": Key(10, "warm-up steps", bound=">= 0"),
        "max_query_length": Key(32, "query tokens kept", bound="> 0"),
        "max_passage_length": Key(144, "passage tokens kept", bound="> 0"),
        "checkpoint_every": Key(50, "steps between resumable checkpoints", bound=">= 0"),
        "amp": Key(
            "auto",
            "autocast: `auto` = bf16 where native (AVX512-BF16/AMX, CUDA), float32 elsewhere",
            choices=_choices("auto", "off", "bf16", "fp16"),
        ),
        "attention_dropout": Key(
            None,
            "a transformer student's attention-probability dropout while training (null: the model's own, 0.1 for "
            "BERT); 0 lets PyTorch's SDPA take its fused flash kernel on the CPU (bench/training_step.py: 1.4x a step)",
            bound="[0, 1)",
        ),
        "dropout_masks": Key(
            "philox",
            "a transformer student's dropout masks on the CPU: `philox` (Philox-4x32-10 in one compiled pass, "
            "retrieval/philox_dropout.py: the same masks on every CPU kind and thread count; float32 activations "
            "only: under bf16 autocast torch draws them) or `torch` (bernoulli_: MKL's stream on an Intel CPU, one "
            "Mersenne-Twister draw per element on one thread elsewhere, so another mask on each CPU kind; the "
            "masks of results made before 2026-12-07)",
            choices=_choices("torch", "philox"),
        ),
    },
    "iterations": {
        "count": Key(3, "iterations of Algorithm 1", bound="> 0"),
        "replace_worst": Key(
            True, "after an iteration, the student replaces the worst assistant if it beats it on the eval set"
        ),
    },
    "evaluation": {
        "metric": Key(
            "MRR@10", "the eval-set metric that decides a replacement", choices=_choices("MRR@10", "nDCG@10", "R@100")
        ),
        "depth": Key(100, "ranking depth of every evaluation", bound=">= 0"),
        "ignore_identical_ids": Key(False, "drop a query's own id from its ranking (as BEIR/MTEB do)"),
        "transformer_scorers_on_extra_tests": Key(
            True,
            "evaluate the teacher and transformer assistants on the extra test sets too (minutes per model on a CPU)",
        ),
    },
    "study": {
        "selection_methods": Key(
            ["random", "footrule", "rbo", "kl"],
            "Table 5's selection methods",
            each_of=_choices("kl", "footrule", "rbo", "random"),
        ),
        "ablations": Key(
            ["no_fusion", "no_iterations"],
            "Table 3's ablations beside w/o assistants (always run)",
            each_of=_choices("no_fusion", "no_iterations"),
        ),
        "assistant_combinations": Key(True, "Table 7: MTA4DPR over every proper subset of the assistants"),
        "student_sizes": Key([], "Table 6: further student specs", free_form=True),
        "combination_seeds": Key(
            0, "seeds of the Table 6, 7 and dose-response grids: the first n (0 = all)", bound=">= 0"
        ),
        "dose_response": Key(
            [],
            "the inner lambdas of the dose-response sweep (`loss.teacher_mix`; 0 and 1 are added; empty = no sweep): "
            "a mechanism test outside the claim family, against the matched-weight control",
        ),
        "paper_analogs": Key({}, "assistant name -> the paper's model it stands for (display only)", free_form=True),
        "baseline_models": Key([], "scorer specs shown beside the students in notebook 01", free_form=True),
        "teacher_candidates": Key(
            [], "scorer specs measured on training queries to choose the teacher", free_form=True
        ),
        "teacher_hybrids": Key(
            [], "[name, name] pairs of teacher candidates: z-scored hybrids over a weight grid", free_form=True
        ),
        "reference_runs": Key([], "shipped TREC runs shown on the extra test sets", free_form=True),
        "primary_metric": Key(
            "nDCG@10",
            "the metric of the profile's one Holm family of claims, declared before any run",
            choices=_choices("nDCG@10", "MRR@10", "R@5", "R@20", "R@50", "R@100", "R@1000"),
        ),
    },
    "output": {
        "runs_dir": Key("runs", "where runs, caches of scores and executed notebooks go"),
        "results_dir": Key("results", "where the tables and figures go"),
        "cache_dir": Key(".cache", "model and encoding caches"),
        "workers": Key(0, "processes running a notebook's runs side by side (0 = automatic)"),
        "schedule": Key(
            "stage",
            "`stage`: each notebook runs its own runs; `profile`: the first grid runs every run of the profile",
            choices=_choices("stage", "profile"),
        ),
    },
}


def keys(schema: dict = SCHEMA, prefix: str = ""):
    """(dotted key, :class:`Key`) for every declared key, in declaration order."""
    for name, node in schema.items():
        if isinstance(node, Key):
            yield prefix + name, node
        else:
            yield from keys(node, f"{prefix}{name}.")


def defaults(schema: dict = SCHEMA) -> dict:
    """The nested mapping of defaults (a fresh copy)."""

    return {
        name: copy.deepcopy(node.default) if isinstance(node, Key) else defaults(node) for name, node in schema.items()
    }


def rules(kind: str) -> dict:
    """``{dotted key: rule}`` for one kind of rule: ``bound``, ``choices``, ``each_of`` or ``free_form``."""
    return {key: getattr(spec, kind) for key, spec in keys() if getattr(spec, kind)}


def markdown() -> str:
    """The reference page of every key (docs/params.md)."""
    lines = [
        "# Profile keys",
        "",
        "Generated from `mta4dpr_core/config/schema.py` (`python -m mta4dpr_core.config.schema > docs/params.md`).",
        "A profile states only what differs from these defaults; `--set key=value` overrides one on the command line.",
        "",
        "| key | default | rule | what it is |",
        "|---|---|---|---|",
    ]
    for key, spec in keys():
        rule = spec.bound or ""
        if spec.choices:
            rule = "one of " + ", ".join(f"`{c}`" for c in sorted(spec.choices))
        if spec.each_of:
            rule = "each of " + ", ".join(f"`{c}`" for c in sorted(spec.each_of))
        if spec.free_form:
            rule = "free-form"
        default = (
            "`null`"
            if spec.default is None
            else f"`{spec.default!r}`".replace("'", "").replace("True", "true").replace("False", "false")
        )
        lines.append(f"| `{key}` | {default} | {rule} | {spec.help} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
