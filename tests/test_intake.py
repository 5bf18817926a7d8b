"""Alert intake: Alertmanager webhooks start incident runs, once per alert group.

The listener is the real one (``quarterdeck listen`` in a subprocess, or its pieces
in-process); one test has Debian's ``prometheus-alertmanager`` itself deliver the webhook
from a firing alert posted to its API v2.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from quarterdeck.core.definition.validate import load_workflow
from quarterdeck.core.incidents.intake import parse_address, parse_payload, run_inputs
from quarterdeck.core.incidents.read import load
from quarterdeck.core.journal.store import Store
from quarterdeck.tui.launch import load_context
from quarterdeck.tui.listener import Listener
from tests.helpers import REPO
from tests.servers import free_port

ALERTMANAGER_PACKAGE = "prometheus-alertmanager"
LISTEN_TOKEN = "intake-listen-token-42"  # what Alertmanager's http_config sends
AUTH = {"Authorization": f"Bearer {LISTEN_TOKEN}"}

WORKFLOW = """
name: incident-drill
title: Incident drill
inputs:
  alert: {type: json}
  severity: {type: string, default: SEV3}
  alertname: {type: string, default: ""}
  service: {type: string, default: ""}
stages:
  - id: triage
    steps:
      - id: look
        uses: shell
        with: {run: "echo looking at {{ inputs.service }} ({{ inputs.severity }})"}
"""


def payload(
    status: str = "firing", key: str = '{}:{alertname="CheckoutDown"}', severity: str = "critical"
) -> dict[str, Any]:
    """A webhook body as Alertmanager 0.25 sends it."""
    return {
        "receiver": "quarterdeck",
        "status": status,
        "alerts": [
            {
                "status": status,
                "labels": {
                    "alertname": "CheckoutDown",
                    "service": "checkout",
                    "severity": severity,
                },
                "annotations": {"summary": "checkout answers 503"},
                "startsAt": "2023-11-14T22:12:20.5Z",
                "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2023-11-14T22:20:00Z",
                "generatorURL": "http://127.0.0.1:9090/graph",
                "fingerprint": "c0ffee",
            }
        ],
        "groupLabels": {"alertname": "CheckoutDown"},
        "commonLabels": {"alertname": "CheckoutDown", "service": "checkout", "severity": severity},
        "commonAnnotations": {"summary": "checkout answers 503"},
        "externalURL": "http://127.0.0.1:9093",
        "version": "4",
        "groupKey": key,
        "truncatedAlerts": 0,
    }


def test_payload_parsing_and_input_mapping(tmp_path: Path) -> None:
    parsed = parse_payload(json.dumps(payload()).encode())
    path = tmp_path / "wf.yaml"
    path.write_text(WORKFLOW)
    loaded = load_workflow(path, load_context().personas)
    inputs = run_inputs(parsed, loaded.workflow.inputs)
    assert inputs["severity"] == "SEV1"
    assert inputs["alertname"] == "CheckoutDown"
    assert inputs["service"] == "checkout"  # a declared input named like a common label
    assert inputs["alert"]["groupKey"] == '{}:{alertname="CheckoutDown"}'
    assert set(inputs) == {"alert", "severity", "alertname", "service"}  # only declared ones
    for label, sev in (
        ("high", "SEV2"),
        ("error", "SEV2"),
        ("warning", "SEV3"),
        ("info", "SEV4"),
        ("whatever", "SEV3"),
    ):
        assert (
            run_inputs(
                parse_payload(json.dumps(payload(severity=label)).encode()), loaded.workflow.inputs
            )["severity"]
            == sev
        )
    from quarterdeck.core.errors import InvalidInput

    with pytest.raises(InvalidInput, match="not JSON"):
        parse_payload(b"{nope")
    with pytest.raises(InvalidInput, match="groupKey"):
        parse_payload(json.dumps({"status": "firing", "version": "4"}).encode())
    with pytest.raises(InvalidInput, match="neither 'firing' nor 'resolved'"):
        parse_payload(json.dumps({**payload(), "status": "weird"}).encode())
    assert parse_address("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_address("9097") == ("127.0.0.1", 9097)
    with pytest.raises(InvalidInput, match="expected HOST:PORT"):
        parse_address("127.0.0.1:http")


def test_listener_starts_one_run_per_group_in_process(tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(WORKFLOW)
    ctx = load_context()
    loaded = load_workflow(path, ctx.personas)
    db = tmp_path / "qd.db"
    said: list[str] = []

    async def go() -> list[dict[str, Any]]:
        listener = await Listener(
            db, loaded, ctx, say=said.append, label_inputs={"service"}
        ).start()
        replies = []
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                for body in (
                    payload(),
                    payload(),
                    payload(key='{}:{alertname="Other"}', severity="warning"),
                ):
                    reply = await client.post(listener.server.url + "alertmanager", json=body)
                    assert reply.status_code == 200, reply.text
                    replies.append(reply.json())
                bad = await client.post(
                    listener.server.url,
                    content=b"[1, 2]",
                    headers={"Content-Type": "application/json"},
                )
                assert bad.status_code == 400
                assert "not a JSON object" in bad.json()["error"]
                assert (await client.get(listener.server.url + "-/healthy")).status_code == 200
            await listener.wait_runs()
            async with httpx.AsyncClient(timeout=10) as client:
                reply = await client.post(listener.server.url, json=payload("resolved"))
                replies.append(reply.json())
        finally:
            await listener.close()
        return replies

    first, again, other, resolved = asyncio.run(go())
    assert first["action"] == "started"
    assert again == {
        "action": "duplicate",
        "group_key": first["group_key"],
        "run": first["run"],
        "message": f"already handled by run {first['run']}",
    }
    assert other["action"] == "started" and other["run"] != first["run"]
    assert resolved["action"] == "resolved" and resolved["run"] == first["run"]
    with Store(db) as store:
        runs = store.list_runs()
        assert {r.id for r in runs} == {first["run"], other["run"]}
        assert all(r.status == "succeeded" and r.started_by == "alertmanager" for r in runs)
        incident = load(store, first["run"])
        assert incident.severity_label == "SEV1"
        assert incident.alert_status == "resolved"
        assert not incident.resolved  # people resolve incidents; the alert only says so
        assert load(store, other["run"]).severity_label == "SEV3"
        look = store.events(first["run"])
        lines = [line for e in look if e.type == "step.output" for line in e.data["lines"]]
        assert lines == ["looking at checkout (SEV1)"]
    assert any(f"started run {first['run']} (SEV1)" in s for s in said)


class ListenProcess:
    """``quarterdeck listen`` in a subprocess; reads its stderr on a thread."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "quarterdeck.tui.cli", "listen", *args],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "QUARTERDECK_LISTEN_TOKEN": LISTEN_TOKEN, **(env or {})},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no {text!r} from listen; saw: {self.seen}")

    def url(self) -> str:
        line = self.wait_for("Alertmanager webhook on ")
        return line.split("webhook on ", 1)[1].split(" ", 1)[0]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=10)


