"""Tail a run's journal (events) and incident actions (signals) in a thread with its own
store connection.

The cockpit never talks to a runner: a viewer reads committed events from the store,
exactly like ``attach`` from another terminal does. Reading and JSON-decoding happen in
this thread; the UI drains batches on its own timer, at most a budget of lines per tick
(a viewer catching up folds in short slices, keys and frames in between), so a run that
prints thousands of lines a second costs the UI one cheap hand-off per frame. The queue
is bounded: a viewer that falls behind slows only its own reading, never the runner.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Literal, Self, TypeVar

from quarterdeck.core.errors import QuarterdeckError
from quarterdeck.core.incidents.read import incident_signals
from quarterdeck.core.journal.events import Event
from quarterdeck.core.journal.statuses import RUN_ENDED
from quarterdeck.core.journal.store import RunRow, Signal, Store

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1
ROW_SECONDS = 0.5
BATCH_EVENTS = 2000

T = TypeVar("T")


class StoreTail(Generic[T]):
    """A thread with its own store connection reading one run's new rows until stopped.

    Subclasses say what to read (:meth:`_fetch`) and may refresh more on each pass
    (:meth:`_tick`); the thread, the bounded queue and the hand-off are shared.
    """

    thread_name = "store-tail"
    what = "reading the store"
    queue_size = 16

    def __init__(self, store_path: Path, run_id: str, *, interval: float = POLL_SECONDS) -> None:
        self.store_path = store_path
        self.run_id = run_id
        self.interval = interval
        self.error: str | None = None
        self._queue: queue.Queue[list[T]] = queue.Queue(maxsize=self.queue_size)
        self._held: list[T] = []  # read, not yet drained (the last drain's budget ran out)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name=f"{self.thread_name}-{run_id}", daemon=True
        )

    def start(self) -> Self:
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

    def drain(self, budget: int | None = None) -> list[T]:
        """Rows read since the last drain, in order (never blocks): all of them, or about
        ``budget`` worth (:meth:`_cost`) so one tick's folding stays short; the rest wait
        for the next drain (:meth:`behind` says there are some)."""
        out: list[T] = []
        spent = 0
        batch, self._held = self._held, []
        while True:
            if budget is None:
                out.extend(batch)
            else:
                for i, item in enumerate(batch):
                    if spent >= budget:
                        self._held = batch[i:]
                        return out
                    out.append(item)
                    spent += self._cost(item)
            try:
                batch = self._queue.get_nowait()
            except queue.Empty:
                return out

    def behind(self) -> bool:
        """Rows are waiting that the last drain left (its budget was spent)."""
        return bool(self._held) or not self._queue.empty()

    def _cost(self, item: T) -> int:
        """What folding ``item`` costs, in the unit of :meth:`drain`'s budget."""
        return 1

    def _put(self, items: list[T]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(items, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _tick(self, store: Store) -> None:
        """Extra reading on each pass (nothing by default)."""

    def _fetch(self, store: Store, after: int) -> tuple[list[T], int, bool]:
        """New rows after the cursor ``after``: (rows, new cursor, more waiting now)."""
        raise NotImplementedError

    def _loop(self) -> None:
        try:
            store = Store(self.store_path)
        except QuarterdeckError as exc:
            self.error = exc.message
            return
        try:
            after = 0
            while not self._stop.is_set():
                self._tick(store)
                try:
                    found, after, more = self._fetch(store, after)
                except Exception as exc:  # a locked or busy store: try again next poll
                    log.debug("%s: reading the journal failed", self.what, exc_info=True)
                    self.error = f"{self.what}: {exc}"
                    found, more = [], False
                if found and not self._put(found):
                    return
                if more:
                    continue
                self._wake.wait(self.interval)
                self._wake.clear()
        finally:
            store.close()


class JournalTail(StoreTail[Event]):
    """Reads new events of one run, from the first, until stopped (and its run row)."""

    thread_name = "journal-tail"
    what = "reading the journal"

    def __init__(self, store_path: Path, run_id: str, *, interval: float = POLL_SECONDS) -> None:
        super().__init__(store_path, run_id, interval=interval)
        self.row: RunRow | None = None
        self._next_row = 0.0

    def _tick(self, store: Store) -> None:
        now = time.monotonic()
        if now < self._next_row:
            return
        try:
            self.row = store.get_run(self.run_id)
            self.error = None
        except QuarterdeckError as exc:
            self.error = exc.message
        self._next_row = now + ROW_SECONDS

    def _cost(self, item: Event) -> int:
        """An event costs one, plus one per output line it carries (a flood's events carry
        hundreds: folding is per line)."""
        lines = item.data.get("lines") if item.type == "step.output" else None
        return 1 + (len(lines) if isinstance(lines, list) else 0)

    def _fetch(self, store: Store, after: int) -> tuple[list[Event], int, bool]:
        events = store.events(self.run_id, after=after, limit=BATCH_EVENTS)
        if not events:
            return events, after, False
        return events, events[-1].seq, len(events) == BATCH_EVENTS


class SignalTail(StoreTail[Signal]):
    """Reads a run's incident signals in a thread (own store connection), like
    :class:`JournalTail` does for events."""

    thread_name = "signal-tail"
    what = "reading incident actions"
    queue_size = 64

    def _fetch(self, store: Store, after: int) -> tuple[list[Signal], int, bool]:
        found = incident_signals(store, self.run_id, after)
        self.error = None
        return found, (found[-1].id if found else after), False


#: Signals only a live runner acts on: refused for an ended run, as the CLI refuses them
#: (a skip-gate on a failed run is kept, for the resume that follows it).
RUN_CONTROLS = frozenset({"approve", "reject", "pause", "unpause", "cancel"})


@dataclass(frozen=True)
class SignalWrite:
    """What writing one signal came to: its row id, or what to tell the person instead
    (a notification's title, text and severity)."""

    kind: str
    signal_id: int | None = None
    title: str = ""
    message: str = ""
    severity: Literal["information", "warning", "error"] = "error"


def write_signal(
    store_path: Path,
    run_id: str,
    kind: str,
    *,
    actor: str,
    target: str | None = None,
    reason: str = "",
) -> SignalWrite:
    """Write a run signal to the store as the CLI would (the runner acts on it).

    Blocking: the store may be locked by another writer for seconds, so the cockpit calls
    this in a worker thread, never on the UI thread. Never raises: a refusal or a failure
    comes back as what to tell the person.
    """
    try:
        with Store(store_path) as store:
            row = store.get_run(run_id)
            if row.status in RUN_ENDED and kind in RUN_CONTROLS:
                # as the CLI refuses it: nothing would ever act on it
                return SignalWrite(
                    kind,
                    title=f"{kind} refused",
                    message=f"run {run_id} has already ended ({row.status})",
                    severity="warning",
                )
            signal_id = store.send_signal(run_id, kind, actor=actor, target=target, reason=reason)
    except QuarterdeckError as exc:
        return SignalWrite(kind, title=f"{kind} failed", message=exc.message)
    except Exception as exc:  # never a traceback in the cockpit: say it, log the details
        log.error("sending %s to run %s failed", kind, run_id, exc_info=True)
        return SignalWrite(kind, title=f"{kind} failed", message=f"{type(exc).__name__}: {exc}")
    return SignalWrite(kind, signal_id)
