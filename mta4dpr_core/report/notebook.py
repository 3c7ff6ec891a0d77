"""Helpers for the notebooks: quiet logs, resolved params, the Setup (first cell) and clean table display (:func:`show`)."""

from __future__ import annotations

import hashlib
import html
import logging
import math
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..config.models import check_models_available
from ..config.params import REPO_ROOT, notebook_params
from ..config.progress import route_logs

SECTIONS = (
    "seeds",
    "data",
    "models",
    "construction",
    "fusion",
    "selection",
    "loss",
    "training",
    "iterations",
    "evaluation",
    "study",
    "output",
)


def configure():
    """Library chatter and warnings down, so notebook outputs stay clean and diffable.

    Under the runner (``MTA4DPR_PROGRESS_FILE`` set) progress goes to that file, which the
    runner prints in the terminal; it never reaches the notebook's outputs. In JupyterLab a
    long cell shows widget progress bars (tqdm.auto) that vanish when it finishes; nbval and
    CI set ``MTA4DPR_PROGRESS=0``."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore")

    route_logs()  # the core's INFO lines go to the runner's terminal, not into the outputs
    for name in ("transformers", "sentence_transformers", "bm25s", "faiss", "model2vec", "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.ERROR)
    quiet_transformers()


def quiet_transformers():
    """transformers' warnings (its "LOAD REPORT" tables) and weight-loading bars off in this process, without
    importing it where it is not loaded yet: most kernels read cached encodings and never load it (5-7 s of
    imports on 2 cores). Then its logging reads ``TRANSFORMERS_VERBOSITY`` when it sets itself up, and its bars
    follow huggingface_hub's switch, as ``disable_progress_bar`` would set them."""
    os.environ["TRANSFORMERS_VERBOSITY"] = "error"
    try:
        if "transformers" in sys.modules:
            from transformers.utils import logging as hf_logging  # noqa: PLC0415 (loaded already)

            hf_logging.set_verbosity_error()
            hf_logging.disable_progress_bar()
        else:
            from huggingface_hub.utils import disable_progress_bars  # noqa: PLC0415 (lazy: 10 ms)

            disable_progress_bars()
    except Exception:  # transformers missing is reported where it is needed
        pass


def setup_display(precision: int = 2):
    """Tables with ``precision`` decimals (not 73.573994), wide tables unwrapped, inline figures at a fixed dpi."""

    pd.set_option("display.precision", precision)
    pd.set_option("display.max_columns", 40)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_colwidth", 80)
    try:
        import matplotlib  # noqa: PLC0415 (lazy: matplotlib not loaded by this module)

        matplotlib.rcParams["figure.dpi"] = 100
        matplotlib.rcParams["savefig.dpi"] = 100
        matplotlib.rcParams["savefig.bbox"] = "tight"  # inline figures: titles and labels never clipped
    except ImportError:
        pass


def setup_from_parameters(profile, **sections):
    """The papermill-injected sections (or, in JupyterLab, the profile file) -> validated params and Setup."""
    from ..experiments.experiment import Setup  # noqa: PLC0415 (lazy: ir_measures, numba, torch not loaded by this module)

    configure()
    params = notebook_params(profile, **{k: v for k, v in sections.items() if k in SECTIONS})
    check_models_available(params)
    return params, Setup.from_params(params)


# ---- clean table display ----------------------------------------------------------------------

STD_SUFFIX = " ±"
NA_TEXT = "–"


def caption_of(results_dir, name):
    """The caption of ``<results_dir>/<name>.md``: its first line without the ``## `` (what the table
    writer, :func:`mta4dpr_core.report.tables.write_table`, puts there: data, seeds, metric); None when the
    file is missing or has no caption line."""

    path = Path(results_dir) / f"{name}.md"
    try:
        with path.open(encoding="utf-8") as handle:
            first = handle.readline().strip()
    except OSError:
        return None
    return (first[3:].strip() or None) if first.startswith("## ") else None


def _is_missing(value) -> bool:
    try:
        missing = pd.isna(value)
    except (TypeError, ValueError):
        return False
    return bool(missing) if not hasattr(missing, "__len__") else False


def _float_formatter(values, decimals: int):
    """One fixed format for a float column: integers when every value is integer-valued, else
    ``decimals`` places, more where every non-zero value would print as zero (two significant digits
    of the largest); never scientific notation, never ``-0.00``."""

    finite = np.asarray(
        [v for v in values if isinstance(v, (int, float, np.integer, np.floating)) and math.isfinite(v)],
        dtype=np.float64,
    )
    if len(finite) and np.all(finite == np.round(finite)):
        places = 0
    else:
        places = decimals
        nonzero = np.abs(finite[finite != 0])
        if len(nonzero) and nonzero.max() < 0.5 * 10**-decimals:
            places = min(12, max(decimals, int(-math.floor(math.log10(nonzero.max()))) + 1))

    def format_value(value):
        if _is_missing(value):
            return NA_TEXT
        if isinstance(value, (float, np.floating)) and not math.isfinite(value):
            return "∞" if value > 0 else "−∞"
        text = f"{float(value):.{places}f}"
        return text[1:] if text.startswith("-") and float(text) == 0 else text

    return format_value


def _column_text(series, decimals: int) -> list:
    """A column as display strings (see :func:`show`)."""

    values = series.tolist()
    if pd.api.types.is_bool_dtype(series.dtype):
        return ["✓" if v is True or v is np.True_ else ("" if not _is_missing(v) else NA_TEXT) for v in values]
    if pd.api.types.is_integer_dtype(series.dtype):
        return [NA_TEXT if _is_missing(v) else str(int(v)) for v in values]
    if pd.api.types.is_float_dtype(series.dtype):
        return [_float_formatter(values, decimals)(v) for v in values]
    numbers = [v for v in values if isinstance(v, (float, np.floating)) and not isinstance(v, bool)]
    format_number = _float_formatter(numbers, decimals) if numbers else None
    out = []
    for v in values:
        if isinstance(v, (bool, np.bool_)):
            out.append("✓" if v else "")
        elif _is_missing(v):
            out.append(NA_TEXT)
        elif isinstance(v, (float, np.floating)):
            out.append(format_number(v))
        else:
            out.append(str(v))
    return out


