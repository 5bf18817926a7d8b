"""The group-commit journal writer: every event is committed before anyone acts on it.

:meth:`JournalWriter.emit` applies an event to the run state and buffers it; one callback
per event-loop turn commits the buffer in a single transaction, then hands each event to
the subscribers (the cockpit, the headless renderer, metrics), which must never block.
Code that acts on an event first awaits :meth:`JournalWriter.committed`. Output lines
from actions are batched per (stage, step, stream) into ``step.output`` events.

The API is deliberately small (``bind``, ``emit``, ``committed``, ``flush_now``,
``emit_line``, ``flush_lines``) so the commit itself can move to a dedicated thread
without its callers changing.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from quarterdeck.core.clock import Clock
from quarterdeck.core.engine.step_output import StepLogs
from quarterdeck.core.journal import events
from quarterdeck.core.journal.events import Event, StepOutput
from quarterdeck.core.journal.payload import Payload
from quarterdeck.core.journal.state import RunState
from quarterdeck.core.journal.store import Store
from quarterdeck.core.observability.redact import Redactor

Subscriber = Callable[[Event], None]

OUTPUT_FLUSH_SECONDS = 0.05
OUTPUT_FLUSH_LINES = 500

LineKey = tuple[str | None, str | None, str]


class JournalWriter:
    """Numbers, redacts, applies, commits and publishes one run's events."""

    def __init__(
        self,
        store: Store,
        run_id: str,
        state: RunState,
        *,
        clock: Clock,
        redactor: Redactor,
        subscribers: list[Subscriber],
        seq: int,
        logs: StepLogs | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.state = state
        self.clock = clock
        self.redactor = redactor
        self.subscribers = subscribers  # the runner's list: viewers append to it
        self._seq = seq
        # every line whole in the run dir's logs/, a capped part journaled (step_output.py)
        self.logs = logs if logs is not None else StepLogs(None, redactor)
        self._buffer: list[Event] = []
        self._flush_future: asyncio.Future[None] | None = None
        self._lines: dict[LineKey, list[str]] = {}
        self._lines_timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Remember the run's loop, so lines logged from worker threads are handed to it."""
        self._loop, self._loop_thread = loop, threading.get_ident()

    def emit(
        self,
        payload: Payload,
        stage: str | None = None,
        step: str | None = None,
        *,
        kind: str | None = None,
    ) -> Event:
        """Journal an event (committed with the others of this loop iteration).

        ``kind`` picks one of the payload's ``TYPES`` (a circuit's opened or closed).
        """
        return self._journal(events.event(payload, self.run_id, stage, step, kind=kind))

    def emit_data(
        self, type_: str, data: dict[str, Any], stage: str | None, step: str | None
    ) -> Event:
        """Journal an event an action gave as data (``ActionContext.emit_event``), as given."""
        return self._journal(Event(type_, self.run_id, stage, step, data))

    def _journal(self, built: Event) -> Event:
        built.seq, built.ts = self._seq + 1, self.clock.now()
        if self.redactor and built.data:  # readers see the data masked, as journaled
            masked = self.redactor.obj(built.data)
            built = Event(
                built.type, self.run_id, built.stage, built.step, masked, built.ts, built.seq
            )
        self.state.apply(built)  # data the fold cannot read raises here, before it is numbered
        self._seq = built.seq
        self._buffer.append(built)
        if self._flush_future is None:
            loop = asyncio.get_running_loop()
            self._flush_future = loop.create_future()
            loop.call_soon(self._flush)
        return built

    def _flush(self) -> None:
        batch, self._buffer = self._buffer, []
        future, self._flush_future = self._flush_future, None
        try:
            if len(batch) == 1:
                self.store.append(batch[0])
            elif batch:
                self.store.append_many(batch)
        except Exception as exc:
            if future is not None and not future.done():
                future.set_exception(exc)
                future.exception()  # mark retrieved; awaiting code re-raises
            raise
        if future is not None and not future.done():
            future.set_result(None)
        for event in batch:
            for subscriber in self.subscribers:
                try:
                    subscriber(event)
                except Exception:  # a broken viewer must never break the run
                    continue

    async def committed(self) -> None:
        """Return once every event emitted so far is committed."""
        future = self._flush_future
        if future is not None:  # flushes are FIFO: this one covers everything so far
            await asyncio.shield(future)

    def flush_now(self) -> None:
        """Commit synchronously (at the end of a run, or before exiting)."""
        self.logs.flush()
        self.flush_lines()
        if self._buffer or self._flush_future is not None:
            self._flush()

    def emit_line(self, stage: str, step: str, stream: str, text: str) -> None:
        """Buffer one output line; a batch becomes a ``step.output`` event."""
        if self._loop is not None and threading.get_ident() != self._loop_thread:
            # a sync `python` function logging from its worker thread
            self._loop.call_soon_threadsafe(self.emit_line, stage, step, stream, text)
            return
        key = (stage, step, stream)
        kept = self.logs.line(stage, step, stream, text)
        if not kept:
            return
        bucket = self._lines.setdefault(key, [])
        bucket.extend(kept)
        if len(bucket) >= OUTPUT_FLUSH_LINES:
            self.flush_lines()
        elif self._lines_timer is None:
            loop = asyncio.get_running_loop()
            self._lines_timer = loop.call_later(OUTPUT_FLUSH_SECONDS, self.flush_lines)

    def emit_fragment(self, stage: str, step: str, stream: str, text: str) -> None:
        """Part of a line too long to hold whole: logged now, journaled when it ends."""
        if self._loop is not None and threading.get_ident() != self._loop_thread:
            self._loop.call_soon_threadsafe(self.emit_fragment, stage, step, stream, text)
            return
        self.logs.fragment(stage, step, stream, text)

    def flush_lines(self, only: tuple[str | None, str | None] | None = None) -> None:
        """Emit buffered lines now: all of them, or those of one (stage, step)."""
        if self._lines_timer is not None and only is None:
            self._lines_timer.cancel()
            self._lines_timer = None
        for key in list(self._lines):
            if only is not None and key[:2] != only:
                continue
            lines = self._lines.pop(key)
            if lines:
                self.emit(StepOutput(stream=key[2], lines=lines), key[0], key[1])
