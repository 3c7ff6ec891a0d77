"""Helpers for the notebooks' first cell: quiet logs, resolved params, the Setup."""
from __future__ import annotations

import logging
import os
import warnings

SECTIONS = ("seeds", "data", "models", "construction", "fusion", "selection", "loss", "training", "iterations", "evaluation",
            "study", "output")


def configure():
    """Progress bars off and library chatter down, so notebook outputs stay diffable."""
    os.environ.setdefault("MTA4DPR_PROGRESS", "0")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore")
    for name in ("transformers", "sentence_transformers", "bm25s", "faiss", "model2vec", "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except Exception:  # transformers missing is reported where it is needed
        pass


def setup_from_parameters(profile, **sections):
    """The papermill-injected sections (or, in JupyterLab, the profile file) -> validated params and Setup."""
    from .experiment import Setup
    from .params import notebook_params

    configure()
    params = notebook_params(profile, **{k: v for k, v in sections.items() if k in SECTIONS})
    return params, Setup.from_params(params)
