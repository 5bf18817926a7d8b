"""The ``quarterdeck`` command line (contract: ../shared/ARCHITECTURE.md, "CLI").

This is the composition root. Bad input never shows a traceback: every
:class:`~quarterdeck.core.errors.QuarterdeckError` becomes a message on stderr and the exit code
from the contract. Textual is imported only by the commands that open the cockpit.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from quarterdeck.core.errors import DefinitionError, ExitCode, InvalidInput, QuarterdeckError

EXIT_CODES_HELP = """
Exit codes: 0 succeeded · 1 failed (a step or gate) · 2 invalid input or definition ·
3 rejected or approval timed out · 4 cancelled · 130 interrupted (resumable).
"""

app = typer.Typer(
    name="quarterdeck",
    help="Quarterdeck: a terminal cockpit for multi-persona engineering workflows.",
    add_completion=False,
    no_args_is_help=False,
    invoke_without_command=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

StoreOpt = Annotated[
    str | None,
    typer.Option("--store", help="Journal: a path or sqlite:///path (default: $QUARTERDECK_HOME)"),
]
AsOpt = Annotated[
    str | None,
    typer.Option("--as", help="Who you are (default: $QUARTERDECK_USER, the CI actor, or login)"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout")]
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


def _err(message: str) -> None:
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.stderr.flush()


def _fail(exc: QuarterdeckError) -> None:
    if isinstance(exc, DefinitionError):
        for problem in exc.problems:
            _err(str(problem))
        count = len(exc.problems)
        _err(f"{count} problem{'s' if count != 1 else ''} found")
    else:
        _err(f"error: {exc.message}")
        if exc.hint:
            _err(f"  hint: {exc.hint}")
    raise typer.Exit(int(exc.exit_code))


def _interactive() -> bool:
    return (
        sys.stdin.isatty()
        and sys.stdout.isatty()
        and not os.environ.get("CI")
        and os.environ.get("TERM") != "dumb"
    )


def _color() -> bool | None:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    if os.environ.get("TERM") == "dumb":
        return False
    return None


def _print_version(value: bool) -> None:
    if value:
        from quarterdeck.core import __version__

        typer.echo(f"quarterdeck {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    ctx: typer.Context,
    store: StoreOpt = None,
    as_: AsOpt = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit"
        ),
    ] = False,
) -> None:
    """Open the cockpit when no command is given."""
    if ctx.invoked_subcommand is not None:
        return
    if not _interactive():
        _err("quarterdeck: no terminal here, so no cockpit. Try `quarterdeck --help`.")
        raise typer.Exit(int(ExitCode.INVALID))
    try:
        from quarterdeck.tui.app import run_cockpit
    except ImportError:
        _err("the cockpit is not available in this build; see `quarterdeck --help`")
        raise typer.Exit(int(ExitCode.INVALID)) from None
    run_cockpit(store=store, actor=as_)


# --- validate / schema / catalogs ------------------------------------------------------


@app.command()
def validate(paths: Annotated[list[Path], typer.Argument(help="Workflow files")]) -> None:
    """Check workflow files: exit 0 when valid, 2 with file:line:col messages when not."""
    from quarterdeck.core.definition.validate import load_workflow
    from quarterdeck.tui.launch import load_context

    try:
        ctx = load_context()
    except QuarterdeckError as exc:
        _fail(exc)
    bad = 0
    for path in paths:
        try:
            loaded = load_workflow(path, ctx.personas)
        except DefinitionError as exc:
            bad += 1
            for problem in exc.problems:
                _err(str(problem))
            continue
        wf = loaded.workflow
        steps = sum(len(s.steps) for s in wf.stages)
        _err(f"{path}: ok ({wf.name}: {len(wf.stages)} stages, {steps} steps)")
    if bad:
        _err(f"{bad} of {len(paths)} file{'s' if len(paths) != 1 else ''} invalid")
        raise typer.Exit(int(ExitCode.INVALID))


@app.command()
def schema() -> None:
    """Print the JSON Schema of workflow files (point your editor at it)."""
    from quarterdeck.core.definition.schema import workflow_schema

    sys.stdout.write(json.dumps(workflow_schema(), indent=2) + "\n")


@app.command()
def workflows(json_out: JsonOpt = False) -> None:
    """List workflows: bundled, user and project."""
    from quarterdeck.workflows.catalog import list_workflows

    entries = list_workflows()
    if json_out:
        data = [
            {
                "name": e.name,
                "title": e.title,
                "description": e.description,
                "origin": e.origin,
                "path": str(e.path),
                "error": e.error,
            }
            for e in entries
        ]
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    width = max((len(e.name) for e in entries), default=10)
    for e in entries:
        note = f"  [invalid: {e.error}]" if e.error else ""
        sys.stdout.write(f"{e.name:<{width}}  {e.origin:<8} {e.title or e.description}{note}\n")


@app.command()
def personas(
    name: Annotated[str | None, typer.Argument(help="Show one persona in full")] = None,
    json_out: JsonOpt = False,
) -> None:
    """List personas (bundled, user, project) or show one."""
    from quarterdeck.core.definition.loader import did_you_mean
    from quarterdeck.tui.launch import load_context

    try:
        catalog = load_context().personas
    except QuarterdeckError as exc:
        _fail(exc)
    if name is not None:
        persona = catalog.get(name)
        if persona is None:
            _fail(InvalidInput(f"no persona {name!r}{did_you_mean(name, catalog.names())}"))
        if json_out:
            sys.stdout.write(
                json.dumps({**persona.model_dump(), "origin": catalog.origins[name]}, indent=2)
                + "\n"
            )
            return
        out = [
            f"{persona.name}: {persona.title}",
            f"  role:         {persona.role}",
            f"  token budget: {persona.token_budget}",
            f"  model:        {persona.model}",
            f"  tools:        {', '.join(persona.tools)}",
            f"  colour:       {persona.color}",
            f"  from:         {catalog.origins[name]}",
            "  system prompt:",
            *[f"    {line}" for line in persona.system_prompt.strip().splitlines()],
        ]
        sys.stdout.write("\n".join(out) + "\n")
        return
    if json_out:
        sys.stdout.write(
            json.dumps(
                [
                    {**p.model_dump(), "origin": catalog.origins[p.name]}
                    for p in catalog.personas.values()
                ],
                indent=2,
            )
            + "\n"
        )
        return
    for p in sorted(catalog.personas.values(), key=lambda p: p.name):
        sys.stdout.write(f"{p.name:<22} {p.token_budget:>6} tokens  {p.title} — {p.role}\n")


@app.command()
def actions() -> None:
    """List the actions steps may use."""
    from quarterdeck.core.actions.base import registered_actions

    for name, spec in registered_actions().items():
        params = ", ".join(
            (f.alias or n) + ("" if f.is_required() else "?")
            for n, f in spec.params.model_fields.items()
        )
        sys.stdout.write(f"{name:<22} {spec.description}\n{'':<22} with: {params}\n")


# --- run / resume ----------------------------------------------------------------------


def _print_plan(runner: Any) -> None:
    wf = runner.workflow
    lines = [
        f"plan for {wf.name}" + (f" — {wf.title}" if wf.title else ""),
        f"inputs: {json.dumps(runner.inputs, default=str)}",
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
        for layer in _layers(stage.steps):
            lines.append("  " + " ∥ ".join(f"{s.id} [{s.uses}]" for s in layer))
        if stage.gate:
            lines.append(f"  gate {stage.gate.id}: all {stage.gate.all} any {stage.gate.any}")
        for step in stage.on_failure:
            lines.append(f"  on failure: {step.id} [{step.uses}]")
    sys.stdout.write("\n".join(lines) + "\n")


def _layers(steps: list[Any]) -> list[list[Any]]:
    done: set[str] = set()
    remaining = list(steps)
    layers: list[list[Any]] = []
    while remaining:
        layer = [s for s in remaining if all(n in done for n in s.needs)]
        if not layer:
            break
        layers.append(layer)
        done.update(s.id for s in layer)
        remaining = [s for s in remaining if s not in layer]
    return layers


def _decisions(
    approve: list[str], reject: list[str], actor: str, reason: str
) -> dict[str, tuple[str, str, str]]:
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


def _execute(runner: Any, *, json_out: bool, live: bool, extras: Any = None) -> int:
    from quarterdeck.core.engine.runner import exit_code_for
    from quarterdeck.tui.headless.render import LiveRenderer, PlainRenderer

    async def go() -> Any:
        loop = asyncio.get_running_loop()
        for sig, why in ((signal.SIGINT, "interrupted (Ctrl-C)"), (signal.SIGTERM, "terminated")):
            try:
                loop.add_signal_handler(sig, runner.interrupt, why)
            except (NotImplementedError, RuntimeError):
                pass
        return await runner.run()

    if live:
        with LiveRenderer(runner.state) as renderer:
            runner.subscribers.append(renderer)
            if extras is not None:
                extras.attach(runner)
            state = asyncio.run(go())
    else:
        runner.subscribers.append(PlainRenderer(runner.state, color=_color()))
        if extras is not None:
            extras.attach(runner)
        state = asyncio.run(go())
    if extras is not None:
        extras.finish(runner, state)
    if json_out:
        sys.stdout.write(json.dumps(state.to_json(), indent=2, default=str) + "\n")
        sys.stdout.flush()
    if not json_out:
        _err(f"run {state.id}: {state.status}")
    return int(runner.exit_code if runner.exit_code is not None else exit_code_for(state.status))


# metrics options (core/metrics.py), shared by run and resume
MetricsPortOpt = Annotated[
    int | None,
    typer.Option(
        "--metrics-port", min=0, max=65535, help="Serve Prometheus /metrics on this port (0: any)"
    ),
]
MetricsHostOpt = Annotated[
    str, typer.Option("--metrics-host", help="Address for --metrics-port (default 127.0.0.1)")
]
PushgatewayOpt = Annotated[
    str | None,
    typer.Option("--pushgateway", help="Push metrics once at the end to this Pushgateway URL"),
]


@app.command(epilog=EXIT_CODES_HELP)
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
) -> None:
    """Run a workflow (headless, or in the cockpit on a terminal)."""
    from quarterdeck.core.config import current_user
    from quarterdeck.core.definition.inputs import parse_assignments
    from quarterdeck.core.engine.runner import RunOptions
    from quarterdeck.tui.launch import load, load_context, new_runner, open_store

    try:
        ctx = load_context()
        loaded = load(workflow, ctx)
        given = parse_assignments(input_)
        actor = current_user(as_, ctx.settings)
        options = RunOptions(
            started_by=actor,
            concurrency=concurrency,
            decisions=_decisions(approve, reject, actor, reason),
            no_wait=no_wait,
            workdir=workdir.resolve() if workdir else None,
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
            from quarterdeck.core.engine.runner import Runner
            from quarterdeck.core.journal.store import Store

            inputs = resolve_inputs(loaded.workflow, given, base=Path.cwd())
            _print_plan(
                Runner(
                    loaded,
                    Store(":memory:"),
                    inputs=inputs,
                    settings=ctx.settings,
                    personas=ctx.personas,
                    options=options,
                )
            )
            return
        if not headless and not json_out and _interactive():
            try:
                from quarterdeck.tui.app import run_cockpit
            except ImportError:
                pass
            else:
                run_cockpit(store=store, workflow=loaded, inputs=given, options=options)
                return
        db = open_store(store)
        runner = new_runner(loaded, db, ctx, given, options)
    except QuarterdeckError as exc:
        _fail(exc)
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


@app.command(epilog=EXIT_CODES_HELP)
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
) -> None:
    """Continue a crashed, interrupted or failed run from its journal."""
    from quarterdeck.core.config import current_user
    from quarterdeck.core.definition.inputs import parse_assignments
    from quarterdeck.core.engine.runner import RunOptions
    from quarterdeck.tui.launch import load_context, open_store, resume_runner

    try:
        ctx = load_context()
        db = open_store(store)
        actor = current_user(as_, ctx.settings)
        options = RunOptions(started_by=actor, no_wait=no_wait)
        runner = resume_runner(db, run_id, ctx, options, parse_assignments(input_))
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
        _fail(exc)
    if not headless and not json_out and _interactive():
        try:
            from quarterdeck.tui.app import run_cockpit
        except ImportError:
            pass
        else:
            run_cockpit(store=store, runner=runner)
            return
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
            say=_err,
        )
    except QuarterdeckError as exc:
        _fail(exc)
    live = (
        _interactive()
        and sys.stderr.isatty()
        and not json_out
        and events != "-"
        and _color() is not False
    )
    try:
        return _execute(runner, json_out=json_out, live=live, extras=extras)
    finally:
        metrics.finish()


# --- history ---------------------------------------------------------------------------


@app.command()
def runs(
    json_out: JsonOpt = False,
    store: StoreOpt = None,
    workflow: Annotated[str | None, typer.Option("--workflow", "-w")] = None,
    status: Annotated[str | None, typer.Option("--status", "-s")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1)] = 50,
) -> None:
    """Run history, newest first."""
    from quarterdeck.core.durations import format_duration
    from quarterdeck.tui.launch import open_store

    try:
        rows = open_store(store).list_runs(limit=limit, workflow=workflow, status=status)
    except QuarterdeckError as exc:
        _fail(exc)
    if json_out:
        sys.stdout.write(json.dumps([r.summary() for r in rows], indent=2) + "\n")
        return
    if not rows:
        _err("no runs yet: `quarterdeck run WORKFLOW` starts one")
        return
    for r in rows:
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.started_at))
        duration = format_duration((r.finished_at or time.time()) - r.started_at)
        sys.stdout.write(
            f"{r.id}  {r.workflow:<22} {r.status:<12} {started}  {duration:>7}  {r.started_by}\n"
        )


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(metavar="RUN")],
    json_out: JsonOpt = False,
    store: StoreOpt = None,
) -> None:
    """A run's status, timeline and evidence."""
    from quarterdeck.core.incidents.postmortem import for_show, show_json, show_text
    from quarterdeck.tui.headless.show import render_show
    from quarterdeck.tui.launch import open_store, read_state

    try:
        db = open_store(store)
        state = read_state(db, run_id)
        incident = for_show(db, state.id)
    except QuarterdeckError as exc:
        _fail(exc)
    if json_out:
        data = state.to_json()
        if incident is not None:
            data["incident"] = show_json(incident)
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
        return
    sys.stdout.write(render_show(state) + (show_text(incident) if incident is not None else ""))


