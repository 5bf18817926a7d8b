"""The group-commit journal writer: every event is committed before anyone acts on it.

:meth:`JournalWriter.emit` applies an event to the run state and buffers it; one callback
per event-loop turn commits the buffer in a single transaction, then the loop hands each
event to the subscribers (the cockpit, the headless renderer, metrics), which must never
block. Code that acts on an event first awaits :meth:`JournalWriter.committed`. Output
lines from actions are batched per (stage, step, stream) into ``step.output`` events.

Where a batch is committed: on the loop, on a connection of its own that never waits for
a lock (busy timeout 0), when the writer thread is idle; otherwise, or when that one
attempt finds the store locked, busy or full, on the writer thread (with its own
connection), behind the batches it already holds, with its waits and retries. So the
event loop never waits on another process's lock, batches are committed in order, and a
step in a chain costs no hand-off between threads (two wake-ups, ~30-90 µs a step on an
idle machine and far more on a busy one). Both connections fsync as the run's durability
says.

Why a thread: a write lock held by another process must not stop the event loop (signal
polling, step output, timeouts). Why retries: a lock or a transient I/O error may pass,
so a batch is retried with backoff for ``journal_retry_seconds``. When it cannot be
committed the writer fails for good: that batch and every later one are dropped (so the
journal on disk never has a sequence gap), :meth:`committed` raises
:class:`JournalFailed`, and ``on_failure`` tells the runner to stop acting (the run ends
``interrupted``, resumable from the last committed event). Row updates that go with
events (status, consumed signals, the lease) ride in the same transaction as ``ops``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from quarterdeck.core.clock import Clock
from quarterdeck.core.engine.step_output import StepLogs
from quarterdeck.core.journal import events
from quarterdeck.core.journal.events import Event, StepOutput
from quarterdeck.core.journal.payload import Payload
from quarterdeck.core.journal.state import RunState
from quarterdeck.core.journal.statuses import RunStatus
from quarterdeck.core.journal.store import ClaimLost, Store
from quarterdeck.core.observability.redact import Redactor

log = logging.getLogger(__name__)

Subscriber = Callable[[Event], None]
StoreOp = Callable[[Store], object]

OUTPUT_FLUSH_SECONDS = 0.05
OUTPUT_FLUSH_LINES = 500
#: how long a batch is retried while its cause may pass (a lock, a transient I/O error)
RETRY_SECONDS = 60.0
RETRY_ENV = "QUARTERDECK_JOURNAL_RETRY_SECONDS"
#: each attempt waits this long for another process's write lock
ATTEMPT_BUSY_MS = 2000
#: after Ctrl-C / SIGTERM the retries stop this soon: whoever stops a run wants it stopped,
#: and what is not committed by then was acted on by nobody (the run stays resumable)
HURRY_SECONDS = 3.0
# With the default durability the loop's connection does not checkpoint the WAL (copying it
# back into the file and syncing that is the only disk wait its commits would have): after
# this many of its commits it asks the writer thread to (about SQLite's own 1,000 WAL pages
# at 3-4 pages a commit). With ``full`` every commit syncs on the loop anyway, and a
# checkpoint on the thread beside the loop's syncing commits measured slower (417 vs 305
# µs a sequential step at 10,000 steps, benchmarks/runner_overhead.py --durability full),
# so there the loop's connection checkpoints as SQLite does, but sooner: see below.
CHECKPOINT_EVERY = 250
# With ``full`` each commit waits for an fdatasync of the WAL, and that costs more when the
# commit grew the file: a write past its end changes the file's size, which the file system
# must journal before the sync returns (ext4 on this box: ~1.5-2x an in-place sync). After a
# checkpoint SQLite writes the WAL again from its start, in place, so the file stops
# growing once it holds this many pages: after ~60 commits of a chain instead of the ~350
# of SQLite's 1,000 pages, a third of a 1,000-step run (benchmarks/wal_growth.py counts
# them). A checkpoint every ~80 commits adds three syncs (the WAL, the file, the WAL's new
# header): ~4% more syncs, measured cheaper than the syncs that grew the file (paired,
# docs/architecture.md, "Durability"; 100 and 400 pages measured no better).
FULL_CHECKPOINT_PAGES = 200

LineKey = tuple[str | None, str | None, str]


class JournalFailed(Exception):
    """The journal could not commit: nothing may act on events that are not durable.

    ``lasting`` says the cause does not pass by waiting (a damaged, read-only, deleted or
    replaced store): the run cannot be resumed until someone fixes the store, so the
    command exits 2 (a store error) rather than 130 (interrupted, resume when you like).
    """

    def __init__(self, message: str, *, lasting: bool = False) -> None:
        super().__init__(message)
        self.lasting = lasting


def retry_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get(RETRY_ENV, RETRY_SECONDS)))
    except ValueError:
        return RETRY_SECONDS


# SQLite's extended error names that may pass: another process's lock, a full disk that
# someone frees, a transient I/O error. Damage (SQLITE_CORRUPT, SQLITE_NOTADB), a read-only
# store and a file deleted or replaced under the run never pass: stop at once.
_PASSING = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_FULL", "SQLITE_IOERR", "SQLITE_PROTOCOL")


def _retryable(exc: BaseException) -> bool:
    """A lock, a busy store, a full disk or an I/O error may pass; damage does not."""
    if isinstance(exc, OSError):
        return True
    # a StoreError keeps the error's name in ``kind``; sqlite3 errors carry it themselves
    kind = getattr(exc, "kind", None) or getattr(exc, "sqlite_errorname", None)
    return bool(kind) and str(kind).startswith(_PASSING)


def _changed(masked: Any, data: Any) -> bool:
    """Whether redaction changed an event's data (a value that cannot be compared, like
    an array an action returned, counts as changed: the event is rebuilt from the data)."""
    try:
        return bool(masked != data)
    except Exception:
        return True


class _Checkpoint:
    """A request to the writer thread: checkpoint the WAL (see ``CHECKPOINT_EVERY``)."""


_CHECKPOINT = _Checkpoint()


class _Job:
    __slots__ = ("done", "error", "events", "ops", "settled", "waiters")

    def __init__(
        self, batch: list[Event], ops: list[StoreOp], waiters: list[asyncio.Future[None]]
    ) -> None:
        self.events = batch
        self.ops = ops
        # one future per caller of ``committed`` (a cancelled caller cancels only its own;
        # cheaper than shielding one shared future per caller)
        self.waiters = waiters
        self.settled = False  # its waiters were told (on the loop)
        self.error: JournalFailed | None = None
        # held until the job is committed or failed (flush_now waits on it); a bare lock
        # is a tenth of the cost of a threading.Event, made once per commit
        self.done = threading.Lock()
        self.done.acquire()


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
        owner: str | None = None,
        on_failure: Callable[[JournalFailed], None] | None = None,
        durability: str = "normal",
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.state = state
        self.clock = clock
        self.redactor = redactor
        self.subscribers = subscribers  # the runner's list: viewers append to it
        self.owner = owner  # the claim every commit is fenced by
        self.on_failure = on_failure
        self.durability = durability  # "full": the thread's connection fsyncs every commit
        self.failure: JournalFailed | None = None
        self.consumed: set[int] = set()  # signals consumed here, maybe not committed yet
        self._seq = seq
        # every line whole in the run dir's logs/, a capped part journaled (step_output.py)
        self.logs = logs if logs is not None else StepLogs(None, redactor)
        self._buffer: list[Event] = []
        self._ops: list[StoreOp] = []
        self._scheduled = False  # a flush is due this loop turn
        self._waiting: list[asyncio.Future[None]] = []  # waiters for that flush
        self._last: _Job | None = None
        self._lines: dict[LineKey, list[str]] = {}
        self._lines_timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._jobs: queue.SimpleQueue[_Job | _Checkpoint | None] = queue.SimpleQueue()
        self._inline_commits = 0  # since the thread was last asked to checkpoint
        self._thread_checkpoints = durability != "full"  # see CHECKPOINT_EVERY
        self._finished: deque[_Job] = deque()
        self._finished_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._thread_failure: JournalFailed | None = None
        # the loop's own connection: commits a batch at once while the thread is idle
        self._inline: Store | None = None
        self._queued: _Job | None = None  # the last job handed to the thread
        self.retry_seconds = retry_seconds()
        self._hurry_until: float | None = None  # a monotonic cap on retries (read by the thread)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Remember the run's loop (lines logged from worker threads are handed to it) and
        start the writer thread (an in-memory store is committed inline: one connection)."""
        self._loop, self._loop_thread = loop, threading.get_ident()
        if self._thread is None and str(self.store.path) != ":memory:":
            self._thread = threading.Thread(
                target=self._work, name=f"journal-{self.run_id}", daemon=True
            )
            self._thread.start()
            self._inline = self._open_inline()

    def _open_inline(self) -> Store | None:
        """The loop's connection for commits made at once: it never waits for a lock
        (busy timeout 0; a locked store hands the batch to the thread, which waits and
        retries), and fsyncs like the thread's. None if it cannot be opened now: the
        thread then commits everything, as it always could."""
        try:
            store = Store(self.store.path)
        except Exception:
            return None
        try:
            store.set_busy_timeout(0)
            store.set_auto_checkpoint(0 if self._thread_checkpoints else FULL_CHECKPOINT_PAGES)
            store.set_durability(self.durability)
            store.check_against(self.store)
        except Exception:
            store.close()
            return None
        return store

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
            if _changed(masked, built.data):  # else the typed payload is kept, not re-read
                built = Event(
                    built.type, self.run_id, built.stage, built.step, masked, built.ts, built.seq
                )
        self.state.apply(built)  # data the fold cannot read raises here, before it is numbered
        self._seq = built.seq
        self._buffer.append(built)
        self._schedule()
        return built

    # -- row updates that ride with the events ------------------------------------------

    def op(self, fn: StoreOp) -> None:
        """Run ``fn(store)`` in the transaction of the next commit (after its events)."""
        self._ops.append(fn)
        self._schedule()

    def set_status(self, status: RunStatus, finished_at: float | None = None) -> None:
        run_id = self.run_id
        self.op(lambda store: store.set_status(run_id, status, finished_at))

    def consume_signal(self, signal_id: int, outcome: str) -> None:
        self.consumed.add(signal_id)
        self.op(lambda store: store.consume_signal(signal_id, outcome))

    def send_signal(self, kind: str, **kwargs: Any) -> None:
        run_id = self.run_id
        self.op(lambda store: store.send_signal(run_id, kind, **kwargs))

    def heartbeat(self) -> None:
        """Renew the claim's lease; a lost claim fails the writer (the run stops)."""
        run_id, owner = self.run_id, self.owner

        def renew(store: Store) -> None:
            if not store.heartbeat(run_id, owner):
                raise ClaimLost(f"run {run_id} was taken over by another runner")

        self.op(renew)

    def pending_signals(self) -> list[Any]:
        """The run's pending signals, less those consumed here and not yet committed."""
        return [s for s in self.store.pending_signals(self.run_id) if s.id not in self.consumed]

    # -- commits --------------------------------------------------------------------------

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        batch, self._buffer = self._buffer, []
        ops, self._ops = self._ops, []
        waiters, self._waiting = self._waiting, []
        self._scheduled = False
        if not batch and not ops:
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
            return
        job = _Job(batch, ops, waiters)
        self._last = job
        if self._thread is None:  # in memory: commit inline
            self._commit(self.store, job)
            self._complete(job)
            return
        if self._inline is not None and self._idle() and self._commit_inline(self._inline, job):
            self._complete(job)
            if self._thread_checkpoints:
                self._inline_commits += 1
                if self._inline_commits >= CHECKPOINT_EVERY:
                    self._inline_commits = 0
                    self._jobs.put(_CHECKPOINT)
            return
        self._queued = job
        self._jobs.put(job)

    def _idle(self) -> bool:
        """Whether the thread has committed every job handed to it (and none failed):
        a batch committed on the loop now cannot overtake one of the thread's."""
        queued = self._queued
        return self._thread_failure is None and (queued is None or not queued.done.locked())

    def _commit_inline(self, store: Store, job: _Job) -> bool:
        """Commit a job on the loop's connection, in one attempt that never waits: True
        when it is settled (committed, or failed for good); False when its cause may pass
        (a lock, a full disk), so the thread takes it over with its waits and retries.

        Same transaction, fence, chain and fsync as the thread's commit; it saves the two
        hand-offs between threads that a commit otherwise costs (~30-90 µs a step)."""
        try:
            store.commit_batch(self.run_id, self.owner, job.events, job.ops)
        except Exception as exc:
            if _retryable(exc):
                return False
            job.error = self._thread_failure = self._failed(exc)
        return True

    def _work(self) -> None:
        """The writer thread: commit jobs in order, each with retries, on its own connection."""
        store: Store | None = None
        while True:
            job = self._jobs.get()
            if job is None:
                break
            if store is None and self._thread_failure is None:
                store = self._open()
                if store is not None:
                    store.check_against(self.store)
            if isinstance(job, _Checkpoint):
                if store is not None and self._thread_failure is None:
                    try:
                        store.checkpoint()
                    except Exception:  # a busy or failing store: the next one, or a commit, says
                        log.debug("WAL checkpoint failed", exc_info=True)
                continue
            if store is not None:
                self._commit(store, job)
            else:
                job.error = self._thread_failure
            self._complete(job)
        if store is not None:
            store.close()

    def hurry(self, seconds: float = HURRY_SECONDS) -> None:
        """Stop retrying within ``seconds`` (the run was interrupted): a batch that cannot
        be committed by then fails like one past the retry window, so the process exits."""
        until = time.monotonic() + seconds
        if self._hurry_until is None or until < self._hurry_until:
            self._hurry_until = until

    def _deadline(self, deadline: float) -> float:
        hurry = self._hurry_until
        return deadline if hurry is None else min(deadline, hurry)

    def _open(self) -> Store | None:
        """The thread's own connection (retried like a commit: the store may be busy)."""
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.05
        while True:
            try:
                store = Store(self.store.path)
                store.set_busy_timeout(ATTEMPT_BUSY_MS)
                store.set_durability(self.durability)
                if self.durability == "full":
                    store.set_auto_checkpoint(FULL_CHECKPOINT_PAGES)
                return store
            except Exception as exc:
                if time.monotonic() + delay > self._deadline(deadline):
                    self._thread_failure = self._failed(exc)
                    return None
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _commit(self, store: Store, job: _Job) -> None:
        """Commit one job, retrying while the cause may pass; record the failure if not."""
        if self._thread_failure is not None:  # after a lost batch nothing more is written
            job.error = self._thread_failure
            return
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.05
        while True:
            try:
                store.commit_batch(self.run_id, self.owner, job.events, job.ops)
                return
            except Exception as exc:
                if not _retryable(exc) or time.monotonic() + delay > self._deadline(deadline):
                    job.error = self._thread_failure = self._failed(exc)
                    return
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _failed(self, exc: BaseException) -> JournalFailed:
        if isinstance(exc, ClaimLost):
            return JournalFailed(f"{exc}; this runner stops")
        cause = str(exc) or type(exc).__name__
        if not _retryable(exc):
            return JournalFailed(
                f"cannot write the journal {self.store.path}: {cause} (not retried: this "
                "does not pass by waiting); the run stops here",
                lasting=True,
            )
        gave_up = (
            "gave up on retrying: the run was interrupted"
            if self._hurry_until is not None
            else f"gave up after {self.retry_seconds:g}s"
        )
        return JournalFailed(
            f"cannot write the journal {self.store.path}: {cause} "
            f"({gave_up}); the run stops here and can be resumed"
        )

    def _complete(self, job: _Job) -> None:
        with self._finished_lock:
            self._finished.append(job)
        job.done.release()
        loop = self._loop
        if loop is None or threading.get_ident() == self._loop_thread:
            self._drain()
            return
        try:
            loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop is closed: flush_now drains
            pass

    def _drain(self) -> None:
        """On the loop: settle committed jobs in order, then publish their events."""
        while True:
            with self._finished_lock:
                if not self._finished:
                    return
                job = self._finished.popleft()
            job.settled = True
            if job.error is not None:
                first = self.failure is None
                self.failure = job.error
                if first and self.on_failure is not None:
                    self.on_failure(job.error)  # stop acting before anyone wakes up
                for waiter in job.waiters:
                    if not waiter.done():
                        waiter.set_exception(job.error)
                        waiter.exception()  # mark retrieved; awaiting code re-raises
                continue
            for waiter in job.waiters:
                if not waiter.done():
                    waiter.set_result(None)
            for event in job.events:
                for subscriber in self.subscribers:
                    try:
                        subscriber(event)
                    except Exception:  # a broken viewer must never break the run
                        continue

    async def committed(self) -> None:
        """Return once every event emitted so far is committed; :class:`JournalFailed`
        when the journal cannot take them (the caller must not act)."""
        if self.failure is not None:
            raise self.failure
        # commits are FIFO: the flush due this turn (or else the last job) covers
        # everything emitted so far
        if self._scheduled:
            waiters = self._waiting
        elif self._last is not None and not self._last.settled:
            waiters = self._last.waiters
        else:
            waiters = None
        if waiters is not None:
            waiter = asyncio.get_running_loop().create_future()
            waiters.append(waiter)
            await waiter
        if self.failure is not None:
            raise self.failure

    def flush_now(self) -> None:
        """Commit synchronously (at the end of a run, or before exiting) and publish."""
        self.logs.flush()
        self.flush_lines()
        if self._buffer or self._ops or self._scheduled:
            self._flush()
        last = self._last if self._thread is not None else None
        if last is not None and last.done.acquire(timeout=self.retry_seconds + 30.0):
            last.done.release()  # let another flush_now see it done too
        self._drain()

    def close(self) -> None:
        """Stop the writer thread once its queue is committed."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)
            thread.join(self.retry_seconds + 30.0)
        inline, self._inline = self._inline, None
        if inline is not None:
            inline.close()

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
