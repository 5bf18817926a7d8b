"""What an action is, and the registry that maps ``uses:`` names to actions.

An action is an async function ``(params, ctx) -> outputs`` registered with a pydantic
parameter model, so a bad ``with:`` fails validation before the run starts. Fields named
in ``raw`` reach the action as unrendered templates (the shell action splits its command
line *before* substituting values, so a value is always one argv element).
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import field
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from quarterdeck.core.clock import Clock
from quarterdeck.core.lean import lean


class ActionParams(BaseModel):
    """Base class for action parameter models: unknown keys are errors.

    A module's parameter models are built when first used, not at import: ``builtin``
    alone holds five, and a workflow uses one or two of them."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)


class LineSink(Protocol):
    def __call__(self, stream: str, line: str) -> None: ...


@lean
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
    # credential variables in ``env`` that child processes must not inherit unless a step
    # names them (core/credentials.py; builtin.child_env applies it)
    credential_env: frozenset[str] = frozenset()
    # the start of a line too long to hold (logged whole, journaled cut); None: join it
    emit_fragment: LineSink | None = None
    # when the step first started, as journaled: durable timers (``wait``) count from it,
    # so a resume does not restart them
    started_at: float | None = None

    def log(self, line: str, stream: str = "stdout") -> None:
        """Stream one output line (journaled in batches)."""
        self.emit_line(stream, line)


ActionFn = Callable[[Any, ActionContext], Awaitable[Mapping[str, Any]]]


@lean(frozen=True)
class ActionSpec:
    name: str
    params: type[ActionParams]
    fn: ActionFn
    raw: frozenset[str] = frozenset()
    description: str = ""
    # Whether the action only reads (``--dry-run`` may run it): always, or depending on
    # its validated parameters (``git.bump_version`` with ``write: false``).
    read_only: bool = False
    read_only_when: Callable[[Any], bool] | None = None

    def is_read_only(self, params: Any) -> bool:
        if self.read_only:
            return True
        return self.read_only_when is not None and bool(self.read_only_when(params))


_REGISTRY: dict[str, ActionSpec] = {}

# Which module registers each action. `get_action` imports only the module an action
# lives in, so a workflow of built-ins never pays for asyncssh, cryptography or GitPython
# (about 0.2 s of a cold start). A new action gets a line here; a test imports every
# module and checks this index against what they register.
ACTION_INDEX: dict[str, str] = {
    **dict.fromkeys(
        ["memory.set", "python", "run.end", "shell", "wait"], "quarterdeck.core.actions.builtin"
    ),
    "llm.chat": "quarterdeck.core.actions.llm",
    "http.health_check": "quarterdeck.core.actions.http",
    "http.request": "quarterdeck.core.actions.http",
    "prometheus.query": "quarterdeck.core.actions.prometheus",
    "github.release": "quarterdeck.core.actions.github",
    "notify.webhook": "quarterdeck.core.actions.notify",
    "ssh.copy": "quarterdeck.core.actions.ssh",
    "ssh.run": "quarterdeck.core.actions.ssh",
    **dict.fromkeys(
        ["git.commit", "git.push", "git.revert_to", "git.tag"], "quarterdeck.core.actions.git"
    ),
    "git.branch": "quarterdeck.core.actions.git_branch",
    "git.log": "quarterdeck.core.actions.git_branch",
    "git.bump_version": "quarterdeck.core.actions.git_release",
    "git.changelog": "quarterdeck.core.actions.git_release",
    "python.build": "quarterdeck.core.actions.packaging",
    "python.install_check": "quarterdeck.core.actions.packaging",
    "python.publish": "quarterdeck.core.actions.publish",
    "python.setup": "quarterdeck.core.actions.project_env",
    "lint": "quarterdeck.core.actions.quality",
    "pytest": "quarterdeck.core.actions.quality",
    "typecheck": "quarterdeck.core.actions.quality",
    "secrets.scan": "quarterdeck.core.actions.secret_scan",
}
# Every module that registers actions, in a stable order.
ACTION_MODULES: list[str] = list(dict.fromkeys(ACTION_INDEX.values()))
_loaded = False


def action(
    name: str,
    params: type[ActionParams],
    *,
    raw: tuple[str, ...] = (),
    description: str = "",
    read_only: bool = False,
    read_only_when: Callable[[Any], bool] | None = None,
) -> Callable[[ActionFn], ActionFn]:
    """Register ``fn`` as the action ``name`` with parameter model ``params``.

    ``read_only`` (or ``read_only_when(params)``) declares that the action changes
    nothing, so ``run --dry-run`` may evaluate it to show its decisions.
    """

    def register(fn: ActionFn) -> ActionFn:
        doc = description or (fn.__doc__ or "").strip().splitlines()[0:1]
        text = doc if isinstance(doc, str) else (doc[0] if doc else "")
        _REGISTRY[name] = ActionSpec(
            name, params, fn, frozenset(raw), text, read_only, read_only_when
        )
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
    """The action ``name``, importing only the module that registers it."""
    spec = _REGISTRY.get(name)
    if spec is None and not _loaded and name in ACTION_INDEX:
        importlib.import_module(ACTION_INDEX[name])
        spec = _REGISTRY.get(name)
    return spec


def action_names() -> list[str]:
    """Every action's name, without importing any action module (for hints and lists)."""
    return sorted(set(ACTION_INDEX) | set(_REGISTRY))


def registered_actions() -> dict[str, ActionSpec]:
    load_builtin_actions()
    return dict(sorted(_REGISTRY.items()))
