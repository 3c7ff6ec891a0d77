"""Write the thin notebooks in notebooks/ (run once after changing this file; outputs come from nbval runs).

    python tools/make_notebooks.py              # writes notebooks/*.ipynb
    python tools/make_notebooks.py --out DIR    # writes them into DIR instead

:func:`build_notebooks` returns the notebook objects without writing anything (the tests validate them).
"""

import argparse
from pathlib import Path

import nbformat as nbf

ROOT = Path(__file__).resolve().parent.parent
PARAMETERS = """import os

# params/<profile>.yaml: mini (the embedded default) unless MTA4DPR_PROFILE says otherwise (nbval sets smoke);
# the runner (papermill) injects the profile's sections below
profile = os.environ.get("MTA4DPR_PROFILE", "mini")
seeds = None
data = None
models = None
construction = None
fusion = None
selection = None
loss = None
training = None
iterations = None
evaluation = None
study = None
output = None
"""
SETUP = """from IPython.display import display, Markdown
from mta4dpr_core import pipeline
from mta4dpr_core.report import expectations, plots, studies, walkthrough
from mta4dpr_core.report.notebook import caption_of, setup_display, setup_from_parameters, show

setup_display()  # tables with 2 decimals
params, setup = setup_from_parameters(profile, seeds=seeds, data=data, models=models, construction=construction, fusion=fusion,
                                      selection=selection, loss=loss, training=training, iterations=iterations,
                                      evaluation=evaluation, study=study, output=output)
results = studies.results_dir(params)  # results/<profile>/: every table as .csv and .md (its caption on the first line)
print(f"profile {params['profile']}: {len(setup.collection.corpus)} passages, {len(setup.train)} training and {len(setup.test)} test queries")"""

MD, CODE, CHECKED = "markdown", False, True  # a cell's kind: markdown, code, or code whose output nbval checks


def table(name, key=None, **options):
    """A code cell showing ``out[key]`` with the caption of ``results/<profile>/<name>.md``; with ``columns``, a
    main view whose note points at the CSV that holds every column."""
    extra = "".join(f", {k}={v!r}" for k, v in options.items())
    if "columns" in options:
        extra += f", file=results / {name + '.csv'!r}"
    return (f"show(out[{key or name!r}], caption_of(results, {name!r}){extra})", CODE)


# main views of the wide tables (each fits a 1,400-pixel page; the CSV keeps every column)
MAIN_COLUMNS = {
    "claims": ["id", "table", "effect", "low", "high", "p (Holm)", "verdict", "seeds holding", "paper Δ"],
    "table1": [
        "id",
        "model",
        "role",
        "nDCG@10",
        "MRR@10",
        "R@50",
        "R@1k",
        "Δ vs no assistant nDCG@10",
        "Δ vs no assistant low",
        "Δ vs no assistant high",
    ],
    "table4": [
        "id",
        "iteration",
        "nDCG@10",
        "MRR@10",
        "R@50",
        "R@1k",
        "mined queries",
        "replaced",
        "Δ vs previous nDCG@10",
        "Δ vs previous low",
        "Δ vs previous high",
    ],
}


# ---- 01: data preparation -------------------------------------------------------------------------------------------

