"""The core's layers, bottom up: a module imports only from its own layer or the ones below it.
Each layer is a subpackage of ``mta4dpr_core`` (``mta4dpr_core/<layer>/``); the entry point,
``runner``, stays at the top so that ``python -m mta4dpr_core.runner`` is the one command.

=============  ==========================================================================================
layer          what it holds
=============  ==========================================================================================
config         errors, the profile schema and its checks (``params``, ``independence``,
               ``warm_start_config``), model-name resolution, numeric precision, progress reporting, one thread per
               worker process
store          atomic, checksummed files; content hashes; the code digest that keys every cache
retrieval      collections, encoders, exact search, scorers, ir_measures evaluation, the tiny test models
method         the paper's algorithms: losses, fusion, selection, temperatures, data construction,
               the training loop, the [CLS] warm start, multi-GPU training
experiments    the prepared ``Setup``, Algorithm 1's iterations over it (``iteration``), the run grid,
               the teacher choice on training queries, export of a trained student
report         tables, statistics, claims, figures, the walk-through, the paper's numbers and display helpers:
               they read the run store (``experiments.runs``) and never train
entry          the notebook stages (``pipeline``: a stage's runs first, through the grid, then its tables) and the
               command line that runs the notebooks (``runner``)
=============  ==========================================================================================

``tests/test_layers.py`` parses every module (function-level imports included) and fails on an
import that points up, on a cycle, on a module that no layer names and on a module outside its
layer's folder. The digest that keys runs
and caches (``atomic.code_digest``) leaves out :data:`NOT_COMPUTING`: editing a caption, a plot or
the runner reuses every run.
"""

from __future__ import annotations

LAYERS: dict[str, frozenset[str]] = {
    "config": frozenset(
        {
            "errors",
            "ids",
            "layers",
            "schema",
            "kinds",
            "params",
            "typed",
            "independence",
            "warm_start_config",
            "models",
            "precision",
            "progress",
            "threads",
            "allocator",
        }
    ),
    "store": frozenset({"atomic"}),
    "retrieval": frozenset(
        {
            "data",
            "encoders",
            "search",
            "scorers",
            "metrics",
            "tiny_models",
            "pseudo_queries",
            "static_pooling",
            "philox_dropout",
        }
    ),
    "method": frozenset(
        {
            "losses",
            "fusion",
            "selection",
            "temperature",
            "construction",
            "training",
            "row_adam",
            "static_step",
            "warm_start",
            "distributed",
        }
    ),
    "experiments": frozenset(
        {
            "experiment",
            "runs",
            "training_inputs",
            "student_cost",
            "fixed_scorers",
            "iteration",
            "catalog",
            "grid",
            "teacher_choice",
            "export",
            "pilot",
        }
    ),
    "report": frozenset(
        {
            "paper",
            "statistics",
            "tables",
            "plots",
            "walkthrough",
            "studies",
            "claims",
            "ladder",
            "replication",
            "regime_map",
            "expectations",
            "notebook",
        }
    ),
    "entry": frozenset({"runner", "pipeline"}),
}
ORDER = {layer: rank for rank, layer in enumerate(LAYERS)}
LAYER_OF = {module: layer for layer, modules in LAYERS.items() for module in modules}

# Modules whose edits never change a computed figure: the report and entry layers, progress lines,
# export (it reads finished runs) and the allocator's settings (where memory comes from, not what is
# computed). Everything else is hashed into every run key and cache scope.
NOT_COMPUTING = LAYERS["report"] | LAYERS["entry"] | frozenset({"progress", "export", "allocator"})
