"""The ``quarterdeck`` console script's first module: it pauses the cyclic GC before the
command line is imported, then hands over to :func:`quarterdeck.tui.cli.entry`.

Importing the command line (typer, our modules, their models) builds objects that live
until the process exits; a collection then walks them for nothing, about a dozen times for
typer alone. This module imports nothing else so the pause covers all of it (see
:mod:`quarterdeck.core.gc_pause`; a command ends the pause where its work begins).
"""

from __future__ import annotations


def entry() -> None:
    """The console script."""
    from quarterdeck.core.gc_pause import pause_startup

    pause_startup()
    from quarterdeck.tui.cli import entry as command_line

    command_line()
