"""How far a profile's tables move across CPU kinds, measured on one machine by forcing its capability.

PyTorch picks its CPU kernels by capability, and that choice can be forced: ``ATEN_CPU_CAPABILITY``
(ATen's own kernels), ``ONEDNN_MAX_CPU_ISA`` (oneDNN) and ``MKL_ENABLE_INSTRUCTIONS`` (MKL's BLAS).
``run`` copies the working tree once per capability and runs the profile cold in each copy (own
caches, own runs); ``compare`` reads the copies' tables and writes, per table and column, the
largest absolute difference between any two capabilities (``cpu_spread.csv`` / ``.md``), and
the same per row (``cpu_spread_rows.csv``).
Timing columns are left out: they measure the machine, not the method.

    .venv/bin/python tools/cpu_spread.py run --profile smoke --workdir /tmp/spread
    .venv/bin/python tools/cpu_spread.py compare --profile smoke --workdir /tmp/spread --out results/smoke

Not emulated: onnxruntime's and OpenBLAS's own kernel dispatch (no switch that this tool sets), so a
real AVX2-only machine can differ a little more; the tolerances built on this table keep a margin.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
CAPABILITIES = {
    "native": {},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "default": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
}
TIMING_WORDS = ("second", "time", "hours", "minutes", "ms", "overhead", "share")


def run(profile: str, workdir: Path, capabilities):
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in capabilities:
        copy = workdir / name
        shutil.rmtree(copy, ignore_errors=True)
        for file in files:
            if not file.startswith("results/") and (ROOT / file).is_file():
                (copy / file).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / file, copy / file)
        (copy / "results").mkdir(exist_ok=True)
        shared = workdir / "shared"  # data.root defaults to ../shared/data beside the checkout
        if not shared.exists():
            shared.symlink_to((ROOT.parent / "shared").resolve())
        env = {**os.environ, **CAPABILITIES[name], "MTA4DPR_PROGRESS": "0"}
        started = time.time()
        with open(copy / "run.log", "w") as log:
            code = subprocess.run(
                [sys.executable, "-m", "mta4dpr_core.runner", "--profile", profile, "--no-notebooks"],
                cwd=copy,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            ).returncode
        print(f"{name}: exit {code} in {time.time() - started:.0f} s", flush=True)
        if code:
            sys.exit(f"{copy / 'run.log'}: the {name} run failed")


def _is_number(series):
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def spread(profile: str, workdir: Path, capabilities) -> pd.DataFrame:
    """Per table and numeric column: the largest |difference| between any two capabilities, and where."""
    results = {name: workdir / name / "results" / profile for name in capabilities}
    records, row_records = [], []
    first_index = lambda tables: [k for k in next(iter(tables.values())).index if not isinstance(k, float)]  # noqa: E731
    for path in sorted(results[capabilities[0]].glob("*.csv")):
        tables = {
            name: pd.read_csv(directory / path.name)
            for name, directory in results.items()
            if (directory / path.name).exists()
        }
        first = tables[capabilities[0]]
        keys = [c for c in first.columns if not _is_number(first[c]) and c not in ("low", "high", "effect")]
        numeric = [c for c in first.columns if _is_number(first[c]) and not any(w in c.lower() for w in TIMING_WORDS)]
        if path.stem == "claims" and "metric" in first:  # the selection-overhead row is a timing
            tables = {n: t[~t["metric"].astype(str).str.contains("time", na=False)] for n, t in tables.items()}
            keys = ["claim"]
        indexed = {n: t.set_index(keys) if keys else t for n, t in tables.items()}
        for column in numeric:
            worst, where, pair = 0.0, "", ""
            for a, b in itertools.combinations(indexed, 2):
                left, right = indexed[a], indexed[b]
                shared = left.index.intersection(right.index)
                difference = (
                    pd.to_numeric(left.loc[shared, column], errors="coerce")
                    - pd.to_numeric(right.loc[shared, column], errors="coerce")
                ).abs()
                if difference.notna().any() and difference.max() > worst:
                    worst, where, pair = float(difference.max()), str(difference.idxmax()), f"{a} vs {b}"
            records.append(
                {
                    "table": path.stem,
                    "column": column,
                    "largest difference": round(worst, 4),
                    "row": where,
                    "between": pair,
                }
            )
            for key in first_index(indexed):
                moved = max(
                    (
                        abs(float(indexed[a].loc[key, column]) - float(indexed[b].loc[key, column]))
                        for a, b in itertools.combinations(indexed, 2)
                        if key in indexed[a].index
                        and key in indexed[b].index
                        and pd.notna(indexed[a].loc[key, column])
                        and pd.notna(indexed[b].loc[key, column])
                    ),
                    default=0.0,
                )
                row_records.append(
                    {"table": path.stem, "row": str(key), "column": column, "difference": round(moved, 4)}
                )
        if path.stem == "claims" and "verdict" in first:
            verdicts = {n: t.set_index("claim")["verdict"] for n, t in tables.items()}
            flips = sorted(
                {
                    c
                    for a, b in itertools.combinations(verdicts, 2)
                    for c in verdicts[a].index
                    if c in verdicts[b].index and verdicts[a][c] != verdicts[b][c]
                }
            )
            records.append(
                {
                    "table": "claims",
                    "column": "verdict",
                    "largest difference": len(flips),
                    "row": "; ".join(flips),
                    "between": "verdicts that differ",
                }
            )
    return pd.DataFrame(records), pd.DataFrame(row_records)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["run", "compare"])
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/spread"))
    parser.add_argument("--capabilities", nargs="+", default=list(CAPABILITIES), choices=list(CAPABILITIES))
    parser.add_argument("--out", type=Path, default=None, help="write cpu_spread.csv and cpu_spread.md here")
    args = parser.parse_args(argv)
    if args.action == "run":
        args.workdir.mkdir(parents=True, exist_ok=True)
        run(args.profile, args.workdir, args.capabilities)
        return
    sys.path.insert(0, str(ROOT))
    from mta4dpr_core.report.tables import write_table

    table, rows = spread(args.profile, args.workdir, args.capabilities)
    print(table.to_string(index=False))
    if args.out:
        described = ", ".join(
            f"{n} ({' '.join(f'{k}={v}' for k, v in CAPABILITIES[n].items()) or 'the machine’s own'})"
            for n in args.capabilities
        )
        write_table(
            table,
            args.out,
            "cpu_spread",
            f"Largest difference per table and column across forced CPU capabilities "
            f"on one machine, the `{args.profile}` profile run cold under each: {described}",
        )
        # per row: which rows move at all (a fixed scorer's never do; a trained student's do)
        rows.to_csv(args.out / "cpu_spread_rows.csv", index=False, float_format="%.4f")


if __name__ == "__main__":
    main()
