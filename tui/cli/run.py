"""Running workflows: ``run`` (also ``--dry-run``'s plan) and ``resume``, in the cockpit on a
terminal or headless (live view, plain narration or JSON) everywhere else."""

from __future__ import annotations

import enum
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from quarterdeck.core.definition.graph import layers
from quarterdeck.core.errors import InvalidInput, QuarterdeckError
from quarterdeck.core.journal.statuses import RUN_DONE
from quarterdeck.tui.cli.common import (
    EXIT_CODES_HELP,
    AsOpt,
    JsonOpt,
    MetricsHostOpt,
    MetricsPortOpt,
    PushgatewayOpt,
    StoreOpt,
    color,
    err,
    fail,
    interactive,
)

commands = typer.Typer()


class Durability(enum.StrEnum):
    normal = "normal"
    full = "full"


DurabilityOpt = Annotated[
    Durability | None,
    typer.Option(
        "--durability",
        help="full: fsync every journal commit (survives a power cut; default: config)",
    ),
]
NoWaitOpt = Annotated[bool, typer.Option("--no-wait", help="Exit 3 at an undecided approval")]
ReportDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--report-dir",
        help="Write run.json, junit.xml, summary.md, events.jsonl "
        "here ({run} is the run id; default: report_dir in config)",
    ),
]
EventsOpt = Annotated[
    str | None,
    typer.Option(
        "--events",
        metavar="-|FILE",
        help="Stream every event as a JSON line to stdout (-) or a file",
    ),
]
ApprovalsOpt = Annotated[
    Path | None,
    typer.Option(
        "--approvals",
        metavar="FILE",
        help="Approvals policy: per gate approve/reject/wait, with conditions",
    ),
]
TraceOpt = Annotated[
    bool,
    typer.Option(
        "--trace",
        help="OpenTelemetry spans (also on when OTEL_EXPORTER_OTLP_ENDPOINT "
        "or OTEL_TRACES_EXPORTER is set)",
    ),
]


def _print_plan(runner: Any) -> None:
    from quarterdeck.core.definition.inputs import public_inputs

    wf = runner.workflow
    lines = [
        f"plan for {wf.name}" + (f" — {wf.title}" if wf.title else ""),
        f"inputs: {json.dumps(public_inputs(wf, runner.inputs), default=str)}",
    ]
    for stage in wf.stages:
        persona = f" ({stage.persona})" if stage.persona else ""
        when = f" when {stage.when}" if stage.when is not None else ""
        lines.append(f"stage {stage.id}{persona}{when}")
        if stage.approval:
            a = stage.approval
            lines.append(
                f"  approval {a.id}: approvers {a.approvers or 'anyone'}, "
                f"{a.min_approvals} needed, on timeout {a.on_timeout}"
            )
        for layer in layers(stage.steps):
            lines.append("  " + " ∥ ".join(f"{s.id} [{s.uses}]" for s in layer))
        if stage.gate:
            lines.append(f"  gate {stage.gate.id}: all {stage.gate.all} any {stage.gate.any}")
        for step in stage.on_failure:
            lines.append(f"  on failure: {step.id} [{step.uses}]")
    sys.stdout.write("\n".join(lines) + "\n")


def decisions(
    approve: list[str], reject: list[str], actor: str, reason: str
) -> dict[str, tuple[str, str, str]]:
    """``--approve``/``--reject`` as the runner's up-front decisions (gate: kind, who, why)."""
    out: dict[str, tuple[str, str, str]] = {}
    for gate in approve:
        out[gate] = ("approve", actor, reason or "approved on the command line")
    for gate in reject:
        if gate in out:
            raise InvalidInput(f"gate {gate!r} is both approved and rejected on the command line")
        out[gate] = ("reject", actor, reason or "rejected on the command line")
    return out


