"""Quarterdeck's own log: ``quarterdeck.log`` in the state dir, and stderr with --verbose.

Handlers that keep a run going despite an error (a broken viewer, a metrics push, a busy
store for a moment) log it here instead of swallowing it, and a crashed cockpit run keeps
its traceback here. The log is for people debugging Quarterdeck; the journal stays the
record of runs.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

from quarterdeck.core.config import state_home

LOGGER = "quarterdeck"
LOG_FILE = "quarterdeck.log"
FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"


def log_path() -> Path:
    return state_home() / LOG_FILE


def setup(*, verbose: bool = False) -> Path | None:
    """Log to the state dir's file (INFO and up) and, verbose, to stderr (DEBUG and up).

    Returns the file's path, or None when the state dir is not writable (a read-only home
    must not stop ``runs`` or ``show``: the log is then stderr only, with --verbose).
    """
    root = logging.getLogger(LOGGER)
    for handler in list(root.handlers):
        if getattr(handler, "_quarterdeck", False):
            root.removeHandler(handler)
            handler.close()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    path: Path | None = log_path()
    try:
        assert path is not None
        path.parent.mkdir(parents=True, exist_ok=True)
        file_handler: logging.Handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=1_000_000, backupCount=3, encoding="utf-8", delay=True
        )
        with open(path, "a", encoding="utf-8"):  # fail now, not at the first record
            pass
    except OSError:
        path = None
    else:
        file_handler.setFormatter(logging.Formatter(FORMAT))
        file_handler._quarterdeck = True  # type: ignore[attr-defined]
        root.addHandler(file_handler)
    if verbose:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        stream.setLevel(logging.DEBUG)
        stream._quarterdeck = True  # type: ignore[attr-defined]
        root.addHandler(stream)
    return path
