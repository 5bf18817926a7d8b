"""Shared set-up for starting and resuming runs (CLI, cockpit, demo and listeners).

Everything a front end needs to go from "a workflow name and some inputs" to a ready
:class:`~quarterdeck.core.engine.runner.Runner` lives here, so every surface behaves the same.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quarterdeck.core.commands import cli_command
from quarterdeck.core.errors import InvalidInput
from quarterdeck.core.gc_pause import paused_gc
from quarterdeck.core.journal.statuses import RUN_ACTIVE, RUN_DONE
from quarterdeck.core.lean import lean
from quarterdeck.core.locations import default_store

if TYPE_CHECKING:  # the runner and the definition load only for commands that run one:
    # `runs`, `show` and `attach` read the store and never pay for Jinja2 or the engine;
    # `validate` never opens a store
    from quarterdeck.core.config import Settings
    from quarterdeck.core.definition.models import Workflow
    from quarterdeck.core.definition.validate import LoadedWorkflow
    from quarterdeck.core.engine.runner import Runner, RunOptions, Subscriber
    from quarterdeck.core.journal.state import RunState
    from quarterdeck.core.journal.store import Store


@lean
class Context:
    settings: Settings
    personas: Any  # quarterdeck.personas.registry.PersonaCatalog


def load_context(start: Path | None = None) -> Context:
    from quarterdeck.core.config import load_settings
    from quarterdeck.personas.registry import load_catalog

    return Context(load_settings(start), load_catalog(start))


def store_path(url: str | None) -> Path:
    """``--store`` as a path or ``sqlite:///path``; default in ``$QUARTERDECK_HOME``."""
    if not url:
        return default_store()
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///") - 1 :])
    if url.startswith("sqlite://"):
        return Path(url[len("sqlite://") :])
    if "://" in url:
        raise InvalidInput(f"unsupported store URL {url!r}: use a path or sqlite:///path")
    return Path(url).expanduser()


def open_store(url: str | None, *, readonly: bool = False) -> Store:
    """The store ``--store`` names; ``readonly`` for commands that only read (never write)."""
    from quarterdeck.core.journal.store import Store

    return Store(store_path(url), readonly=readonly)


def load(ref: str | Path, ctx: Context) -> LoadedWorkflow:
    from quarterdeck.core.definition.validate import load_workflow
    from quarterdeck.workflows.catalog import resolve_workflow

    path = resolve_workflow(str(ref)) if not isinstance(ref, Path) else ref
    return load_workflow(path, ctx.personas)


def new_runner(
    loaded: LoadedWorkflow,
    store: Store,
    ctx: Context,
    given: dict[str, Any],
    options: RunOptions,
    subscribers: list[Subscriber] | None = None,
) -> Runner:
    from quarterdeck.core.definition.inputs import resolve_inputs
    from quarterdeck.core.engine.runner import Runner

    inputs = resolve_inputs(loaded.workflow, given, base=Path.cwd())
    if options.title is None:
        options.title = _alert_title(inputs.get("alert"))
    return Runner(
        loaded,
        store,
        inputs=inputs,
        settings=ctx.settings,
        personas=ctx.personas,
        options=options,
        subscribers=subscribers,
    )


def _alert_title(alert: Any) -> str | None:
    """A run started from an alert (the listener, Home, the CLI) is titled by it."""
    if not alert:
        return None
    import json

    from quarterdeck.core.incidents.model import alert_title

    if isinstance(alert, str) and alert.strip():
        try:
            alert = json.loads(alert)
        except json.JSONDecodeError:
            return None
    return alert_title(alert) if isinstance(alert, dict) else None


def _resume_inputs(
    workflow: Workflow, journaled: dict[str, Any], given: dict[str, Any]
) -> dict[str, Any]:
    values = dict(journaled)
    for name, spec in workflow.inputs.items():
        if name in given:
            values[name] = given[name]
        elif spec.type == "secret" and values.get(name) == "***":
            if spec.env and os.environ.get(spec.env):
                values[name] = os.environ[spec.env]
            else:
                hint = f"pass -i {name}=VALUE" + (f" or set ${spec.env}" if spec.env else "")
                raise InvalidInput(
                    f"input {name!r} is a secret and secrets are not journaled", hint=hint
                )
    return values


def resume_runner(
    store: Store,
    run_ref: str,
    ctx: Context,
    options: RunOptions,
    given: dict[str, Any] | None = None,
    subscribers: list[Subscriber] | None = None,
    say: Callable[[str], None] | None = None,
) -> Runner:
    """A runner that continues ``run_ref`` from its journal. ``say`` gets the notes about
    its definition (the workflow file changed since the run started, and how)."""
    from quarterdeck.core.definition.inputs import resolve_inputs
    from quarterdeck.core.engine.recovery import resume_definition
    from quarterdeck.core.engine.runner import Runner, new_owner
    from quarterdeck.core.journal.snapshot import fold_stored

    row = store.get_run(run_ref)
    if row.status in RUN_ACTIVE:
        raise InvalidInput(
            f"run {row.id} is still {row.status} (pid {row.pid} on {row.host})",
            hint=f"watch it with `{cli_command('attach', row.id, store=store.path)}`, "
            "or stop it first",
        )
    if row.status in RUN_DONE:
        raise InvalidInput(f"run {row.id} is {row.status}; there is nothing to resume")
    loaded = resume_definition(store, row, ctx.personas, say or (lambda _note: None))
    with paused_gc():  # every object a fold makes stays alive: no collection to find any
        prior = fold_stored(store, row.id)  # from its snapshot when the run stopped with one
    inputs = _resume_inputs(loaded.workflow, prior.inputs or row.inputs, given or {})
    inputs = resolve_inputs(loaded.workflow, inputs, base=Path(row.workdir or "."))
    options.workdir = options.workdir or (Path(row.workdir) if row.workdir else None)
    # claim, then fold in what was journaled since the read above (a fold is a left fold,
    # so this is the fold of the whole journal): what is read after the claim is final,
    # nobody else writes to it any more. A second resumer is refused here.
    options.owner = options.owner or new_owner()
    store.claim_run(row.id, options.owner)
    for event in store.events(row.id, after=prior.last_seq):
        prior.apply(event)
    return Runner(
        loaded,
        store,
        inputs=inputs,
        settings=ctx.settings,
        personas=ctx.personas,
        options=options,
        prior=prior,
        subscribers=subscribers,
    )


def read_state(store: Store, run_ref: str, *, keep_log: bool = False) -> RunState:
    """The run's state, as ``show`` folds it (from its snapshot when it has one; the log a
    viewer keeps is in no snapshot, so ``keep_log`` folds every event)."""
    from quarterdeck.core.journal.snapshot import fold_stored, reading
    from quarterdeck.core.journal.state import fold

    row = store.get_run(run_ref)
    with paused_gc():
        if keep_log:
            with reading(store, row.id):
                state = fold(row.id, store.events(row.id), keep_log=True)
        else:
            state = fold_stored(store, row.id)
    state.status = row.status  # the store knows about crashed runs (interrupted)
    return state
