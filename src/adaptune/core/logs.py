"""Send a Snakemake job's stderr and logging to its rule's log file, with secrets masked."""

from __future__ import annotations

import io
import logging
import os
import sys
import traceback

# Texts that must never reach a log or the console (an API key, say); see hide().
_SECRETS: dict[str, str] = {}


def hide(secret: str, placeholder: str) -> None:
    """Replace `secret` by `placeholder` in everything log_to's streams and hook write from now
    on."""
    if secret:
        _SECRETS[secret] = placeholder


def redact(text: str) -> str:
    # Longest first, so that a secret containing another is replaced whole.
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, _SECRETS[secret])
    return text


class _Redacting(io.TextIOBase):
    """A text stream that masks the hidden secrets before they reach the wrapped stream."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(redact(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    # What libraries ask of sys.stderr besides write (faulthandler wants a descriptor).
    def fileno(self) -> int:
        return self._stream.fileno()

    def isatty(self) -> bool:
        return self._stream.isatty()

    @property
    def encoding(self) -> str:
        return getattr(self._stream, "encoding", "utf-8")


def log_to(path: str) -> None:
    """Route stderr (tracebacks, warnings, progress bars) and the logging module to `path`.

    An uncaught error still prints its one-line message on the console, so a user sees why a
    job failed without opening the log; the full traceback stays in the log. Everything goes
    through redact(), the console line and the traceback included.

    In a DDP run the other processes run the job's script again: each of them logs to a file of
    its own beside `path` (`<path>.rank<N>`), so that none of them empties the first one's log.
    """
    rank = process_rank()
    if rank:
        path = f"{path}.rank{rank}"
    console = _Redacting(sys.stderr)
    stream = _Redacting(open(path, "w", buffering=1, encoding="utf-8"))
    sys.stderr = stream
    logging.basicConfig(
        stream=stream,
        level=logging.INFO,
        force=True,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # bitsandbytes warns on every int8 matmul that it casts its input to fp16.
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)

    def report(kind, error, tb):
        traceback.print_exception(kind, error, tb, file=stream)
        console.write(f"adaptune: error: {error}\n(full traceback in {path})\n")
        stream.flush()
        console.flush()

    sys.excepthook = report


def process_rank() -> int:
    """This process's rank in a distributed run (RANK, or LOCAL_RANK where only that is set, as
    Lightning sets them in the processes it starts); 0 outside one."""
    for variable in ("RANK", "LOCAL_RANK"):
        value = os.environ.get(variable, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 0
