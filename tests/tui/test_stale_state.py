"""Every view says what the journal says: an ended run offers no decision, a sent control
that the journal reflects stops being "sent", and nothing spins while nothing moves.
Real runs, a real store, the real app."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Button, Static

from quarterdeck.core.journal.store import Store
from quarterdeck.screens.approval import ApprovalScreen
from quarterdeck.screens.dashboard import DashboardScreen
from quarterdeck.tui.launch import load, load_context
from quarterdeck.tui.widgets.stage_tree import StageTree
from quarterdeck.tui.widgets.status import SPINNER
from tests.helpers import cli, cli_popen
from tests.tui.conftest import wait_until

pytestmark = pytest.mark.asyncio


def launch(app: Any, name: str, **given: Any) -> str:
    return str(app.launch(load(name, load_context()), {k: str(v) for k, v in given.items()}))


def dashboard(app: Any) -> DashboardScreen:
    for screen in reversed(app.screen_stack):
        if isinstance(screen, DashboardScreen):
            return screen
    raise AssertionError(f"no dashboard in {app.screen_stack}")


def has_dashboard(app: Any) -> bool:
    return any(isinstance(s, DashboardScreen) for s in app.screen_stack)


def bar(app: Any) -> str:
    return str(dashboard(app).query_one("#run-bar", Static).render())


def modal_ready(app: Any) -> bool:
    return isinstance(app.screen, ApprovalScreen) and bool(app.screen.query("#later"))


async def cancelled_at_gate(make_app: Any) -> str:
    """A ``tiny`` run cancelled (from another terminal) while its gate ``ship`` waited."""
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        run_id = launch(app, "tiny")
        await wait_until(pilot, lambda: modal_ready(app), what="the approval modal")
        with Store(app.store_path) as db:
            db.send_signal(run_id, "cancel", actor="bob", reason="wrong tag")
        await wait_until(pilot, lambda: not app.runs[run_id].alive, what="the cancel")
        # the open modal closed itself, saying why: nothing can decide the gate now
        await wait_until(pilot, lambda: not isinstance(app.screen, ApprovalScreen), what="close")
        await wait_until(
            pilot,
            lambda: "can no longer be decided" in dashboard(app).notice,
            what="the reason it closed",
        )
    app.stop_runs()
    return run_id


async def test_reopening_a_cancelled_run_offers_no_approval(make_app: Any, project: Path) -> None:
    run_id = await cancelled_at_gate(make_app)
    app = make_app(attach=run_id)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: has_dashboard(app), what="the dashboard")
        await wait_until(
            pilot,
            lambda: dashboard(app).state.status == "cancelled" and "cancelled" in bar(app),
            what="the journal read",
        )
        await wait_until(pilot, lambda: dashboard(app).workflow is not None, what="definition")
        await pilot.pause(0.3)  # a few ticks: the modal would pop on the first one
        assert not isinstance(app.screen, ApprovalScreen)
        assert "waiting on" not in bar(app)
        tree = dashboard(app).query_one("#tree", StageTree)
        assert "gate never decided" in str(tree.node_for(("stage", "publish")).label)
        gates = str(dashboard(app).query_one("#gates-text", Static).render())
        assert "ship never decided" in gates and "waiting" not in gates
        assert dashboard(app).state.approvals["ship"].status == "waiting"  # as journaled
        await pilot.press("a")
        await pilot.pause()
        assert not isinstance(app.screen, ApprovalScreen)
    shown = cli("show", run_id, "--store", str(project / "qd.db"))
    assert "approval ship: never decided (the run is cancelled)" in shown.stdout


async def test_approving_a_cancelled_run_is_refused_at_once(make_app: Any) -> None:
    """A decision that cannot apply is refused with a toast, never a spinner without an end
    (the modal could be open when the run ends in another terminal)."""
    run_id = await cancelled_at_gate(make_app)
    app = make_app(attach=run_id)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: has_dashboard(app), what="the dashboard")
        await wait_until(pilot, lambda: dashboard(app).state.started_at, what="the journal")
        written: list[int | None] = []
        assert dashboard(app).send("approve", target="ship", then=written.append)
        await wait_until(pilot, lambda: written, what="the write")
        assert written == [None]  # refused: nothing written
        await pilot.pause()
        toasts = [n.message for n in app._notifications]
        assert any("has already ended (cancelled)" in t for t in toasts), toasts
    with Store(app.store_path) as db:
        assert db.pending_signals(run_id) == []


async def test_pause_then_unpause_then_finish_tells_the_truth(make_app: Any) -> None:
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
        tree = dashboard(app).query_one("#tree", StageTree)
        label = str(tree.node_for(("stage", "talk")).label)
        assert not any(ch in label for ch in SPINNER), label  # nothing moves: no spinner
        assert "pause sent" not in bar(app)  # the journal says paused; not "sent" any more
        await pilot.press("p")
        await wait_until(
            pilot, lambda: dashboard(app).state.status == "succeeded", what="the run to finish"
        )
        await pilot.pause(0.3)
        assert "unpause sent" not in bar(app)
        assert "sent" not in dashboard(app).notice


async def test_the_modal_buttons_never_wait_forever(make_app: Any) -> None:
    """The gate's modal is only offered while the run runs: after the run is cancelled the
    dashboard's approval key is refused with the reason (the footer greys it out)."""
    run_id = await cancelled_at_gate(make_app)
    app = make_app(attach=run_id)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: has_dashboard(app), what="the dashboard")
        await wait_until(pilot, lambda: dashboard(app).state.status == "cancelled", what="read")
        why = dashboard(app).why_unavailable("approval")
        assert why is not None and "can no longer apply" in why
        assert not app.screen.query(Button).filter("#approve")


