"""The war room: two people attached to one incident, roles enforced, snapshots.

The journal is a fixture (events written to a real SQLite store with fixed times, ids and
host labels) so snapshots never depend on the machine; the people act through the real
screen and :func:`quarterdeck.core.incidents.record.record`, and each app reads the other's actions from the
store, as two terminals would.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from quarterdeck.core.incidents.postmortem import postmortem_path
from quarterdeck.core.incidents.read import load
from quarterdeck.core.incidents.record import record
from quarterdeck.core.journal.events import Event
from quarterdeck.core.journal.store import Store
from quarterdeck.screens.warroom import WarRoomScreen
from quarterdeck.tui.app import QuarterdeckApp

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
RUN = "20231114-221320-0001"
SIZE = (130, 42)
ALERT = {
    "version": "4",
    "status": "firing",
    "receiver": "quarterdeck",
    "groupKey": '{}:{alertname="CheckoutDown"}',
    "commonLabels": {"alertname": "CheckoutDown", "service": "checkout", "severity": "critical"},
    "commonAnnotations": {"summary": "checkout answers 503"},
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "CheckoutDown"},
            "startsAt": "2023-11-14T22:12:20Z",
        }
    ],
}
PLAN = [
    {
        "id": "triage",
        "title": "Triage",
        "persona": "observability-expert",
        "steps": [
            {"id": "health", "uses": "http.health_check"},
            {"id": "error_rate", "uses": "prometheus.query"},
            {"id": "logs", "uses": "ssh.run"},
            {"id": "rca", "uses": "llm.chat"},
        ],
    },
    {
        "id": "hotfix",
        "title": "Hotfix",
        "persona": "backend-engineer",
        "steps": [{"id": "fix", "uses": "git.revert_to"}, {"id": "tests", "uses": "pytest"}],
    },
    {
        "id": "deploy",
        "title": "Deploy the hotfix",
        "persona": "devops-engineer",
        "approval": "deploy",
        "steps": [
            {"id": "switch", "uses": "ssh.run"},
            {"id": "watch", "uses": "http.health_check"},
        ],
    },
    {
        "id": "resolve",
        "title": "Resolution and postmortem",
        "persona": "observability-expert",
        "steps": [{"id": "postmortem", "uses": "python"}],
    },
]
HOSTS = ["app-1:22", "app-2:22"]


class Journal:
    """Appends events with fixed times to a real store, as a runner would."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.seq = store.last_seq(RUN)

    def emit(
        self, at: float, type_: str, stage: str | None = None, step: str | None = None, **data: Any
    ) -> None:
        self.seq += 1
        self.store.append(Event(type_, RUN, stage, step, data, T0 + at, self.seq))

    def step(
        self,
        at: float,
        stage: str,
        step: str,
        uses: str,
        status: str,
        outputs: dict[str, Any],
        error: str | None = None,
        role: str = "step",
    ) -> None:
        self.emit(at, "step.started", stage, step, attempt=1, uses=uses, role=role)
        self.emit(
            at + 5,
            "step.finished",
            stage,
            step,
            status=status,
            attempt=1,
            outputs=outputs,
            error=error,
        )


def health(oks: list[bool], latency: float = 12.0) -> dict[str, Any]:
    series = [
        {"t": i * 0.5, "ok": ok, "latency_ms": latency + i, "status": 200 if ok else 503}
        for i, ok in enumerate(oks)
    ]
    ratio = sum(oks) / len(oks)
    return {
        "series": series,
        "samples": len(oks),
        "failures": oks.count(False),
        "success_ratio": ratio,
        "p99_ms": latency + len(oks) - 1,
        "passed": ratio >= 0.99,
        "reason": "" if ratio >= 0.99 else f"success ratio {ratio:.2%} is below 99.00%",
    }


def ssh(lines: str, code: int = 0) -> dict[str, Any]:
    return {
        "hosts": {h: {"exit_code": code, "stdout": lines, "stderr": ""} for h in HOSTS},
        "exit_codes": dict.fromkeys(HOSTS, code),
        "failed_hosts": [],
        "skipped_hosts": [],
    }


