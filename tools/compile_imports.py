"""Write the bytecode of the modules a run imports, and only those (``make setup`` calls it).

``pip install`` byte-compiles every file it installs, one at a time: 46 of its 106 s here, mostly
for modules no run imports (transformers' 400 model folders, torch's compiler and test suites). With
``PYTHONDONTWRITEBYTECODE`` set, as on our machines, a module without bytecode is compiled again in every
process that imports it: about 10 s more per notebook kernel for torch and transformers. So
``make setup`` installs with ``--no-compile`` and this script imports what the runner, the notebook
kernels, their grid workers and the tests import, with bytecode writing switched on for this process
only. A module imported later that is not listed here still works: it is compiled in memory, as before.

    python tools/compile_imports.py          # prints how many modules now have bytecode
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import time

# the third-party modules the runner, the kernels and the tests import (the core's own follow below)
THIRD_PARTY = [
    "torch",
    "torch.distributed.run",
    "transformers",
    "transformers.models.bert.modeling_bert",
    "transformers.models.bert.tokenization_bert",
    "sentence_transformers",
    "tokenizers",
    "onnxruntime",
    "faiss",
    "bm25s",
    "Stemmer",
    "wordllama",
    "model2vec",
    "model2vec.distill",
    "ir_measures",
    "pytrec_eval",
    "repro_eval",
    "numpy",
    "scipy.stats",
    "pandas",
    "pyarrow.parquet",
    "matplotlib.pyplot",
    "matplotlib.backends.backend_agg",
    "yaml",
    "tqdm.auto",
    "papermill",
    "nbclient",
    "nbformat",
    "jupyter_client",
    "ipykernel.kernelapp",
    "IPython",
    "ipywidgets",
    "tabulate",
    "pytest",
    "nbval.plugin",
]


def main() -> int:
    sys.dont_write_bytecode = False  # this process only: PYTHONDONTWRITEBYTECODE stays as the user set it
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    failed = []
    for name in THIRD_PARTY:
        try:
            importlib.import_module(name)
        except Exception as error:  # an optional module missing here must not fail the install
            failed.append(f"{name} ({type(error).__name__})")
    import mta4dpr_core

    for module in pkgutil.walk_packages(mta4dpr_core.__path__, "mta4dpr_core."):
        try:
            importlib.import_module(module.name)
        except Exception as error:
            failed.append(f"{module.name} ({type(error).__name__})")
    print(
        f"compile_imports: {len(sys.modules)} modules imported in {time.perf_counter() - started:.0f} s"
        + (f"; not importable here: {', '.join(failed)}" if failed else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