def wait_until(check: Any, timeout: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what or check}")


def test_listen_command_takes_a_real_payload(tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(WORKFLOW)
    db = tmp_path / "qd.db"
    listen = ListenProcess(
        "--alertmanager", "127.0.0.1:0", "--workflow", str(path), "--store", str(db)
    )
    try:
        url = listen.url()
        first = httpx.post(url, json=payload(), headers=AUTH, timeout=10).json()
        assert first["action"] == "started"
        listen.wait_for(f"run {first['run']}: succeeded")
        again = httpx.post(url, json=payload(), headers=AUTH, timeout=10).json()
        assert again["action"] == "duplicate" and again["run"] == first["run"]
        with Store(db) as store:
            assert [r.id for r in store.list_runs()] == [first["run"]]
            assert store.get_run(first["run"]).inputs["severity"] == "SEV1"
    finally:
        code = listen.stop()
    assert code == 0


def test_listen_refuses_a_bad_workflow_and_a_bad_address(tmp_path: Path) -> None:
    from tests.helpers import cli

    bad = cli("listen", "--alertmanager", "127.0.0.1:x")
    assert bad.returncode == 2 and "expected HOST:PORT" in bad.stderr
    missing = cli(
        "listen", "--alertmanager", "127.0.0.1:0", "--workflow", str(tmp_path / "nope.yaml")
    )
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


def alertmanager_binary() -> str:
    found = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if found:
        return found
    message = (
        f"the Alertmanager binary is missing: install the Debian package "
        f"{ALERTMANAGER_PACKAGE!r} (apt-get install {ALERTMANAGER_PACKAGE})"
    )
    if os.environ.get("CI"):
        pytest.fail(message + " — required under CI")
    pytest.skip(message)


def test_alertmanager_delivers_a_firing_alert_to_listen(tmp_path: Path) -> None:
    binary = alertmanager_binary()
    path = tmp_path / "wf.yaml"
    path.write_text(WORKFLOW)
    db = tmp_path / "qd.db"
    listen = ListenProcess(
        "--alertmanager", "127.0.0.1:0", "--workflow", str(path), "--store", str(db)
    )
    am: subprocess.Popen[str] | None = None
    try:
        hook = listen.url()
        config = tmp_path / "alertmanager.yml"
        config.write_text(
            "route:\n  receiver: quarterdeck\n  group_by: [alertname]\n"
            "  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n"
            "receivers:\n  - name: quarterdeck\n    webhook_configs:\n"
            f"      - url: {hook}alertmanager\n        send_resolved: true\n"
            "        http_config:\n          authorization:\n"
            f"            credentials: {LISTEN_TOKEN}\n"
        )
        port = free_port()
        am = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.path={tmp_path / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        api = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            try:
                return httpx.get(f"{api}/-/ready", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, 30, "Alertmanager to be ready")
        now = datetime.now(UTC)
        alert = {
            "labels": {"alertname": "CheckoutDown", "service": "checkout", "severity": "high"},
            "annotations": {"summary": "checkout answers 503"},
            "startsAt": now.isoformat().replace("+00:00", "Z"),
            "generatorURL": "http://127.0.0.1:9090/graph",
        }
        assert httpx.post(f"{api}/api/v2/alerts", json=[alert], timeout=5).status_code == 200
        line = listen.wait_for("started run ", timeout=30)
        run_id = line.split("started run ", 1)[1].split(" ", 1)[0]
        with Store(db) as store:
            row = store.get_run(run_id)
            assert row.workflow == "incident-drill"
            assert row.inputs["severity"] == "SEV2"
            assert row.inputs["alert"]["commonLabels"]["alertname"] == "CheckoutDown"
            assert row.inputs["alert"]["receiver"] == "quarterdeck"
        # the alert ends: Alertmanager sends the resolved notification for the group
        alert["endsAt"] = (now + timedelta(milliseconds=500)).isoformat().replace("+00:00", "Z")
        assert httpx.post(f"{api}/api/v2/alerts", json=[alert], timeout=5).status_code == 200
        listen.wait_for(f"marked the alert of run {run_id} resolved", timeout=30)
        with Store(db) as store:
            assert load(store, run_id).alert_status == "resolved"
            assert len(store.list_runs()) == 1  # one group, one run
    finally:
        if am is not None:
            am.terminate()
            try:
                am.wait(timeout=15)
            except subprocess.TimeoutExpired:
                am.kill()
                am.wait(timeout=5)
        listen.stop()
