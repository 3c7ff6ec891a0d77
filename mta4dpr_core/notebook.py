"""Helpers for the notebooks' first cell: quiet logs, resolved params, the Setup."""
from __future__ import annotations

import logging
import os
import warnings

SECTIONS = ("seeds", "data", "models", "construction", "fusion", "selection", "loss", "training", "iterations", "evaluation",
            "study", "output")


def configure():
    """Library chatter and warnings down, so notebook outputs stay clean and diffable.

    Under the runner (``MTA4DPR_PROGRESS_FILE`` set) progress goes to that file, which the
    runner prints in the terminal; it never reaches the notebook's outputs. In JupyterLab a
    long cell shows widget progress bars (tqdm.auto) that vanish when it finishes; nbval and
    CI set ``MTA4DPR_PROGRESS=0``."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore")
    from .progress import route_logs

    route_logs()  # the core's INFO lines go to the runner's terminal, not into the outputs
    for name in ("transformers", "sentence_transformers", "bm25s", "faiss", "model2vec", "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except Exception:  # transformers missing is reported where it is needed
        pass


def setup_display(precision: int = 2):
    """Tables with ``precision`` decimals (not 73.573994), wide tables unwrapped, inline figures at a fixed dpi."""
    import pandas as pd

    pd.set_option("display.precision", precision)
    pd.set_option("display.max_columns", 40)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_colwidth", 80)
    try:
        import matplotlib

        matplotlib.rcParams["figure.dpi"] = 100
        matplotlib.rcParams["savefig.dpi"] = 100
        matplotlib.rcParams["savefig.bbox"] = "tight"  # inline figures: titles and labels never clipped
    except ImportError:
        pass


def setup_from_parameters(profile, **sections):
    """The papermill-injected sections (or, in JupyterLab, the profile file) -> validated params and Setup."""
    from .experiment import Setup
    from .models import check_models_available
    from .params import notebook_params

    configure()
    params = notebook_params(profile, **{k: v for k, v in sections.items() if k in SECTIONS})
    check_models_available(params)
    return params, Setup.from_params(params)