def mid_incident(db: Path) -> None:
    """SEV1, 35 minutes in: triage and hotfix done, the deploy waits for approval, alice
    commands (the run is identified from her acknowledgement: triage found the cause), bob
    runs operations, the last update is 20 minutes old (overdue)."""
    with Store(db) as store:
        store.create_run(
            RUN,
            workflow="incident-response",
            title="Incident response",
            workflow_path="/nonexistent/incident-response.yaml",
            definition="",
            workdir="/srv",
            inputs={"alert": ALERT, "severity": "SEV1"},
            started_by="alertmanager",
            started_at=T0,
        )
        store.set_status(RUN, "waiting")
        j = Journal(store)
        j.emit(
            0,
            "run.started",
            workflow="incident-response",
            title="Incident response",
            inputs={"alert": ALERT, "severity": "SEV1"},
            plan=PLAN,
            started_by="alertmanager",
            personas={},
        )
        j.emit(1, "stage.started", "triage", persona="observability-expert")
        j.step(
            2,
            "triage",
            "health",
            "http.health_check",
            "failed",
            health([False, False, True, False, False, False]),
            error="health check failed: success ratio 16.67% is below 99.00%",
        )
        j.step(
            3,
            "triage",
            "error_rate",
            "prometheus.query",
            "failed",
            {
                "value": 0.42,
                "series": [
                    {
                        "metric": {},
                        "values": [
                            [T0 - 300 + 30 * i, v]
                            for i, v in enumerate([0.01, 0.01, 0.02, 0.15, 0.31, 0.38, 0.42, 0.41])
                        ],
                    }
                ],
                "passed": False,
                "reason": "0.42 is not <= 0.05",
            },
            error="max(demo_error_ratio): 0.42 is not <= 0.05",
        )
        j.step(
            4,
            "triage",
            "logs",
            "ssh.run",
            "succeeded",
            ssh("ERROR pool exhausted: 64/64 connections in use"),
        )
        j.step(10, "triage", "rca", "llm.chat", "succeeded", {"text": "release 1.4.2 leaks"})
        j.emit(
            20,
            "memory.set",
            "triage",
            "rca",
            key="root_cause",
            value="release 1.4.2 leaks database connections",
        )
        j.emit(21, "stage.finished", "triage", status="succeeded")
        j.emit(22, "stage.started", "hotfix", persona="backend-engineer")
        j.step(23, "hotfix", "fix", "git.revert_to", "succeeded", {"sha": "9f1c2ab"})
        j.step(30, "hotfix", "tests", "pytest", "succeeded", {"passed": 41, "failed": 0})
        j.emit(40, "stage.finished", "hotfix", status="succeeded")
        j.emit(
            41,
            "approval.requested",
            "deploy",
            gate="deploy",
            prompt="Deploy hotfix 9f1c2ab to app-1:22,app-2:22 (SEV1)?",
            evidence=["root cause: release 1.4.2 leaks database connections"],
            approvers=[],
            min_approvals=1,
            allow_self_approval=True,
        )
        record(store, RUN, "acknowledge", actor="alice", now=T0 + 120)
        record(store, RUN, "role", actor="bob", data={"role": "operations"}, now=T0 + 180)
        record(
            store,
            RUN,
            "update",
            actor="alice",
            now=T0 + 15 * 60,
            data={"text": "checkout is down; reverting 1.4.2"},
        )
        record(
            store,
            RUN,
            "note",
            actor="bob",
            now=T0 + 16 * 60,
            data={"text": "pool exhausted on both hosts"},
        )
        record(  # the run identified the cause when alice acknowledged: bob adds detail
            store,
            RUN,
            "note",
            actor="bob",
            now=T0 + 17 * 60,
            data={"text": "1.4.2 leaks connections"},
        )


def after_resolution(db: Path) -> None:
    """The deploy was approved, its health check failed, it rolled back, health
    recovered, and alice resolved the incident."""
    mid_incident(db)
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
            36 * 60 + 2,
            "deploy",
            "switch",
            "ssh.run",
            "succeeded",
            ssh("current -> /srv/app/releases/9f1c2ab/service"),
        )
        j.step(
            36 * 60 + 10,
            "deploy",
            "watch",
            "http.health_check",
            "failed",
            health([True, False, False, False]),
            error="3 consecutive failures",
        )
        j.step(
            37 * 60,
            "deploy",
            "rollback",
            "ssh.run",
            "succeeded",
            ssh("rolled back: current -> /srv/app/releases/1.4.1/service"),
            role="on_failure",
        )
        j.step(
            37 * 60 + 10,
            "deploy",
            "rollback_health",
            "http.health_check",
            "succeeded",
            health([True] * 6),
            role="on_failure",
        )
        j.emit(
            38 * 60,
            "stage.finished",
            "deploy",
            status="failed",
            error="step 'watch' failed: 3 consecutive failures",
        )
        j.emit(
            38 * 60 + 1, "run.finished", status="failed", error="stage deploy: step 'watch' failed"
        )
        store.set_status(RUN, "failed", T0 + 38 * 60 + 1)
        record(
            store,
            RUN,
            "note",  # the run marked it mitigated when its rollback finished
            actor="bob",
            now=T0 + 38 * 60 + 30,
            data={"text": "confirmed: rolled back to 1.4.1"},
        )
        record(
            store,
            RUN,
            "resolve",
            actor="alice",
            now=T0 + 45 * 60,
            data={"text": "rolled back to 1.4.1; the hotfix needs rework"},
        )


