"""Progress of long steps: one-line reports and tqdm bars that reach the terminal, never checked outputs.

Where the lines go:

- ``MTA4DPR_PROGRESS=0`` (CI, nbval, tests): nowhere; bars are disabled.
- ``MTA4DPR_PROGRESS_FILE`` set (the runner sets it for every notebook): appended to that file,
  one line each; the runner tails it and prints the lines with the notebook, elapsed time and ETA.
  Papermill does not stream a kernel's output, and nothing lands in the executed notebook.
- in a Jupyter kernel (JupyterLab): widget bars in the cell (tqdm.auto); report lines on stderr.
- otherwise (a terminal, a script): stderr; bars are ordinary tqdm bars.

Usage::

    from mta4dpr_core.config import progress
    progress.report(f"mta4dpr seed 13 iteration 1/2: building data")
    for batch in progress.progress_bar(batches, desc="encode corpus", total=len(batches)):
        ...
"""

from __future__ import annotations

import logging
import os
import sys
import time

from tqdm import tqdm as _tqdm

ENABLE_VARIABLE = "MTA4DPR_PROGRESS"
FILE_VARIABLE = "MTA4DPR_PROGRESS_FILE"
FILE_INTERVAL_SECONDS = 10.0  # a bar writes at most one line per this many seconds into the progress file
CLOSE_REPORT_SECONDS = 5.0  # a bar that ran at least this long reports its final count when it closes


def enabled() -> bool:
    return os.environ.get(ENABLE_VARIABLE, "1") != "0"


def progress_file():
    """The file the runner tails, or None."""
    path = os.environ.get(FILE_VARIABLE)
    return path or None


def _main_rank() -> bool:
    return os.environ.get("RANK", "0") == "0"


def _write_line(message: str):
    path = progress_file()
    if path:
        try:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(message.replace("\n", " ") + "\n")
            return
        except OSError:  # the runner's file went away: fall back to stderr
            pass
    print(message, file=sys.stderr, flush=True)


def report(message: str):
    """One progress line (e.g. which run is working), or nothing when progress is off."""
    if enabled() and _main_rank():
        _write_line(str(message))


class _LineFile:
    """tqdm's output turned into whole lines for the progress file (tqdm writes '\\r' refreshes)."""

    def write(self, text):
        text = text.replace("\r", "").strip()
        if text:
            _write_line(text)

    def flush(self):
        pass


class _Bar(_tqdm):
    def close(self):
        if not self.disable and getattr(self, "_report_close", False) and not getattr(self, "_closed_reported", False):
            self._closed_reported = True
            elapsed = time.time() - self.start_t
            if elapsed >= CLOSE_REPORT_SECONDS:
                total = f"/{self.total}" if self.total else ""
                postfix = f" ({self.postfix})" if self.postfix else ""
                _write_line(f"{self.desc}: {self.n}{total} done in {elapsed:.0f} s{postfix}")
        super().close()


def progress_bar(iterable=None, desc="", total=None, disable=False, **kwargs):
    """A tqdm bar over ``iterable``: in the terminal a normal bar, under the runner a line every
    few seconds in the progress file, disabled with MTA4DPR_PROGRESS=0 (never in checked outputs).
    Use ``bar.set_postfix(loss=...)`` as with tqdm."""
    off = disable or not enabled() or not _main_rank()
    if progress_file() and not off:
        # delay: short bars (a few batches) stay silent; long ones write a line every FILE_INTERVAL_SECONDS
        options = dict(
            file=_LineFile(),
            mininterval=FILE_INTERVAL_SECONDS,
            maxinterval=FILE_INTERVAL_SECONDS * 3,
            delay=CLOSE_REPORT_SECONDS,
            ncols=100,
            ascii=True,
            leave=False,
            dynamic_ncols=False,
        )
        options.update(kwargs)
        bar = _Bar(iterable, desc=desc, total=total, **options)
        bar._report_close = True
        return bar
    if not off and _in_jupyter_kernel():
        # JupyterLab: a widget bar in the cell (tqdm.auto), gone when the cell finishes
        from tqdm.auto import tqdm as auto_bar  # noqa: PLC0415 (lazy: tqdm.auto probes for Jupyter widgets; only a notebook needs it)

        return auto_bar(iterable, desc=desc, total=total, leave=False, **kwargs)
    options = dict(leave=False, file=sys.stderr)
    options.update(kwargs)
    return _Bar(iterable, desc=desc, total=total, disable=off, **options)


def _in_jupyter_kernel() -> bool:
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


def quiet_libraries():
    """bm25s sets its own logger to DEBUG when imported ("Building index from ..." lines): set it back to WARNING."""

    logging.getLogger("bm25s").setLevel(logging.WARNING)


def route_logs(logger_name="mta4dpr_core"):
    """The core's INFO lines (e.g. "seed 13 mta4dpr iteration 1: eval ...") become progress lines
    (the runner prints them; notebook outputs stay clean); warnings and errors still reach stderr."""

    class ReportHandler(logging.Handler):
        def emit(self, record):
            if record.levelno < logging.WARNING:
                try:
                    report(self.format(record))
                except Exception:  # progress must never break a run
                    pass

    logger = logging.getLogger(logger_name)
    if any(getattr(h, "_mta4dpr_progress", False) for h in logger.handlers):
        return
    to_progress = ReportHandler(level=logging.INFO)
    to_progress.setFormatter(logging.Formatter("%(message)s"))
    to_progress._mta4dpr_progress = True
    warnings_out = logging.StreamHandler(sys.stderr)
    warnings_out.setLevel(logging.WARNING)
    warnings_out.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    warnings_out._mta4dpr_progress = True
    logger.addHandler(to_progress)
    logger.addHandler(warnings_out)
    logger.setLevel(logging.INFO)
    logger.propagate = False
