"""Where Quarterdeck keeps things: the state dir (the store, logs), the config dirs.

Kept apart from :mod:`quarterdeck.core.config` so commands that only need a path (`runs`,
`show`, logging) do not load pydantic and the YAML loader to find it.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["config_home", "default_store", "project_dir", "state_home"]


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / fallback


def state_home() -> Path:
    """``$QUARTERDECK_HOME``, else ``$XDG_STATE_HOME/quarterdeck``."""
    explicit = os.environ.get("QUARTERDECK_HOME")
    if explicit:
        return Path(explicit)
    return _xdg("XDG_STATE_HOME", ".local/state") / "quarterdeck"


def config_home() -> Path:
    """``$QUARTERDECK_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/quarterdeck``."""
    explicit = os.environ.get("QUARTERDECK_CONFIG_DIR")
    if explicit:
        return Path(explicit)
    return _xdg("XDG_CONFIG_HOME", ".config") / "quarterdeck"


def project_dir(start: Path | None = None) -> Path | None:
    """The nearest ``.quarterdeck`` directory at or above ``start`` (default: cwd)."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / ".quarterdeck").is_dir():
            return candidate / ".quarterdeck"
    return None


def default_store() -> Path:
    return state_home() / "quarterdeck.db"
