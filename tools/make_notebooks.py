"""Write the thin notebooks in notebooks/ (run once after changing this file; outputs come from nbval runs)."""
import nbformat as nbf
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PARAMETERS = '''profile = "smoke"  # params/<profile>.yaml; papermill -f params/<profile>.yaml injects the sections below
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
from mta4dpr_core import pipeline
from mta4dpr_core.notebook import setup_from_parameters

params, setup = setup_from_parameters(profile, seeds=seeds, data=data, models=models, construction=construction, fusion=fusion,
                                      selection=selection, loss=loss, training=training, iterations=iterations,
                                      evaluation=evaluation, study=study, output=output)
print(f"profile {params['profile']}: {len(setup.collection.corpus)} passages, {len(setup.train)} training and {len(setup.test)} test queries")'''

NOTEBOOKS = {
    "01_data_prep": ("Data preparation", "Loads the collections and the offline models, builds iteration 1's data "
                     "(each assistant's top-k negatives, merged, re-ranked by Reciprocal Rank Fusion with c = 60, teacher scores), "
                     "and measures every scorer: `baselines` and `data_statistics`.",
                     [("out = pipeline.data_prep(setup)", False), ("display(out['statistics'])", False), ("display(out['baselines'])", False),
                      ("# NBVAL_CHECK_OUTPUT\nprint(out['statistics'].loc[out['statistics'].statistic.isin(['assistants', 'fused assistants', 'hard negatives per query (k)'])].to_string(index=False))", True)]),
    "02_fusion": ("Fusion", "Every subset of two or more assistants is a fused assistant (mean of their softmax distributions). "
                  "The paper observes that fused assistants sit closer to the teacher (smaller KL).",
                  [("out = pipeline.fusion(setup)", False), ("display(out['fusion_kl'])", False), ("out['figure']", False),
                   ("# NBVAL_CHECK_OUTPUT\nprint(len(out['fusion_kl']), 'original and fused assistants')", True)]),
    "03_selection_study": ("Selection study: Table 5 and Figure 2", "The student trained with each selection method "
                           "(random, Spearman's footrule, RBO, KL), and how often each assistant was picked per batch under KL.",
                           [("out = pipeline.selection(setup)", False), ("display(out['table5'])", False), ("display(out['figure2_data'])", False),
                            ("out['figure']", False), ("# NBVAL_CHECK_OUTPUT\nprint(list(out['table5'].selection))", True)]),
    "04_training": ("Training: Tables 1, 2 and 4", "The main MTA4DPR run (all seeds), plain KD, the untrained student, the teacher and the assistants.",
                    [("out = pipeline.training(setup)", False), ("display(out['table1'])", False), ("display(out['table2'])", False),
                     ("display(out['table4'])", False), ("# NBVAL_CHECK_OUTPUT\nprint(list(out['table1'].model))", True)]),
    "05_ablations": ("Ablations: Tables 3 and 7", "Without assistants (γ = 0), without fusion, without iterations; and every combination of assistants.",
                     [("out = pipeline.ablations(setup)", False), ("display(out['table3'])", False), ("display(out['table7'])", False),
                      ("# NBVAL_CHECK_OUTPUT\nprint(list(out['table3'].variant))", True)]),
    "06_scale_and_cost": ("Student scale and cost: Tables 6, 8 and 9", "Student sizes, training and data-construction time against plain KD, "
                          "index size, parameters and encoding time. Timings depend on the machine.",
                          [("out = pipeline.scale_and_cost(setup)", False), ("display(out['table6'])", False), ("display(out['table8'])", False),
                           ("display(out['table9'])", False), ("# NBVAL_CHECK_OUTPUT\nprint(list(out['table8'].method))", True)]),
    "07_summary": ("Summary", "Checks each claim of the paper on this profile and writes `FINDINGS.md` next to the tables in `results/<profile>/`.",
                   [("out = pipeline.summary(setup)", False), ("display(out['claims'])", False), ("display(Markdown(out['findings']))", False),
                    ("# NBVAL_CHECK_OUTPUT\nprint(list(out['claims'].claim))", True)]),
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
    for source, _checked in cells:
        nb.cells.append(nbf.v4.new_code_cell(source))
    nbf.write(nb, ROOT / "notebooks" / f"{name}.ipynb")
print("wrote", len(NOTEBOOKS), "notebooks")
