"""A busy store never freezes the cockpit: controls and decisions are written in a worker
thread while another connection holds the store's write lock (as a runner mid-commit or a
second operator's cockpit would), and the run history reads its filters on the UI thread.
Real runs, a real SQLite store, the real app."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Button, Input, Select, Static

from quarterdeck.core.journal.store import Signal, Store
from quarterdeck.screens.approval import ApprovalScreen
from quarterdeck.screens.help import HelpScreen
from quarterdeck.screens.history import HistoryScreen
from tests.tui.conftest import wait_until
from tests.tui.test_stale_state import (
    _approve,
    _stopped_at_gate,
    dashboard,
    has_dashboard,
)

pytestmark = pytest.mark.asyncio


#: A lock held this long is let go by a watchdog thread: a cockpit that waits for the store
#: on its UI thread also stops the test (they share the thread) from ever releasing it.
GIVE_UP_SECONDS = 30.0


@contextlib.contextmanager
def write_locked(db: Path) -> Iterator[sqlite3.Connection]:
    """Hold ``db``'s write lock from another connection until the block ends (or the
    watchdog lets it go)."""
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    guard = threading.Lock()

    def release() -> None:
        with guard:
            if holder.in_transaction:
                holder.execute("ROLLBACK")

    watchdog = threading.Timer(GIVE_UP_SECONDS, release)
    try:
        holder.execute("BEGIN IMMEDIATE")
        watchdog.start()
        yield holder
        release()
    finally:
        watchdog.cancel()
        holder.close()


def pending(db: Path, run_id: str, kind: str) -> list[Signal]:
    """The signals of ``kind`` the run has not consumed (its runner is stopped)."""
    with Store(db, readonly=True) as store:
        return [s for s in store.pending_signals(run_id) if s.kind == kind]


def notice(app: Any) -> str:
    """What the dashboard's run bar says besides the run (unless a gate waits: then it
    names the gate)."""
    return str(dashboard(app).notice)


def told(app: Any, text: str) -> bool:
    return any(text in f"{n.title} {n.message}" for n in app._notifications)


async def _dashboard_at_gate(app: Any, pilot: Any) -> None:
    await wait_until(pilot, lambda: has_dashboard(app), what="the dashboard")
    await wait_until(
        pilot,
        lambda: dashboard(app).state.started_at and dashboard(app).why_unavailable("pause") is None,
        what="the run read",
    )
    if isinstance(app.screen, ApprovalScreen):  # the gate's modal opens by itself
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, ApprovalScreen), what="later")


async def test_pause_while_the_store_is_locked_keeps_the_cockpit_going(
    make_app: Any, project: Path
) -> None:
    """``p`` while another connection holds the write lock: the cockpit keeps taking keys
    (help opens and closes) while the pause waits for the store, and once the lock is
    released the pause is in the store and the dashboard says it was sent."""
    db = project / "qd.db"
    async with _stopped_at_gate(project) as (run_id, _proc):
        app = make_app(attach=run_id)
        async with app.run_test(size=(120, 40)) as pilot:
            await _dashboard_at_gate(app, pilot)
            with write_locked(db):
                await pilot.press("p")
                await pilot.press("question_mark")
                await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
                await pilot.press("escape")
                await wait_until(pilot, lambda: not isinstance(app.screen, HelpScreen), what="back")
                assert pending(db, run_id, "pause") == []  # all that while, the write waited
            await wait_until(pilot, lambda: pending(db, run_id, "pause"), what="the pause row")
            await wait_until(pilot, lambda: "pause sent" in notice(app), what="pause sent")
            assert not told(app, "pause failed")


async def test_a_second_press_while_the_store_is_locked_sends_one_pause(
    make_app: Any, project: Path
) -> None:
    """The dashboard says it is sending; ``p`` again before the store took the first sends
    nothing more (and says why): one pause lands once the lock goes."""
    db = project / "qd.db"
    async with _stopped_at_gate(project) as (run_id, _proc):
        app = make_app(attach=run_id)
        async with app.run_test(size=(120, 40)) as pilot:
            await _dashboard_at_gate(app, pilot)
            with write_locked(db):
                await pilot.press("p")
                await wait_until(pilot, lambda: notice(app) == "sending pause…", what="sending")
                await pilot.press("p")
                await wait_until(pilot, lambda: told(app, "still being written"), what="once")
            await wait_until(pilot, lambda: "pause sent" in notice(app), what="pause sent")
            await app.workers.wait_for_complete()
            assert len(pending(db, run_id, "pause")) == 1


async def test_approve_while_the_store_is_locked_keeps_the_modal_going(
    make_app: Any, project: Path
) -> None:
    """Approve in the gate's modal while the store is locked: the reason field still takes
    typing while the approval waits for the store; after the lock goes the approval is in
    the store and the modal waits for the run to record it."""
    db = project / "qd.db"
    async with _stopped_at_gate(project) as (run_id, _proc):
        app = make_app(attach=run_id)
        async with app.run_test(size=(120, 40)) as pilot:
            with write_locked(db):
                modal = await _approve(app, pilot)
                reason = modal.query_one("#approval-reason", Input)
                reason.focus()
                await wait_until(pilot, lambda: reason.has_focus, what="the reason field")
                await pilot.press("o", "k")
                await wait_until(pilot, lambda: reason.value == "ok", what="typing")
                assert pending(db, run_id, "approve") == []
            error = modal.query_one("#approval-error", Static)
            await wait_until(pilot, lambda: pending(db, run_id, "approve"), what="the row")
            await wait_until(
                pilot,
                lambda: "waiting for the run to record it" in str(error.render()),
                what="the approval sent",
            )
            sent = pending(db, run_id, "approve")
            assert len(sent) == 1 and sent[0].actor == "alice" and sent[0].target == "publish"
            assert modal.sent == sent[0].id


async def test_approve_twice_while_the_store_is_locked_sends_one(
    make_app: Any, project: Path
) -> None:
    """The modal says it is sending; Approve again before the store took the first sends
    nothing more."""
    db = project / "qd.db"
    async with _stopped_at_gate(project) as (run_id, _proc):
        app = make_app(attach=run_id)
        async with app.run_test(size=(120, 40)) as pilot:
            with write_locked(db):
                modal = await _approve(app, pilot)
                error = modal.query_one("#approval-error", Static)
                await wait_until(
                    pilot, lambda: "sending the approval" in str(error.render()), what="sending"
                )
                modal.query_one("#approve", Button).press()
                await wait_until(pilot, lambda: told(app, "still being written"), what="once")
            await wait_until(
                pilot,
                lambda: "waiting for the run to record it" in str(error.render()),
                what="the approval sent",
            )
            await app.workers.wait_for_complete()
            assert len(pending(db, run_id, "approve")) == 1


async def test_a_store_locked_for_too_long_is_told_not_raised(make_app: Any, project: Path) -> None:
    """The lock outlasts the store's busy timeout: the write fails in its worker, and the
    person gets a notification naming the lock — no traceback, the cockpit goes on, and the
    next press sends the pause once the store is free."""
    db = project / "qd.db"
    async with _stopped_at_gate(project) as (run_id, _proc):
        app = make_app(attach=run_id)
        async with app.run_test(size=(120, 40)) as pilot:
            await _dashboard_at_gate(app, pilot)
            with write_locked(db):
                await pilot.press("p")
                await wait_until(pilot, lambda: told(app, "pause failed"), what="the failure")
            assert told(app, "locked by another process")
            assert "sending" not in notice(app)
            await pilot.press("p")
            await wait_until(pilot, lambda: pending(db, run_id, "pause"), what="the pause row")
            assert app.is_running


async def test_history_reads_its_filters_on_the_ui_thread(
    make_app: Any, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The history's worker only reads the store: the filter widgets are read on the UI
    thread (Textual's widgets are not thread-safe) and handed to it."""
    from tests.tui.conftest import TINY
    from tests.tui.seed import seed

    wf = project / "tiny.yaml"
    wf.write_text(TINY)
    seed(project / "qd.db", wf)
    on_ui: list[bool] = []
    original = HistoryScreen._value

    def watched(self: HistoryScreen, selector: str) -> str | None:
        on_ui.append(threading.current_thread() is threading.main_thread())
        return original(self, selector)

    monkeypatch.setattr(HistoryScreen, "_value", watched)
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        app.push_screen(HistoryScreen())
        await wait_until(pilot, lambda: isinstance(app.screen, HistoryScreen), what="history")
        screen = app.screen
        await wait_until(pilot, lambda: screen.rows, what="the runs")
        everything = len(screen.rows)
        screen.query_one("#filter-status", Select).value = "failed"
        await wait_until(
            pilot,
            lambda: screen.rows and all(r.status == "failed" for r in screen.rows),
            what="the filtered runs",
        )
        assert len(screen.rows) < everything
    assert len(on_ui) >= 4 and all(on_ui), on_ui


