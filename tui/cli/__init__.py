"""The ``quarterdeck`` command line (contract: ../shared/ARCHITECTURE.md, "CLI").

This is the composition root: the typer ``app``, its global options and :func:`main`
live here; each family of commands lives in its own module, imported only when one of
its commands is invoked (:mod:`.lazy` lists which module registers which command, in
the order ``quarterdeck --help`` lists them):

- :mod:`.catalog` — validate, schema, workflows, personas, actions
- :mod:`.run` — run (and its ``--dry-run`` plan), resume, headless execution
- :mod:`.history` — runs, show, attach
- :mod:`.incidents` — listen, warroom
- :mod:`.signals` — approve, reject, pause, unpause, cancel
- :mod:`.demo` — demo

What they share (error printing, terminal checks, option types) is in :mod:`.common`.
Textual is imported only by the commands that open the cockpit.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import sys
from typing import Annotated, NoReturn, TextIO, cast

import typer

from quarterdeck.core.errors import ExitCode, QuarterdeckError
from quarterdeck.tui.cli import stopping
from quarterdeck.tui.cli.common import AsOpt, StoreOpt, err, interactive
from quarterdeck.tui.cli.lazy import LazyGroup

app = typer.Typer(
    name="quarterdeck",
    help="Quarterdeck: a terminal cockpit for multi-persona engineering workflows.",
    add_completion=False,
    no_args_is_help=False,
    invoke_without_command=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    cls=LazyGroup,
)


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
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log what happens to stderr, too")
    ] = False,
) -> None:
    """Open the cockpit when no command is given."""
    from quarterdeck.core.gc_pause import end_startup
    from quarterdeck.core.logs import setup

    if ctx.invoked_subcommand not in _STARTUP_PAUSED:
        end_startup()  # a cockpit, a server, a watch: collected as usual from here on
    from quarterdeck.tui.headless.lines import BatchFile

    setup(verbose=verbose, stderr=cast(TextIO, BatchFile()))
    if ctx.invoked_subcommand is not None:
        _refuse_unused_globals(ctx, ctx.invoked_subcommand, store=store, as_=as_)
        return
    if not interactive():
        err("quarterdeck: no terminal here, so no cockpit. Try `quarterdeck --help`.")
        raise typer.Exit(int(ExitCode.INVALID))
    try:
        from quarterdeck.tui.app import run_cockpit
    except ImportError:
        err("the cockpit is not available in this build; see `quarterdeck --help`")
        raise typer.Exit(int(ExitCode.INVALID)) from None
    raise typer.Exit(run_cockpit(store=store, actor=as_))


#: The commands that keep the console script's start-up GC pause (:func:`entry`): ``run``
#: and ``resume`` until their run or cockpit starts (they end it there); the others, which
#: read, answer and exit, to their end.
_STARTUP_PAUSED = frozenset({"run", "resume", "show", "runs", "validate"})


def _refuse_unused_globals(ctx: typer.Context, name: str, **given: str | None) -> None:
    """A global option the subcommand cannot use is an error (exit 2), not ignored."""
    get_command = getattr(ctx.command, "get_command", None)
    command = get_command(ctx, name) if get_command is not None else None
    if command is None:
        return
    takes = {p.name for p in command.params}
    for key, value in given.items():
        if value is not None and key not in takes:
            flag = "--" + key.rstrip("_")
            err(f"error: `quarterdeck {name}` does not take {flag} (given before the command)")
            raise typer.Exit(int(ExitCode.INVALID))


def entry() -> None:
    """The ``quarterdeck`` console script: :func:`main`, then a quick exit.

    Once the command is done, its output flushed and the exit handlers run (log handlers,
    temporary folders), the interpreter's own teardown — freeing every module and object,
    about a tenth of a short command's CPU — buys nothing, so the process leaves with
    ``os._exit``. When anything is unusual (a thread still running, a message as the exit
    code, output that cannot be flushed) it exits the normal way instead.

    Start-up runs without the cyclic GC (what it builds lives until exit; see
    :mod:`quarterdeck.core.gc_pause`): a command ends the pause where its work begins.
    """
    from quarterdeck.core.gc_pause import pause_startup

    pause_startup()
    if sys.stdout is None:
        sys.stdout = cast(TextIO, _Closed())
    try:
        main()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    _leave(code)


def _leave(code: object) -> NoReturn:
    import atexit
    import os
    import threading

    if code is None:
        code = 0
    lines = sys.modules.get("quarterdeck.tui.headless.lines")
    if lines is not None:  # a run's narration still queued (its loop closed mid-turn)
        lines.flush_lines()
    if not isinstance(code, int) or threading.active_count() > 1:
        raise SystemExit(code)
    out = sys.stdout
    try:
        out.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # a closed pipe: Python's own exit reports it
        raise SystemExit(code) from None
    except OSError as exc:  # a full disk: what is still buffered is lost, and said so
        err(f"error: {_io_problem(exc)}")
        code, out = int(ExitCode.INVALID), None  # (not flushed again: it fails again)
    atexit._run_exitfuncs()
    try:
        if out is not None:
            out.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def main() -> None:
    """The command line: runs the command and raises ``SystemExit`` with its exit code."""
    try:
        app()
    except QuarterdeckError as exc:  # commands handle their own; a store can fail anywhere
        logging.getLogger(__name__).debug("command failed", exc_info=True)
        err(f"error: {exc}")
        sys.exit(int(exc.exit_code))
    except sqlite3.Error as exc:  # a store read outside the journal's guarded connection
        logging.getLogger(__name__).error("store error", exc_info=True)
        err(f"error: the store failed: {exc}")
        err("  hint: check --store / $QUARTERDECK_HOME; run with --verbose for details")
        sys.exit(int(ExitCode.INVALID))
    except KeyboardInterrupt:
        err("interrupted")
        sys.exit(int(ExitCode.INTERRUPTED))
    except OSError as exc:  # click ends a closed pipe (`| head`) itself, quietly, with 1
        logging.getLogger(__name__).info("I/O error", exc_info=True)  # the log file only
        err(f"error: {_io_problem(exc)}")
        sys.exit(int(ExitCode.INVALID))
    finally:
        stopping.exiting()  # the exit code is settled: a late SIGTERM must not make it 143


def _io_problem(exc: OSError) -> str:
    """What could not be read or written, for a person: the file when the error names one,
    the output when it is what fails without a name (stdout to a full disk, or closed)."""
    cause = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename is not None:
        return f"{exc.filename}: {cause}"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO):
        return f"cannot write the output: {cause} (check the disk it goes to)"
    if exc.errno == errno.EBADF:
        return f"cannot write the output: {cause}"
    return f"{type(exc).__name__}: {cause} (--verbose says where)"


class _Closed:
    """The standard output when the process was started with it closed (``>&-``): Python
    leaves ``sys.stdout`` None, and a write raised AttributeError. A write says so, as an
    OSError the command line reports; nothing else is there to do."""

    encoding = "utf-8"

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, "the standard output is closed")

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False
