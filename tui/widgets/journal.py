"""Tail a run's journal in a thread with its own store connection.

The cockpit never talks to a runner: a viewer reads committed events from the store,
exactly like ``attach`` from another terminal does. Reading and JSON-decoding happen in
this thread; the UI drains whole batches on its own timer, so a run that prints
thousands of lines a second costs the UI one cheap hand-off per frame. The queue is
bounded: a viewer that falls behind slows only its own reading, never the runner.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path

from core.errors import QuarterdeckError
from core.events import Event
from core.store import RunRow, Store

POLL_SECONDS = 0.1
ROW_SECONDS = 0.5
BATCH_EVENTS = 2000


class JournalTail:
    """Reads new events of one run, from the first, until stopped."""

    def __init__(self, store_path: Path, run_id: str, *, interval: float = POLL_SECONDS) -> None:
        self.store_path = store_path
        self.run_id = run_id
        self.interval = interval
        self.row: RunRow | None = None
        self.error: str | None = None
        self._queue: queue.Queue[list[Event]] = queue.Queue(maxsize=16)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name=f"journal-tail-{run_id}", daemon=True
        )

    def start(self) -> JournalTail:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def join(self, timeout: float = 5.0) -> None:
        self._thread.join(timeout)

    def poke(self) -> None:
        """Read again now (after sending a signal, say)."""
        self._wake.set()

    def drain(self) -> list[Event]:
        """Every event read since the last drain, in order (never blocks)."""
        out: list[Event] = []
        while True:
            try:
                out.extend(self._queue.get_nowait())
            except queue.Empty:
                return out

    def _put(self, events: list[Event]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(events, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _loop(self) -> None:
        try:
            store = Store(self.store_path)
        except QuarterdeckError as exc:
            self.error = exc.message
            return
        try:
            after = 0
            next_row = 0.0
            import time

            while not self._stop.is_set():
                now = time.monotonic()
                if now >= next_row:
                    try:
                        self.row = store.get_run(self.run_id)
                        self.error = None
                    except QuarterdeckError as exc:
                        self.error = exc.message
                    next_row = now + ROW_SECONDS
                try:
                    events = store.events(self.run_id, after=after, limit=BATCH_EVENTS)
                except Exception as exc:  # a locked or busy store: try again next poll
                    self.error = f"reading the journal: {exc}"
                    events = []
                if events:
                    after = events[-1].seq
                    if not self._put(events):
                        return
                    if len(events) == BATCH_EVENTS:
                        continue
                self._wake.wait(self.interval)
                self._wake.clear()
        finally:
            store.close()