@app.command()
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
        row = open_store(store).get_run(run_id)
    except QuarterdeckError as exc:
        _fail(exc)
    if not _interactive():
        _err(f"attach needs a terminal; `quarterdeck show {row.id}` prints the run instead")
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
            _fail(exc)
    try:
        run_cockpit(store=store, attach=row.id, actor=as_)
    finally:
        if metrics is not None:
            metrics.close()


# --- incidents -------------------------------------------------------------------------


@app.command()
def listen(
    alertmanager: Annotated[
        str,
        typer.Option(
            "--alertmanager",
            metavar="HOST:PORT",
            help="Serve Alertmanager's webhook here (127.0.0.1:0 picks a free port)",
        ),
    ],
    workflow: Annotated[
        str, typer.Option("--workflow", "-w", help="The workflow each new alert group starts")
    ] = "incident-response",
    input_: Annotated[
        list[str],
        typer.Option("-i", "--input", help="key=value for every run (an alert's own values win)"),
    ] = [],  # noqa: B006
    store: StoreOpt = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port", help="Serve incident_resolution_seconds{severity} on 127.0.0.1"
        ),
    ] = None,
) -> None:
    """Receive Alertmanager webhooks; start an incident-response run per new alert group.

    Deduplicated by groupKey while the group's incident is open. Severity from the
    `severity` label: critical→SEV1, high/error→SEV2, warning→SEV3, info→SEV4, else SEV3.
    A resolved notification marks the run's alert resolved. Runs go headless in this
    process, journaled to the store; Ctrl-C stops them resumably.
    """
    from quarterdeck.core.definition.inputs import parse_assignments
    from quarterdeck.core.incidents.intake import parse_address
    from quarterdeck.tui.launch import load, load_context, store_path
    from quarterdeck.tui.listener import Listener

    try:
        host, port = parse_address(alertmanager)
        base = parse_assignments(input_)
        ctx = load_context()
        loaded = load(workflow, ctx)
        unknown = sorted(set(base) - set(loaded.workflow.inputs))
        if unknown:
            raise InvalidInput(
                f"workflow {loaded.workflow.name!r} has no input {unknown[0]!r}",
                hint="its inputs: " + ", ".join(loaded.workflow.inputs),
            )
        path = store_path(store)
        path.parent.mkdir(parents=True, exist_ok=True)
    except QuarterdeckError as exc:
        _fail(exc)

    async def serve() -> None:
        from quarterdeck.core.incidents.metrics import IncidentCollector
        from quarterdeck.core.observability.metrics import MetricsServer

        listener = Listener(
            path,
            loaded,
            ctx,
            host=host,
            port=port,
            base_inputs=base,
            say=lambda text: _err(f"listen: {text}"),
        )
        await listener.start()
        metrics = None
        if metrics_port is not None:
            from prometheus_client import CollectorRegistry

            registry = CollectorRegistry()
            registry.register(IncidentCollector(path, ctx.settings.metrics.namespace))
            metrics = MetricsServer(registry, "127.0.0.1", metrics_port)
            _err(f"listen: metrics on {metrics.url}")
        _err(
            f"listen: Alertmanager webhook on {listener.server.url} → workflow "
            f"{loaded.workflow.name}, store {path}"
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):
                pass
        try:
            await stop.wait()
        finally:
            _err("listen: stopping; runs still going are interrupted (resumable)")
            await listener.close()
            if metrics is not None:
                metrics.close()

    try:
        asyncio.run(serve())
    except QuarterdeckError as exc:
        _fail(exc)


