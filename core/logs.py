"""Quarterdeck's own log: ``quarterdeck.log`` in the state dir, and stderr with --verbose.

Handlers that keep a run going despite an error (a broken viewer, a metrics push, a busy
store for a moment) log it here instead of swallowing it, and a crashed cockpit run keeps
its traceback here. The log is for people debugging Quarterdeck; the journal stays the
record of runs.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from quarterdeck.core.locations import state_home

LOGGER = "quarterdeck"
LOG_FILE = "quarterdeck.log"
# asyncio reports an exception nobody retrieved ("Exception in callback …") through its
# logger: into the log file with the rest, not as a traceback on a user's terminal
ALSO = ("asyncio",)
FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"


class _OneLine(logging.Formatter):
    """``error: <message>: <the exception, in one line>`` — the traceback is in the file."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text += f": {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return f"error: {text} (details in {log_path()})"


class _RotatingOnFirstRecord(logging.Handler):
    """The log file's ``RotatingFileHandler``, made at the first record.

    ``logging.handlers`` brings ``socket``, ``pickle`` and ``queue`` with it (about a
    tenth of ``quarterdeck runs``); most commands never log a record.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.file: logging.Handler | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.file is None:
            self.file = _owner_only_rotating(self.path)
            self.file.setFormatter(self.formatter)
        self.file.emit(record)

    def flush(self) -> None:
        if self.file is not None:
            self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        super().close()


def _owner_only_rotating(path: Path) -> logging.Handler:
    """A ``RotatingFileHandler`` (1 MB, three kept) whose every new file is the owner's
    alone (0600), like the first one: ``RotatingFileHandler`` made the file after a
    rollover with the umask's mode (0644), readable by anyone on the machine."""
    import logging.handlers

    class OwnerOnly(logging.handlers.RotatingFileHandler):
        def _open(self) -> Any:
            os.close(os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
            return super()._open()

    return OwnerOnly(path, maxBytes=1_000_000, backupCount=3, encoding="utf-8", delay=True)


def log_path() -> Path:
    return state_home() / LOG_FILE


def setup(*, verbose: bool = False, stderr: TextIO | None = None) -> Path | None:
    """Log to the state dir's file (INFO and up) and, verbose, to stderr (DEBUG and up).

    Returns the file's path, or None when the state dir is not writable (a read-only home
    must not stop ``runs`` or ``show``: the log is then stderr only, with --verbose).
    ``stderr``: where the stderr lines go instead of ``sys.stderr`` (the CLI passes one
    that queues them with a run's narration, so the two keep their order).
    """
    loggers = [logging.getLogger(name) for name in (LOGGER, *ALSO)]
    for logger in loggers:
        for handler in list(logger.handlers):
            if getattr(handler, "_quarterdeck", False):
                logger.removeHandler(handler)
                handler.close()
    loggers[0].setLevel(logging.DEBUG if verbose else logging.INFO)
    handlers: list[logging.Handler] = []
    path: Path | None = log_path()
    try:
        assert path is not None
        # the state dir and the log are the owner's alone, like the store (0700/0600)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # fail now, not at the first record
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        file_handler = _RotatingOnFirstRecord(path)
    except OSError:
        path = None
    else:
        file_handler.setFormatter(logging.Formatter(FORMAT))
        handlers.append(file_handler)
    if not verbose:  # asyncio's errors still reach the terminal, as one line each
        brief = logging.StreamHandler(stderr or sys.stderr)
        brief.setLevel(logging.ERROR)
        brief.setFormatter(_OneLine())
        brief._quarterdeck = True  # type: ignore[attr-defined]
        loggers[1].addHandler(brief)
    if verbose:
        stream = logging.StreamHandler(stderr or sys.stderr)
        stream.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        stream.setLevel(logging.DEBUG)
        handlers.append(stream)
    for handler in handlers:
        handler._quarterdeck = True  # type: ignore[attr-defined]
        for logger in loggers:
            logger.addHandler(handler)
    return path
