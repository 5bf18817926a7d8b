"""A module imported on its first attribute access.

``quarterdeck validate`` reads every action's parameter model, and a run imports only the
actions it uses; neither should pay for GitPython, httpx or asyncssh (a few hundred
milliseconds together) unless a step actually talks to git, HTTP or SSH. An action module
names its heavy library like this::

    if TYPE_CHECKING:
        import git
    else:
        git = lazy_module("git")

Type checkers see the real module; at run time ``git.Repo`` imports GitPython on first use.
``importlib.import_module`` holds the import system's per-module lock, so two threads
touching the proxy at once import it once (unlike ``importlib.util.LazyLoader`` on 3.11).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any


class LazyModule:
    """Stands in for module ``name`` until an attribute is read."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        module = sys.modules.get(self._name)
        if module is None:
            module = importlib.import_module(self._name)
        return getattr(module, attr)

    def __repr__(self) -> str:
        loaded = "loaded" if self._name in sys.modules else "not loaded yet"
        return f"<lazy module {self._name!r} ({loaded})>"


def lazy_module(name: str) -> Any:
    """A proxy for module ``name`` that imports it on first attribute access."""
    return LazyModule(name)
