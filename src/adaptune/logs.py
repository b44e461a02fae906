"""Send a Snakemake job's stderr and logging to its rule's log file."""

from __future__ import annotations

import logging
import sys
import traceback


def log_to(path: str) -> None:
    """Route stderr (tracebacks, warnings, progress bars) and the logging module to `path`.

    An uncaught error still prints its one-line message on the console, so a user sees why a
    job failed without opening the log; the full traceback stays in the log.
    """
    console = sys.stderr
    stream = open(path, "w", buffering=1, encoding="utf-8")
    sys.stderr = stream
    logging.basicConfig(
        stream=stream, level=logging.INFO, force=True,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # bitsandbytes warns on every int8 matmul that it casts its input to fp16.
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)

    def report(kind, error, tb):
        traceback.print_exception(kind, error, tb, file=stream)
        console.write(f"adaptune: error: {error}\n(full traceback in {path})\n")

    sys.excepthook = report