def _check_predecision(
    workflow: Any, gate: str, kind: str, actor: str, groups: dict[str, list[str]]
) -> None:
    """Refuse a command-line decision its author may not make, before anything runs."""
    from quarterdeck.core.definition.models import is_approver

    approval = next(s.approval for s in workflow.stages if s.approval and s.approval.id == gate)
    flag = f"--{kind} {gate}"
    from quarterdeck.core.identity import local_identity, unverified_names

    me = local_identity()
    if actor != me and not unverified_names():
        raise InvalidInput(
            f"{flag}: deciding as {actor!r} needs proof — you are {me!r} here",
            hint="decide as yourself, or let that person sign with `quarterdeck approve RUN "
            "GATE --as NAME --sign KEY`",
        )
    if not is_approver(actor, approval.approvers, groups):
        raise InvalidInput(
            f"{flag}: {actor!r} is not an approver of gate {gate!r} "
            f"(approvers: {', '.join(approval.approvers)})",
            hint="pass --as NAME (or set QUARTERDECK_USER) to an approver's identity",
        )
    if kind == "approve" and not approval.allow_self_approval:
        raise InvalidInput(
            f"{flag}: {actor!r} starts this run and gate {gate!r} does not allow self-approval",
            hint="let an approver run `quarterdeck approve RUN GATE`, or set "
            "allow_self_approval: true on the gate",
        )


def execute(runner: Any, *, json_out: bool, live: bool, extras: Any = None) -> int:
    """Run to the end with a renderer attached; Ctrl-C and SIGTERM stop it resumably.
    Returns the exit code from the contract."""
    from quarterdeck.core.engine.runner import exit_code_for
    from quarterdeck.core.journal.store_errors import StoreError
    from quarterdeck.tui.cli.stopping import Stops
    from quarterdeck.tui.headless.lines import flush_lines
    from quarterdeck.tui.headless.render import LiveRenderer, PlainRenderer

    stops = Stops()
    stops.install()  # before the loop, kept after it: every stop signal means 130

    import asyncio
    import gc

    from quarterdeck.core.gc_pause import end_startup

    async def go() -> Any:
        stops.bind(runner.interrupt)
        return await runner.run()

    # What start-up and the load made lives until the run ends: frozen out of the cyclic
    # GC's scans (each full collection walked a 10,000-step definition again, ~25% of such
    # a run), and put back afterwards for a process that goes on (tests, the demo). The
    # run itself is collected as usual (the console script paused it for start-up).
    end_startup()
    gc.freeze()
    try:
        if live:
            with LiveRenderer(runner.state, store=runner.store.path) as renderer:
                runner.subscribers.append(renderer)
                if extras is not None:
                    extras.attach(runner)
                state = asyncio.run(go())
        else:
            runner.subscribers.append(
                PlainRenderer(runner.state, color=color(), store=runner.store.path)
            )
            if extras is not None:
                extras.attach(runner)
            state = asyncio.run(go())
    except StoreError as exc:
        flush_lines()
        return store_failed(runner, exc)
    finally:
        gc.unfreeze()
        flush_lines()  # the narration's last turn, before anything else is said
    if extras is not None:
        extras.finish(runner, state)
    if json_out:
        from quarterdeck.tui.json_text import dumps_indented  # as `show --json` writes it

        sys.stdout.write(dumps_indented(state.to_json()) + "\n")
        sys.stdout.flush()
    journal_error = getattr(runner, "journal_error", None)
    if journal_error:  # said even with --json: the journal stopped, the run did not end
        err(f"error: {journal_error}")
        if state.status not in RUN_DONE:
            err(f"run {state.id}: once the store is fixed: quarterdeck resume {state.id}")
    if not json_out:
        err(f"run {state.id}: {state.status}")
    return int(runner.exit_code if runner.exit_code is not None else exit_code_for(state.status))


DAMAGED = ("SQLITE_CORRUPT", "SQLITE_NOTADB", "replaced", "newer-schema")


def store_failed(runner: Any, exc: Any) -> int:
    """The journal failed under a run: 130 if the run can be resumed from it, else 2."""
    from quarterdeck.core.errors import ExitCode
    from quarterdeck.core.journal.store import Store

    err(f"error: {exc.message}")
    if exc.hint:
        err(f"  hint: {exc.hint}")
    resumable = False
    if not exc.kind.startswith(DAMAGED):  # full, locked, read-only, I/O: fixable in place
        try:
            with Store(runner.store.path, readonly=True) as db:
                resumable = db.get_run(runner.run_id).status not in RUN_DONE
        except QuarterdeckError:
            pass
    if not resumable:
        return int(ExitCode.INVALID)
    err(f"run {runner.run_id} stopped; once the store is fixed: quarterdeck resume {runner.run_id}")
    return int(ExitCode.INTERRUPTED)


