"""Data for the notebooks' worked examples: what the method does to real queries.

- :func:`trace_query` (01): one training query through each assistant's top-k, the merge,
  the Reciprocal Rank Fusion order and the teacher's scores.
- :func:`query_distributions` and :func:`kl_matrix` (02): teacher, assistant and fused
  distributions over a query's candidates, and KL between every pair of them.
- :func:`worked_batch` (03): one real training batch through the per-batch KL selection
  (:func:`kl_batch_table` is its pure core, on arrays).
- :func:`selection_shares` (03), :func:`loss_terms`, :func:`step_trace` and
  :func:`metrics_per_iteration` (04): what a finished run recorded per step and per iteration.

Nothing here trains: the functions read the iteration-1 data (``studies.first_iteration_data``,
cached scores) and stored run results.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..config.typed import typed
from ..experiments import training_inputs
from ..experiments.runs import read_over_seeds
from ..method.construction import merge_candidates, reciprocal_rank_fusion, retrieve_negatives, take_rows, top_by_rrf
from ..method.fusion import assistant_names, candidate_distributions, fused_assistant_subsets, softmax
from ..method.selection import select_assistant
from ..retrieval.pseudo_queries import KINDS, pseudo_query_split
from . import tables as R  # row ids (tables.py)
from .tables import with_ids, write_table

LOSS_TERMS = ("total", "contrastive", "kl_teacher", "kl_assistant")
LOSS_LABELS = {
    "total": "total (weighted sum)",
    "contrastive": "contrastive (InfoNCE)",
    "kl_teacher": "KL(teacher ‖ student)",
    "kl_assistant": "KL(assistant ‖ student)",
}


def _snippet(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _base_rows(data):
    origin = np.asarray(data.origin)
    return np.where(origin == 0)[0]


def pick_example_row(data, k=None) -> int:
    """A base (not mined) row with a full list of hard negatives whose teacher top-1 is a positive
    (a clean example); the first row otherwise."""
    rows = _base_rows(data)
    candidates, positive = np.asarray(data.candidates), np.asarray(data.is_positive)
    teacher = np.where(candidates >= 0, np.asarray(data.teacher_scores), -np.inf)
    for row in rows:
        negatives = int(((candidates[row] >= 0) & ~positive[row]).sum())
        if (k is None or negatives >= k) and positive[row, int(np.argmax(teacher[row]))]:
            return int(row)
    return int(rows[0]) if len(rows) else 0


@dataclass
class QueryTrace:
    query_id: str
    query: str
    k: int
    rrf_c: int
    table: pd.DataFrame
    summary: dict = field(default_factory=dict)

    def styled(self):
        """The table for display: RRF scores with 4 decimals (they differ in the third), no index."""
        formats = {
            "RRF score": "{:.4f}",
            "teacher score": "{:.2f}",
            "kept": lambda v: "✓" if v else "",
            "positive": lambda v: "✓" if v else "",
        }
        return (
            self.table.style.format({k: v for k, v in formats.items() if k in self.table}, na_rep="")
            .format(na_rep="", subset=[c for c in self.table.columns if c.endswith(" rank")])
            .set_properties(subset=["text"], **{"text-align": "left"})
            .hide(axis="index")
        )

    @property
    def caption(self) -> str:
        s = self.summary
        return (
            f"**Query {self.query_id}**: “{self.query}”  \n"
            f"Each of the {s['assistants']} assistants retrieves its top {self.k} passages (positives excluded); "
            f"the union has {s['merged']} passages; Reciprocal Rank Fusion (c = {self.rrf_c}) over the assistants' "
            f"scores keeps the top {self.k} as hard negatives; the teacher scores the positives and those negatives. "
            f"Stored iteration-1 data for this query {'matches' if s['matches_stored_data'] else 'DIFFERS from'} this trace."
        )


def trace_query(setup, data, row=None, snippet=70) -> QueryTrace:
    """One training query of ``data`` (``studies.first_iteration_data(setup)[0]``) traced through
    data construction (paper 3.2.1), recomputed with the setup's scorers.

    Columns: passage id, text snippet, each assistant's rank (in its own top k + #positives,
    positives included; blank = not retrieved), RRF score and rank over the merged list, whether
    the passage is kept (positive or one of the k hard negatives), the teacher's score and rank
    among the kept passages, and whether it is a positive.
    """
    k, c = int(setup.config.construction.k), int(setup.config.construction.rrf_c)
    row = pick_example_row(data, k) if row is None else int(row)
    query_row = int(np.asarray(data.query_rows)[row])
    query_id, query = data.query_ids[query_row], data.query_texts[query_row]
    corpus = setup.collection.corpus
    positives = list(setup.train.positives(corpus)[query_row])
    depth = k + len(positives)

    ranks = {}
    per_assistant = []
    for assistant in setup.assistants:
        _, retrieved = assistant.search([query_id], [query], depth)
        ranks[assistant.name] = {int(d): r + 1 for r, d in enumerate(retrieved[0].tolist()) if d >= 0}
        per_assistant.append(retrieve_negatives(assistant, [query_id], [query], [positives], k))
    merged = merge_candidates(per_assistant)
    merged_scores = np.stack([a.score([query_id], [query], merged)[0] for a in setup.assistants])[:, None, :]
    rrf = reciprocal_rank_fusion(merged_scores, c)
    kept = top_by_rrf(merged, rrf, k)[0]
    merged, rrf = merged[0], rrf[0]
    valid = merged >= 0
    merged, rrf = merged[valid], rrf[valid]
    order = np.lexsort((merged, -rrf))
    merged, rrf = merged[order], rrf[order]

    docs = np.asarray(positives + merged.tolist(), dtype=np.int64)
    teacher = setup.teacher.score([query_id], [query], docs[None, :])[0]
    kept_set = set(int(d) for d in kept if d >= 0) | set(int(d) for d in positives)
    kept_docs = [int(d) for d in docs if int(d) in kept_set]
    kept_teacher = {d: float(s) for d, s in zip(docs.tolist(), teacher.tolist(), strict=True) if d in kept_set}
    teacher_rank = {d: r + 1 for r, d in enumerate(sorted(kept_docs, key=lambda d: (-kept_teacher[d], d)))}

    rows = []
    for position, doc in enumerate(docs.tolist()):
        is_positive = doc in positives
        entry = {"passage": corpus.ids[doc], "text": _snippet(corpus.texts[doc], snippet)}
        for assistant in setup.assistants:
            entry[f"{assistant.name} rank"] = ranks[assistant.name].get(doc)
        rrf_index = position - len(positives)
        entry["RRF score"] = float(rrf[rrf_index]) if not is_positive else np.nan
        entry["RRF rank"] = rrf_index + 1 if not is_positive else None
        entry["kept"] = doc in kept_set
        entry["teacher score"] = float(teacher[position])
        entry["teacher rank"] = teacher_rank.get(doc)
        entry["positive"] = is_positive
        rows.append(entry)
    table = pd.DataFrame(rows)
    for column in [f"{a.name} rank" for a in setup.assistants] + ["RRF rank", "teacher rank"]:
        table[column] = table[column].astype("Int64")

    stored = np.asarray(data.candidates)[row]
    stored_set = set(int(d) for d in stored if d >= 0)
    summary = {
        "assistants": len(setup.assistants),
        "merged": int(len(merged)),
        "kept negatives": int(sum(1 for d in kept if d >= 0)),
        "positives": len(positives),
        "row": row,
        "matches_stored_data": stored_set == kept_set,
    }
    return QueryTrace(str(query_id), str(query), k, c, table, summary)


# ---- notebook 02: distributions ---------------------------------------------------------------


def fitted_temperatures(setup, data) -> dict:
    """``{assistant: temperature}`` as a run fits them: the profile's ``fusion.temperature_rule`` on
    every row of ``data`` (the iteration-1 training rows; hand-set temperatures kept)."""
    return training_inputs.fitted_temperatures(setup.params, data, setup.assistants)


def _candidate_set(setup, data, rows):
    """Teacher probabilities [R, C], candidate distributions [A, R, C] (each assistant at its fitted
    temperature, as in training) and their names."""
    teacher_temperature = setup.config.models.teacher.get("temperature", 1.0)
    scores = np.asarray(data.teacher_scores)[rows]
    teacher = softmax(scores / teacher_temperature)
    fitted = fitted_temperatures(setup, data)
    temps = np.asarray([fitted.get(a.name, a.temperature) for a in setup.assistants], dtype=np.float64)[:, None, None]
    probs = softmax(np.asarray(data.assistant_scores)[:, rows] / temps)
    subsets = (
        fused_assistant_subsets(len(setup.assistants))
        if setup.config.fusion.enabled and len(setup.assistants) >= 2
        else []
    )
    weights = setup.config.fusion.weights
    weights = weights if weights and len(weights) == len(setup.assistants) else None
    candidates = candidate_distributions(probs, subsets, weights)
    names = assistant_names([a.name for a in setup.assistants], subsets)
    return teacher, candidates, names


def _kl(p, q, eps=1e-12):
    """KL(p || q) per row over the last axis; padding (p = q = 0) contributes nothing."""
    p = np.nan_to_num(p)
    q = np.nan_to_num(q)
    terms = np.where(p > 0, p * (np.log(np.clip(p, eps, None)) - np.log(np.clip(q, eps, None))), 0.0)
    return terms.sum(-1)


def example_rows(data, count=3, seed=0):
    """``count`` base rows, spread over the data (deterministic)."""
    rows = _base_rows(data)
    if len(rows) <= count:
        return rows.tolist()
    return rows[np.linspace(0, len(rows) - 1, count).round().astype(int)].tolist()


def query_distributions(setup, data, rows=None, count=3) -> list:
    """For each row: a DataFrame over its candidates (positives and hard negatives), sorted by the
    teacher's probability, with the teacher's, each assistant's (softmax at its temperature) and the
    fused assistants' probabilities, and an attribute ``query``."""
    rows = example_rows(data, count) if rows is None else list(rows)
    teacher, candidates, names = _candidate_set(setup, data, rows)
    corpus = setup.collection.corpus
    out = []
    for i, row in enumerate(rows):
        docs = np.asarray(data.candidates)[row]
        valid = docs >= 0
        frame = pd.DataFrame(
            {
                "passage": [corpus.ids[d] for d in docs[valid]],
                "positive": np.asarray(data.is_positive)[row][valid],
                "teacher": teacher[i][valid],
            }
        )
        for a, name in enumerate(names):
            frame[name] = candidates[a, i][valid]
        frame = frame.sort_values("teacher", ascending=False, kind="stable").reset_index(drop=True)
        query_row = int(np.asarray(data.query_rows)[row])
        frame.attrs["query"] = data.query_texts[query_row]
        frame.attrs["query_id"] = data.query_ids[query_row]
        frame.attrs["originals"] = len(setup.assistants)
        frame.attrs["kl"] = {
            name: float(_kl(teacher[i : i + 1], candidates[a, i : i + 1])[0]) for a, name in enumerate(names)
        }
        out.append(frame)
    return out


