"""Run every notebook of a profile in order with papermill.

    python -m mta4dpr_core.runner --profile mini            # notebooks -> runs/mini/notebooks/
    python -m mta4dpr_core.runner --profile smoke --only 01_data_prep 02_fusion
    python -m mta4dpr_core.runner --profile mini --no-notebooks   # same stages, no Jupyter

Tables and figures land in ``results/<profile>/``. A notebook that finished with
the same notebook source, params and core code is skipped on a rerun (its
``.done.json`` marker records a hash of the three), so rerunning after a crash
continues with the first unfinished notebook; inside a notebook, finished MTA4DPR
runs, iterations, training checkpoints, encodings and teacher scores are reused.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import time
from pathlib import Path

from .atomic import atomic_write_json, read_json
from .errors import Mta4dprError
from .params import REPO_ROOT, load_params, profile_path, resolve_path

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
KERNEL = os.environ.get("MTA4DPR_KERNEL", "python3")


def core_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted((REPO_ROOT / "mta4dpr_core").glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def notebook_names():
    return sorted(p.stem for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def run_profile(profile_file, only=None, notebooks=True, force=False, log=print):
    params = load_params(profile_file)
    profile = params["profile"]
    runs = resolve_path(params["output"]["runs_dir"]) / profile / "notebooks"
    results = resolve_path(params["output"]["results_dir"]) / profile
    names = [n for n in notebook_names() if not only or n in only or n.split("_", 1)[0] in only]
    if only and not names:
        raise Mta4dprError(f"--only {only}: no such notebook; known: {notebook_names()}")
    timings = {}
    code = core_digest()
    for name in names:
        source = NOTEBOOK_DIR / f"{name}.ipynb"
        key = hashlib.sha256(json.dumps([source.read_text(), params, code, notebooks], sort_keys=True, default=str).encode()).hexdigest()
        marker = runs / f"{name}.done.json"
        done = read_json(marker)
        if not force and done is not None and done.get("key") == key:
            log(f"[{profile}] {name}: finished earlier, skipped")
            timings[name] = done.get("seconds")
            continue
        log(f"[{profile}] {name}: running")
        started = time.perf_counter()
        if notebooks:
            import papermill

            runs.mkdir(parents=True, exist_ok=True)
            sections = {k: v for k, v in params.items()}
            papermill.execute_notebook(str(source), str(runs / f"{name}.ipynb"), parameters=sections, kernel_name=KERNEL,
                                       cwd=str(NOTEBOOK_DIR), progress_bar=False, log_output=False)
        else:
            from .experiment import Setup
            from .pipeline import STAGES

            STAGES[name](Setup.from_params(params))
        seconds = round(time.perf_counter() - started, 1)
        timings[name] = seconds
        atomic_write_json(marker, {"key": key, "seconds": seconds})
        log(f"[{profile}] {name}: done in {seconds} s")
    from .studies import write_manifest

    total = round(sum(v for v in timings.values() if v), 1)
    write_manifest(params, {**timings, "total": total}, {"notebooks": notebooks})
    log(f"[{profile}] all done: {total} s of notebook time; results in {results}")
    return timings


def one_line(message) -> str:
    """A multi-line message (e.g. ModelNotFoundError's list of places tried) as one line."""
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="mini", help="name of params/<profile>.yaml, or a path to a YAML file")
    parser.add_argument("--only", nargs="*", help="notebook names or numbers to run (default: all)")
    parser.add_argument("--no-notebooks", action="store_true", help="run the stages directly, without papermill")
    parser.add_argument("--force", action="store_true", help="rerun notebooks even if finished")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    path = Path(args.profile) if args.profile.endswith((".yaml", ".yml")) else profile_path(args.profile)
    try:
        run_profile(path, args.only, notebooks=not args.no_notebooks, force=args.force)
    except Mta4dprError as error:
        print(f"error: {one_line(error)}", file=sys.stderr)
        return 2
    except Exception as error:  # papermill wraps notebook errors; show the cause, not a traceback
        name = type(error).__name__
        if name == "PapermillExecutionError":
            print(f"error: a notebook failed: {getattr(error, 'ename', '')}: {one_line(getattr(error, 'evalue', error))}", file=sys.stderr)
            return 1
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