METHOD_01 = r"""## Method: one iteration's training data

For every training query $q$ (paper §3.2.1):

1. **Candidates.** Each assistant $a$ retrieves its top $k$ passages, the query's known positives excluded; the union of
   these lists is the query's candidate set.
2. **Reciprocal Rank Fusion.** Every assistant scores every candidate, and $\mathrm{rank}_a(d)$ is the 1-based rank of
   passage $d$ in assistant $a$'s ordering of the candidates. The fused score is
   $$\mathrm{RRF}(d)=\sum_{a}\frac{1}{c+\mathrm{rank}_a(d)},$$
   with $c$ = `construction.rrf_c` (60, as in the paper), and the $k$ candidates with the highest RRF score are the query's hard negatives (ties: lower passage index first).
3. **Teacher scores.** The teacher scores every (query, passage) pair of the positives and the hard negatives. Its raw
   scores (logits) are stored; training turns them into a distribution (notebook 02).
4. **Eval set.** A seeded fraction $f$ of the training queries (`construction.eval_fraction`; the paper's 1%), at least
   `construction.min_eval_queries` of them, is held out: $\max(\text{min},\,\mathrm{round}(f\,n))$ of the $n$ queries.
   The split is fixed for a run; these queries are never trained on and serve only to decide the assistant
   replacement at the end of each iteration (notebook 04).
5. **Mining (from iteration 2 on).** A query is added again when the teacher ranks a positive first (among the
   positives and the previous student's top-$k$ negatives) but the previous student ranks its first positive at 2 to
   `construction.mining_max_rank`, i.e. right for the teacher at top-1, wrong for the student. The extra row carries the
   previous student's own top-$k$ negatives, so the data gets harder as the student improves (Table 4's `mined queries`).

This profile's values:"""

VALUES_01 = """c = params["construction"]
print(f"teacher: {setup.teacher.name}; assistants: {', '.join(a.name for a in setup.assistants)}")
print(f"k = {c['k']} hard negatives per query; RRF c = {c['rrf_c']}; eval fraction f = {c['eval_fraction']} "
      f"(at least {c['min_eval_queries']} queries); mining: {'on' if c['mining'] else 'off'} (student rank 2 to {c['mining_max_rank']})")"""

# ---- 02: fusion --------------------------------------------------------------------------------------------------------

METHOD_02 = r"""## Method: distributions, fitted temperatures and fused assistants

**A distribution per assistant.** For a query $q$ with candidates $C_q$ (its positives and hard negatives), assistant
$a$'s scores $s_a(q,d)$ become a distribution by a softmax at the assistant's temperature $T_a$:
$$p_a(d\mid q)=\frac{\exp\big(s_a(q,d)/T_a\big)}{\sum_{d'\in C_q}\exp\big(s_a(q,d')/T_a\big)}.$$
The teacher's is $p_T(d\mid q)$, the same softmax of its logits at its fixed temperature $T_T$ (`models.teacher.temperature`).

**The fitted temperature.** Score scales differ (a cosine lies in $[-1,1]$, BM25 is unbounded), so each assistant's
$T_a$ is fitted once per run on the iteration-1 training rows $R$ (never the eval or test queries): it is the
temperature that brings the assistant closest to the teacher,
$$T_a=\arg\min_{T\in[10^{-3},\,10^{3}]}\ \frac{1}{|R|}\sum_{q\in R}\mathrm{KL}\Big(p_T(q)\ \Big\|\ \mathrm{softmax}\big(s_a(q,\cdot)/T\big)\Big)$$
(temperature rule `kl`: a bounded one-dimensional search over $\log T$). The rule `entropy` instead matches the mean
entropy of $p_a$ to the teacher's; `fixed`, or a temperature written in an assistant's spec, keeps the given value.
A student that later joins the pool (notebook 04) keeps its own temperature $\tau$.

**Fused assistants.** Every subset $S$ of the $m$ assistants with $|S|\ge 2$ is a fused assistant ($2^m-m-1$ of them),
whose distribution is the mean of its members' distributions:
$$p_S(d\mid q)=\frac{1}{|S|}\sum_{a\in S}p_a(d\mid q).$$
With weights $w_a$ (`fusion.weights`, the revised paper's weighted fusion) it is the weighted mean
$p_S=\sum_{a\in S}w_a\,p_a\big/\sum_{a\in S}w_a$; the weights apply to these distributions, not to raw scores.

This profile's settings (the fitted $T_a$ are the `temperature` column of the table below):"""

