"""The action registry and the built-in actions.

Importing this package registers the built-ins; other modules (git, http, ssh, llm...)
register theirs when imported by :func:`quarterdeck.core.actions.base.load_builtin_actions`.
"""

from __future__ import annotations

from quarterdeck.core.actions.base import (
    ActionContext,
    ActionParams,
    ActionSpec,
    action,
    get_action,
    registered_actions,
)

__all__ = [
    "ActionContext",
    "ActionParams",
    "ActionSpec",
    "action",
    "get_action",
    "registered_actions",
]