def make_app(db: Path, actor: str, now: float) -> QuarterdeckApp:
    return QuarterdeckApp(
        store_path=db,
        actor=actor,
        now=lambda: now,
        attach=RUN,
        blink=False,
        new_run_id=lambda _w: "unused",
    )


async def type_in(pilot: Pilot[Any], text: str) -> None:
    """Fill the focused input (as typing would, without a key event per character)."""
    from textual.widgets import Input

    field = pilot.app.focused
    assert isinstance(field, Input), f"no input focused ({field})"
    field.value = text
    await pilot.pause()


def _caught_up(screen: WarRoomScreen) -> bool:
    """The war room has folded every event and every incident row in the store, and
    painted them (a screenshot taken earlier shows a moment, not the incident)."""
    with Store(screen.host.store_path) as store:
        row = store.conn.execute(
            "SELECT COALESCE(MAX(id), 0) FROM signals WHERE run_id = ? AND kind = 'incident'",
            (screen.run_id,),
        ).fetchone()
        last_seq = store.last_seq(screen.run_id)
    return (
        screen.incident.last_signal_id >= int(row[0])
        and screen.state.last_seq >= last_seq
        and not screen._dirty
    )


async def loaded(
    pilot: Pilot[Any], what: Callable[[WarRoomScreen], bool] | None = None, tries: int = 200
) -> WarRoomScreen:
    """Wait (bounded) until the war room is up and ``what`` holds."""
    for _ in range(tries):
        screen = pilot.app.screen
        if (
            isinstance(screen, WarRoomScreen)
            and screen.incident.run_started_at is not None
            and _caught_up(screen)
            and (what is None or what(screen))
        ):
            return screen
        await pilot.pause(0.05)
    raise AssertionError(f"the war room never got there (screen: {pilot.app.screen})")


@pytest.mark.asyncio
async def test_two_people_one_incident(tmp_path: Path) -> None:
    db = tmp_path / "qd.db"
    mid_incident(db)
    alice = make_app(db, "alice", T0 + 35 * 60)
    bob = make_app(db, "bob", T0 + 35 * 60)
    async with alice.run_test(size=SIZE) as a, bob.run_test(size=SIZE) as b:
        wa = await loaded(a)
        wb = await loaded(b)
        assert wa.incident.commander == "alice" and wb.incident.commander == "alice"
        # a note posted in one appears in the other
        await a.press("n")
        await a.pause()
        await type_in(a, "db connections back to 12")
        await a.press("enter")
        await loaded(
            b, lambda s: any(n.text == "db connections back to 12" for n in s.incident.notes)
        )
        assert wb.incident.notes[-1].by == "alice"
        # bob is not the commander: resolve is unavailable, and refused if forced
        assert (
            wb.why_unavailable("resolve")
            == "only the incident commander (alice) resolves the incident"
        )
        await b.press("x")
        await b.pause()
        assert isinstance(bob.screen, WarRoomScreen)  # no resolve dialog opened
        assert wb.act("resolve", {"text": "done"})
        await loaded(b, lambda s: any(n.title == "resolve refused" for n in bob._notifications))
        with Store(db) as store:
            assert not load(store, RUN).resolved
        # alice hands command to bob through the role dialog
        await a.press("o")
        await a.pause()
        assert alice.screen.query_one("#prompt-choice").value == "commander"
        await a.press("tab")
        await type_in(a, "bob")
        await a.press("enter")
        await loaded(b, lambda s: s.incident.commander == "bob")
        await loaded(a, lambda s: s.incident.commander == "bob")
        assert wa.why_unavailable("resolve") is not None
        assert wb.why_unavailable("resolve") is None
        await b.press("x")
        await b.pause()
        await b.click("#yes")  # the alert still fires: resolve anyway
        await b.pause()
        await type_in(b, "rolled back to 1.4.1")
        await b.press("enter")
        await loaded(a, lambda s: s.incident.resolved)
        assert wa.incident.milestone_by["resolved"] == "bob"
        assert postmortem_path(RUN).is_file()
    with Store(db) as store:
        rows = store.conn.execute(
            "SELECT actor, target, outcome FROM signals WHERE run_id = ? ORDER BY id", (RUN,)
        ).fetchall()
    assert (
        "bob",
        "resolve",
        "refused: only the incident commander (alice) resolves the incident",
    ) in rows
    assert rows[-2:] == [("alice", "role", "recorded"), ("bob", "resolve", "recorded")]