GATE = """\
name: gate
stages:
  - id: build
    steps:
      - id: make
        uses: shell
        with: {run: "echo built"}
  - id: release
    approval:
      id: publish
      prompt: "Publish?"
      allow_self_approval: true
    steps:
      - id: upload
        uses: shell
        with: {run: "echo uploaded"}
"""


async def test_a_decision_the_runner_does_not_record_says_so(make_app: Any, project: Path) -> None:
    """The run's process is alive but not acting (stopped with SIGSTOP): after a few
    seconds the modal says the decision is not recorded and how to go on, instead of
    "waiting for the run to record it…" forever; once the process goes on, it applies."""
    import signal

    # the cockpit's clock moves only when the test says: on a loaded machine more than 5 s
    # could pass between pressing approve and seeing "waiting…", which then never shows
    clock = [time.time()]
    async with _stopped_at_gate(project) as (run_id, proc):
        app = make_app(attach=run_id, now=lambda: clock[0])
        async with app.run_test(size=(120, 40)) as pilot:
            modal = await _approve(app, pilot)
            await wait_until(
                pilot,
                lambda: (
                    "waiting for the run to record it"
                    in str(modal.query_one("#approval-error").render())
                ),
                what="the sent decision",
            )
            clock[0] += 6.0  # the runner still has not recorded it
            await wait_until(
                pilot,
                lambda: "not recorded after 5s" in str(modal.query_one("#approval-error").render()),
                what="the not-recorded notice",
            )
            await wait_until(  # a notification is a message, handled after the text is set
                pilot,
                lambda: any("not recorded" in n.message for n in app._notifications),
                what="the not-recorded notification",
            )
            proc.send_signal(signal.SIGCONT)  # the runner goes on and applies it
            await wait_until(
                pilot, lambda: not isinstance(app.screen, ApprovalScreen), what="close"
            )
        assert proc.wait(timeout=60) == 0


@pytest.mark.asyncio
async def test_the_modal_reads_a_refusal_off_the_ui_thread(
    make_app: Any, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a decision is pending the modal asks the store for its outcome every 0.1 s;
    that read runs in a worker thread (a locked store must never freeze the cockpit), and
    a refusal it finds is still shown. The run's process is stopped, so the test records
    the refusal in its place."""
    import threading

    readers: list[bool] = []  # for each read: on the UI thread?
    original = Store.signal_outcome

    def watched(self: Store, signal_id: int) -> str | None:
        readers.append(threading.current_thread() is threading.main_thread())
        return original(self, signal_id)

    monkeypatch.setattr(Store, "signal_outcome", watched)
    async with _stopped_at_gate(project) as (run_id, _proc):
        app = make_app(attach=run_id)
        async with app.run_test(size=(120, 40)) as pilot:
            modal = await _approve(app, pilot)
            await wait_until(pilot, lambda: len(readers) >= 3, what="the outcome read")
            sent = modal.sent
            assert sent is not None
            with Store(project / "qd.db") as store:  # the runner's part: it refuses it
                store.consume_signal(sent, "refused: the gate was decided already")
            await wait_until(
                pilot,
                lambda: (
                    "refused: the gate was decided already"
                    in str(modal.query_one("#approval-error").render())
                ),
                what="the refusal shown",
            )
            assert modal.sent is None
    assert readers and not any(readers), "the outcome was read on the UI thread"


@contextlib.asynccontextmanager
async def _stopped_at_gate(project: Path) -> AsyncIterator[tuple[str, subprocess.Popen[bytes]]]:
    """A headless run of GATE started by alice, stopped (SIGSTOP) once it waits at its
    gate: alive but not acting. Gives its id and process; a process still there at the
    end is continued and killed."""
    import asyncio
    import signal

    db = project / "qd.db"
    wf = project / "gate.yaml"
    wf.write_text(GATE)
    proc = cli_popen(
        "run", str(wf), "--headless", "--store", str(db), "--as", "alice",
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        run_id = None
        for _ in range(600):  # bounded: the run reaches its gate within seconds
            if db.exists():
                with Store(db) as store:
                    rows = store.list_runs()
                if rows and rows[0].status == "waiting":
                    run_id = rows[0].id
                    break
            await asyncio.sleep(0.05)
        assert run_id is not None, "the run never reached its gate"
        proc.send_signal(signal.SIGSTOP)
        yield run_id, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
            proc.wait()


async def _approve(app: Any, pilot: Any) -> ApprovalScreen:
    """Press Approve in the gate's modal once it may be pressed; the modal."""
    await wait_until(pilot, lambda: modal_ready(app), what="the approval modal")
    modal = app.screen
    assert isinstance(modal, ApprovalScreen)
    # mounted, not only composed: its first focus (Later) is set, so a focus the test gives
    # next is not taken back by it (a key a person types comes after that, too)
    await wait_until(pilot, lambda: modal.focused is not None, what="the modal's first focus")
    await wait_until(
        pilot, lambda: not modal.query_one("#approve", Button).disabled, what="approve enabled"
    )
    modal.query_one("#approve", Button).press()
    return modal
