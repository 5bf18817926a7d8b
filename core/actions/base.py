"""What an action is, and the registry that maps ``uses:`` names to actions.

An action is an async function ``(params, ctx) -> outputs`` registered with a pydantic
parameter model, so a bad ``with:`` fails validation before the run starts. Fields named
in ``raw`` reach the action as unrendered templates (the shell action splits its command
line *before* substituting values, so a value is always one argv element).
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from quarterdeck.core.clock import Clock


class ActionParams(BaseModel):
    """Base class for action parameter models: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class LineSink(Protocol):
    def __call__(self, stream: str, line: str) -> None: ...


@dataclass
class ActionContext:
    """What a running action may see and do. Built by the runner for each attempt."""

    run_id: str
    workflow: str
    stage_id: str
    step_id: str
    attempt: int
    persona: Any  # quarterdeck.personas.registry.Persona | None (kept loose: core must not need it)
    workdir: Path
    run_dir: Path
    env: dict[str, str]
    settings: Any  # quarterdeck.core.config.Settings
    clock: Clock
    idempotency_key: str
    emit_line: LineSink
    memory: Mapping[str, Any]
    set_memory: Callable[[str, Any], Awaitable[None]]
    render: Callable[[str], Any]
    render_text: Callable[[str], str]
    redact: Callable[[str], str]
    services: dict[str, Any] = field(default_factory=dict)
    emit_event: Callable[[str, dict[str, Any]], Awaitable[None]] | None = None
    workflow_dir: Path | None = None  # where the workflow file is (its helper modules)
    # when the step first started, as journaled: durable timers (``wait``) count from it,
    # so a resume does not restart them
    started_at: float | None = None

    def log(self, line: str, stream: str = "stdout") -> None:
        """Stream one output line (journaled in batches)."""
        self.emit_line(stream, line)


ActionFn = Callable[[Any, ActionContext], Awaitable[Mapping[str, Any]]]


@dataclass(frozen=True)
class ActionSpec:
    name: str
    params: type[ActionParams]
    fn: ActionFn
    raw: frozenset[str] = frozenset()
    description: str = ""


_REGISTRY: dict[str, ActionSpec] = {}

# Modules that register actions on import. Later work adds to this list.
ACTION_MODULES: list[str] = ["quarterdeck.core.actions.builtin"]
ACTION_MODULES.append("quarterdeck.core.actions.llm")
ACTION_MODULES.extend(
    [
        "quarterdeck.core.actions.http",
        "quarterdeck.core.actions.prometheus",
        "quarterdeck.core.actions.github",
        "quarterdeck.core.actions.notify",
        "quarterdeck.core.actions.ssh",
    ]
)
ACTION_MODULES.extend(
    [
        "quarterdeck.core.actions.git",
        "quarterdeck.core.actions.git_release",
        "quarterdeck.core.actions.packaging",
        "quarterdeck.core.actions.publish",
        "quarterdeck.core.actions.quality",
        "quarterdeck.core.actions.secret_scan",
    ]
)
_loaded = False


def action(
    name: str, params: type[ActionParams], *, raw: tuple[str, ...] = (), description: str = ""
) -> Callable[[ActionFn], ActionFn]:
    """Register ``fn`` as the action ``name`` with parameter model ``params``."""

    def register(fn: ActionFn) -> ActionFn:
        doc = description or (fn.__doc__ or "").strip().splitlines()[0:1]
        text = doc if isinstance(doc, str) else (doc[0] if doc else "")
        _REGISTRY[name] = ActionSpec(name, params, fn, frozenset(raw), text)
        return fn

    return register


def load_builtin_actions() -> None:
    """Import every module that registers actions (idempotent)."""
    global _loaded
    if _loaded:
        return
    for module in ACTION_MODULES:
        importlib.import_module(module)
    _loaded = True


def get_action(name: str) -> ActionSpec | None:
    load_builtin_actions()
    return _REGISTRY.get(name)


def registered_actions() -> dict[str, ActionSpec]:
    load_builtin_actions()
    return dict(sorted(_REGISTRY.items()))