@pytest.mark.asyncio
async def test_approve_the_deploy_from_the_war_room(tmp_path: Path) -> None:
    db = tmp_path / "qd.db"
    mid_incident(db)
    app = make_app(db, "carol", T0 + 35 * 60)
    async with app.run_test(size=SIZE) as pilot:
        room = await loaded(pilot)
        assert room.why_unavailable("approve") is None
        assert room.why_unavailable("rollback") is None  # the revert waits: it is the rollback
        assert room.why_unavailable("reject_deploy") is None
        await pilot.press("a")
        await pilot.pause()
        assert type(app.screen).__name__ == "ApprovalScreen"
        await pilot.press("escape")
        await pilot.pause()
        assert type(app.screen).__name__ == "WarRoomScreen"


@pytest.mark.asyncio
async def test_timeline_filters(tmp_path: Path) -> None:
    db = tmp_path / "qd.db"
    mid_incident(db)
    app = make_app(db, "alice", T0 + 35 * 60)
    async with app.run_test(size=SIZE) as pilot:
        room = await loaded(pilot)
        panel = room.query_one("#wr-timeline")
        body = room.query_one("#timeline-body")
        await pilot.press("f")  # people only
        await pilot.pause()
        assert panel.mode == "people"  # type: ignore[attr-defined]
        text = str(body.render())
        assert "pool exhausted on both hosts" in text and "stage started" not in text
        await pilot.press("f")  # the run only
        await pilot.pause()
        text = str(body.render())
        assert "stage started" in text and "pool exhausted" not in text
        await pilot.press("f", "slash")
        await type_in(pilot, "rca")
        text = str(body.render())
        assert "rca: succeeded" in text and "health" not in text
        await pilot.press("escape")
        await pilot.pause()
        assert panel.text == ""  # type: ignore[attr-defined]


def _settle(extra: Callable[[Pilot[Any]], Awaitable[None]] | None = None) -> Any:
    async def run_before(pilot: Pilot[Any]) -> None:
        await loaded(pilot, lambda s: bool(s.params is not None))
        for _ in range(10):
            await pilot.pause(0.05)
        if extra is not None:
            await extra(pilot)

    return run_before


SNAP_SIZES = [(80, 24), (160, 48)]


@pytest.mark.parametrize("size", SNAP_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_snapshot_sev1_mid_incident(
    tmp_path: Path, snap_compare: Any, size: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # the banner's store reads ~/qd.db on any machine
    db = tmp_path / "qd.db"
    mid_incident(db)
    assert os.path.exists(db)
    app = make_app(db, "alice", T0 + 35 * 60)
    assert snap_compare(app, terminal_size=size, run_before=_settle())


@pytest.mark.parametrize("size", SNAP_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_snapshot_after_resolution(
    tmp_path: Path, snap_compare: Any, size: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # the banner's store reads ~/qd.db on any machine
    db = tmp_path / "qd.db"
    after_resolution(db)
    app = make_app(db, "alice", T0 + 50 * 60)
    assert snap_compare(app, terminal_size=size, run_before=_settle())


def test_warroom_command_app_opens_any_run_as_an_incident(tmp_path: Path) -> None:
    import asyncio

    from quarterdeck.tui.app import warroom_app
    from tests.helpers import run_workflow

    ran = run_workflow(
        tmp_path,
        "name: plain\nstages:\n  - id: a\n    steps:\n"
        "      - id: s\n        uses: shell\n        with: {run: 'true'}\n",
    )
    app = warroom_app(ran.store.path, ran.state.id, "dora", blink=False)

    async def go() -> None:
        async with app.run_test(size=SIZE) as pilot:
            room = await loaded(pilot)
            assert room.run_id == ran.state.id
            assert room.incident.severity_label == "SEV3"  # no severity input: the default
            await pilot.press("K")
            await loaded(pilot, lambda s: s.incident.commander == "dora")

    asyncio.run(go())
