"""Stopping a headless run from outside: SIGINT (Ctrl-C), SIGTERM and SIGHUP.

All three stop the run resumably (``run.interrupted``, exit 130): a closed terminal or a
dropped ssh session (SIGHUP) is no reason to lose a run. The handlers are installed with
:func:`signal.signal` before the event loop starts and stay until the process exits, so a
signal that arrives before the loop runs, while it winds down or after it closed still
means "interrupted" — never the default action (exit 143 for a second SIGTERM).
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

log = logging.getLogger(__name__)

STOP_SIGNALS: tuple[tuple[signal.Signals, str], ...] = (
    (signal.SIGINT, "interrupted (Ctrl-C)"),
    (signal.SIGTERM, "terminated"),
    (signal.SIGHUP, "hung up (terminal closed)"),
)


class Stops:
    """Routes stop signals to a runner's ``interrupt`` on its loop, whenever they come."""

    def __init__(self) -> None:
        self.pending: str | None = None
        self.received = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._interrupt: Callable[[str], None] | None = None

    def install(self) -> None:
        """Take over the stop signals for the rest of the process (main thread only)."""
        for sig, why in STOP_SIGNALS:
            try:
                signal.signal(sig, self._handler(why))
            except (ValueError, OSError):  # not the main thread: the caller's handlers stay
                log.debug("cannot handle %s outside the main thread", sig.name)

    def bind(self, interrupt: Callable[[str], None]) -> None:
        """Call from inside the run's loop: later signals interrupt it; an earlier one now."""
        import asyncio

        self._loop = asyncio.get_running_loop()
        self._interrupt = interrupt
        if self.pending is not None:
            interrupt(self.pending)

    def _handler(self, why: str) -> Callable[[int, FrameType | None], None]:
        def handle(signum: int, frame: FrameType | None) -> None:
            self.received += 1
            self.pending = self.pending or why
            loop, interrupt = self._loop, self._interrupt
            if loop is not None and interrupt is not None and not loop.is_closed():
                loop.call_soon_threadsafe(interrupt, why)

        return handle


def exiting() -> None:
    """Ignore stop signals while the process exits.

    Python puts its signal handlers back to the default while it shuts down, so a second
    SIGTERM arriving then would end the process with 143 after it decided on 130. The
    exit code is settled by now; a handler set to "ignore" is left alone.
    """
    for sig, _why in STOP_SIGNALS:
        try:
            signal.signal(sig, signal.SIG_IGN)
        except (ValueError, OSError):
            return
