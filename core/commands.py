"""Commands Quarterdeck prints for people to paste into another shell (approve, reject,
resume, attach, warroom).

A printed command has to work as printed in a *fresh* shell, which has none of this
process's environment tweaks: so it names the run by its real id, carries ``--store`` when
the journal is not where a fresh shell would look, and sets ``QUARTERDECK_CONFIG_DIR`` when
this process reads a config dir a fresh shell would not (the demo's sandbox, for one).
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / fallback


def _fresh_default_store() -> Path:
    """Where a fresh shell's ``quarterdeck`` looks for the journal ($QUARTERDECK_HOME unset:
    a variable set for this process — by the demo, a test, a wrapper — is not inherited)."""
    return _xdg("XDG_STATE_HOME", ".local/state") / "quarterdeck" / "quarterdeck.db"


def _same(a: Path, b: Path) -> bool:
    try:
        return a.expanduser().resolve() == b.expanduser().resolve()
    except OSError:
        return False


def cli_command(verb: str, *args: str, store: Path | str | None = None) -> str:
    """``quarterdeck VERB ARGS… [--store PATH]``, shell-quoted, with the config dir in front
    when this process uses one a fresh shell would not."""
    parts = ["quarterdeck", verb, *args]
    if store is not None and str(store) not in ("", ":memory:"):
        path = Path(store)
        if not _same(path, _fresh_default_store()):
            parts += ["--store", str(path.expanduser().resolve())]
    prefix = ""
    config = os.environ.get("QUARTERDECK_CONFIG_DIR")
    if config and not _same(Path(config), _xdg("XDG_CONFIG_HOME", ".config") / "quarterdeck"):
        prefix = f"QUARTERDECK_CONFIG_DIR={shlex.quote(str(Path(config).resolve()))} "
    return prefix + shlex.join(parts)


def store_label(store: Path | str | None, width: int = 28) -> str | None:
    """The store as a screen header shows it, or None when a fresh shell would find it
    anyway (the default): the home directory as ``~``; past ``width`` the directories are
    cut in the middle and the file name kept whole (``/tmp/…/qd.db``)."""
    if store is None or str(store) in ("", ":memory:"):
        return None
    path = Path(store).expanduser().resolve()
    if _same(path, _fresh_default_store()):
        return None
    text = str(path)
    home = str(Path.home())
    if text.startswith(home + os.sep):
        text = "~" + text[len(home) :]
    if len(text) <= width:
        return text
    head = max(0, width - len(path.name) - 2)
    return text[:head] + "…/" + path.name
