"""Incidents that follow the run: milestones earned by the run, the alert's real state.

Real runs against a real service on 127.0.0.1 write the journal; people act through
:func:`~quarterdeck.core.incidents.record.record`; the incident is the fold of both.
"""

from __future__ import annotations

import json
from pathlib import Path

from quarterdeck.core.engine.runner import RunOptions
from quarterdeck.core.incidents.read import load
from quarterdeck.core.incidents.record import record
from quarterdeck.core.journal.store import Store
from tests.helpers import run_workflow
from tests.servers import HTTPService

ALERT = {
    "status": "firing",
    "commonLabels": {"alertname": "CheckoutDown", "severity": "warning"},
    "commonAnnotations": {"summary": "checkout answers 503"},
}

HOTFIX = """
name: incident-drill
title: Incident drill
inputs:
  alert: {type: json}
  url: {type: string}
  fail_deploy: {type: bool, default: false}
stages:
  - id: triage
    steps:
      - id: rca
        uses: shell
        with: {run: "echo pool exhausted"}
      - id: cause
        uses: memory.set
        needs: [rca]
        with: {key: root_cause, value: "release 1.4.2 leaks connections"}
  - id: deploy
    steps:
      - id: switch
        uses: shell
        with: {run: "{{ 'false' if inputs.fail_deploy else 'true' }}"}
      - id: watch
        uses: http.health_check
        needs: [switch]
        with: {url: "{{ inputs.url }}/health", window: 0.3s, interval: 0.1s}
    on_failure:
      - id: rollback
        uses: shell
        with: {run: "echo rolled back"}
"""


def _run(tmp_path: Path, **inputs: object) -> tuple[Store, str]:
    with HTTPService() as service:
        ran = run_workflow(
            tmp_path,
            HOTFIX,
            inputs={"alert": json.dumps(ALERT), "url": service.url, **inputs},
            options=RunOptions(started_by="pager"),
        )
    return ran.store, ran.state.id


def _times(store: Store, run_id: str) -> dict[str, float]:
    return {
        e.type + ":" + (e.stage or "") + ":" + (e.step or ""): e.ts for e in store.events(run_id)
    }


def test_milestones_wait_for_a_person_then_follow_the_run(tmp_path: Path) -> None:
    store, run_id = _run(tmp_path)
    before = load(store, run_id)
    # nobody acknowledged: the run's progress does not move the incident
    assert list(before.milestones) == ["detected"]
    ended = max(e.ts for e in store.events(run_id))
    record(store, run_id, "acknowledge", actor="alice", now=ended + 1)
    incident = load(store, run_id)
    times = _times(store, run_id)
    assert list(incident.milestones) == [
        "detected",
        "acknowledged",
        "investigating",
        "identified",
        "mitigated",
    ]
    # earned before the acknowledgement: they count from it, by the run, never earlier
    for name in ("investigating", "identified", "mitigated"):
        assert incident.milestones[name] == ended + 1
        assert incident.milestone_by[name] == "run"
    assert times["stage.finished:triage:"] < times["step.finished:deploy:watch"]
    lines = [e.text for e in incident.timeline if e.source == "incident" and e.actor == "run"]
    assert lines == [
        "investigating: the run started stage triage",
        "identified: stage triage found the root cause",
        "mitigated: health watch watch passed",
    ]
    assert incident.alert_state == ("resolved", "health probe watch")
    assert not incident.alert_firing
    from quarterdeck.core.incidents.postmortem import show_text

    assert "  alert: resolved (health probe watch)\n" in show_text(incident)
    # only forward: a person cannot go back to identified after the run mitigated
    back = record(
        store, run_id, "milestone", actor="alice", now=ended + 2, data={"milestone": "identified"}
    )
    assert back.refused == "milestones only move forward: the incident is already mitigated"


def test_a_finished_rollback_mitigates(tmp_path: Path) -> None:
    store, run_id = _run(tmp_path, fail_deploy="true")
    record(store, run_id, "acknowledge", actor="alice", now=1.0)  # before the run started
    incident = load(store, run_id)
    assert incident.milestone == "mitigated"
    assert "mitigated: the rollback in stage deploy finished" in [e.text for e in incident.timeline]
    finished = _times(store, run_id)["stage.finished:deploy:"]
    assert incident.milestones["mitigated"] == finished  # when the run earned it