def _claim_failed(path: Path, run_ref: str, exc: Any) -> int:
    """``resume`` could not claim the run. Another process holding the lock past the busy
    timeout passes by itself: the run is untouched and stays resumable (130) if it is. A
    damaged, read-only or full store needs fixing first: 2, as for any command."""
    from quarterdeck.core.errors import ExitCode
    from quarterdeck.core.journal.store import Store

    err(f"error: {exc.message}")
    if exc.hint:
        err(f"  hint: {exc.hint}")
    if not exc.kind.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return int(ExitCode.INVALID)
    try:
        with Store(path, readonly=True) as db:  # a reader is not blocked by the write lock
            row = db.get_run(run_ref)
    except QuarterdeckError:
        return int(ExitCode.INVALID)
    if row.status in RUN_DONE:
        return int(ExitCode.INVALID)
    err(f"run {row.id} was not resumed; once the lock is released: quarterdeck resume {row.id}")
    return int(ExitCode.INTERRUPTED)


@commands.command(epilog=EXIT_CODES_HELP)
def run(
    workflow: Annotated[str, typer.Argument(help="A bundled workflow name or a path")],
    input_: Annotated[list[str], typer.Option("-i", "--input", help="key=value")] = [],  # noqa: B006
    headless: Annotated[bool, typer.Option("--headless", help="No cockpit")] = False,
    json_out: JsonOpt = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; run nothing")] = False,
    approve: Annotated[list[str], typer.Option("--approve", help="Pre-approve GATE")] = [],  # noqa: B006
    reject: Annotated[list[str], typer.Option("--reject", help="Pre-reject GATE")] = [],  # noqa: B006
    store: StoreOpt = None,
    as_: AsOpt = None,
    reason: Annotated[str, typer.Option("--reason", help="Why (for --approve/--reject)")] = "",
    no_wait: NoWaitOpt = False,
    concurrency: Annotated[int | None, typer.Option("--concurrency", min=1)] = None,
    workdir: Annotated[Path | None, typer.Option("--workdir", help="Where steps run")] = None,
    report_dir: ReportDirOpt = None,
    events: EventsOpt = None,
    approvals: ApprovalsOpt = None,
    trace: TraceOpt = False,
    metrics_port: MetricsPortOpt = None,
    metrics_host: MetricsHostOpt = "127.0.0.1",
    pushgateway: PushgatewayOpt = None,
    durability: DurabilityOpt = None,
) -> None:
    """Run a workflow (headless, or in the cockpit on a terminal)."""
    from quarterdeck.core.config import current_user
    from quarterdeck.core.definition.inputs import parse_assignments
    from quarterdeck.core.engine.runner import RunOptions
    from quarterdeck.core.gc_pause import end_startup
    from quarterdeck.tui.launch import load, load_context, new_runner, open_store

    try:
        ctx = load_context()
        loaded = load(workflow, ctx)
        given = parse_assignments(input_)
        actor = current_user(as_, ctx.settings)
        options = RunOptions(
            started_by=actor,
            concurrency=concurrency,
            decisions=decisions(approve, reject, actor, reason),
            no_wait=no_wait,
            workdir=workdir.resolve() if workdir else None,
            durability=durability.value if durability else None,
        )
        gates = {s.approval.id for s in loaded.workflow.stages if s.approval}
        for gate, (kind, _who, _why) in options.decisions.items():
            if gate not in gates:
                raise InvalidInput(
                    f"--approve/--reject {gate!r}: workflow {loaded.workflow.name!r} has no "
                    f"approval gate {gate!r} (its gates: {', '.join(sorted(gates)) or 'none'})"
                )
            _check_predecision(loaded.workflow, gate, kind, actor, ctx.settings.groups)
        from quarterdeck.tui.headless.ci import HeadlessExtras

        extras = HeadlessExtras.prepare(
            workflow=loaded.workflow,
            json_out=json_out,
            report_dir=report_dir,
            events=events,
            approvals=approvals,
            trace=trace,
            actor=actor,
            settings=ctx.settings,
        )
        if dry_run:
            from quarterdeck.core.definition.inputs import resolve_inputs
            from quarterdeck.core.engine.preview import Preview
            from quarterdeck.core.engine.runner import Runner
            from quarterdeck.core.journal.store import Store

            inputs = resolve_inputs(loaded.workflow, given, base=Path.cwd())
            planned = Runner(
                loaded,
                Store(":memory:"),
                inputs=inputs,
                settings=ctx.settings,
                personas=ctx.personas,
                options=options,
            )
            _print_plan(planned)
            preview = Preview(
                loaded.workflow,
                inputs,
                settings=ctx.settings,
                workdir=planned.workdir,
                env=planned.env,
                redact=planned.redactor.text,
            )
            import asyncio

            sys.stdout.write("\n".join(asyncio.run(preview.lines())) + "\n")
            return
        if not headless and not json_out and interactive():
            try:
                from quarterdeck.tui.app import run_cockpit
            except ImportError:
                pass
            else:
                end_startup()
                code = run_cockpit(store=store, workflow=loaded, inputs=given, options=options)
                raise typer.Exit(code)
        db = open_store(store)
        runner = new_runner(loaded, db, ctx, given, options)
    except QuarterdeckError as exc:
        fail(exc)
    raise typer.Exit(
        _run_headless(
            runner,
            ctx.settings,
            json_out=json_out,
            events=events,
            extras=extras,
            metrics_port=metrics_port,
            metrics_host=metrics_host,
            pushgateway=pushgateway,
        )
    )