def kl_matrix(setup, data, max_queries=2000, seed=0) -> pd.DataFrame:
    """Mean over training queries of KL(row ‖ column) between the teacher, the assistants and the
    fused assistants (nats; 0 on the diagonal). The column "teacher" of row "teacher" is 0; row
    "teacher" is what the paper's fusion argument compares."""
    rows = _base_rows(data)
    if len(rows) > max_queries:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_queries, replace=False))
    teacher, candidates, names = _candidate_set(setup, data, rows)
    all_probs = np.concatenate([teacher[None], candidates], axis=0)
    labels = ["teacher"] + names
    matrix = np.zeros((len(labels), len(labels)))
    for i in range(len(labels)):
        for j in range(len(labels)):
            if i != j:
                matrix[i, j] = _kl(all_probs[i], all_probs[j]).mean()
    return pd.DataFrame(matrix, index=labels, columns=labels)


# ---- notebooks 03 and 04: stored runs -----------------------------------------------------------


def main_runs(setup) -> list:
    """The main MTA4DPR run of every seed, read from the run store (notebooks 03 and 04 run them first)."""
    return read_over_seeds(setup, "mta4dpr")


def _global_steps(selections):
    frame = pd.DataFrame(selections)
    if frame.empty:
        return frame
    per_iteration = frame.groupby("iteration")["step"].max().sort_index()
    offsets = per_iteration.cumsum().shift(fill_value=0)
    frame["global step"] = frame["step"] + frame["iteration"].map(offsets)
    return frame