VALUES_02 = """f = params["fusion"]
print(f"temperature rule: {f['temperature_rule']}; teacher temperature T_T = {params['models']['teacher'].get('temperature', 1.0)}; "
      f"fusion: {'on' if f['enabled'] else 'off'}, weights: {f['weights'] or 'equal'}")"""

# ---- 03: selection ----------------------------------------------------------------------------------------------------

METHOD_03 = r"""## Method: one assistant per training batch

Training draws batches $B$ of `training.queries_per_batch` queries, each with one positive and
`training.negatives_per_query` of its hard negatives. Before each gradient step, the candidates are the $m$ original and
the $2^m-m-1$ fused assistants, and the **KL rule** picks the one whose distributions are closest to the teacher's over
the batch:
$$a^*=\arg\min_{a}\ \frac{1}{|B|}\sum_{q\in B}\mathrm{KL}\big(p_T(q)\,\|\,p_a(q)\big),\qquad
\mathrm{KL}(p\,\|\,r)=\sum_{d\in C_q}p(d)\log\frac{p(d)}{r(d)}.$$
The teacher comes first in the KL (the assistant is judged on how well it covers the teacher's distribution), and
the mean over the batch's queries picks the same $a^*$ as their sum. Selection reads stored scores only: no gradient, no
encoder call. The alternatives of Table 5, over the same batch:

- **Spearman's footrule**: $\frac{1}{|B|}\sum_{q\in B}\sum_{d\in C_q}\big|\mathrm{rank}_T(d)-\mathrm{rank}_a(d)\big|$, the smallest wins;
- **RBO**, rank-biased overlap (extrapolated, persistence $p$ = `selection.rbo_p`):
  $\frac{X_{C}}{C}p^{C}+\frac{1-p}{p}\sum_{d=1}^{C}\frac{X_d}{d}\,p^{d}$ with $X_d$ the overlap of the teacher's and the
  assistant's top-$d$ lists and $C$ the list length, averaged over the batch; the largest wins;
- **random**: a uniform draw among the original and fused assistants.

### A worked batch

The first batch of the first seed's main run (iteration 1, step 1), drawn and turned into distributions by the
training code, then passed to the core's selection function: each original and fused assistant's KL to the teacher,
and the one the rule picks."""

WORKED_03 = """data, _ = studies.first_iteration_data(setup)
batch = walkthrough.worked_batch(setup, data)
display(show(walkthrough.batch_queries(batch), caption=f"The batch's queries (seed {batch.attrs['seed']}, step {batch.attrs['step']})", max_rows=5))
show(batch, caption=batch.attrs["caption"], decimals=3)"""

# ---- 04: training ------------------------------------------------------------------------------------------------------

METHOD_04 = r"""## Method: the student's loss, its representation and the iterations

**Scores.** The student encodes a query and a passage into vectors $e_q, e_d$ and scores the pair by their dot product
at the student temperature $\tau$ (`loss.student_temperature`): $s(q,d)=\langle e_q,e_d\rangle/\tau$. Over a query's
candidates $C_q$ (its positive $d^+_q$ and sampled hard negatives) its distribution is
$p_S(q)=\mathrm{softmax}_{d\in C_q}\,s(q,d)$.

**The loss of a batch $B$:**
$$\mathcal{L}=\alpha\,\mathcal{L}_{\mathrm{contrastive}}+\beta\,\mathrm{KL}\big(p_T\,\|\,p_S\big)+\gamma\,\mathrm{KL}\big(p_{a^*}\,\|\,p_S\big),$$
$$\mathcal{L}_{\mathrm{contrastive}}=-\frac{1}{|B|}\sum_{q\in B}\log\frac{\exp s(q,d^+_q)}{\sum_{d\in D_B}\exp s(q,d)},$$
where $p_T$ is the teacher's distribution (notebook 02), $p_{a^*}$ that of the assistant selected for the batch
(notebook 03), each KL is averaged over the batch's queries, and the targets $p_T$ and $p_{a^*}$ get no gradient.
$D_B$ holds every passage of the batch: the query's own positive and hard negatives and the other queries' positives and
negatives (in-batch negatives, `loss.in_batch_negatives`; without them $D_B=C_q$).

**Representation.** A transformer student (`kind: hf`) represents a text by the mean of the [CLS] vectors of its last
three layers (pooling `cls_last3`, the default); the static student (`kind: static`) by the mean of its token
embeddings. Both are L2-normalised before the dot product unless the student's spec sets `normalize: false`.

**Iterations and the replacement of the worst assistant.** The student keeps its weights from one iteration to the
next. After iteration $k$, the student and every assistant in the pool are evaluated on the eval queries
(`evaluation.metric`, retrieval over the whole corpus). If the student beats the worst assistant, it takes that
assistant's place in the pool as **`student@k`**: the student as it was after iteration $k$, frozen, scored at its own
temperature $\tau$. From iteration $k+1$ on, `student@k` retrieves hard negatives, is fused and can be selected like
any assistant; this is the `student@k` of Figure 2 (notebook 03) and Table 4's `replaced` column names the assistant it
replaced. The data of iteration $k+1$ also mines the failures of the student after iteration $k$ (notebook 01).

This profile's values:"""

