"""After a cockpit session, the exit code is the contract's code of the last run the
cockpit drove: 0 succeeded, 1 failed, 4 cancelled, 130 interrupted (the cockpit closed
under a live run). Real runs, a real store, the real app."""

from __future__ import annotations

from typing import Any

import pytest

from quarterdeck.core.errors import QuarterdeckError
from quarterdeck.core.journal.store import Store
from quarterdeck.tui.launch import load, load_context
from tests.tui.conftest import wait_until

pytestmark = pytest.mark.asyncio


def launch(app: Any, name: str, **given: Any) -> str:
    return str(app.launch(load(name, load_context()), {k: str(v) for k, v in given.items()}))


async def settled(pilot: Any, app: Any, run_id: str) -> None:
    """The run ended and its dashboard is up (closing mid-mount is another test)."""
    await wait_until(pilot, lambda: not app.runs[run_id].alive, what="the run to end")
    await wait_until(pilot, lambda: bool(app.screen.query("#tree")), what="the dashboard")


def row_status(app: Any, run_id: str) -> str:
    """The store's status of ``run_id`` ("" before the run thread created it)."""
    with Store(app.store_path) as db:
        try:
            return str(db.get_run(run_id).status)
        except QuarterdeckError:
            return ""


async def test_a_session_with_no_run_exits_0(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
    assert app.session_exit_code() == 0


@pytest.mark.parametrize(
    ("name", "given", "status", "code"),
    [("chatty", {"wait": 0}, "succeeded", 0), ("flaky", {}, "failed", 1)],
)
async def test_a_finished_run_gives_its_code(
    make_app: Any, name: str, given: dict[str, Any], status: str, code: int
) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        run_id = launch(app, name, **given)
        await settled(pilot, app, run_id)
    app.stop_runs()
    assert row_status(app, run_id) == status
    assert app.session_exit_code() == code


async def test_a_cancelled_run_gives_4(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        run_id = launch(app, "chatty", wait=60)
        await wait_until(pilot, lambda: row_status(app, run_id) == "running", what="start")
        with Store(app.store_path) as db:
            db.send_signal(run_id, "cancel", actor="bob", reason="wrong branch")
        await settled(pilot, app, run_id)
    app.stop_runs()
    assert row_status(app, run_id) == "cancelled"
    assert app.session_exit_code() == 4


async def test_closing_the_cockpit_under_a_live_run_gives_130(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        run_id = launch(app, "chatty", wait=60)
        await wait_until(pilot, lambda: row_status(app, run_id) == "running", what="start")
        await wait_until(pilot, lambda: bool(app.screen.query("#tree")), what="the dashboard")
    app.stop_runs()
    assert row_status(app, run_id) == "interrupted"
    assert app.session_exit_code() == 130


async def test_the_last_run_driven_decides(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        failed = launch(app, "flaky")
        await settled(pilot, app, failed)
        ok = launch(app, "chatty", wait=0)
        await settled(pilot, app, ok)
    app.stop_runs()
    assert app.session_exit_code() == 0


async def test_the_quit_question_names_a_resume_command_that_works(make_app: Any) -> None:
    from textual.widgets import Static

    from quarterdeck.screens.confirm import ConfirmScreen

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        run_id = launch(app, "chatty", wait=60)
        await wait_until(pilot, lambda: row_status(app, run_id) == "running", what="start")
        await wait_until(pilot, lambda: bool(app.screen.query("#tree")), what="the dashboard")
        await pilot.press("ctrl+q")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        text = " ".join(str(s.render()) for s in app.screen.query(Static))
        assert f"quarterdeck resume {run_id} --store {app.store_path}" in " ".join(text.split())
    app.stop_runs()
