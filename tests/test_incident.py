"""The incident model: severity, milestones, roles, updates, permissions, metrics.

Everything runs against a real journal: a real run writes the events, incident actions
are recorded with :func:`quarterdeck.core.incidents.record.record` (several processes in one test), and the
model is the fold of both.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from quarterdeck.core.clock import FakeClock
from quarterdeck.core.engine.runner import RunOptions
from quarterdeck.core.incidents.metrics import IncidentCollector
from quarterdeck.core.incidents.read import incident_signals, load
from quarterdeck.core.incidents.record import record
from quarterdeck.core.incidents.severity import label_severity, parse_severity
from quarterdeck.core.journal.store import Store
from tests.helpers import REPO, make_runner, run_workflow

WORKFLOW = """
name: incident-drill
title: Incident drill
inputs:
  severity: {type: string, default: SEV2}
  alert: {type: json}
stages:
  - id: detect
    steps:
      - id: probe
        uses: shell
        with: {run: "echo service down"}
"""

T0 = 1_700_000_000.0


def _run(tmp_path: Path, **inputs: object) -> tuple[Store, str]:
    ran = run_workflow(
        tmp_path,
        WORKFLOW,
        inputs=dict(inputs),
        options=RunOptions(started_by="pager", clock=FakeClock(T0)),
    )
    return ran.store, ran.state.id


def test_severity_parsing_and_alert_labels() -> None:
    assert parse_severity("SEV1") == 1
    assert parse_severity("sev 4") == 4
    assert parse_severity("2") == 2
    assert parse_severity(5) == 5
    assert parse_severity("SEV9") is None
    assert parse_severity("critical") == 1
    assert label_severity({"severity": "critical"}) == 1
    assert label_severity({"severity": "High"}) == 2
    assert label_severity({"severity": "error"}) == 2
    assert label_severity({"severity": "warning"}) == 3
    assert label_severity({"severity": "info"}) == 4
    assert label_severity({"severity": "page-me"}) == 3
    assert label_severity({}) == 3


def test_detection_and_initial_severity_come_from_the_run(tmp_path: Path) -> None:
    store, run_id = _run(tmp_path)
    incident = load(store, run_id)
    assert incident.severity_label == "SEV2"
    assert incident.detected_at == T0
    assert incident.milestone == "detected"
    assert incident.roles == dict.fromkeys(("commander", "operations", "communications", "scribe"))
    # the next update is due one SEV2 interval (30 min) after detection
    assert incident.next_update_due() == T0 + 1800
    assert not incident.update_overdue(T0 + 1799)
    assert incident.update_overdue(T0 + 1801)


def test_alert_start_is_the_detection_time_and_labels_set_severity(tmp_path: Path) -> None:
    alert = {
        "status": "firing",
        "groupKey": '{}:{alertname="Down"}',
        "commonLabels": {"alertname": "Down", "severity": "critical"},
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "Down"},
                "startsAt": "2023-11-14T22:12:20.123456789Z",
            }
        ],
    }
    store, run_id = _run(tmp_path, severity="", alert=json.dumps(alert))
    incident = load(store, run_id)
    assert incident.severity_label == "SEV1"
    assert incident.detected_at == pytest.approx(1699999940.123456)
    assert incident.milestone_by["detected"] == "alert"
    assert incident.alert_status == "firing"


def test_a_whole_incident_mtta_mttr_and_forward_only_milestones(tmp_path: Path) -> None:
    store, run_id = _run(tmp_path)
    assert record(store, run_id, "acknowledge", actor="alice", now=T0 + 120).refused is None
    incident = load(store, run_id)
    assert incident.commander == "alice"  # the first to acknowledge takes command
    assert incident.mtta == 120
    again = record(store, run_id, "acknowledge", actor="bob", now=T0 + 130)
    assert again.refused == "already acknowledged by alice"
    assert (
        record(
            store,
            run_id,
            "milestone",
            actor="alice",
            now=T0 + 200,
            data={"milestone": "identified", "text": "bad deploy"},
        ).refused
        is None
    )
    back = record(
        store, run_id, "milestone", actor="alice", now=T0 + 210, data={"milestone": "investigating"}
    )
    assert back.refused == "milestones only move forward: the incident is already identified"
    same = record(
        store, run_id, "milestone", actor="alice", now=T0 + 211, data={"milestone": "identified"}
    )
    assert same.refused is not None
    assert (
        record(
            store, run_id, "update", actor="alice", now=T0 + 300, data={"text": "rolling back"}
        ).refused
        is None
    )
    assert load(store, run_id).next_update_due() == T0 + 300 + 1800
    assert (
        record(
            store, run_id, "milestone", actor="alice", now=T0 + 400, data={"milestone": "mitigated"}
        ).refused
        is None
    )
    done = record(
        store, run_id, "resolve", actor="alice", now=T0 + 900, data={"text": "rolled back to 1.4.1"}
    )
    assert done.refused is None
    incident = load(store, run_id)
    assert incident.resolved
    assert incident.mttr == 900
    assert incident.next_update_due() is None
    assert [
        m
        for m in (
            "detected",
            "acknowledged",
            "investigating",
            "identified",
            "mitigated",
            "resolved",
        )
        if m in incident.milestones
    ] == list(incident.milestones)
    # the run was already investigating: that counts from the acknowledgement, by the run
    assert incident.milestones["investigating"] == T0 + 120
    assert incident.milestone_by["investigating"] == "run"
    late = record(store, run_id, "update", actor="alice", now=T0 + 901, data={"text": "x"})
    assert late.refused == "the incident is resolved; only notes may be added"
    assert (
        record(
            store,
            run_id,
            "note",
            actor="zoe",
            now=T0 + 902,
            data={"text": "follow-up: alert earlier"},
        ).refused
        is None
    )
    # refusals are recorded with their author and reason, for the audit trail
    outcomes = [(s.actor, s.data["action"]) for s in incident_signals(store, run_id)]
    assert ("bob", "acknowledge") in outcomes
    rows = store.conn.execute(
        "SELECT actor, outcome FROM signals WHERE run_id = ? AND outcome LIKE 'refused%'", (run_id,)
    ).fetchall()
    assert ("bob", "refused: already acknowledged by alice") in rows


def test_severity_escalation_and_de_escalation_are_journaled(tmp_path: Path) -> None:
    store, run_id = _run(tmp_path)
    record(store, run_id, "role", actor="alice", data={"role": "commander"}, now=T0 + 1)
    nope = record(store, run_id, "severity", actor="bob", data={"severity": "SEV1"}, now=T0 + 2)
    assert nope.refused == "only the incident commander (alice) changes the severity"
    record(
        store,
        run_id,
        "severity",
        actor="alice",
        now=T0 + 3,
        data={"severity": "SEV1", "text": "checkout down everywhere"},
    )
    record(store, run_id, "severity", actor="alice", data={"severity": 3}, now=T0 + 4)
    incident = load(store, run_id)
    assert incident.severity_label == "SEV3"
    assert [(c.before, c.after, c.direction, c.by) for c in incident.severity_changes] == [
        (2, 1, "escalated", "alice"),
        (1, 3, "de-escalated", "alice"),
    ]
    texts = [e.text for e in incident.sorted_timeline() if e.source == "incident"]
    assert "escalated SEV2 → SEV1: checkout down everywhere" in texts
    assert "de-escalated SEV1 → SEV3" in texts
    same = record(store, run_id, "severity", actor="alice", data={"severity": "SEV3"})
    assert same.refused == "the incident is already SEV3"
    bad = record(store, run_id, "severity", actor="alice", data={"severity": "SEV0"})
    assert bad.refused is not None and "SEV1 (worst) to SEV5" in bad.refused


def test_roles_are_held_by_people_and_handed_over_explicitly(tmp_path: Path) -> None:
    store, run_id = _run(tmp_path)
    assert record(store, run_id, "resolve", actor="bob").refused == (
        "nobody holds incident command: take command first, then resolve"
    )
    assert record(store, run_id, "role", actor="alice", data={"role": "commander"}).refused is None
    grab = record(store, run_id, "role", actor="bob", data={"role": "commander"})
    assert grab.refused == (
        "only the incident commander (alice) hands over command; ask them to hand it to you"
    )
    assert record(store, run_id, "role", actor="bob", data={"role": "operations"}).refused is None
    steal = record(store, run_id, "role", actor="carol", data={"role": "operations"})
    assert steal.refused is not None and "held by bob" in steal.refused
    assert (
        record(store, run_id, "role", actor="carol", data={"role": "scribe", "to": "dave"}).refused
        == "only the incident commander (alice) assigns a role to someone else; they may "
        "take it themselves"
    )
    assert (
        record(
            store, run_id, "role", actor="alice", data={"role": "communications", "to": "carol"}
        ).refused
        is None
    )
    # communications posts updates; operations does not
    assert record(store, run_id, "update", actor="carol", data={"text": "we know"}).refused is None
    assert record(store, run_id, "update", actor="bob", data={"text": "hm"}).refused is not None
    assert record(store, run_id, "note", actor="bob", data={"text": "anyone notes"}).refused is None
    assert record(store, run_id, "resolve", actor="bob").refused == (
        "only the incident commander (alice) resolves the incident"
    )
    assert (
        record(
            store, run_id, "role", actor="alice", data={"role": "commander", "to": "bob"}
        ).refused
        is None
    )
    incident = load(store, run_id)
    assert incident.commander == "bob"
    assert [(h.role, h.before, h.after, h.by) for h in incident.handovers] == [
        ("commander", None, "alice", "alice"),
        ("operations", None, "bob", "bob"),
        ("communications", None, "carol", "alice"),
        ("commander", "alice", "bob", "alice"),
    ]
    assert record(store, run_id, "resolve", actor="alice").refused is not None
    assert record(store, run_id, "resolve", actor="bob").refused is None


def test_many_processes_take_command_at_once_exactly_one_wins(tmp_path: Path) -> None:
    store, run_id = _run(tmp_path)
    db = str(store.path)
    script = (
        "import sys\n"
        "from quarterdeck.core.incidents.record import record\n"
        "from quarterdeck.core.journal.store import Store\n"
        "with Store(sys.argv[1]) as s:\n"
        "    r = record(s, sys.argv[2], 'role', actor=sys.argv[3], data={'role': 'commander'})\n"
        "print('won' if r.refused is None else 'lost')\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, db, run_id, f"p{n}"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(6)
    ]
    results = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert sorted(results) == ["lost"] * 5 + ["won"]
    winner = f"p{results.index('won')}"
    assert load(store, run_id).commander == winner
    assert len(incident_signals(store, run_id)) == 6  # every attempt recorded


def test_a_live_runner_leaves_incident_signals_alone(tmp_path: Path) -> None:
    text = WORKFLOW.replace('with: {run: "echo service down"}', 'with: {run: "sleep 0.6"}')
    runner = make_runner(
        tmp_path, text, options=RunOptions(started_by="pager", signal_poll_interval=0.02)
    )
    other = Store(tmp_path / "qd.db")

    async def go() -> None:
        task = asyncio.create_task(runner.run())
        while runner.state.status != "running" or not other.last_seq(runner.run_id):
            await asyncio.sleep(0.02)
        record(other, runner.run_id, "acknowledge", actor="alice")
        record(other, runner.run_id, "note", actor="bob", data={"text": "on it"})
        await task

    asyncio.run(go())
    assert runner.state.status == "succeeded"
    outcomes = other.conn.execute(
        "SELECT outcome FROM signals WHERE run_id = ?", (runner.run_id,)
    ).fetchall()
    assert outcomes == [("recorded",), ("recorded",)]
    incident = load(other, runner.run_id)
    assert incident.commander == "alice"
    assert [n.text for n in incident.notes] == ["on it"]


def test_unknown_run_and_unknown_action_say_what_to_do(tmp_path: Path) -> None:
    from quarterdeck.core.errors import InvalidInput

    store, run_id = _run(tmp_path)
    with pytest.raises(InvalidInput, match="no run 'nope'"):
        record(store, "nope", "note", actor="a", data={"text": "x"})
    bad = record(store, run_id, "explode", actor="a")
    assert bad.refused is not None and "unknown incident action 'explode'" in bad.refused
    assert (
        record(store, run_id, "note", actor="", data={"text": "x"}).refused
        == "say who you are (--as NAME)"
    )


def test_resolution_metrics_by_severity(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    store, first = _run(tmp_path / "a")
    second = run_workflow(
        tmp_path / "b",
        WORKFLOW,
        inputs={"severity": "SEV1"},
        options=RunOptions(started_by="pager", clock=FakeClock(T0)),
        store=store,
    ).state.id
    record(store, first, "acknowledge", actor="alice", now=T0 + 60)
    record(store, first, "resolve", actor="alice", now=T0 + 600)
    record(store, second, "acknowledge", actor="bob", now=T0 + 30)
    collector = IncidentCollector(store.path, namespace="quarterdeck")
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    assert 'quarterdeck_incident_resolution_seconds_count{severity="SEV2"} 1.0' in text
    assert 'quarterdeck_incident_resolution_seconds_sum{severity="SEV2"} 600.0' in text
    assert 'quarterdeck_incident_resolution_seconds_bucket{le="300",severity="SEV2"} 0.0' in text
    assert 'quarterdeck_incident_resolution_seconds_bucket{le="600",severity="SEV2"} 1.0' in text
    assert 'quarterdeck_incident_acknowledge_seconds_sum{severity="SEV2"} 60.0' in text
    assert 'severity="SEV1"' not in text  # not resolved yet
    assert first not in text and second not in text  # never a run id in a label
    record(store, second, "resolve", actor="bob", now=T0 + 1200)
    text = generate_latest(registry).decode()
    assert 'quarterdeck_incident_resolution_seconds_sum{severity="SEV1"} 1200.0' in text


def test_warroom_command_finds_the_newest_open_incident(tmp_path: Path) -> None:
    from quarterdeck.core.incidents.read import latest_incident
    from tests.helpers import cli

    empty = cli("warroom", "--store", str(tmp_path / "empty.db"))
    assert empty.returncode == 2 and "no incident runs" in empty.stderr
    store, run_id = _run(tmp_path)
    assert latest_incident(store) == run_id
    shown = cli("warroom", "--store", str(store.path))  # no terminal in a subprocess
    assert shown.returncode == 2
    assert "warroom needs a terminal" in shown.stderr
    # the hint works pasted anywhere: it names the store it found the run in
    assert f"quarterdeck show {run_id} --store {store.path}`" in shown.stderr