VALUES_04 = """loss, training = params["loss"], params["training"]
print(f"alpha = {loss['alpha']}, beta = {loss['beta']}, gamma = {loss['gamma']}; student temperature tau = {loss['student_temperature']}; "
      f"in-batch negatives: {loss['in_batch_negatives']}")
print(f"student: {params['models']['student']}")
print(f"{params['iterations']['count']} iterations of {training['steps']} steps; batches of {training['queries_per_batch']} queries x "
      f"(1 positive + {training['negatives_per_query']} negatives); replace the worst assistant: {params['iterations']['replace_worst']} "
      f"(eval metric {params['evaluation']['metric']})")"""

TRACE_04 = """trace = walkthrough.step_trace(runs)
walkthrough.write_step_trace(trace, results, params)
show(trace, caption_of(results, "step_trace"), decimals=3, max_rows=15, file=results / "step_trace.csv")"""

NOTEBOOKS = {
    "01_data_prep": (
        "Data preparation",
        "Loads the collections and the offline models, builds iteration 1's data "
        "(each assistant's top-k negatives, merged, re-ranked by Reciprocal Rank Fusion with c = 60, teacher scores), "
        "and measures every scorer: `baselines` and `data_statistics`.",
        [
            (METHOD_01, MD),
            (VALUES_01, CODE),
            ("out = pipeline.data_prep(setup)", CODE),
            (
                "## Choosing the teacher on training queries\n\nEvery offline scorer and z-scored hybrid, measured on the "
                "*training* queries (the test set is never used to choose). The rule takes the strongest candidate that shares "
                "no member with any assistant (no assistant may be a teacher member, a copy of one, or distilled from one).",
                MD,
            ),
            table("teacher_selection"),
            table("data_statistics", "statistics"),
            table("baselines"),
            (
                "## One training query through data construction\n\nThe table recomputes, for one real training query, "
                "each assistant's ranking, the merged candidates in Reciprocal Rank Fusion order, which of them are kept as the "
                "k hard negatives, and the teacher's scores (the ranks are 1-based; a blank assistant rank means the passage was "
                "not in that assistant's top k + #positives).",
                MD,
            ),
            (
                "data, eval_mask = studies.first_iteration_data(setup)\ntrace = walkthrough.trace_query(setup, data)\n"
                "display(Markdown(trace.caption))\ndisplay(trace.styled())",
                CODE,
            ),
            (
                "## Training queries beyond the labelled split\n\nDistillation needs only the teacher's scores, so a "
                "profile may add pseudo-queries cut out of the corpus (`data.pseudo_queries`): a passage's title, one of "
                "its sentences (the inverse cloze task, Lee et al. 2019) or a random span of 5-20 words (Contriever's "
                "cropping). Each one's contrastive positive is its source passage, and the teacher scores it as any "
                "query. Duplicates and any text equal to a test or training query are dropped; with "
                "`exclude_test_positives` (on by default) no passage judged relevant to a test query is a source, so "
                "the claims can be read with and without transduction. Below: examples on this profile's corpus "
                "(the profile trains on them only when `data.pseudo_queries.kinds` is set).",
                MD,
            ),
            ("show(walkthrough.pseudo_query_examples(setup))", CODE),
            (
                "# NBVAL_CHECK_OUTPUT\nprint(out['statistics'].loc[out['statistics'].statistic.isin(['assistants', 'fused assistants', 'hard negatives per query (k)'])].to_string(index=False))\nprint(expectations.check_tables(params['profile'], {'teacher_selection': out['teacher_selection']}))",
                CHECKED,
            ),
        ],
    ),
    "02_fusion": (
        "Fusion",
        "Every subset of two or more assistants is a fused assistant (mean of their softmax distributions). "
        "The paper observes that fused assistants sit closer to the teacher (smaller KL).",
        [
            (METHOD_02, MD),
            (VALUES_02, CODE),
            ("out = pipeline.fusion(setup)", CODE),
            table("fusion_kl"),
            ("plots.Plot(out['figure'])", CODE),
            (
                "## Distributions over one query's candidates\n\nEach assistant's scores become a distribution by a softmax "
                "at its own fitted temperature; a fused assistant averages its members' distributions. Below: three training "
                "queries, their candidates ordered by the teacher's probability, the assistants and the fused assistant closest "
                "to the teacher on that query.",
                MD,
            ),
            (
                "data, _ = studies.first_iteration_data(setup)\nplots.distributions(walkthrough.query_distributions(setup, data, count=3))",
                CODE,
            ),
            (
                "## KL between every pair\n\nMean KL(row ‖ column) over the training queries; the first row is the teacher "
                "against each original and fused assistant (the quantity the selection minimises per batch).",
                MD,
            ),
            ("kl = walkthrough.kl_matrix(setup, data)\nplots.kl_heatmap(kl)", CODE),
            (
                "# NBVAL_CHECK_OUTPUT\nprint(len(out['fusion_kl']), 'original and fused assistants')\nprint(expectations.check_tables(params['profile'], {'fusion_kl': out['fusion_kl']}))",
                CHECKED,
            ),
        ],
    ),
    "03_selection_study": (
        "Selection study: Table 5 and Figure 2",
        "The student trained with each selection method "
        "(random, Spearman's footrule, RBO, KL), and how often each assistant was picked per batch under KL.",
        [
            (METHOD_03, MD),
            (WORKED_03, CODE),
            ("out = pipeline.selection(setup)", CODE),
            (
                "## Table 5: selection methods\n\nΔ vs KL = this row's selection method minus KL (the main run), test "
                "nDCG@10 in points, with its 95% interval (low, high) over seeds × test queries: negative means KL "
                "did better.",
                MD,
            ),
            table("table5"),
            (
                "## Figure 2: which assistant the KL rule picks\n\nShare of all training batches (every seed and "
                "iteration of the main run). A name `A&B` is a fused assistant; `student@k` is the student after "
                "iteration k, which replaced an assistant in the pool (notebook 04).",
                MD,
            ),
            table("figure2_data"),
            ("plots.Plot(out['figure'])", CODE),
            (
                "## Selection over training\n\nWhich original or fused assistant the KL selection picked, as a share "
                "of the batches in each window of training steps (all iterations of the main run, seeds pooled). "
                "The first line compares the worked batch above with the choice the run recorded for it.",
                MD,
            ),
            (
                "runs = walkthrough.main_runs(setup)\nprint(walkthrough.check_worked_batch(batch, runs))\n"
                "shares = walkthrough.selection_shares(runs)\nplots.selection_shares(shares)",
                CODE,
            ),
            (
                "# NBVAL_CHECK_OUTPUT\n# each value against params/expected/<profile>.yaml: expected ± a tolerance set above the spread measured across CPU kinds\nprint(expectations.check_tables(params['profile'], {'table5': out['table5']}))",
                CHECKED,
            ),
        ],
    ),
    "04_training": (
        "Training: Tables 1, 2 and 4",
        'MTA4DPR against the paper\'s "No assistant" row (teacher-only KD with the same iterations, steps and data '
        "construction, its teacher KL weighted β where MTA4DPR distils with β + γ), against two controls at MTA4DPR's "
        "total KL weight (teacher-only KD with β + γ on the teacher; MTA4DPR with every assistant's scores replaced by "
        "the teacher's) and against teacher-only KD in one iteration of the same total steps; the untrained student, the "
        "teacher and the assistants. Δ columns carry a 95% interval (a t interval over seeds × test queries).",
        [
            (METHOD_04, MD),
            (VALUES_04, CODE),
            ("out = pipeline.training(setup)", CODE),
            (
                "## Table 1: main results\n\nΔ vs no assistant = this row minus the no-assistant student (teacher-only KD, "
                "same iterations and steps), test nDCG@10 in points, with its 95% interval (low, high) over seeds × test "
                "queries: positive means this row did better.",
                MD,
            ),
            (
                "ours, paper = studies.split_table1(out['table1'])\n"
                "display(show(ours, caption_of(results, 'table1')))\n"
                'display(Markdown("### The paper\'s figures beside ours"))\n'
                "display(show(paper, caption=\"The paper's Table 1 (MS MARCO dev, percent) for each row's paper analogue; blank = no analogue\"))\n"
                "show(out['table1'], caption='Table 1, main columns', columns="
                + repr(MAIN_COLUMNS["table1"])
                + ", file=results / 'table1.csv')",
                CODE,
            ),
            ("## Table 2: recall at small cut-offs", MD),
            table("table2"),
            (
                "## Table 4: after each iteration\n\nΔ vs previous = this iteration minus the previous one (test nDCG@10, "
                "points, 95% interval). `mined queries`: rows added by mining (notebook 01); `replaced`: the assistant the "
                "student replaced after this iteration, as `student@k`.",
                MD,
            ),
            table("table4", columns=MAIN_COLUMNS["table4"]),
            (
                "## Training curves\n\nThe loss terms of every step (α·contrastive + β·KL to the teacher + γ·KL to the "
                "selected assistant) and the student's test metrics after each iteration of the main run.",
                MD,
            ),
            (
                "runs = walkthrough.main_runs(setup)\nplots.loss_curves(walkthrough.loss_terms(runs), walkthrough.final_losses(runs))",
                CODE,
            ),
            (
                "metrics = walkthrough.metrics_per_iteration(runs)\n"
                'display(show(metrics, caption=f"Student test metrics (percent) before training (iteration 0) and after each "\n'
                '                              f"iteration of the main run; mean ± std over {len(runs)} seed(s)"))\n'
                "plots.metrics_per_iteration(metrics, baseline=walkthrough.no_assistant_final(out['table1']))",
                CODE,
            ),
            (
                "## Per-step trace\n\nEvery training step of the main run: the assistant selected for the batch and the "
                "unweighted loss terms (the first rows here; the full trace is written to `step_trace.csv`).",
                MD,
            ),
            (TRACE_04, CODE),
            (
                "# NBVAL_CHECK_OUTPUT\n# each value against params/expected/<profile>.yaml: expected ± a tolerance set above the spread measured across CPU kinds\nprint(expectations.check_tables(params['profile'], {name: out[name] for name in ('table1', 'table2', 'table4')}))",
                CHECKED,
            ),
        ],
    ),
    "05_ablations": (
        "Ablations: Tables 3 and 7",
        "Without assistants (γ = 0), without fusion, without iterations (one iteration of the same total steps); and "
        "every combination of assistants. Every variant trains the same optimiser steps; Δ columns carry a 95% interval "
        "(a t interval over seeds × test queries).",
        [
            ("out = pipeline.ablations(setup)", CODE),
            (
                "## Table 3: ablations\n\nΔ vs MTA4DPR = this variant minus full MTA4DPR (test nDCG@10, points, 95% "
                "interval over seeds × test queries): negative means removing the component hurt.",
                MD,
            ),
            table("table3"),
            (
                "## Table 7: every combination of assistants\n\nΔ vs none = this combination of assistants minus the student "
                "trained with no assistant (test nDCG@10, points, 95% interval over seeds × test queries): positive means "
                "the assistants helped.",
                MD,
            ),
            ("show(out['table7'], caption_of(results, 'table7') if out['table7'] is not None else 'Table 7')", CODE),
            ("plots.ablation_figure(out['table3'])", CODE),
            (
                "## Dose-response: assistants moved towards the teacher\n\nA mechanism test, outside the claim family "
                "and labelled so: at λ > 0 each assistant's training logits are λ·teacher + (1 − λ)·its own (each over "
                "its fitted temperature), so the assistants share the teacher's information and the independence rule "
                "does not hold. λ = 0 is MTA4DPR and λ = 1 the assistants-are-teacher control. Each λ is compared "
                "with teacher-only KD at the same total KL weight; x is the teacher's measured lead over the best "
                "assistant on re-ranking the training candidates. The prediction written before the first run is in "
                "`docs/regime.md`.",
                MD,
            ),
            (
                "show(out['dose_response'], caption_of(results, 'dose_response')) if out['dose_response'] is not None else "
                "print('this profile runs no dose-response sweep (study.dose_response is empty)')",
                CODE,
            ),
            ("plots.Plot(out['dose_response_figure']) if out['dose_response_figure'] is not None else None", CODE),
            (
                "# NBVAL_CHECK_OUTPUT\n# each value against params/expected/<profile>.yaml: expected ± a tolerance set above the spread measured across CPU kinds\nprint(expectations.check_tables(params['profile'], {'table3': out['table3'], 'table7': out['table7']}))",
                CHECKED,
            ),
        ],
    ),
    "06_scale_and_cost": (
        "Student scale and cost: Tables 6, 8 and 9",
        "Student sizes (Δ against no assistant, as the paper's ↑), training and data-construction time, "
        "index size, parameters and encoding time. Timings depend on the machine.",
        [
            ("out = pipeline.scale_and_cost(setup)", CODE),
            (
                "## Table 6: student sizes\n\n↑ vs no assistant and Δ vs no assistant = MTA4DPR with this student minus "
                "the no-assistant student of the same size (Δ: test nDCG@10, points, with its 95% interval over seeds × "
                "test queries); the paper's rows carry the paper's ↑, the same difference.",
                MD,
            ),
            table("table6"),
            ("## Tables 8 and 9: cost", MD),
            table("table8"),
            table("table9"),
            ("# NBVAL_CHECK_OUTPUT\nprint(list(out['table8'].method))", CHECKED),
        ],
    ),
    "07_summary": (
        "Summary",
        "Checks every claim of the paper on this profile. Each claim has a stable id and is one paired "
        "comparison; its 95% interval and p come from a t interval over seeds × test queries (the pairing by seed and "
        "query kept; Satterthwaite's df at the seed variance's upper bound, so 3 seeds count as few), and its verdict from "
        "Holm's correction over the profile's family of quality claims on the declared primary metric "
        "(`study.primary_metric`): *confirmed* or *contradicted* only when the adjusted p < 0.05, *inconclusive* otherwise. "
        "Claims that are linear combinations of others are marked (`combination of`). The family holds the paper's "
        "comparison (no assistant, β = 1) and two controls at MTA4DPR's total KL weight. Beside each: the paper's Δ, and "
        "the effect ratio and ΔRI (repro_eval's definitions) on the paper's own metrics. Writes `claims.csv`, "
        "`claims_secondary.csv` (MRR@10, R@50, R@1k), `per_query.csv.gz` and `FINDINGS.md` in `results/<profile>/`.",
        [
            ("out = pipeline.summary(setup)", CODE),
            ("out['forest']", CODE),
            (
                "## The claims\n\n`effect` (our Δ) = the claim's system minus the system named in `comparison`, with its 95% "
                "interval (low, high); `paper Δ` is the same difference in the paper. For the fusion row (KL, lower is closer) "
                "the claim holds when the effect is negative.",
                MD,
            ),
            table("claims", columns=MAIN_COLUMNS["claims"]),
            ("display(Markdown(out['findings']))", CODE),
            (
                "## Where the student sits\n\nThe paper's regime is a student that ends between its assistants and below its "
                "teacher (MS MARCO dev MRR@10: MTA4DPR 41.1 between CotMAE's 39.4 and RetroMAE's 41.6, below the teacher's 43.7). "
                "The ladder ranks our teacher, assistants, BM25 and students on the primary metric beside the paper's numbers; "
                "the figure sets each assistant combination's and student size's Δ vs no assistant (y, 95% interval) against how "
                "far its assistants sit above (x > 0) or below (x < 0) the no-assistant student, showing where the assistants "
                "help and where they hurt (`ladder.csv`, `gap_points.csv`, `gap.png` in `results/<profile>/`). "
                "Δ vs no assistant = the row's student with its assistants minus the no-assistant student.",
                MD,
            ),
            (
                "from mta4dpr_core.report import ladder\nladder_table, gap = ladder.write_ladder_and_gap(studies.results_dir(params), params)\n"
                "display(show(ladder_table, caption_of(results, 'ladder')))\ndisplay(show(gap, caption_of(results, 'gap_points')))\n"
                "ladder.plot_gap(gap)",
                CODE,
            ),
            (
                "# NBVAL_CHECK_OUTPUT\n# a verdict is stored only where its interval clears 0 by more than the spread measured across CPU kinds\nprint(len(out['claims']), 'claims')\nprint(expectations.check_tables(params['profile'], {'claims': out['claims']}))",
                CHECKED,
            ),
        ],
    ),
}