@app.command()
def warroom(
    run_id: Annotated[
        str | None,
        typer.Argument(
            metavar="[RUN]", help="Run id or prefix (default: the newest open incident)"
        ),
    ] = None,
    store: StoreOpt = None,
    as_: AsOpt = None,
) -> None:
    """The incident war room: severity, clocks, roles, health, hosts, runbook, timeline and
    the incident actions. Any number of people may attach to one run (--as NAME)."""
    from quarterdeck.core.incidents.read import latest_incident
    from quarterdeck.tui.launch import open_store

    try:
        db = open_store(store)
        row = db.get_run(run_id if run_id else latest_incident(db))
    except QuarterdeckError as exc:
        _fail(exc)
    if not _interactive():
        _err(f"warroom needs a terminal; `quarterdeck show {row.id}` prints the incident")
        raise typer.Exit(int(ExitCode.INVALID))
    from quarterdeck.screens.warroom import run_warroom

    run_warroom(store=store, run_id=row.id, actor=as_)


# --- signals ---------------------------------------------------------------------------


def _send(
    run_id: str,
    kind: str,
    *,
    store: str | None,
    actor: str | None,
    reason: str,
    target: str | None = None,
    wait: float = 3.0,
) -> None:
    from quarterdeck.core.config import current_user, load_settings
    from quarterdeck.core.engine.runner import approval_refusal
    from quarterdeck.tui.launch import open_store, read_state

    try:
        settings = load_settings()
        who = current_user(actor, settings)
        db = open_store(store)
        row = db.get_run(run_id)
        state = read_state(db, row.id)
        if kind in ("approve", "reject"):
            assert target is not None
            approval = state.approvals.get(target)
            if approval is not None and approval.status == "waiting":
                decision = "approved" if kind == "approve" else "rejected"
                why = approval_refusal(approval, who, state.started_by, settings.groups, decision)
                if why is not None:
                    raise InvalidInput(f"refused: {why}")
            elif approval is not None:
                raise InvalidInput(f"gate {target!r} of run {row.id} is already {approval.status}")
            if kind == "reject" and not reason:
                raise InvalidInput("a rejection needs a reason: --reason TEXT")
        if row.status in ("succeeded", "failed", "cancelled", "rejected", "nothing_to_do"):
            raise InvalidInput(f"run {row.id} has already ended ({row.status})")
        signal_id = db.send_signal(row.id, kind, actor=who, target=target, reason=reason)
    except QuarterdeckError as exc:
        _fail(exc)
    what = f"{kind} {target}" if target else kind
    if row.status == "interrupted":
        _err(
            f"{what} recorded for run {row.id} by {who}; the run is not running — it applies "
            f"when you `quarterdeck resume {row.id}`"
        )
        return
    deadline = time.monotonic() + wait
    outcome = None
    while time.monotonic() < deadline:
        outcome = db.signal_outcome(signal_id)
        if outcome:
            break
        time.sleep(0.05)
    if outcome and outcome.startswith("refused"):
        _err(f"{what} by {who}: {outcome}")
        raise typer.Exit(int(ExitCode.INVALID))
    if outcome:
        _err(f"{what} by {who}: {outcome}")
    else:
        _err(f"{what} by {who}: recorded; run {row.id} will act on it when it reaches it")


