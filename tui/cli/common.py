"""What the commands share: error printing, the terminal checks and the option types.

Bad input never shows a traceback: :func:`fail` turns a
:class:`~quarterdeck.core.errors.QuarterdeckError` into a message on stderr and the exit code
from the contract (../shared/ARCHITECTURE.md, "CLI").
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated, Any, NoReturn

import typer

from quarterdeck.core.errors import DefinitionError, QuarterdeckError

EXIT_CODES_HELP = """
Exit codes: 0 succeeded · 1 failed (a step or gate) · 2 invalid input or definition ·
3 rejected or approval timed out · 4 cancelled · 130 interrupted (resumable).
"""


def inherit_global(ctx: typer.Context, param: Any, value: Any) -> Any:
    """A global option (``--store``, ``--as``) given before the subcommand counts as if given
    after it; given both ways with different values is a usage error, never a silent pick."""
    root = ctx.find_root()
    if root is ctx or param.name is None:
        return value
    before = root.params.get(param.name)
    if before is None:
        return value
    if value is not None and value != before:
        flag = param.opts[0] if param.opts else param.name
        raise typer.BadParameter(
            f"given twice with different values ({before!r} before the command, {value!r} "
            f"after it)" + ("" if flag.startswith("-") else f" for {flag}")
        )
    return before


StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="Journal: a path or sqlite:///path (default: $QUARTERDECK_HOME)",
        callback=inherit_global,
    ),
]
AsOpt = Annotated[
    str | None,
    typer.Option(
        "--as",
        help="Who you are (default: $QUARTERDECK_USER, the CI actor, or login)",
        callback=inherit_global,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout")]

# metrics options (core/observability/metrics.py): run, resume and attach
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

RunIdArg = Annotated[str, typer.Argument(metavar="RUN")]


def err(message: str) -> None:
    """Narration and errors go to stderr, so stdout stays clean for ``--json``."""
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.stderr.flush()


def fail(exc: QuarterdeckError) -> NoReturn:
    """Say what was wrong (every problem of a definition) and exit with its code."""
    logging.getLogger(__name__).info(
        "exit %d: %s", int(exc.exit_code), exc, exc_info=exc.__cause__ is not None
    )
    if isinstance(exc, DefinitionError):
        for problem in exc.problems:
            err(str(problem))
        count = len(exc.problems)
        err(f"{count} problem{'s' if count != 1 else ''} found")
    else:
        err(f"error: {exc.message}")
        if exc.hint:
            err(f"  hint: {exc.hint}")
    raise typer.Exit(int(exc.exit_code))


def interactive() -> bool:
    """A person at a terminal (not CI, not a pipe): only then does a cockpit open."""
    return (
        sys.stdin.isatty()
        and sys.stdout.isatty()
        and not os.environ.get("CI")
        and os.environ.get("TERM") != "dumb"
    )


def color() -> bool | None:
    """``NO_COLOR`` / ``FORCE_COLOR`` / a dumb terminal decide; None lets rich detect."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    if os.environ.get("TERM") == "dumb":
        return False
    return None
