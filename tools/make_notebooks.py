"""Write the thin notebooks in notebooks/ (run once after changing this file; outputs come from nbval runs)."""
import nbformat as nbf
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PARAMETERS = '''import os

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
'''
SETUP = '''from IPython.display import display, Markdown
from mta4dpr_core import expectations, pipeline, plots, studies, walkthrough
from mta4dpr_core.notebook import setup_display, setup_from_parameters

setup_display()  # tables with 2 decimals
params, setup = setup_from_parameters(profile, seeds=seeds, data=data, models=models, construction=construction, fusion=fusion,
                                      selection=selection, loss=loss, training=training, iterations=iterations,
                                      evaluation=evaluation, study=study, output=output)
print(f"profile {params['profile']}: {len(setup.collection.corpus)} passages, {len(setup.train)} training and {len(setup.test)} test queries")'''

NOTEBOOKS = {
    "01_data_prep": ("Data preparation", "Loads the collections and the offline models, builds iteration 1's data "
                     "(each assistant's top-k negatives, merged, re-ranked by Reciprocal Rank Fusion with c = 60, teacher scores), "
                     "and measures every scorer: `baselines` and `data_statistics`.",
                     [("out = pipeline.data_prep(setup)", False),
                      ("## Choosing the teacher on training queries\n\nEvery offline scorer and z-scored hybrid, measured on the "
                       "*training* queries (the test set is never used to choose). The rule takes the strongest candidate that shares "
                       "no member with any assistant (no assistant may be a teacher member, a copy of one, or distilled from one).", "markdown"),
                      ("display(out['teacher_selection'])", False),
                      ("display(out['statistics'])", False), ("display(out['baselines'])", False),
                      ("## One training query through data construction\n\nThe table recomputes, for one real training query, "
                       "each assistant's ranking, the merged candidates in Reciprocal Rank Fusion order, which of them are kept as the "
                       "k hard negatives, and the teacher's scores (the ranks are 1-based; a blank assistant rank means the passage was "
                       "not in that assistant's top k + #positives).", "markdown"),
                      ("data, eval_mask = studies.first_iteration_data(setup)\ntrace = walkthrough.trace_query(setup, data)\n"
                       "display(Markdown(trace.caption))\ndisplay(trace.styled())", False),
                      ("# NBVAL_CHECK_OUTPUT\nprint(out['statistics'].loc[out['statistics'].statistic.isin(['assistants', 'fused assistants', 'hard negatives per query (k)'])].to_string(index=False))\nprint(expectations.check_tables(params['profile'], {'teacher_selection': out['teacher_selection']}))", True)]),
    "02_fusion": ("Fusion", "Every subset of two or more assistants is a fused assistant (mean of their softmax distributions). "
                  "The paper observes that fused assistants sit closer to the teacher (smaller KL).",
                  [("out = pipeline.fusion(setup)", False), ("display(out['fusion_kl'])", False), ("plots.Plot(out['figure'])", False),
                   ("## Distributions over one query's candidates\n\nEach assistant's scores become a distribution by a softmax "
                    "at its own temperature; a fused assistant averages its members' distributions. Below: three training queries, "
                    "their candidates ordered by the teacher's probability, the assistants and the fused assistant closest to the "
                    "teacher on that query.", "markdown"),
                   ("data, _ = studies.first_iteration_data(setup)\nplots.distributions(walkthrough.query_distributions(setup, data, count=3))", False),
                   ("## KL between every pair\n\nMean KL(row ‖ column) over the training queries; the first row is the teacher "
                    "against each original and fused assistant (the quantity the selection minimises per batch).", "markdown"),
                   ("kl = walkthrough.kl_matrix(setup, data)\nplots.kl_heatmap(kl)", False),
                   ("# NBVAL_CHECK_OUTPUT\nprint(len(out['fusion_kl']), 'original and fused assistants')\nprint(expectations.check_tables(params['profile'], {'fusion_kl': out['fusion_kl']}))", True)]),
    "03_selection_study": ("Selection study: Table 5 and Figure 2", "The student trained with each selection method "
                           "(random, Spearman's footrule, RBO, KL), and how often each assistant was picked per batch under KL.",
                           [("out = pipeline.selection(setup)", False), ("display(out['table5'])", False), ("display(out['figure2_data'])", False),
                            ("plots.Plot(out['figure'])", False),
                            ("## Selection over training\n\nWhich original or fused assistant the KL selection picked, as a share "
                             "of the batches in each window of training steps (all iterations of the main run, seeds pooled).", "markdown"),
                            ("runs = walkthrough.main_runs(setup)\nshares = walkthrough.selection_shares(runs)\nplots.selection_shares(shares)", False),
                            ("# NBVAL_CHECK_OUTPUT\n# each value against params/expected/<profile>.yaml: expected ± a tolerance set above the spread measured across CPU kinds\nprint(expectations.check_tables(params['profile'], {'table5': out['table5']}))", True)]),
    "04_training": ("Training: Tables 1, 2 and 4", "MTA4DPR against the paper's \"No assistant\" row (teacher-only KD with the same iterations, steps and data "
                    "construction) and against teacher-only KD in one iteration of the same total steps; the untrained student, the "
                    "teacher and the assistants. Δ columns carry a 95% interval (two-level bootstrap over seeds × test queries).",
                    [("out = pipeline.training(setup)", False), ("display(out['table1'])", False), ("display(out['table2'])", False),
                     ("display(out['table4'])", False),
                     ("## Training curves\n\nThe loss terms of every step (α·contrastive + β·KL to the teacher + γ·KL to the "
                      "selected assistant) and the student's test metrics after each iteration of the main run.", "markdown"),
                     ("runs = walkthrough.main_runs(setup)\nplots.loss_curves(walkthrough.loss_terms(runs), walkthrough.final_losses(runs))", False),
                     ("metrics = walkthrough.metrics_per_iteration(runs)\ndisplay(metrics)\nplots.metrics_per_iteration(metrics)", False),
                     ("# NBVAL_CHECK_OUTPUT\n# each value against params/expected/<profile>.yaml: expected ± a tolerance set above the spread measured across CPU kinds\nprint(expectations.check_tables(params['profile'], {name: out[name] for name in ('table1', 'table2', 'table4')}))", True)]),
    "05_ablations": ("Ablations: Tables 3 and 7", "Without assistants (γ = 0), without fusion, without iterations (one iteration of the same total steps); and "
                     "every combination of assistants. Every variant trains the same optimiser steps; Δ columns carry a 95% interval "
                     "(two-level bootstrap over seeds × test queries).",
                     [("out = pipeline.ablations(setup)", False), ("display(out['table3'])", False), ("display(out['table7'])", False),
                      ("plots.ablation_figure(out['table3'])", False),
                      ("# NBVAL_CHECK_OUTPUT\n# each value against params/expected/<profile>.yaml: expected ± a tolerance set above the spread measured across CPU kinds\nprint(expectations.check_tables(params['profile'], {'table3': out['table3'], 'table7': out['table7']}))", True)]),
    "06_scale_and_cost": ("Student scale and cost: Tables 6, 8 and 9", "Student sizes (Δ against no assistant, as the paper's ↑), training and data-construction time, "
                          "index size, parameters and encoding time. Timings depend on the machine.",
                          [("out = pipeline.scale_and_cost(setup)", False), ("display(out['table6'])", False), ("display(out['table8'])", False),
                           ("display(out['table9'])", False), ("# NBVAL_CHECK_OUTPUT\nprint(list(out['table8'].method))", True)]),
    "07_summary": ("Summary", "Checks every claim of the paper on this profile. Each claim has a stable id and is one paired "
                   "comparison; its 95% interval comes from a two-level bootstrap over seeds × test queries (the pairing by seed and "
                   "query kept), its p from the same resamples, and its verdict from Holm's correction over the profile's family of "
                   "distinct quality claims on the declared primary metric (`study.primary_metric`): *confirmed* or *contradicted* only "
                   "when the adjusted p < 0.05, *borderline* when the verdict changes with the bootstrap's generator seed, *inconclusive* "
                   "otherwise. Beside each: the paper's Δ, the effect ratio and ΔRI (repro_eval's definitions). Writes `claims.csv`, "
                   "`claims_secondary.csv` (MRR@10, R@50, R@1k), `per_query.csv.gz` and `FINDINGS.md` in `results/<profile>/`.",
                   [("out = pipeline.summary(setup)", False), ("out['forest']", False), ("display(out['claims'])", False), ("display(Markdown(out['findings']))", False),
                    ("## Where the student sits\n\nThe paper's regime is a student that ends between its assistants and below its "
                     "teacher (MS MARCO dev MRR@10: MTA4DPR 41.1 between CotMAE's 39.4 and RetroMAE's 41.6, below the teacher's 43.7). "
                     "The ladder ranks our teacher, assistants, BM25 and students on the primary metric beside the paper's numbers; "
                     "the figure sets each assistant combination's and student size's Δ vs no assistant (y, 95% interval) against how "
                     "far its assistants sit above (x > 0) or below (x < 0) the no-assistant student, showing where the assistants "
                     "help and where they hurt (`ladder.csv`, `gap_points.csv`, `gap.png` in `results/<profile>/`).", "markdown"),
                    ("from mta4dpr_core import ladder\nladder_table, gap = ladder.write_ladder_and_gap(studies.results_dir(params), params)\n"
                     "display(ladder_table)\ndisplay(gap)\nladder.plot_gap(gap)", False),
                    ("# NBVAL_CHECK_OUTPUT\n# a verdict is stored only where its interval clears 0 by more than the spread measured across CPU kinds\nprint(len(out['claims']), 'claims')\nprint(expectations.check_tables(params['profile'], {'claims': out['claims']}))", True)]),
}

for name, (title, text, cells) in NOTEBOOKS.items():
    nb = nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (mta4dpr .venv)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells.append(nbf.v4.new_markdown_cell(f"# {name[:2]} · {title}\n\n{text}\n\nParameters come from `params/<profile>.yaml`; "
                                             "the runner (`make reproduce`) injects them with papermill. All logic lives in `mta4dpr_core`."))
    parameters = nbf.v4.new_code_cell(PARAMETERS)
    parameters.metadata["tags"] = ["parameters"]
    nb.cells.append(parameters)
    nb.cells.append(nbf.v4.new_code_cell(SETUP))
    for source, kind in cells:  # kind: True = checked by nbval, False = code, "markdown"
        nb.cells.append(nbf.v4.new_markdown_cell(source) if kind == "markdown" else nbf.v4.new_code_cell(source))
    nbf.write(nb, ROOT / "notebooks" / f"{name}.ipynb")
print("wrote", len(NOTEBOOKS), "notebooks")