@commands.command(epilog=EXIT_CODES_HELP)
def resume(
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="Run id (or a unique prefix)")],
    headless: Annotated[bool, typer.Option("--headless", help="No cockpit")] = False,
    json_out: JsonOpt = False,
    input_: Annotated[list[str], typer.Option("-i", "--input", help="key=value (secrets)")] = [],  # noqa: B006
    store: StoreOpt = None,
    as_: AsOpt = None,
    no_wait: NoWaitOpt = False,
    report_dir: ReportDirOpt = None,
    events: EventsOpt = None,
    approvals: ApprovalsOpt = None,
    trace: TraceOpt = False,
    metrics_port: MetricsPortOpt = None,
    metrics_host: MetricsHostOpt = "127.0.0.1",
    pushgateway: PushgatewayOpt = None,
    durability: DurabilityOpt = None,
) -> None:
    """Continue a crashed, interrupted or failed run from its journal."""
    import gc

    from quarterdeck.core.config import current_user
    from quarterdeck.core.definition.inputs import parse_assignments
    from quarterdeck.core.engine.runner import RunOptions
    from quarterdeck.core.gc_pause import end_startup, paused_gc
    from quarterdeck.core.journal.store_errors import StoreError
    from quarterdeck.tui.launch import load_context, open_store, resume_runner

    try:
        ctx = load_context()
        db = open_store(store)
        actor = current_user(as_, ctx.settings)
        options = RunOptions(
            started_by=actor, no_wait=no_wait, durability=durability.value if durability else None
        )
        try:
            # the definition, the fold and the runner: a large all-live graph, built with no
            # cyclic GC and then frozen out of its scans until the run ends (as `execute` does)
            with paused_gc():
                runner = resume_runner(db, run_id, ctx, options, parse_assignments(input_), say=err)
                gc.freeze()
        except StoreError as exc:
            raise typer.Exit(_claim_failed(db.path, run_id, exc)) from None
        runner.options.started_by = runner.state.started_by or options.started_by
        from quarterdeck.tui.headless.ci import HeadlessExtras

        extras = HeadlessExtras.prepare(
            workflow=runner.workflow,
            json_out=json_out,
            report_dir=report_dir,
            events=events,
            approvals=approvals,
            trace=trace,
            actor=actor,
            settings=ctx.settings,
        )
    except QuarterdeckError as exc:
        fail(exc)
    if not headless and not json_out and interactive():
        try:
            from quarterdeck.tui.app import run_cockpit
        except ImportError:
            pass
        else:
            end_startup()
            raise typer.Exit(run_cockpit(store=store, runner=runner))
    raise typer.Exit(
        _run_headless(
            runner,
            ctx.settings,
            json_out=json_out,
            events=events,
            extras=extras,
            metrics_port=metrics_port,
            metrics_host=metrics_host,
            pushgateway=pushgateway,
        )
    )


def _run_headless(
    runner: Any,
    settings: Any,
    *,
    json_out: bool,
    events: str | None,
    extras: Any,
    metrics_port: int | None,
    metrics_host: str,
    pushgateway: str | None,
) -> int:
    """Run to the end without the cockpit: metrics wired, live view only on a terminal."""
    from quarterdeck.core.observability.metrics import start_metrics

    try:
        metrics = start_metrics(
            runner,
            settings,
            port=metrics_port,
            host=metrics_host,
            pushgateway=pushgateway,
            say=err,
        )
    except QuarterdeckError as exc:
        fail(exc)
    live = (
        interactive()
        and sys.stderr.isatty()
        and not json_out
        and events != "-"
        and color() is not False
    )
    try:
        return execute(runner, json_out=json_out, live=live, extras=extras)
    finally:
        metrics.finish()