def build_notebook(name):
    """The notebook ``name`` (a key of :data:`NOTEBOOKS`) as an nbformat object; nothing is written."""
    title, text, cells = NOTEBOOKS[name]
    nb = nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (mta4dpr .venv)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells.append(
        nbf.v4.new_markdown_cell(
            f"# {name[:2]} · {title}\n\n{text}\n\nParameters come from `params/<profile>.yaml`; "
            "the runner (`make reproduce`) injects them with papermill. All logic lives in `mta4dpr_core`."
        )
    )
    parameters = nbf.v4.new_code_cell(PARAMETERS)
    parameters.metadata["tags"] = ["parameters"]
    nb.cells.append(parameters)
    nb.cells.append(nbf.v4.new_code_cell(SETUP))
    for source, kind in cells:  # kind: CHECKED (True) = checked by nbval, CODE (False) = code, MD = markdown
        nb.cells.append(nbf.v4.new_markdown_cell(source) if kind == MD else nbf.v4.new_code_cell(source))
    return nb


def build_notebooks() -> dict:
    """``{name: notebook}`` for every notebook, in memory."""
    return {name: build_notebook(name) for name in NOTEBOOKS}


def write_notebooks(out_dir=ROOT / "notebooks") -> list:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, nb in build_notebooks().items():
        path = out_dir / f"{name}.ipynb"
        nbf.write(nb, path)
        paths.append(path)
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "notebooks",
        help="directory to write the notebooks into (default: notebooks/)",
    )
    args = parser.parse_args(argv)
    paths = write_notebooks(args.out)
    print("wrote", len(paths), "notebooks")


if __name__ == "__main__":
    main()
