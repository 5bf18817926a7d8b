"""What a run is given (:class:`RunOptions`) and the run-wide facts its parts share.

:class:`RunContext` is built once by the :class:`~quarterdeck.core.engine.runner.Runner`
and handed to each collaborator (scheduler, steps, gates, approvals, signals), so none of
them needs the runner itself: the dependencies stay explicit and the modules acyclic.
"""

from __future__ import annotations

from dataclasses import field
from pathlib import Path
from typing import Any

from quarterdeck.core.clock import Clock
from quarterdeck.core.config import Settings
from quarterdeck.core.definition.models import Workflow
from quarterdeck.core.definition.validate import LoadedWorkflow
from quarterdeck.core.journal.state import RunState
from quarterdeck.core.journal.store import Store
from quarterdeck.core.lean import lean
from quarterdeck.core.observability.redact import Redactor


@lean
class RunOptions:
    """How to run: who starts it, pre-decided gates, limits, clock, where to work."""

    run_id: str | None = None
    started_by: str = "unknown"
    concurrency: int | None = None
    decisions: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    no_wait: bool = False
    workdir: Path | None = None
    clock: Clock = field(default_factory=Clock)
    signal_poll_interval: float = 0.1
    env: dict[str, str] | None = None
    extra_secrets: list[str] = field(default_factory=list)
    title: str | None = None  # the run's title, when not the workflow's (an incident's alert)
    owner: str | None = None  # the claim token when the run was claimed before (resume)
    durability: str | None = None  # "full": fsync every commit (--durability)


@lean(eq=False)
class RunContext:
    """One run's identity, inputs, store and state; the dicts are shared, not copied.

    ``step_env`` and ``services`` are the very dicts the runner exposes: subscribers
    (tracing) and actions (the token budget) fill them while the run goes on.
    """

    run_id: str
    loaded: LoadedWorkflow
    store: Store
    state: RunState
    inputs: dict[str, Any]
    settings: Settings
    personas: Any | None
    options: RunOptions
    clock: Clock
    redactor: Redactor
    workdir: Path
    run_dir: Path
    env: dict[str, str]
    step_env: dict[tuple[str, str], dict[str, str]]
    services: dict[str, Any]
    # variables Quarterdeck reads to authenticate (core/credentials.py), kept out of
    # child processes unless a step names them
    credential_names: frozenset[str] = frozenset()

    @property
    def workflow(self) -> Workflow:
        return self.loaded.workflow
