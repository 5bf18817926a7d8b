"""The war room follows the run and asks before acting: Pilot against a real store.

Milestones move when the run's events arrive, resolving while the alert fires asks first,
"roll back" deploys the last good release while rejecting is its own action with a
reason, an approval names the severity of now, a cancel asks why, and people's decisions
are theirs in the timeline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from quarterdeck.core.incidents.postmortem import postmortem_path
from quarterdeck.core.incidents.read import load
from quarterdeck.core.incidents.record import record
from quarterdeck.core.journal.store import Store
from quarterdeck.screens.warroom import WarRoomScreen
from tests.tui.conftest import wait_until
from tests.tui.test_warroom import (
    RUN,
    SIZE,
    T0,
    Journal,
    after_resolution,
    health,
    loaded,
    make_app,
    mid_incident,
    type_in,
)


def _signals(db: Path, kind: str) -> list[tuple[str, str, str]]:
    with Store(db) as store:
        rows = store.conn.execute(
            "SELECT target, actor, reason FROM signals WHERE kind = ? ORDER BY id", (kind,)
        ).fetchall()
    return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]


def _notified(pilot: Pilot[Any], text: str) -> bool:
    return any(text in n.message for n in pilot.app._notifications)


@pytest.mark.asyncio
async def test_milestones_move_as_the_run_goes(tmp_path: Path) -> None:
    db = tmp_path / "qd.db"
    mid_incident(db)
    app = make_app(db, "alice", T0 + 35 * 60)
    async with app.run_test(size=SIZE) as pilot:
        room = await loaded(pilot)
        # triage recorded the root cause before alice acknowledged: identified, by the run
        assert room.incident.milestone == "identified"
        assert room.incident.milestone_by["identified"] == "run"
        assert room.incident.milestones["identified"] == T0 + 120  # her acknowledgement
        roles = str(room.query_one("#wr-roles").render())
        assert "identified" in roles and "run" in roles
        # the deploy is approved and its health watch passes, in another process's journal
        with Store(db) as store:
            j = Journal(store)
            j.emit(
                36 * 60,
                "approval.decided",
                "deploy",
                gate="deploy",
                decision="approved",
                by="bob",
                reason="",
            )
            j.emit(36 * 60 + 1, "stage.started", "deploy", persona="devops-engineer")
            j.step(
                36 * 60 + 10,
                "deploy",
                "watch",
                "http.health_check",
                "succeeded",
                health([True] * 6),
            )
        await loaded(pilot, lambda s: s.incident.milestone == "mitigated")
        assert room.incident.milestone_by["mitigated"] == "run"
        assert room.incident.alert_state == ("resolved", "health probe watch")
        banner = str(room.query_one("#wr-banner").render())
        assert "MITIGATED" in banner and "alert resolved" in banner
        # the approval in the timeline is bob's, not the run's
        body = str(room.query_one("#timeline-body").render())
        line = next(ln for ln in body.splitlines() if "approval deploy approved" in ln)
        assert " bob " in line and " run " not in line


@pytest.mark.asyncio
async def test_resolving_while_the_alert_fires_asks_first(tmp_path: Path) -> None:
    db = tmp_path / "qd.db"
    mid_incident(db)
    app = make_app(db, "alice", T0 + 35 * 60)
    async with app.run_test(size=SIZE) as pilot:
        room = await loaded(pilot)
        assert room.incident.alert_firing  # the triage health probe failed
        await pilot.press("x")
        await pilot.pause()
        assert type(app.screen).__name__ == "ConfirmScreen"
        assert "alert is still firing" in str(app.screen.question)  # type: ignore[attr-defined]
        await pilot.press("escape")  # keep working
        await pilot.pause()
        assert app.screen is room and not room.incident.resolved
        await pilot.press("x")
        await pilot.pause()
        await pilot.click("#yes")
        await pilot.pause()
        assert type(app.screen).__name__ == "TextPrompt"
        await type_in(pilot, "rolled back to 1.4.1")
        await pilot.press("enter")
        await loaded(pilot, lambda s: s.incident.resolved)
    assert postmortem_path(RUN).is_file()


@pytest.mark.asyncio
async def test_roll_back_deploys_the_last_good_release_and_reject_is_separate(
    tmp_path: Path,
) -> None:
    db = tmp_path / "qd.db"
    mid_incident(db)
    app = make_app(db, "carol", T0 + 35 * 60)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("b")
        await pilot.pause()
        question = str(app.screen.question)  # type: ignore[attr-defined]
        assert "last good release" in question and "release 9f1c2ab" in question
        await pilot.click("#yes")
        await pilot.pause()
        assert _signals(db, "approve") == [
            ("deploy", "carol", "roll back to the last good release: release 9f1c2ab")
        ]
        assert _signals(db, "reject") == []
        # rejecting is its own action, and asks why
        await pilot.press("r")
        await pilot.pause()
        assert type(app.screen).__name__ == "ReasonScreen"
        await type_in(pilot, "wrong hosts")
        await pilot.press("enter")
        await pilot.pause()
        assert _signals(db, "reject") == [("deploy", "carol", "wrong hosts")]
    with Store(db) as store:
        assert load(store, RUN).notes[-1].text.startswith("rejected deploy: wrong hosts")


@pytest.mark.asyncio
async def test_a_pending_approval_names_the_severity_of_now(tmp_path: Path) -> None:
    db = tmp_path / "qd.db"
    mid_incident(db)  # the deploy was requested as SEV1
    with Store(db) as store:
        record(
            store,
            RUN,
            "severity",
            actor="alice",
            now=T0 + 30 * 60,
            data={"severity": "SEV2", "text": "checkout partly back"},
        )
    app = make_app(db, "alice", T0 + 35 * 60)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, lambda s: s.incident.severity == 2)
        await pilot.press("a")
        await pilot.pause()
        prompt = str(app.screen.query_one("#approval-prompt").render())
        assert "(SEV2)?" in prompt and "was SEV1 when requested" in prompt


@pytest.mark.asyncio
async def test_cancel_asks_why_and_journals_it(tmp_path: Path) -> None:
    db = tmp_path / "qd.db"
    mid_incident(db)
    app = make_app(db, "alice", T0 + 35 * 60)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("d")  # the run's dashboard
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ApprovalScreen")
        await pilot.press("escape")  # the dashboard opened the waiting gate: later
        await wait_until(pilot, lambda: type(app.screen).__name__ == "DashboardScreen")
        await pilot.press("c")
        await pilot.pause()
        assert type(app.screen).__name__ == "ReasonScreen"
        await pilot.press("enter")  # no reason: refused in place
        await pilot.pause()
        assert type(app.screen).__name__ == "ReasonScreen" and _signals(db, "cancel") == []
        await type_in(pilot, "false alarm: the probe was misconfigured")
        await pilot.press("enter")
        await pilot.pause()
    assert _signals(db, "cancel") == [("None", "alice", "false alarm: the probe was misconfigured")]


@pytest.mark.asyncio
async def test_keys_that_cannot_apply_say_why_and_panes_jump(tmp_path: Path) -> None:
    db = tmp_path / "qd.db"
    after_resolution(db)
    app = make_app(db, "alice", T0 + 50 * 60)
    async with app.run_test(size=SIZE) as pilot:
        room = await loaded(pilot)
        await pilot.press("r")  # nothing waits to be rejected
        await pilot.pause()
        assert _notified(pilot, "the incident is resolved")
        await pilot.press("3")
        await pilot.pause()
        assert app.focused is room.query_one("#wr-runbook")
        await pilot.press("4")
        await pilot.pause()
        assert app.focused is room.query_one("#timeline-scroll")
        await pilot.press("q")  # backs out to Home
        await wait_until(pilot, lambda: type(app.screen).__name__ == "HomeScreen")


@pytest.mark.asyncio
async def test_side_panes_become_tabs_at_80_columns(tmp_path: Path) -> None:
    db = tmp_path / "qd.db"
    mid_incident(db)
    app = make_app(db, "alice", T0 + 35 * 60)
    async with app.run_test(size=(80, 24)) as pilot:
        room = await loaded(pilot)
        await pilot.pause()
        assert room.has_class("-tabs")
        roles, health_pane = room.query_one("#wr-roles"), room.query_one("#wr-middle")
        assert roles.size.width > 40 and health_pane.display is False
        assert room.query_one("#wr-timeline").size.height >= 8
        await pilot.press("2")
        await pilot.pause()
        assert health_pane.display is True and roles.display is False
        assert health_pane.size.width > 40
    assert isinstance(room, WarRoomScreen)