async def test_a_war_room_note_while_the_store_is_locked(tmp_path: Path) -> None:
    """An incident action (a note) posted while the store is locked: the war room keeps
    taking keys (help opens) while the note waits; after the lock goes it is recorded."""
    from quarterdeck.core.incidents.read import load
    from tests.tui.test_warroom import RUN, SIZE, T0, loaded, make_app, mid_incident, type_in

    db = tmp_path / "qd.db"
    mid_incident(db)
    app = make_app(db, "alice", T0 + 35 * 60)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("n")
        await pilot.pause()
        await type_in(pilot, "pool size back to 12")
        with write_locked(db):
            await pilot.press("enter")
            await pilot.press("question_mark")
            await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
            await pilot.press("escape")
            await wait_until(pilot, lambda: not isinstance(app.screen, HelpScreen), what="back")
            with Store(db, readonly=True) as store:  # all that while, the note waited
                assert not any(n.text == "pool size back to 12" for n in load(store, RUN).notes)
        room = await loaded(
            pilot, lambda s: any(n.text == "pool size back to 12" for n in s.incident.notes)
        )
        assert room.incident.notes[-1].by == "alice"
        assert not told(app, "note failed")


async def test_a_history_it_cannot_read_is_told(make_app: Any, project: Path) -> None:
    """A store that is not a store: the history says it cannot read it (the worker's error
    does not end the cockpit)."""
    (project / "qd.db").write_bytes(b"not a database at all, " * 100)
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        app.push_screen(HistoryScreen())
        await wait_until(pilot, lambda: isinstance(app.screen, HistoryScreen), what="history")
        await wait_until(
            pilot,
            lambda: sum(n.title == "cannot read the run history" for n in app._notifications) >= 2,
            what="the history's notification (home gives the first)",
        )
        await app.workers.wait_for_complete()
        assert app.is_running and isinstance(app.screen, HistoryScreen)


async def test_asking_whether_a_crashed_run_is_an_incident_writes_nothing(tmp_path: Path) -> None:
    """Opening a run asks, on the UI thread, whether it opens in the war room. That read
    must not write: a writable connection records a crashed run as interrupted while
    reading it, and that write waits for whoever holds the store's write lock (the
    dashboard's tail records it instead, in its own thread)."""
    from quarterdeck.screens.warroom import opens_in_warroom
    from tests.store_faults import interrupted_store

    store, run_id = interrupted_store(tmp_path / "crashed")
    assert opens_in_warroom(store, run_id) is False
    raw = sqlite3.connect(store)
    try:
        (status,) = raw.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
    finally:
        raw.close()
    assert status == "running"  # read as interrupted, not recorded: nothing was written
