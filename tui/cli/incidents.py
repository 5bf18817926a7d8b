"""Incidents: ``listen`` (Alertmanager webhooks start incident-response runs) and
``warroom`` (the shared incident view)."""

from __future__ import annotations

import signal
from typing import Annotated

import typer

from quarterdeck.core.commands import cli_command
from quarterdeck.core.errors import ExitCode, InvalidInput, QuarterdeckError
from quarterdeck.tui.cli.common import AsOpt, StoreOpt, err, fail, interactive

commands = typer.Typer()


@commands.command()
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
        typer.Option("-i", "--input", help="key=value for every run (alerts never override)"),
    ] = [],  # noqa: B006
    label_input: Annotated[
        list[str],
        typer.Option(
            "--label-input",
            metavar="NAME",
            help="An input alert labels may fill (with listen.label_inputs in the config)",
        ),
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
        from quarterdeck.core.incidents.guard import ListenGuard

        listen_cfg = ctx.settings.listen
        guard = ListenGuard.from_settings(listen_cfg)
        allowed = {*listen_cfg.label_inputs, *label_input}
        unknown = sorted(allowed - set(loaded.workflow.inputs))
        if unknown:
            raise InvalidInput(
                f"--label-input {unknown[0]!r}: workflow {loaded.workflow.name!r} has no such input"
            )
    except QuarterdeckError as exc:
        fail(exc)

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
            guard=guard,
            label_inputs=allowed,
            max_concurrent=listen_cfg.max_concurrent,
            say=lambda text: err(f"listen: {text}"),
        )
        await listener.start()
        metrics = None
        if metrics_port is not None:
            from prometheus_client import CollectorRegistry

            registry = CollectorRegistry()
            registry.register(IncidentCollector(path, ctx.settings.metrics.namespace))
            metrics = MetricsServer(registry, "127.0.0.1", metrics_port)
            err(f"listen: metrics on {metrics.url}")
        err(
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
            err("listen: stopping; runs still going are interrupted (resumable)")
            await listener.close()
            if metrics is not None:
                metrics.close()

    import asyncio

    try:
        asyncio.run(serve())
    except QuarterdeckError as exc:
        fail(exc)


@commands.command()
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
        fail(exc)
    if not interactive():
        show = cli_command("show", row.id, store=db.path)
        err(f"warroom needs a terminal; `{show}` prints the incident")
        raise typer.Exit(int(ExitCode.INVALID))
    from quarterdeck.tui.app import run_warroom

    run_warroom(store=store, run_id=row.id, actor=as_)
