"""``quarterdeck listen`` is authenticated and bounded, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import httpx

from quarterdeck.core.definition.validate import load_workflow
from quarterdeck.core.incidents.guard import ListenGuard
from quarterdeck.core.journal.store import Store
from quarterdeck.tui.launch import load_context
from quarterdeck.tui.listener import Listener
from tests.helpers import cli
from tests.test_intake import ListenProcess, payload

TOKEN = "listen-token-0123456789"

WORKFLOW = """
name: incident-drill
inputs:
  alert: {type: json}
  severity: {type: string, default: SEV3}
  service: {type: string, default: ""}
  target_url: {type: string, default: "http://127.0.0.1:1/"}
stages:
  - id: triage
    steps:
      - id: hold
        uses: shell
        with: {run: "sh -c 'while [ ! -f go ]; do sleep 0.05; done'"}
      - id: look
        needs: [hold]
        uses: shell
        with: {run: "echo looking at {{ inputs.service }} via {{ inputs.target_url }}"}
"""

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def hostile(key: str) -> dict[str, Any]:
    body = payload(key=key)
    for labels in (body["commonLabels"], body["alerts"][0]["labels"]):
        labels["service"] = "attacker-svc"
        labels["target_url"] = "http://attacker.example.invalid/"
    return body


async def _until(check: Any) -> None:
    for _ in range(600):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met")


def test_listener_refuses_unauthenticated_cross_site_large_and_fast_requests(
    tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.chdir(tmp_path)  # the steps' workdir: where `go` appears
    path = tmp_path / "wf.yaml"
    path.write_text(WORKFLOW)
    ctx = load_context()
    loaded = load_workflow(path, ctx.personas)
    db = tmp_path / "qd.db"
    said: list[str] = []
    guard = ListenGuard(token=TOKEN, max_body=8192, rate_per_minute=3)

    async def go() -> dict[str, Any]:
        listener = Listener(
            db,
            loaded,
            ctx,
            say=said.append,
            guard=guard,
            base_inputs={"service": "operator-svc"},
            max_concurrent=1,
        )
        await listener.start()
        url = listener.server.url
        got: dict[str, Any] = {}
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                got["none"] = await client.post(url, json=payload())
                got["wrong"] = await client.post(
                    url, json=payload(), headers={"Authorization": "Bearer nope"}
                )
                basic = base64.b64encode(f"x:{TOKEN}".encode()).decode()
                got["basic"] = await client.post(
                    url, json=payload(), headers={"Authorization": f"Basic {basic}"}
                )
                # what a web page can send cross-site without a preflight
                got["form"] = await client.post(
                    url,
                    content=json.dumps(payload()).encode(),
                    headers={**AUTH, "Content-Type": "text/plain"},
                )
                got["preflight"] = await client.request("OPTIONS", url)
                big = payload()
                big["commonAnnotations"]["summary"] = "x" * 10_000
                got["big"] = await client.post(url, json=big, headers=AUTH)
                got["one"] = await client.post(url, json=hostile("g1"), headers=AUTH)
                got["two"] = await client.post(url, json=hostile("g2"), headers=AUTH)
                await _until(lambda: any("queued" in s for s in said))
                with Store(db) as store:
                    got["rows_while_queued"] = len(store.list_runs())
                got["three"] = await client.post(url, json=hostile("g3"), headers=AUTH)
                got["fast"] = await client.post(url, json=hostile("g4"), headers=AUTH)
            (tmp_path / "go").write_text("")
            await listener.wait_runs()
        finally:
            await listener.close()
        return got

    got = asyncio.run(go())
    assert got["none"].status_code == 401 and "WWW-Authenticate" in got["none"].headers
    assert got["wrong"].status_code == 401
    assert got["basic"].status_code == 401
    assert got["form"].status_code == 415
    assert got["preflight"].status_code == 405
    assert "access-control-allow-origin" not in got["preflight"].headers
    assert got["big"].status_code == 413
    assert [got[k].status_code for k in ("one", "two", "three")] == [200, 200, 200]
    assert got["fast"].status_code == 429 and int(got["fast"].headers["Retry-After"]) >= 1
    assert got["rows_while_queued"] == 1  # at most one incident run at a time
    runs = [got[k].json()["run"] for k in ("one", "two", "three")]
    with Store(db) as store:
        for run_id in runs:
            row = store.get_run(run_id)
            assert row.status == "succeeded"
            assert row.inputs["service"] == "operator-svc"  # -i wins over the label
            assert row.inputs["target_url"] == "http://127.0.0.1:1/"  # not allow-listed
            lines = [
                line
                for e in store.events(run_id)
                if e.type == "step.output"
                for line in e.data["lines"]
            ]
            assert lines == ["looking at operator-svc via http://127.0.0.1:1/"]


def test_allow_listed_labels_fill_inputs_the_operator_did_not_set(tmp_path: Path) -> None:
    from quarterdeck.core.incidents.intake import parse_payload, run_inputs

    path = tmp_path / "wf.yaml"
    path.write_text(WORKFLOW)
    loaded = load_workflow(path, load_context().personas)
    parsed = parse_payload(json.dumps(hostile("g")).encode())
    filled = run_inputs(parsed, loaded.workflow.inputs, {"service"})
    assert filled["service"] == "attacker-svc" and "target_url" not in filled
    assert filled["severity"] == "SEV1"  # Quarterdeck's own derived value


def test_listen_command_needs_a_secret_and_checks_it(tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(WORKFLOW.replace("while [ ! -f go ]; do sleep 0.05; done", "true"))
    db = tmp_path / "qd.db"
    refused = cli("listen", "--alertmanager", "127.0.0.1:0", "--workflow", str(path))
    assert refused.returncode == 2 and "listen needs a secret" in refused.stderr
    assert "Traceback" not in refused.stderr
    listen = ListenProcess(
        "--alertmanager", "127.0.0.1:0", "--workflow", str(path), "--store", str(db),
        env={"QUARTERDECK_LISTEN_TOKEN": TOKEN},
    )  # fmt: skip
    try:
        url = listen.url()
        assert httpx.post(url, json=payload(), timeout=10).status_code == 401
        ok = httpx.post(url, json=payload(), headers=AUTH, timeout=10)
        assert ok.status_code == 200 and ok.json()["action"] == "started", ok.text
        listen.wait_for(f"run {ok.json()['run']}: succeeded")
    finally:
        assert listen.stop() == 0


def test_basic_auth_as_alertmanager_sends_it() -> None:
    guard = ListenGuard(token=TOKEN, username="am")
    good = base64.b64encode(f"am:{TOKEN}".encode()).decode()
    bad = base64.b64encode(f"am:{TOKEN}x".encode()).decode()
    json_headers = {"content-type": "application/json; charset=utf-8", "content-length": "2"}
    assert guard.check({**json_headers, "authorization": f"Basic {good}"}) is None
    refused = guard.check({**json_headers, "authorization": f"Basic {bad}"})
    assert refused is not None and refused[0] == 401
    assert refused[2]["WWW-Authenticate"].startswith("Basic")
    bearer = guard.check({**json_headers, "authorization": f"Bearer {TOKEN}"})
    assert bearer is not None and bearer[0] == 401
