"""The cockpit's writes to the store: controls, approval decisions, war-room actions.

Another process may hold the store's write lock for seconds (a runner mid-commit, a second
operator's cockpit), so each write runs in a worker thread and the UI keeps drawing. They
go one at a time, in the order asked, whatever screen asked: a person who pauses a run,
approves its gate and goes back to the home screen before the store is free still gets both
written. The queue is the app's, not a screen's — a screen's workers end with the screen,
and a write queued behind a busy store would have been dropped without a word.

What a write's result means to the screen that asked (a "sent" notice, the modal's state)
is delivered only while that screen is up; a failure is told either way. Quitting while
writes wait asks first, and what was given up is said once the terminal is back
(:meth:`StoreWrites.abandon`).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from textual.app import App
from textual.screen import Screen

from quarterdeck.screens.delivery import still_up

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(eq=False)
class Write(Generic[T]):
    """A store write waiting its turn: ``action`` runs in a worker thread, ``done`` gets
    its result on the UI thread while ``screen`` is up. ``failure`` says what a result
    means when it is not a success (the action reports a refusal or a failure as its
    result): told by the app when the screen is gone, since ``done`` would have told it."""

    screen: Screen[Any]
    key: tuple[object, ...]
    what: str
    action: Callable[[], T]
    done: Callable[[T], object]
    failure: Callable[[T], str | None]


class StoreWrites:
    """One app's store writes, in order, one worker thread at a time."""

    def __init__(self, app: App[Any]) -> None:
        self._app = app
        self._queue: deque[Write[Any]] = deque()  # the first one is in its worker
        #: what was not written: given up by quitting (:meth:`abandon`), or failed once the
        #: app had stopped and could tell nobody; the command says so after the app
        self.unsent: list[str] = []

    def submit(
        self,
        screen: Screen[Any],
        key: tuple[object, ...],
        what: str,
        action: Callable[[], T],
        done: Callable[[T], object],
        failure: Callable[[T], str | None],
    ) -> bool:
        """Queue ``action`` (see :class:`Write`); False (and the person is told) when a
        write with the same ``key`` still waits — a key pressed twice while the store is
        busy writes once."""
        if any(w.key == key for w in self._queue):
            self._app.notify(f"{what} is still being written: the store is busy", title=what)
            return False
        self._queue.append(Write(screen, key, what, action, done, failure))
        if len(self._queue) == 1:
            self._start(self._queue[0])
        return True

    def pending(self) -> list[str]:
        """What is still to be written (the one in its worker first)."""
        return [w.what for w in self._queue]

    def abandon(self) -> None:
        """Give up the writes not yet started (the app is quitting without them); the one
        in its worker finishes — a thread is not stopped mid-transaction — and the others
        are kept in :attr:`unsent` for the person to be told."""
        if not self._queue:
            return
        started = self._queue.popleft()
        for w in self._queue:
            self._keep_unsent(w, "not written (you quit first)")
        self._queue.clear()
        self._queue.append(started)

    def _start(self, item: Write[Any]) -> None:
        self._app.run_worker(
            lambda: self._run(item),
            name=f"store write: {item.what}",
            group="store-writes",
            thread=True,
            exit_on_error=False,
        )

    def _run(self, item: Write[Any]) -> None:
        """In the worker thread: write, then hand the outcome to the UI thread."""
        try:
            result = item.action()
        except Exception as exc:  # the actions say their failures; this is the backstop
            log.error("%s: writing to the store failed", item.what, exc_info=True)
            self._hand_back(item, self._failed, f"{type(exc).__name__}: {exc}")
            return
        self._hand_back(item, self._done, result)

    def _hand_back(
        self, item: Write[Any], callback: Callable[[Write[Any], Any], None], outcome: Any
    ) -> None:
        try:
            self._app.call_from_thread(callback, item, outcome)
        except RuntimeError:  # the app's loop is gone: nobody on screen to tell
            why = outcome if callback == self._failed else item.failure(outcome)
            if why is not None:
                self._keep_unsent(item, why)

    def _done(self, item: Write[Any], result: object) -> None:
        try:
            if still_up(item.screen):
                item.done(result)
            elif (why := item.failure(result)) is not None:
                self._tell(item, why)
        finally:
            self._next(item)

    def _failed(self, item: Write[Any], message: str) -> None:
        try:
            self._tell(item, message)
        finally:
            self._next(item)

    def _tell(self, item: Write[Any], why: str) -> None:
        """A failure: on screen while the app runs, else kept for the terminal."""
        if self._app.is_running:
            self._app.notify(why, title=f"{item.what} failed", severity="error")
        else:
            self._keep_unsent(item, why)

    def _keep_unsent(self, item: Write[Any], why: str) -> None:
        self.unsent.append(f"{item.what}: {why}")

    def _next(self, item: Write[Any]) -> None:
        if self._queue and self._queue[0] is item:
            self._queue.popleft()
        if self._queue and self._app.is_running:
            self._start(self._queue[0])
