"""``quarterdeck demo``: a local sandbox and the release or incident workflow on it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from quarterdeck.core.errors import InvalidInput, QuarterdeckError
from quarterdeck.tui.cli.common import EXIT_CODES_HELP, err, fail, interactive
from quarterdeck.tui.cli.run import decisions, execute

commands = typer.Typer()


@commands.command(epilog=EXIT_CODES_HELP)
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
        fail(exc)
    code = 0
    with session:
        try:
            ctx = load_context()
            loaded = load(session.workflow, ctx)
            actor = current_user(None, ctx.settings)
            options = RunOptions(
                started_by=actor, decisions=decisions(approve, [], actor, "approved for the demo")
            )
            gates = {s.approval.id for s in loaded.workflow.stages if s.approval}
            for gate in approve:
                if gate not in gates:
                    raise InvalidInput(
                        f"--approve {gate!r}: the {which} demo's gates are "
                        + ", ".join(sorted(gates))
                    )
            if not headless and interactive():
                from quarterdeck.tui.app import run_cockpit

                code = run_cockpit(workflow=loaded, inputs=session.inputs, options=options)
            else:
                runner = new_runner(loaded, open_store(None), ctx, session.inputs, options)
                for gate in sorted(gates - set(approve)):
                    err(session.approve_hint(gate, runner.run_id))
                code = execute(runner, json_out=False, live=False)
        except QuarterdeckError as exc:
            err(f"error: {exc.message}")
            code = int(exc.exit_code)
    raise typer.Exit(code)
