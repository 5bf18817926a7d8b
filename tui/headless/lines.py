"""Lines for a headless run's streams, written in one batch per turn of the run's loop.

The journal writer hands subscribers a committed batch of events at a time (a thousand
``step.started`` at once when a concurrent stage starts); one write and one flush for all
their lines costs a fraction of a write and a flush per line, and a CI log viewer still
sees them as they happen. Every writer of a stream during a run (the narration, GitHub
Actions' workflow commands, the approvals policy's notes) goes through that stream's one
:class:`LineBatch`, so their lines keep the order they were written in. Outside a running
loop a line is written at once.
"""

from __future__ import annotations

import sys
import weakref
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

_BATCHES: weakref.WeakValueDictionary[int, LineBatch] = weakref.WeakValueDictionary()


class LineBatch:
    """Text bound for ``stream``, written and flushed together at the end of a loop turn."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self._pending: list[str] = []
        self._scheduled: asyncio.AbstractEventLoop | None = None  # the loop due to flush
        self.broken = False  # a write failed (a closed pipe): writers may stop producing

    def write(self, text: str) -> None:
        """Queue ``text`` (whole lines, with their newlines) for this turn's write."""
        self._pending.append(text)
        loop = _running_loop()
        if loop is None:  # no run going on: nothing to batch with
            self.flush()
            return
        if self._scheduled is not loop:  # (a loop closed before its turn ended: anew)
            self._scheduled = loop
            loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write and flush what is queued. A closed or broken stream loses the text, as a
        failed write of each line did: the narration must never stop a run."""
        self._scheduled = None
        pending, self._pending = self._pending, []
        try:
            if pending:  # (one piece is written as it is: a flood's long line is not copied)
                self.stream.write(pending[0] if len(pending) == 1 else "".join(pending))
            self.stream.flush()
        except (OSError, ValueError):
            self.broken = True


def _running_loop() -> asyncio.AbstractEventLoop | None:
    """This thread's running loop (asyncio is not imported for one: `runs`, `show` and
    `--help` do without it, and without asyncio no loop can be running)."""
    module = sys.modules.get("asyncio")
    if module is None:
        return None
    try:
        loop: asyncio.AbstractEventLoop = module.get_running_loop()
    except RuntimeError:
        return None
    return loop


class BatchFile:
    """A file for code that writes to a stream itself (rich's console, the log's
    handlers): what it writes joins the stream's line batch, so it comes out where it
    happened among the run's lines, not ahead of the ones queued earlier in the turn.

    ``stream`` None is ``sys.stderr`` as it is at each write (the CLI sets the log up
    before anything swaps it)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream

    @property
    def batch(self) -> LineBatch:
        return line_batch(self._stream if self._stream is not None else sys.stderr)

    def write(self, text: str) -> int:
        self.batch.write(text)
        return len(text)

    def flush(self) -> None:
        """Nothing: the batch is written and flushed at the end of the turn (at once
        outside a running loop)."""

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding…: the stream's
        return getattr(self.batch.stream, name)


def line_batch(stream: IO[str]) -> LineBatch:
    """The one batch of ``stream``, shared by everyone who writes to it."""
    batch = _BATCHES.get(id(stream))
    if batch is None or batch.stream is not stream:
        batch = _BATCHES[id(stream)] = LineBatch(stream)
    return batch


def flush_lines() -> None:
    """Write everything queued on every stream (a run ended, or its loop is gone)."""
    for batch in list(_BATCHES.values()):
        batch.flush()