def test_milestones_a_person_set_ahead_stay_ahead(tmp_path: Path) -> None:
    store, run_id = _run(tmp_path)
    ended = max(e.ts for e in store.events(run_id))
    record(store, run_id, "acknowledge", actor="alice", now=ended + 1)
    # (the run's marks settle at the acknowledgement already)
    assert load(store, run_id).milestone == "mitigated"
    done = record(store, run_id, "resolve", actor="alice", now=ended + 5, data={"text": "ok"})
    assert done.refused is None
    assert load(store, run_id).milestone == "resolved"


def test_the_title_comes_from_the_alert(tmp_path: Path) -> None:
    store, run_id = _run(tmp_path)
    assert load(store, run_id).title == "CheckoutDown: checkout answers 503"


def test_approvals_and_signals_are_attributed_to_their_person(tmp_path: Path) -> None:
    gated = """
name: incident-gated
inputs:
  alert: {type: json}
stages:
  - id: deploy
    approval: {id: deploy, prompt: "Deploy?", allow_self_approval: true}
    steps:
      - id: go
        uses: shell
        with: {run: "true"}
"""
    options = RunOptions(
        started_by="pager", decisions={"deploy": ("approve", "carol", "looks right")}
    )
    ran = run_workflow(tmp_path, gated, inputs={"alert": json.dumps(ALERT)}, options=options)
    incident = load(ran.store, ran.state.id)
    decided = [e for e in incident.timeline if "approval deploy approved" in e.text]
    assert decided and decided[0].actor == "carol"


def test_a_run_started_from_an_alert_is_titled_by_it(tmp_path: Path) -> None:
    """Home, the CLI and the listener all start runs through ``new_runner``."""
    import asyncio

    from quarterdeck.core.config import Settings
    from quarterdeck.core.definition.validate import load_workflow
    from quarterdeck.personas.registry import load_catalog
    from quarterdeck.tui.launch import Context, new_runner
    from tests.helpers import write_workflow

    catalog = load_catalog(tmp_path)
    loaded = load_workflow(write_workflow(tmp_path, HOTFIX), catalog)
    with HTTPService() as service, Store(tmp_path / "qd.db") as store:
        runner = new_runner(
            loaded,
            store,
            Context(Settings(), catalog),
            {"alert": json.dumps(ALERT), "url": service.url},
            RunOptions(started_by="pager", workdir=tmp_path),
        )
        asyncio.run(runner.run())
        assert store.get_run(runner.run_id).title == "CheckoutDown: checkout answers 503"


PROBED = """
name: incident-probed
inputs:
  alert: {type: json}
  url: {type: string, default: ""}
stages:
  - id: triage
    steps:
      - id: probe
        uses: http.health_check
        with: {url: "{{ inputs.url }}/health", window: 0.3s, interval: 0.1s}
        continue_on_error: true
"""


def test_the_alert_state_follows_the_last_probe_then_alertmanager(tmp_path: Path) -> None:
    """Real listener over HTTP: the run's probe fails (firing), then Alertmanager says the
    alert resolved; the title comes from the alert the listener received."""
    import asyncio

    import httpx

    from quarterdeck.core.definition.validate import load_workflow
    from quarterdeck.tui.launch import load_context
    from quarterdeck.tui.listener import Listener
    from tests.test_intake import payload

    path = tmp_path / "wf.yaml"
    path.write_text(PROBED)
    ctx = load_context()
    loaded = load_workflow(path, ctx.personas)
    db = tmp_path / "qd.db"

    async def go(service: HTTPService) -> str:
        listener = Listener(
            db, loaded, ctx, base_inputs={"url": service.url}, say=lambda _line: None
        )
        await listener.start()
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                started = (await client.post(listener.server.url, json=payload())).json()
                await listener.wait_runs()
                with Store(db) as store:
                    firing = load(store, started["run"])
                    assert firing.alert_state == ("firing", "health probe probe")
                    assert firing.alert_firing
                await client.post(listener.server.url, json=payload("resolved"))
        finally:
            await listener.close()
        return str(started["run"])

    with HTTPService("failing") as service:
        run_id = asyncio.run(go(service))
    with Store(db) as store:
        incident = load(store, run_id)
        assert incident.alert_state == ("resolved", "alertmanager")
        assert not incident.alert_firing
        assert store.get_run(run_id).title == "CheckoutDown: checkout answers 503"
