"""Pilot tests: every cockpit flow, against real runs journaled in a real SQLite store.

Runs execute for real (a background thread here, or another process); tests wait on
conditions with bounded polling, never on sleeps.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Button, Input, Log, Select

from quarterdeck.core.journal.store import Store
from quarterdeck.screens.approval import ApprovalScreen
from quarterdeck.screens.confirm import ConfirmScreen, ReasonScreen
from quarterdeck.screens.dashboard import DashboardScreen
from quarterdeck.screens.help import HelpScreen
from quarterdeck.screens.history import HistoryScreen
from quarterdeck.screens.home import HomeScreen
from quarterdeck.screens.launch import LaunchScreen
from quarterdeck.tui.app import QuarterdeckApp
from quarterdeck.tui.launch import load, load_context
from tests.helpers import REPO, cli
from tests.tui.conftest import wait_until

pytestmark = pytest.mark.asyncio


def dashboard(app: QuarterdeckApp) -> DashboardScreen:
    for screen in reversed(app.screen_stack):
        if isinstance(screen, DashboardScreen):
            return screen
    raise AssertionError(f"no dashboard in {app.screen_stack}")


def has_dashboard(app: QuarterdeckApp) -> bool:
    return any(isinstance(s, DashboardScreen) for s in app.screen_stack)


def launch(app: QuarterdeckApp, name: str, **given: Any) -> str:
    ctx = load_context()
    return app.launch(load(name, ctx), {k: str(v) for k, v in given.items()})


def modal_ready(app: QuarterdeckApp) -> bool:
    """The approval modal is up and composed (a pushed screen composes a moment later)."""
    return isinstance(app.screen, ApprovalScreen) and bool(app.screen.query("#later"))


def status(app: QuarterdeckApp) -> str:
    return dashboard(app).state.status


async def test_launch_from_home_with_inputs_and_watch_it_finish(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        catalog = app.screen.query_one("#catalog")
        names = [catalog.get_option_at_index(i).id for i in range(catalog.option_count)]
        assert names == ["chatty", "flaky", "gated", "tiny"]
        catalog.highlighted = names.index("chatty")
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, LaunchScreen) and app.screen.query("#in-wait"),
            what="the launch form",
        )
        form = app.screen
        assert isinstance(form, LaunchScreen)
        field = form.query_one("#in-wait", Input)
        field.focus()
        await pilot.press(*"abc")
        await wait_until(pilot, lambda: "wait" in form.errors, what="a validation error")
        assert "is not a valid float" in form.errors["wait"]
        assert form.query_one("#launch", Button).disabled
        await pilot.press("backspace", "backspace", "backspace", *"0.1")
        await wait_until(pilot, lambda: not form.errors, what="the error to clear")
        assert not form.query_one("#launch", Button).disabled
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: has_dashboard(app), what="the dashboard")
        await wait_until(pilot, lambda: status(app) == "succeeded", what="the run to succeed")
        state = dashboard(app).state
        assert state.inputs == {"wait": 0.1}
        assert state.started_by == "alice"
        assert [s.status for s in state.all_steps()] == ["succeeded"] * 3
        log = dashboard(app).query_one("#log", Log)
        assert "speak │ alpha one" in log.lines


async def test_choice_inputs_are_selects_and_reach_the_run(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        catalog = app.screen.query_one("#catalog")
        catalog.highlighted = 3  # tiny
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, LaunchScreen) and app.screen.query("#in-mode"),
            what="the launch form",
        )
        form = app.screen
        assert isinstance(form, LaunchScreen)
        select = form.query_one("#in-mode", Select)
        select.value = "slow"
        form.query_one("#in-count", Input).value = "7"
        await pilot.pause()
        assert form.given() == {"mode": "slow", "count": "7"}
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: modal_ready(app), what="the approval modal")
        assert dashboard(app).state.inputs["mode"] == "slow"
        assert dashboard(app).state.inputs["count"] == 7


async def test_approve_in_the_modal(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        launch(app, "tiny")
        await wait_until(pilot, lambda: modal_ready(app), what="the approval modal")
        modal = app.screen
        assert isinstance(modal, ApprovalScreen)
        later = modal.query_one("#later", Button)
        await wait_until(pilot, lambda: modal.focused is later, what="the safe choice focused")
        # the modal fills "who may decide" on its first refresh after mounting
        await wait_until(
            pilot,
            lambda: "may approve" in str(modal.query_one("#approval-who").render()),
            what="the approvers line",
        )
        who = str(modal.query_one("#approval-who").render())
        assert "alice, bob" in who
        modal.query_one("#approve", Button).press()
        await pilot.pause()
        await wait_until(
            pilot, lambda: not isinstance(app.screen, ApprovalScreen), what="the modal to close"
        )
        approval = dashboard(app).state.approvals["ship"]
        assert approval.status == "approved" and approval.decided_by == "alice"
        assert "approved by alice" in dashboard(app).notice


async def test_reject_needs_a_reason(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        launch(app, "tiny")
        await wait_until(pilot, lambda: modal_ready(app), what="the approval modal")
        modal = app.screen
        await wait_until(
            pilot, lambda: modal.focused is modal.query_one("#later"), what="the modal to be ready"
        )
        modal.query_one("#reject", Button).press()
        await wait_until(
            pilot,
            lambda: "needs a reason" in str(modal.query_one("#approval-error").render()),
            what="the refusal",
        )
        assert app.screen is modal
        modal.query_one("#approval-reason", Input).value = "changelog is missing"
        await pilot.pause()
        modal.query_one("#reject", Button).press()
        await wait_until(pilot, lambda: status(app) == "rejected", what="the rejection")
        approval = dashboard(app).state.approvals["ship"]
        assert approval.reason == "changelog is missing"
        assert approval.decided_by == "alice"
        await wait_until(
            pilot, lambda: not isinstance(app.screen, ApprovalScreen), what="the modal to close"
        )


async def test_an_approval_from_another_process_closes_the_modal(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        run_id = launch(app, "tiny")
        await wait_until(pilot, lambda: modal_ready(app), what="the approval modal")
        done = await asyncio.to_thread(
            cli, "approve", run_id, "ship", "--as", "bob", "--store", str(app.store_path)
        )
        assert done.returncode == 0, done.stderr
        await wait_until(
            pilot, lambda: not isinstance(app.screen, ApprovalScreen), what="the modal to close"
        )
        await wait_until(pilot, lambda: status(app) == "succeeded", what="the run to finish")
        assert "ship approved by bob" in dashboard(app).notice


async def test_the_approval_modal_closes_only_once(make_app: Any) -> None:
    """The modal's watch timer can tick again between its dismissal and its removal: that
    tick must not dismiss again, which would pop the dashboard under it."""
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        run_id = launch(app, "tiny")
        await wait_until(pilot, lambda: modal_ready(app), what="the approval modal")
        modal = app.screen
        assert isinstance(modal, ApprovalScreen)
        with Store(app.store_path) as store:
            store.send_signal(run_id, "approve", actor="bob", target="ship", reason="ok")
        await wait_until(
            pilot, lambda: modal.approval.status == "approved", what="the decision to arrive"
        )
        modal._watch()  # late ticks of its timer
        modal._watch()
        await pilot.pause()
        assert has_dashboard(app), app.screen_stack
        await wait_until(pilot, lambda: status(app) == "succeeded", what="the run to finish")


async def test_someone_who_may_not_approve_sees_why(make_app: Any) -> None:
    app = make_app(actor="mallory")
    async with app.run_test(size=(120, 40)) as pilot:
        launch(app, "tiny")
        await wait_until(pilot, lambda: modal_ready(app), what="the approval modal")
        modal = app.screen
        await wait_until(
            pilot,
            lambda: modal.query_one("#approve", Button).disabled,
            what="approve to be disabled",
        )
        assert "may not decide" in str(modal.query_one("#approval-who").render())
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)
        assert app.screen.state.status == "waiting"
        await cancel_with_reason(pilot, "not today")
        await wait_until(pilot, lambda: status(app) == "cancelled", what="the cancel")


async def test_pause_and_resume(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        launch(app, "chatty", wait=4)
        await wait_until(
            pilot,
            lambda: (
                has_dashboard(app)
                and dashboard(app).state.step("pause") is not None
                and dashboard(app).state.step("pause").status == "running"
            ),
            what="the slow step",
        )
        await pilot.press("p")
        await wait_until(pilot, lambda: dashboard(app).state.paused, what="the pause")
        await wait_until(
            pilot,
            lambda: dashboard(app).state.step("pause").status == "succeeded",
            what="the step in flight to finish",
        )
        await pilot.pause(0.3)
        assert dashboard(app).state.step("after").status == "pending"  # nothing new started
        assert status(app) == "paused"
        await pilot.press("p")
        await wait_until(pilot, lambda: status(app) == "succeeded", what="the run to finish")
        kinds = [s.kind for s in dashboard(app).state.signals]
        assert kinds == ["pause", "unpause"]


async def cancel_with_reason(pilot: Any, reason: str) -> None:
    """``c`` on the dashboard asks why; the reason goes out with the cancel."""
    await pilot.press("c")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, ReasonScreen), what="why")
    pilot.app.screen.query_one("#reason").value = reason
    await pilot.press("enter")


async def test_cancel_asks_first_with_the_safe_choice_focused(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        launch(app, "chatty", wait=60)
        await wait_until(
            pilot,
            lambda: (
                has_dashboard(app)
                and dashboard(app).state.step("pause") is not None
                and dashboard(app).state.step("pause").status == "running"
            ),
            what="the slow step",
        )
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ReasonScreen), what="why")
        assert app.screen.focused is app.screen.query_one("#reason")  # nothing sent yet
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)
        await cancel_with_reason(pilot, "wrong inputs")
        await wait_until(pilot, lambda: status(app) == "cancelled", what="the cancel")
        with Store(app.store_path) as store:
            reasons = store.conn.execute("SELECT reason FROM signals WHERE kind = 'cancel'")
            assert [r[0] for r in reasons] == ["wrong inputs"]
        assert dashboard(app).state.step("pause").status in ("cancelled", "failed")


async def test_filter_the_log_and_scope_it_to_a_step(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        launch(app, "chatty")
        await wait_until(
            pilot,
            lambda: has_dashboard(app) and status(app) == "succeeded",
            what="the run to finish",
        )
        dash = dashboard(app)
        log = dash.query_one("#log", Log)
        await wait_until(pilot, lambda: len(log.lines) >= 5, what="the log")
        await pilot.press("slash")
        await pilot.press(*"beta")
        await wait_until(pilot, lambda: len(log.lines) == 2, what="the filter")
        assert list(log.lines) == ["speak │ beta two", "speak │ beta four"]
        await pilot.press("escape")
        await wait_until(pilot, lambda: len(log.lines) == 5, what="the filter to clear")
        dash.scope_log(("step", "talk", "after"))
        await pilot.pause()
        assert list(log.lines) == ["done"]
        await pilot.press("escape")
        assert len(log.lines) == 5


async def test_attach_to_a_headless_run_and_see_it_finish(make_app: Any, project: Path) -> None:
    db = project / "qd.db"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "quarterdeck.tui.cli",
            "run",
            str(project / ".quarterdeck/workflows/chatty.yaml"),
            "--headless",
            "--store",
            str(db),
            "-i",
            "wait=1",
            "--as",
            "ci-bot",
        ],
        cwd=str(REPO),
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        run_id = None
        for _ in range(400):  # bounded: the run appears within seconds
            if db.exists():
                with Store(db) as store:
                    rows = store.list_runs()
                if rows:
                    run_id = rows[0].id
                    break
            await asyncio.sleep(0.05)
        assert run_id is not None, "the headless run never appeared in the store"
        app = make_app(attach=run_id)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: has_dashboard(app), what="the dashboard")
            await wait_until(pilot, lambda: status(app) == "succeeded", what="the run to finish")
            state = dashboard(app).state
            assert state.started_by == "ci-bot"
            assert [s.status for s in state.all_steps()] == ["succeeded"] * 3
            assert not app.runs  # nothing ran in this process: it only read the journal
    finally:
        assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""


async def test_open_a_past_run_from_history(make_app: Any, project: Path) -> None:
    for name in ("flaky", "chatty"):
        done = await asyncio.to_thread(
            cli, "run", name, "--headless", "--store", str(project / "qd.db"), cwd=project
        )
        assert done.returncode in (0, 1), done.stderr
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("h")
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, HistoryScreen) and len(app.screen.rows) == 2,
            what="the history",
        )
        history = app.screen
        assert isinstance(history, HistoryScreen)
        history.query_one("#filter-status", Select).value = "failed"
        await wait_until(pilot, lambda: len(history.rows) == 1, what="the status filter")
        assert history.rows[0].workflow == "flaky"
        history.query_one("#history").focus()
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: has_dashboard(app) and status(app) == "failed",
            what="the failed run's dashboard",
        )
        dash = dashboard(app)
        assert dash.run_id == history.rows[0].id
        assert dash.state.step("needs-marker").status == "failed"
        await pilot.press("e")
        await pilot.pause()
        assert dash.query_one("#log-panel").step == ("check", "needs-marker")


async def test_retry_a_failed_step(make_app: Any, project: Path) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        launch(app, "flaky")
        await wait_until(
            pilot, lambda: has_dashboard(app) and status(app) == "failed", what="the failure"
        )
        assert dashboard(app).check_action("retry", ()) is True
        (project / "marker").write_text("now it passes")  # steps run in the project dir
        await wait_until(pilot, lambda: not app.live_runs(), what="the run thread to end")
        await pilot.press("r")
        await wait_until(pilot, lambda: status(app) == "succeeded", what="the retry")
        step = dashboard(app).state.step("needs-marker")
        assert step.status == "succeeded" and step.attempts == 2


async def test_skip_a_skippable_gate_with_a_reason(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        launch(app, "gated")
        await wait_until(
            pilot, lambda: has_dashboard(app) and status(app) == "failed", what="the gate failure"
        )
        await wait_until(
            pilot,
            lambda: dashboard(app).workflow is not None and not app.live_runs(),
            what="the definition",
        )
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, ReasonScreen), what="reason")
        await pilot.click("#ok")
        assert isinstance(app.screen, ReasonScreen)  # a reason is required
        await pilot.pause()
        app.screen.query_one("#reason", Input).focus()
        await pilot.press(*"coverage tool is broken today", "enter")
        await wait_until(pilot, lambda: status(app) == "succeeded", what="the resumed run")
        gate = dashboard(app).state.stages["measure"].gate
        assert gate is not None and gate.status == "skipped"
        assert gate.skipped_by == "alice" and gate.reason == "coverage tool is broken today"


async def test_help_and_palette_come_from_the_same_registry(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        launch(app, "chatty")
        await wait_until(
            pilot,
            lambda: has_dashboard(app) and status(app) == "succeeded",
            what="the run to finish",
        )
        assert dashboard(app).check_action("pause", ()) is None  # shown, but disabled
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-text").render())
        assert "Pause/resume" in text and "unavailable: the run has ended (succeeded)" in text
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await pilot.press(*"Failing")
        await wait_until(
            pilot,
            lambda: (
                "Failing step"
                in str(app.screen.query("CommandList").first().get_option_at_index(0).prompt)
                if app.screen.query("CommandList")
                and app.screen.query("CommandList").first().option_count
                else False
            ),
            what="the palette hit",
        )
        await pilot.press("escape")


async def test_quitting_with_a_live_run_asks_first(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        run_id = launch(app, "chatty", wait=60)
        await wait_until(
            pilot, lambda: has_dashboard(app) and status(app) == "running", what="the run"
        )
        await pilot.press("ctrl+q")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        await pilot.click("#yes")
        await wait_until(pilot, lambda: not app.is_running, what="the app to exit")
    with Store(app.store_path) as store:
        assert store.get_run(run_id).status == "interrupted"


async def test_a_workflow_detail_that_arrives_while_the_app_shuts_down_is_dropped(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The detail of the highlighted workflow loads in a thread. If it arrives while the
    app is shutting down, Textual has already removed some of home's widgets (home itself
    is still attached): drawing it crashed the closing app with NoMatches('#catalog').
    Here the load is held until shutdown has begun and the catalog is gone."""
    import quarterdeck.core.definition.validate as validate

    loading, release = threading.Event(), threading.Event()
    real_load = validate.load_workflow

    def held_load(*args: Any, **kwargs: Any) -> Any:
        loading.set()
        release.wait(10)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(validate, "load_workflow", held_load)
    app = make_app()
    real_close_all = app._close_all

    async def close_all() -> None:  # the start of Textual's shutdown, then the release
        assert not app.is_running
        await app.screen.query_one("#catalog-pane").remove()
        release.set()
        await app.workers.wait_for_complete()
        await real_close_all()

    app._close_all = close_all
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, loading.is_set, what="the detail to start loading")
        home = app.screen
        assert isinstance(home, HomeScreen)
    assert release.is_set()
    assert not home.is_attached
