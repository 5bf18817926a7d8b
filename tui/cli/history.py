"""Reading runs back: ``runs`` (the history), ``show`` (one run, as text or JSON) and
``attach`` (the cockpit on a run started elsewhere)."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Any

import typer

from quarterdeck.core.commands import cli_command
from quarterdeck.core.errors import ExitCode, QuarterdeckError
from quarterdeck.tui.cli.common import (
    AsOpt,
    JsonOpt,
    MetricsHostOpt,
    MetricsPortOpt,
    RunIdArg,
    StoreOpt,
    err,
    fail,
    interactive,
)

commands = typer.Typer()


@commands.command()
def runs(
    json_out: JsonOpt = False,
    store: StoreOpt = None,
    workflow: Annotated[str | None, typer.Option("--workflow", "-w")] = None,
    status: Annotated[str | None, typer.Option("--status", "-s")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1)] = 50,
) -> None:
    """Run history, newest first."""
    from quarterdeck.core.durations import format_duration
    from quarterdeck.core.journal.active import run_durations
    from quarterdeck.tui.launch import open_store

    try:
        db = open_store(store, readonly=True)
        rows = db.list_runs(limit=limit, workflow=workflow, status=status)
        took = run_durations(db, rows, time.time())
    except QuarterdeckError as exc:
        fail(exc)
    if json_out:
        data = [{**r.summary(), "duration": round(took[r.id], 3)} for r in rows]
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    if not rows:
        err("no runs yet: `quarterdeck run WORKFLOW` starts one")
        return
    for r in rows:
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.started_at))
        duration = format_duration(took[r.id])
        sys.stdout.write(
            f"{r.id}  {r.workflow:<22} {r.status:<12} {started}  {duration:>7}  {r.started_by}\n"
        )


@commands.command()
def show(
    run_id: RunIdArg,
    json_out: JsonOpt = False,
    store: StoreOpt = None,
) -> None:
    """A run's status, timeline and evidence."""
    from quarterdeck.core.gc_pause import paused_gc

    # every object read, folded and written here lives until the command ends: no cyclic GC
    # walking them again and again (as ``read_state``; ~0.1 s of a 10,000-step run's show),
    # nor the classes and functions of the modules it imports (~3 ms of collections)
    with paused_gc(promote=True):
        from quarterdeck.core.incidents.read import incident_signals, is_incident_run
        from quarterdeck.core.journal.snapshot import fold_rows
        from quarterdeck.tui.launch import open_store

        try:
            db = open_store(store, readonly=True)
            row = db.get_run(run_id)
            rows = db.raw_events(row.id)  # read once: folded, and their chain checked
            state = fold_rows(db, row.id, rows)  # those after its snapshot, if it has one
            state.status = row.status  # the store knows about crashed runs (interrupted)
            incident = None
            if incident_signals(db, row.id) or is_incident_run(row.workflow, row.inputs):
                from quarterdeck.core.incidents.postmortem import for_show

                incident = for_show(db, state.id)
            _warn_unverified(db, state.id, rows)
            del rows  # checked: its memory is reused by what follows (~17 MB less at peak)
            # the duration every view shows: active time between the row's start and end
            took = state.active_time(row.started_at, row.finished_at, time.time())
        except QuarterdeckError as exc:
            fail(exc)
        if json_out:
            data = state.to_json()
            data["duration"] = round(took, 3)
            if incident is not None:
                from quarterdeck.core.incidents.postmortem import show_json

                data["incident"] = show_json(incident)
            from quarterdeck.tui.json_text import dumps_indented

            sys.stdout.write(dumps_indented(data))  # not copied (megabytes) for its newline
            sys.stdout.write("\n")
            return
        from quarterdeck.tui.headless.show import render_show  # text only (not --json)

        text = render_show(state, took)
        if incident is not None:
            from quarterdeck.core.incidents.postmortem import show_text

            text += show_text(incident)
        sys.stdout.write(text)


class _ConfigOnDemand:
    """The config, read only when something asks for it: verifying a run needs it only to
    check a signed vote (its allowed signers), and reading it costs pydantic and YAML."""

    def __init__(self) -> None:
        self._settings: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._settings is None:
            from quarterdeck.core.config import load_settings

            self._settings = load_settings()
        return getattr(self._settings, name)


def _verification(db: Any, run_id: str, rows: Any = None, *, snapshot: bool = True) -> Any:
    from quarterdeck.core.journal.integrity import verify_run

    return verify_run(db, run_id, _ConfigOnDemand(), rows, snapshot=snapshot)


def _warn_unverified(db: Any, run_id: str, rows: Any) -> None:
    """``show`` says so when a run's journal was changed after it was written."""
    # the chain, not the snapshot against a fold of every event (what it saves show);
    # `verify` checks that too
    result = _verification(db, run_id, rows, snapshot=False)
    if not result.ok:
        more = f" (+{len(result.problems) - 1} more)" if len(result.problems) > 1 else ""
        err(
            f"warning: run {run_id} does not verify: {result.problems[0]}{more} — "
            f"`quarterdeck verify {run_id}` lists every problem"
        )


@commands.command(epilog="Exit codes: 0 the run verifies · 2 it does not (or no such run/store)")
def verify(
    run_id: RunIdArg,
    json_out: JsonOpt = False,
    store: StoreOpt = None,
) -> None:
    """Check a run's journal: the hash chain of its events and every signed approval."""
    from quarterdeck.tui.launch import open_store

    try:
        # read-only: checking evidence never writes to it (a copy on a read-only mount
        # verifies too), and closed before the process leaves
        with open_store(store, readonly=True) as db:
            row = db.get_run(run_id)
            result = _verification(db, row.id)
    except QuarterdeckError as exc:
        fail(exc)
    if json_out:
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
    for problem in result.problems:
        err(f"{row.id}: {problem}")
    summary = (
        f"run {row.id}: {result.events} events chained, {result.signed_votes} signed "
        f"vote(s) verified, {result.unsigned_votes} vouched by the runner's account"
    )
    if result.ok:
        err(f"{summary} — verified")
        return
    err(f"run {row.id} does NOT verify ({len(result.problems)} problem(s))")
    raise typer.Exit(int(ExitCode.INVALID))


@commands.command()
def attach(
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="Run id (or a unique prefix)")],
    store: StoreOpt = None,
    as_: AsOpt = None,
    metrics_port: MetricsPortOpt = None,
    metrics_host: MetricsHostOpt = "127.0.0.1",
) -> None:
    """Open the cockpit on a run started elsewhere, live from its journal (any number of
    viewers); a finished run shows its full timeline."""
    from quarterdeck.tui.launch import open_store

    try:
        db = open_store(store, readonly=True)
        row = db.get_run(run_id)
    except QuarterdeckError as exc:
        fail(exc)
    if not interactive():
        show = cli_command("show", row.id, store=db.path)
        err(f"attach needs a terminal; `{show}` prints the run instead")
        raise typer.Exit(int(ExitCode.INVALID))
    from quarterdeck.tui.app import run_cockpit

    metrics = None
    if metrics_port is not None:
        from quarterdeck.core.config import load_settings
        from quarterdeck.core.observability.metrics import JournalMetrics
        from quarterdeck.tui.launch import store_path

        try:
            metrics = JournalMetrics(
                store_path(store),
                row.id,
                port=metrics_port,
                host=metrics_host,
                namespace=load_settings().metrics.namespace,
            )
        except QuarterdeckError as exc:
            fail(exc)
    try:
        run_cockpit(store=store, attach=row.id, actor=as_)
    finally:
        if metrics is not None:
            metrics.close()