def selection_shares(results, window=None) -> pd.DataFrame:
    """Share (%) of batches that picked each original or fused assistant, per window of training
    steps (steps numbered across iterations), pooled over seeds. Index: the window's last step;
    attribute ``iteration_ends``: the global step where each iteration ends."""
    frames = []
    for result in results if isinstance(results, list) else [results]:
        frame = _global_steps([s for s in result.selections])
        if not frame.empty:
            frames.append(frame)
    if not frames:
        return pd.DataFrame()
    frame = pd.concat(frames, ignore_index=True)
    frame = frame[frame["assistant"].notna()]
    if frame.empty:
        return pd.DataFrame()
    total = int(frame["global step"].max())
    window = window or max(1, int(round(total / 15)))
    frame["window"] = ((frame["global step"] - 1) // window + 1) * window
    counts = frame.groupby(["window", "assistant"]).size().unstack(fill_value=0)
    shares = counts.div(counts.sum(1), axis=0) * 100
    shares.index = [min(int(w), total) for w in shares.index]
    shares.index.name = "step (end of window)"
    order = frame.groupby("assistant").size().sort_values(ascending=False).index
    shares = shares[list(order)]
    ends = _global_steps(frames[0][["iteration", "step"]].to_dict("records")).groupby("iteration")["global step"].max()
    shares.attrs["iteration_ends"] = [int(v) for v in ends.tolist()]
    shares.attrs["window"] = window
    shares.attrs["members"] = {name: len(str(name).split("&")) for name in shares.columns}
    return shares


def loss_terms(results) -> pd.DataFrame:
    """Per-step loss terms (columns among total, contrastive, kl_teacher, kl_assistant), from the
    entries of each run's ``selections`` that carry them; empty when the runs did not record them."""
    frames = []
    for result in results if isinstance(results, list) else [results]:
        frame = _global_steps(result.selections)
        if frame.empty:
            continue
        present = [t for t in LOSS_TERMS if t in frame.columns]
        if not present:
            continue
        frame["seed"] = result.seed
        frames.append(frame[["seed", "iteration", "step", "global step", *present]])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def final_losses(results) -> pd.DataFrame:
    """Each iteration's last-step loss (always stored in the history)."""
    rows = [
        {"seed": r.seed, "iteration": h.iteration, "final loss": h.final_loss}
        for r in (results if isinstance(results, list) else [results])
        for h in r.history
    ]
    return pd.DataFrame(rows)


def metrics_per_iteration(results, block="test", metrics=("nDCG@10", "MRR@10", "R@50", "R@100")) -> pd.DataFrame:
    """Test metrics (percent) before training (iteration 0) and after each iteration: mean, and ± the
    std over seeds; only iterations that were evaluated on the test set."""
    per = {}
    for result in results if isinstance(results, list) else [results]:
        evaluations = [(0, (result.initial or {}).get(block))]
        evaluations += [(h.iteration, (h.test or {}).get(block)) for h in result.history]
        for iteration, values in evaluations:
            if not values:
                continue
            for metric in metrics:
                if metric in values:
                    per.setdefault((iteration, metric), []).append(100 * float(values[metric]))
    rows = {}
    for (iteration, metric), values in sorted(per.items()):
        row = rows.setdefault(iteration, {"iteration": iteration})
        row[metric] = float(np.mean(values))
        row[f"{metric} ±"] = float(np.std(values, ddof=1)) if len(values) > 1 else np.nan
    return pd.DataFrame(list(rows.values()))


def no_assistant_final(table1: pd.DataFrame) -> dict:
    """The no-assistant student's final test metrics (percent) from Table 1 (its row id ``no_assistants``):
    {metric: value}, for ``plots.metrics_per_iteration(..., baseline=...)``; {} if absent."""
    if table1 is None or R.ID not in table1.columns:
        return {}
    rows = table1[table1[R.ID].astype(str) == R.NO_ASSISTANTS]
    if rows.empty:
        return {}
    row = rows.iloc[0]
    out = {}
    for column in table1.columns:
        if column in ("model", "role", "paper analogue") or column.endswith(" ±") or column.startswith(("Δ", "paper ")):
            continue
        value = pd.to_numeric(pd.Series([row[column]]), errors="coerce").iloc[0]
        if pd.notna(value):
            out[column] = float(value)
    return out


# ---- notebook 03: one batch through the KL selection ---------------------------------------------

KL_COLUMN = "KL(teacher ‖ assistant), batch mean"


def kl_batch_table(teacher_probs, candidate_probs, names) -> pd.DataFrame:
    """The KL rule on one batch, by the core's own :func:`~mta4dpr_core.method.selection.select_assistant`.

    ``teacher_probs`` [B, C] and ``candidate_probs`` [A, B, C] (original then fused assistants,
    ``names`` in that order). One row per candidate: ``assistant``, ``members`` (1 = original),
    the batch mean of KL(p_T(q) ‖ p_a(q)) and ``chosen`` (True for the one the rule picks, the
    argmin); rows sorted by KL."""

    teacher_probs, candidate_probs = (
        np.asarray(teacher_probs, dtype=np.float64),
        np.asarray(candidate_probs, dtype=np.float64),
    )
    if candidate_probs.shape[0] != len(names):
        raise ValueError(f"{candidate_probs.shape[0]} candidate distributions but {len(names)} names")
    chosen, values = select_assistant(teacher_probs, candidate_probs, "kl")
    frame = pd.DataFrame(
        {
            "assistant": [str(n) for n in names],
            "members": [len(str(n).split("&")) for n in names],
            KL_COLUMN: np.asarray(values, dtype=np.float64),
            "chosen": np.arange(len(names)) == chosen,
        }
    )
    return frame.sort_values(KL_COLUMN, kind="stable").reset_index(drop=True)


def _trainable_rows(data) -> np.ndarray:
    """Rows with at least one negative: the rows training samples batches from (training.py)."""
    candidates, positive = np.asarray(data.candidates), np.asarray(data.is_positive)
    return np.where(((candidates >= 0) & ~positive).any(1))[0]


def worked_batch(setup, data, batch_size=None, seed=None, step=0) -> pd.DataFrame:
    """One real training batch of the iteration-1 ``data`` (``studies.first_iteration_data(setup)[0]``)
    through the per-batch KL selection: :func:`kl_batch_table` of that batch.

    The batch is drawn as training draws it (``training.sample_batch`` with the generator of
    ``(seed, iteration 1, step)``: ``step=0`` is the first step of the first seed's main run), its
    distributions come from ``training.batch_distributions`` with the assistants' temperatures
    fitted as the run fits them. ``batch_size`` (default ``training.queries_per_batch``) changes
    the number of queries, and then the batch is no longer the run's. Attributes: ``seed``,
    ``step`` (1-based, as the runs record it), ``queries`` (the batch's query ids and texts),
    ``candidates_per_query``, ``temperatures``, ``same_as_run`` and ``caption``."""
    from ..method.training import batch_distributions, sample_batch  # noqa: PLC0415 (lazy: numba, torch not loaded by this module)

    params, profile = setup.params, setup.config
    seed = int(profile.seeds[0] if seed is None else seed)
    pool = list(setup.assistants)
    if not pool:
        raise ValueError("this profile has no assistants: there is nothing to select")
    temperatures = fitted_temperatures(setup, data)
    config = training_inputs.train_config(params, pool, seed, temperatures=temperatures)
    if batch_size:
        config.queries_per_batch = int(batch_size)
    rng = np.random.default_rng([seed, 1, int(step)])  # the trainer's generator for (seed, iteration 1, step)
    batch_rows, columns = sample_batch(data, _trainable_rows(data), config, rng)
    teacher_logits, candidates = batch_distributions(data, batch_rows, columns, config)
    subsets = fused_assistant_subsets(len(pool)) if config.fusion and len(pool) >= 2 else []
    names = assistant_names([a.name for a in pool], subsets)
    table = kl_batch_table(softmax(teacher_logits), candidates, names)

    query_rows = np.asarray(take_rows(data.query_rows, batch_rows))
    queries = [{"query id": str(data.query_ids[r]), "query": str(data.query_texts[r])} for r in query_rows.tolist()]
    chosen = table.loc[table["chosen"], "assistant"].iloc[0]
    per_batch = profile.selection.method == "kl" and not profile.selection.per_iteration and bool(profile.loss.gamma)
    same_as_run = per_batch and not batch_size
    table.attrs.update(
        {
            "seed": seed,
            "step": int(step) + 1,
            "queries": queries,
            "candidates_per_query": int(columns.shape[1]),
            "temperatures": {k: float(v) for k, v in temperatures.items()},
            "chosen": chosen,
            "same_as_run": same_as_run,
        }
    )
    table.attrs["caption"] = (
        f"Iteration 1, step {int(step) + 1} of seed {seed}: {len(queries)} training queries, each with 1 positive and "
        f"{columns.shape[1] - 1} sampled hard negatives ({columns.shape[1]} candidates). KL = mean over the batch's queries of "
        f"KL(p_T(q) ‖ p_a(q)) in nats; the rule picks the smallest: {chosen}."
        + (
            ""
            if per_batch
            else f" (This profile's runs do not select per batch by KL: selection.method = "
            f"{params['selection']['method']}, gamma = {params['loss']['gamma']}.)"
        )
    )
    return table


def batch_queries(table: pd.DataFrame) -> pd.DataFrame:
    """The worked batch's queries (id and text), in batch order."""
    return pd.DataFrame(table.attrs.get("queries", []), columns=["query id", "query"])


def recorded_choice(results, seed, iteration=1, step=1):
    """The assistant the stored run of ``seed`` selected at ``iteration``, ``step`` (None if not recorded)."""
    for result in results if isinstance(results, list) else [results]:
        if result.seed != seed:
            continue
        for entry in result.selections:
            if entry.get("iteration") == iteration and entry.get("step") == step:
                return entry.get("assistant")
    return None


def check_worked_batch(table: pd.DataFrame, results) -> str:
    """One line: does the worked batch's choice match what the main run recorded for that step?"""
    seed, step, chosen = table.attrs.get("seed"), table.attrs.get("step"), table.attrs.get("chosen")
    recorded = recorded_choice(results, seed, 1, step)
    where = f"the main run of seed {seed} recorded at iteration 1, step {step}"
    if recorded is None:
        return f"worked batch: KL picks {chosen}; {where}: nothing (no per-batch selection stored)"
    if not table.attrs.get("same_as_run"):
        return f"worked batch: KL picks {chosen}; {where}: {recorded} (not the same rule or batch, so not comparable)"
    verdict = "the same" if recorded == chosen else "DIFFERENT"
    return f"worked batch: KL picks {chosen}; {where}: {recorded} ({verdict})"


# ---- notebook 04: the per-step trace ---------------------------------------------------------------


def step_trace(results) -> pd.DataFrame:
    """Every training step of the runs: seed, iteration, step, global step (counted across
    iterations), the assistant selected for the batch, its member count, and the loss terms the run
    recorded (columns labelled as :data:`LOSS_LABELS`; the terms are unweighted, ``total`` is the
    weighted sum)."""
    frames = []
    for result in results if isinstance(results, list) else [results]:
        frame = _global_steps(result.selections)
        if frame.empty:
            continue
        frame.insert(0, "seed", result.seed)
        present = [t for t in ("contrastive", "kl_teacher", "kl_assistant", "total") if t in frame.columns]
        columns = (
            ["seed", "iteration", "step", "global step"]
            + [c for c in ("assistant", "members") if c in frame.columns]
            + present
        )
        frames.append(frame[columns].rename(columns=LOSS_LABELS))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def write_step_trace(trace: pd.DataFrame, results_dir, params) -> str:
    """Write ``step_trace.csv`` and ``.md`` into ``results_dir`` (the results table writer); returns the caption."""

    loss = typed(params).loss
    seeds = sorted(int(s) for s in trace["seed"].dropna().unique()) if "seed" in trace else []
    caption = (
        f"Per-step trace of the main MTA4DPR run ({len(seeds)} seed(s), every iteration): the assistant selected for each "
        f"batch and the loss terms of that step (nats; total = {loss.alpha}·contrastive + {loss.beta}·KL(teacher ‖ "
        f"student) + {loss.gamma}·KL(assistant ‖ student))"
    )
    if len(trace) and {"seed", "global step"} <= set(trace.columns):
        trace = with_ids(
            trace, [f"seed-{int(s)}-step-{int(g)}" for s, g in zip(trace["seed"], trace["global step"], strict=True)]
        )
    write_table(trace, results_dir, "step_trace", caption)
    return caption


def pseudo_query_examples(setup, per_kind: int = 3, snippet: int = 110) -> pd.DataFrame:
    """A few pseudo-queries of each kind cut from this profile's corpus (whether or not the profile trains on
    them: ``data.pseudo_queries``), with the passage each comes from. The profile's own exclusion rules apply:
    no test query's text, and no test positive as a source when ``exclude_test_positives`` is on."""

    rules = setup.config.data.pseudo_queries
    test = setup.test
    corpus = setup.collection.corpus
    excluded = (
        {d for q in test.query_ids for d, g in test.qrels[q].items() if g >= test.relevance_level}
        if rules.exclude_test_positives
        else set()
    )
    rows = []
    for offset, kind in enumerate(KINDS):
        split = pseudo_query_split(
            corpus,
            [kind],
            seed=rules.seed + offset,  # other passages for each kind
            max_queries=per_kind,
            exclude_texts=list(test.query_texts) + list(setup.train.query_texts),
            exclude_passages=excluded,
            min_words=rules.min_words,
        )
        for query_id, text in zip(split.query_ids, split.query_texts, strict=True):
            (doc_id,) = split.qrels[query_id]
            rows.append(
                {
                    "kind": kind,
                    "pseudo-query": text,
                    "positive (source passage)": doc_id,
                    "passage": _snippet(corpus.texts[corpus.index[doc_id]], snippet),
                }
            )
    return pd.DataFrame(rows, columns=["kind", "pseudo-query", "positive (source passage)", "passage"])