@app.command("approve")
def approve_cmd(
    run_id: Annotated[str, typer.Argument(metavar="RUN")],
    gate: Annotated[str, typer.Argument(metavar="GATE")],
    as_: AsOpt = None,
    reason: Annotated[str, typer.Option("--reason")] = "",
    store: StoreOpt = None,
) -> None:
    """Approve a gate of a run (from any terminal or host sharing the store)."""
    _send(run_id, "approve", store=store, actor=as_, reason=reason, target=gate)


@app.command("reject")
def reject_cmd(
    run_id: Annotated[str, typer.Argument(metavar="RUN")],
    gate: Annotated[str, typer.Argument(metavar="GATE")],
    as_: AsOpt = None,
    reason: Annotated[str, typer.Option("--reason")] = "",
    store: StoreOpt = None,
) -> None:
    """Reject a gate of a run; a reason is required."""
    _send(run_id, "reject", store=store, actor=as_, reason=reason, target=gate)


@app.command("pause")
def pause_cmd(
    run_id: Annotated[str, typer.Argument(metavar="RUN")],
    reason: Annotated[str, typer.Option("--reason")] = "",
    as_: AsOpt = None,
    store: StoreOpt = None,
) -> None:
    """Pause a run: steps in flight finish, no new step starts."""
    _send(run_id, "pause", store=store, actor=as_, reason=reason)


