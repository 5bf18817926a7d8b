"""The cockpit's store writes outlive the screen that asked for them.

A person approves a gate and pauses the run while another process holds the store's write
lock, then goes back to the home screen: both are still written once the lock goes, in the
order asked. A write that fails after its screen closed is still told. Quitting while
writes wait asks first, and what was given up is said. Real runs, a real SQLite store, the
real app.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Button, Static

from quarterdeck.screens.approval import ApprovalScreen
from quarterdeck.screens.confirm import ConfirmScreen
from quarterdeck.screens.home import HomeScreen
from quarterdeck.tui.app import say_unsent
from tests.tui.conftest import wait_until
from tests.tui.test_busy_store import _dashboard_at_gate, notice, pending, told, write_locked
from tests.tui.test_stale_state import _approve, _stopped_at_gate

pytestmark = pytest.mark.asyncio


async def _approve_then_pause_then_go_home(app: Any, pilot: Any) -> None:
    """With the store locked: Approve in the gate's modal (its write waits for the lock),
    close the modal, ``p`` (queued behind it), then leave the dashboard for home."""
    modal = await _approve(app, pilot)
    error = modal.query_one("#approval-error", Static)
    await wait_until(pilot, lambda: "sending the approval" in str(error.render()), what="sending")
    await pilot.press("escape")
    await wait_until(pilot, lambda: not isinstance(app.screen, ApprovalScreen), what="closed")
    await _dashboard_at_gate(app, pilot)
    await pilot.press("p")
    await wait_until(pilot, lambda: notice(app) == "sending pause…", what="the pause queued")
    assert app.writes.pending() == ["approve", "pause"]
    await pilot.press("escape")
    await wait_until(pilot, lambda: isinstance(app.screen, HomeScreen), what="home")


async def test_writes_queued_behind_a_busy_store_are_sent_after_their_screen_closed(
    make_app: Any, project: Path
) -> None:
    db = project / "qd.db"
    async with _stopped_at_gate(project) as (run_id, _proc):
        app = make_app(attach=run_id)
        async with app.run_test(size=(120, 40)) as pilot:
            with write_locked(db):
                await _approve_then_pause_then_go_home(app, pilot)
                assert pending(db, run_id, "approve") == pending(db, run_id, "pause") == []
            await wait_until(pilot, lambda: pending(db, run_id, "pause"), what="the pause row")
            approve, pause = pending(db, run_id, "approve"), pending(db, run_id, "pause")
            assert len(approve) == len(pause) == 1
            assert approve[0].id < pause[0].id  # in the order asked
            assert approve[0].actor == pause[0].actor == "alice"
            assert app.writes.pending() == []
            assert not told(app, "failed")


async def test_a_write_that_fails_after_its_screen_closed_is_still_told(
    make_app: Any, project: Path
) -> None:
    """The lock outlasts the store's busy timeout after the person left the dashboard: the
    failure is told on whatever screen is up (the dashboard would have said it)."""
    db = project / "qd.db"
    async with _stopped_at_gate(project) as (run_id, _proc):
        app = make_app(attach=run_id)
        async with app.run_test(size=(120, 40)) as pilot:
            await _dashboard_at_gate(app, pilot)
            with write_locked(db):
                await pilot.press("p")
                await wait_until(pilot, lambda: notice(app) == "sending pause…", what="sending")
                await pilot.press("escape")
                await wait_until(pilot, lambda: isinstance(app.screen, HomeScreen), what="home")
                await wait_until(pilot, lambda: told(app, "pause failed"), what="the failure")
            assert told(app, "locked by another process")
            assert pending(db, run_id, "pause") == []


async def test_quitting_while_writes_wait_asks_and_says_what_was_given_up(
    make_app: Any, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``q`` on home while the approval and the pause wait for the store asks first; Stay
    keeps the cockpit. Quitting then gives up the pause (not started) and says so once the
    app is gone; the approval, already in its worker, is still written when the lock goes."""
    db = project / "qd.db"
    async with _stopped_at_gate(project) as (run_id, _proc):
        app = make_app(attach=run_id)
        with write_locked(db):
            async with app.run_test(size=(120, 40)) as pilot:
                await _approve_then_pause_then_go_home(app, pilot)
                await pilot.press("q")
                await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="ask")
                question = app.screen.question
                assert "holds its write lock): approve, pause." in question
                assert "Quitting now gives up: pause." in question
                await pilot.click("#no")
                await wait_until(pilot, lambda: isinstance(app.screen, HomeScreen), what="stay")
                assert app.is_running
                await pilot.press("q")
                await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="ask")
                assert app.screen.query_one("#yes", Button).label.plain == "Quit without them"
                await pilot.click("#yes")
                await pilot.pause()
            assert not app.is_running
            assert app.writes.unsent == ["pause: not written (you quit first)"]
            say_unsent(app)
            assert capsys.readouterr().err == (
                "not sent to the store: pause: not written (you quit first)\n"
            )
        for _ in range(200):  # bounded: the approval's worker takes the freed store at once
            if pending(db, run_id, "approve"):
                break
            await asyncio.sleep(0.05)
        assert len(pending(db, run_id, "approve")) == 1
        assert pending(db, run_id, "pause") == []  # what was said not sent was not sent