def _is_numeric_column(series) -> bool:
    return pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)


class Table:
    """A table formatted for reading: what :func:`show` returns.

    ``text`` holds the display strings (a DataFrame without index); ``styler`` the pandas Styler
    the notebook renders; the plain-text form (``repr``) is the caption, the table without index
    and the truncation note, for text-only front ends and logs."""

    def __init__(self, text, caption=None, note=None, numeric=()):
        self.text, self.caption, self.note, self.numeric = text, caption, note, list(numeric)

    @property
    def styler(self):
        lines = [html.escape(part) for part in (self.caption, self.note) if part]
        numeric = [c for c in self.text.columns if c in self.numeric]
        others = [c for c in self.text.columns if c not in self.numeric]

        # a stable element id (from the content), so re-executed notebooks diff cleanly
        uuid = hashlib.sha1((str(self.caption) + self.text.to_csv(index=False)).encode()).hexdigest()[:10]
        styler = self.text.style.set_uuid(uuid).hide(axis="index")
        if numeric:
            styler = styler.set_properties(subset=numeric, **{"text-align": "right", "white-space": "nowrap"})
        if others:
            styler = styler.set_properties(subset=others, **{"text-align": "left"})
        styler = styler.set_table_styles(
            [
                {"selector": "caption", "props": "caption-side: top; text-align: left; padding-bottom: 4px;"},
                {"selector": "th", "props": "text-align: center;"},
            ],
            overwrite=False,
        )
        if lines:
            styler = styler.set_caption("<br>".join(lines))
        return styler

    def to_html(self) -> str:
        return self.styler.to_html()

    def _repr_html_(self):
        return self.to_html()

    def __repr__(self):
        parts = [self.caption] if self.caption else []
        parts.append(self.text.to_string(index=False) if len(self.text.columns) else "(no columns)")
        if self.note:
            parts.append(self.note)
        return "\n".join(parts)

    def __len__(self):
        return len(self.text)


class _Note:
    """A line of text shown in place of a table that does not exist on this profile."""

    def __init__(self, text):
        self.text = text

    def _repr_markdown_(self):
        return f"*{self.text}*"

    def __repr__(self):
        return self.text


def _display_path(file) -> str:
    path = Path(file)
    try:
        return str(path.resolve().relative_to(Path(REPO_ROOT).resolve()))
    except ValueError:
        return str(file)


def show(df, caption=None, decimals: int = 2, max_rows=None, file=None, merge_std: bool = True, columns=None):
    """``df`` for reading in a notebook: a :class:`Table` (rendered through a pandas Styler).

    - the index is hidden and columns that are NaN in every row are dropped;
    - ``X`` and ``X ±`` (mean and std over seeds) become one column ``mean ± std``, as in the
      results' Markdown files (``merge_std``);
    - a float column whose values are all integer-valued (seeds, dimensions, counts) prints as
      integers, the others with ``decimals`` places (more only where every non-zero value would
      print as 0); never scientific notation; missing values print as "–", booleans as ✓;
    - ``caption`` (e.g. :func:`caption_of` the table's ``.md``) is shown above the table;
    - ``max_rows``: only the first rows, with the note "first N of M rows; full table in <file>";
    - ``columns``: a main view of a wide table (the ones present, each with its ``±`` partner), with the note
      "N of M columns; every column in <file>": wide tables ran off a 1,400-pixel page.
    """

    if df is None:
        return _Note(f"{caption + ': ' if caption else ''}not computed on this profile")
    frame = pd.DataFrame(df).reset_index(drop=True)
    frame = frame.loc[:, [not frame[c].isna().all() for c in frame.columns]] if len(frame) else frame
    notes = []
    if columns is not None:
        every = [c for c in frame.columns if not str(c).endswith(STD_SUFFIX)]
        main = [c for c in columns if c in frame.columns]
        frame = frame[[c for c in frame.columns if c in main or str(c).removesuffix(STD_SUFFIX) in main]]
        if len(main) < len(every):
            notes.append(
                f"{len(main)} of {len(every)} columns; every column in "
                + (_display_path(file) if file is not None else "the table's CSV")
            )
    text, numeric = {}, []
    for column in frame.columns:
        name = str(column)
        if merge_std and name.endswith(STD_SUFFIX) and name[: -len(STD_SUFFIX)] in frame.columns:
            continue
        values = _column_text(frame[column], decimals)
        std_column = f"{name}{STD_SUFFIX}"
        if merge_std and std_column in frame.columns and _is_numeric_column(frame[column]):
            stds = _column_text(frame[std_column], decimals)
            values = [v if s == NA_TEXT or v == NA_TEXT else f"{v} ± {s}" for v, s in zip(values, stds, strict=True)]
        text[name] = values
        if _is_numeric_column(frame[column]):
            numeric.append(name)
    shown = pd.DataFrame(text, columns=list(text), index=range(len(frame)))
    if max_rows is not None and len(shown) > int(max_rows):  # formats above come from the full table
        notes.append(
            f"first {int(max_rows)} of {len(shown)} rows"
            + (f"; full table in {_display_path(file)}" if file is not None and columns is None else "")
        )
        shown = shown.head(int(max_rows))
    return Table(shown, caption=caption, note="; ".join(notes) or None, numeric=numeric)