@app.command("unpause")
def unpause_cmd(
    run_id: Annotated[str, typer.Argument(metavar="RUN")],
    reason: Annotated[str, typer.Option("--reason")] = "",
    as_: AsOpt = None,
    store: StoreOpt = None,
) -> None:
    """Let a paused run go on."""
    _send(run_id, "unpause", store=store, actor=as_, reason=reason)


@app.command("cancel")
def cancel_cmd(
    run_id: Annotated[str, typer.Argument(metavar="RUN")],
    reason: Annotated[str, typer.Option("--reason")] = "",
    as_: AsOpt = None,
    store: StoreOpt = None,
) -> None:
    """Cancel a run: steps in flight are stopped (their processes killed)."""
    _send(run_id, "cancel", store=store, actor=as_, reason=reason)


@app.command(epilog=EXIT_CODES_HELP)
def demo(
    which: Annotated[
        str, typer.Argument(metavar="[release|incident]", help="Which demo: release or incident")
    ] = "release",
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir", help="Build the sandbox here and keep it (default: a temp dir, removed after)"
        ),
    ] = None,
    headless: Annotated[bool, typer.Option("--headless", help="No cockpit")] = False,
    approve: Annotated[
        list[str],
        typer.Option(
            "--approve", help="Approve GATE up front (headless; nothing is approved otherwise)"
        ),
    ] = [],  # noqa: B006
    scenario: Annotated[
        str,
        typer.Option(
            "--scenario",
            help="incident only: hotfix (the fix works) or rollback (the fix is "
            "bad: its health check fails and the deploy is rolled back)",
        ),
    ] = "hotfix",
) -> None:
    """A local sandbox on 127.0.0.1 (package repo, index, production service, SSH host,
    demo model) and the release or incident workflow on it. Everything stops on exit."""
    from quarterdeck.core.config import current_user
    from quarterdeck.core.engine.runner import RunOptions
    from quarterdeck.tui.launch import load, load_context, new_runner, open_store
    from quarterdeck.workflows.sandbox.demo import DemoSession

    try:
        session = DemoSession(which, directory, scenario)
    except QuarterdeckError as exc:
        _fail(exc)
    code = 0
    with session:
        try:
            ctx = load_context()
            loaded = load(session.workflow, ctx)
            actor = current_user(None, ctx.settings)
            options = RunOptions(
                started_by=actor, decisions=_decisions(approve, [], actor, "approved for the demo")
            )
            gates = {s.approval.id for s in loaded.workflow.stages if s.approval}
            for gate in approve:
                if gate not in gates:
                    raise InvalidInput(
                        f"--approve {gate!r}: the {which} demo's gates are "
                        + ", ".join(sorted(gates))
                    )
            if not headless and _interactive():
                from quarterdeck.tui.app import run_cockpit

                run_cockpit(workflow=loaded, inputs=session.inputs, options=options)
            else:
                for gate in sorted(gates - set(approve)):
                    _err(session.approve_hint(gate))
                runner = new_runner(loaded, open_store(None), ctx, session.inputs, options)
                code = _execute(runner, json_out=False, live=False)
        except QuarterdeckError as exc:
            _err(f"error: {exc.message}")
            code = int(exc.exit_code)
    raise typer.Exit(code)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except QuarterdeckError as exc:  # pragma: no cover - commands handle their own
        _err(f"error: {exc}")
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:
        _err("interrupted")
        sys.exit(int(ExitCode.INTERRUPTED))


if __name__ == "__main__":
    main()