async def test_a_write_that_fails_after_the_app_quit_is_said_on_the_terminal(
    make_app: Any, project: Path
) -> None:
    """The lock outlasts the store's busy timeout after the person quit: the approval
    already in its worker fails with nobody on screen to tell, so it is kept for the
    terminal (``say_unsent``), naming the lock."""
    db = project / "qd.db"
    async with _stopped_at_gate(project) as (run_id, _proc):
        app = make_app(attach=run_id)
        with write_locked(db):
            async with app.run_test(size=(120, 40)) as pilot:
                modal = await _approve(app, pilot)
                error = modal.query_one("#approval-error", Static)
                await wait_until(
                    pilot, lambda: "sending the approval" in str(error.render()), what="sending"
                )
                await pilot.press("ctrl+q")  # from the modal: the app's key reaches through
                await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="ask")
                assert "approve is already being written" in app.screen.question
                assert "gives up" not in app.screen.question  # nothing else waits
                await pilot.click("#yes")
                await pilot.pause()
            for _ in range(400):  # bounded: the store's busy timeout is 10 s
                if app.writes.unsent:
                    break
                await asyncio.sleep(0.05)
        assert len(app.writes.unsent) == 1
        assert app.writes.unsent[0].startswith("approve: ")
        assert "locked by another process" in app.writes.unsent[0]
        assert pending(db, run_id, "approve") == []


async def test_ctrl_q_quits_from_a_dialog_and_asks_once(make_app: Any, project: Path) -> None:
    """``ctrl+q`` is the app's quit key on every screen, the gate's modal included (Textual
    checks only a modal's own keys unless the app's key has priority); pressed again while
    the question is up, it does not stack a second one."""
    db = project / "qd.db"
    async with _stopped_at_gate(project) as (run_id, _proc):
        app = make_app(attach=run_id)
        with write_locked(db):
            async with app.run_test(size=(120, 40)) as pilot:
                await _approve(app, pilot)
                await wait_until(pilot, lambda: app.writes.pending(), what="the write waiting")
                await pilot.press("ctrl+q")
                await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="ask")
                depth = len(app.screen_stack)
                await pilot.press("ctrl+q")
                await pilot.pause()
                assert len(app.screen_stack) == depth
                await pilot.click("#no")
                await wait_until(pilot, lambda: isinstance(app.screen, ApprovalScreen), what="back")
        app = make_app(attach=run_id)
        async with app.run_test(size=(120, 40)) as pilot:  # nothing waits: it just quits
            await wait_until(pilot, lambda: isinstance(app.screen, ApprovalScreen), what="modal")
            await pilot.press("ctrl+q")
            await pilot.pause()
            assert not app.is_running
