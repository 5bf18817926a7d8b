"""http.request, http.health_check and notify.webhook against real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from quarterdeck.core.clock import FakeClock
from quarterdeck.core.errors import ActionError, NonRetryableError
from tests.helpers import make_ctx, run_workflow, write_workflow
from tests.servers import HTTPService, WebhookReceiver, assert_invalid, free_port, run_action


@pytest.fixture
def service() -> Iterator[HTTPService]:
    with HTTPService() as svc:
        yield svc


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as hook:
        yield hook


def call(name: str, with_: dict[str, Any], tmp_path: Path, **ctx_kw: Any) -> dict[str, Any]:
    ctx = make_ctx(tmp_path, **ctx_kw)
    return asyncio.run(run_action(name, with_, ctx))


def failure(name: str, with_: dict[str, Any], tmp_path: Path, **ctx_kw: Any) -> ActionError:
    with pytest.raises(ActionError) as info:
        call(name, with_, tmp_path, **ctx_kw)
    return info.value


def series(err: ActionError) -> list[dict[str, Any]]:
    """The health check's samples, carried by its failure."""
    points = err.outputs["series"]
    assert isinstance(points, list)
    return points


# -- http.request ------------------------------------------------------------------------


def test_request_posts_json_and_picks_outputs(service: HTTPService, tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    out = asyncio.run(
        run_action(
            "http.request",
            {
                "url": f"{service.url}/echo",
                "method": "post",
                "headers": {"X-Team": "release"},
                "query": {"dry": "1"},
                "json": {"version": "1.2.3", "items": [{"id": 7}]},
                "outputs": {"version": "json.version", "first_id": "$.json.items[0].id"},
            },
            ctx,
        )
    )
    assert out["status"] == 200 and out["ok"] is True
    assert out["version"] == "1.2.3" and out["first_id"] == 7
    seen = service.requests[-1]
    assert seen.method == "POST" and seen.query == {"dry": ["1"]}
    assert seen.json() == {"version": "1.2.3", "items": [{"id": 7}]}
    assert seen.headers["x-team"] == "release"
    # a changing request carries the step's stable key, so a server can notice a replay
    assert seen.headers["idempotency-key"] == ctx.idempotency_key
    lines = [line for _, line in ctx.lines]  # type: ignore[attr-defined]
    assert lines[0] == f"POST {service.url}/echo"
    assert lines[1].startswith("→ 200 OK")
    assert any('"version": "1.2.3"' in line for line in lines[2:])


def test_get_carries_no_idempotency_key(service: HTTPService, tmp_path: Path) -> None:
    call("http.request", {"url": f"{service.url}/echo"}, tmp_path)
    assert "idempotency-key" not in service.requests[-1].headers


def test_unexpected_status_fails_with_outputs(service: HTTPService, tmp_path: Path) -> None:
    err = failure("http.request", {"url": f"{service.url}/status/404"}, tmp_path)
    assert "answered 404" in err.message and "expected 2xx" in err.message
    assert err.retryable is False and err.outputs["status"] == 404
    err = failure("http.request", {"url": f"{service.url}/status/503"}, tmp_path)
    assert err.retryable is True and err.outputs["status"] == 503
    out = call(
        "http.request", {"url": f"{service.url}/status/404", "expected_status": 404}, tmp_path
    )
    assert out["status"] == 404


def test_missing_output_path_names_it(service: HTTPService, tmp_path: Path) -> None:
    err = failure(
        "http.request",
        {"url": f"{service.url}/echo", "outputs": {"v": "json.release.version"}},
        tmp_path,
    )
    assert isinstance(err, NonRetryableError)
    assert "'json.release'" in err.message and "output 'v'" in err.message


def test_dead_port_and_slow_server_give_clear_errors(service: HTTPService, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/health"
    err = failure("http.request", {"url": dead}, tmp_path)
    assert f"cannot connect to {dead}" in err.message
    assert "check that the service is running" in err.message and err.retryable
    service.set("slow", delay=0.5)
    err = failure("http.request", {"url": f"{service.url}/health", "timeout": "50ms"}, tmp_path)
    assert "did not answer in time" in err.message


def test_request_in_a_workflow_feeds_later_steps(service: HTTPService, tmp_path: Path) -> None:
    ran = run_workflow(
        tmp_path,
        f"""
name: call-api
stages:
  - id: deploy
    steps:
      - id: create
        uses: http.request
        with:
          url: "{service.url}/echo"
          method: PUT
          json: {{version: "2.0.1"}}
          outputs: {{version: json.version}}
      - id: check
        needs: [create]
        uses: http.request
        with:
          url: "{service.url}/echo"
          query: {{v: "{{{{ steps.create.outputs.version }}}}"}}
""",
    )
    assert ran.state.status == "succeeded", ran.state.to_json()
    assert service.requests[-1].query == {"v": ["2.0.1"]}
    events = ran.store.events(ran.state.id)
    lines = [
        ln
        for e in events
        if e.type == "step.output" and e.step == "create"
        for ln in e.data["lines"]
    ]
    assert f"PUT {service.url}/echo" in lines


# -- http.health_check -------------------------------------------------------------------


def test_health_check_passes_and_outputs_the_series(service: HTTPService, tmp_path: Path) -> None:
    clock = FakeClock()
    out = call(
        "http.health_check",
        {"url": f"{service.url}/health", "interval": "100ms", "window": "1s"},
        tmp_path,
        clock=clock,
    )
    assert out["passed"] is True and out["reason"] == ""
    assert out["samples"] == 10 and service.hits("/health") == 10
    assert out["success_ratio"] == 1.0 and out["failures"] == 0
    assert [p["t"] for p in out["series"]] == [round(0.1 * i, 3) for i in range(10)]
    assert all(p["ok"] and p["status"] == 200 and p["latency_ms"] > 0 for p in out["series"])
    assert out["p99_ms"] == max(p["latency_ms"] for p in out["series"])
    assert clock.sleeps == [0.1] * 9  # no sleep after the last poll


def test_failing_service_fails_fast(service: HTTPService, tmp_path: Path) -> None:
    service.set("failing", fail_status=503)
    err = failure(
        "http.health_check",
        {"url": f"{service.url}/health", "interval": "1s", "window": "30s"},
        tmp_path,
        clock=FakeClock(),
    )
    assert "3 consecutive failures" in err.message and "HTTP 503" in err.message
    assert service.hits("/health") == 3  # stopped early: 30 polls were allowed
    assert err.outputs["passed"] is False and err.outputs["samples"] == 3
    assert [p["status"] for p in series(err)] == [503, 503, 503]


def test_flapping_service_fails_on_ratio(service: HTTPService, tmp_path: Path) -> None:
    service.set("flapping", pattern=(True, True, True, False))
    params = {"url": f"{service.url}/health", "interval": "1s", "window": "8s"}
    err = failure("http.health_check", params, tmp_path, clock=FakeClock())
    assert err.outputs["success_ratio"] == 0.75 and err.outputs["samples"] == 8
    assert "success ratio 75.00% is below 99.00%" in err.message
    assert [p["ok"] for p in series(err)] == [True, True, True, False] * 2
    out = call(
        "http.health_check", {**params, "min_success_ratio": 0.7}, tmp_path, clock=FakeClock()
    )
    assert out["passed"] is True and out["success_ratio"] == 0.75


def test_slow_service_fails_on_p99(service: HTTPService, tmp_path: Path) -> None:
    service.set("slow", delay=0.06)
    err = failure(
        "http.health_check",
        {"url": f"{service.url}/health", "interval": "1s", "window": "2s", "max_p99_ms": 20},
        tmp_path,
        clock=FakeClock(),
    )
    assert err.outputs["success_ratio"] == 1.0
    assert float(str(err.outputs["p99_ms"])) >= 60  # the server sleeps 60 ms before answering
    assert "p99 latency" in err.message and "above 20 ms" in err.message


def test_request_timeouts_count_as_failures(service: HTTPService, tmp_path: Path) -> None:
    service.set("slow", delay=0.4)
    err = failure(
        "http.health_check",
        {
            "url": f"{service.url}/health",
            "interval": "1s",
            "window": "10s",
            "timeout": "50ms",
            "max_consecutive_failures": 2,
        },
        tmp_path,
        clock=FakeClock(),
    )
    assert err.outputs["samples"] == 2
    assert all("did not answer in time" in p["error"] and p["status"] is None for p in series(err))


# -- notify.webhook ----------------------------------------------------------------------


def test_webhook_posts_slack_json(webhook: WebhookReceiver, tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    url = f"{webhook.url}/services/T000/B000/s3cr3tpath"
    out = asyncio.run(
        run_action(
            "notify.webhook",
            {
                "url": url,
                "text": "Released 1.2.3 :rocket:",
                "username": "quarterdeck",
                "extra": {"unfurl_links": False},
            },
            ctx,
        )
    )
    assert out == {"status": 200, "response": "ok"}
    assert webhook.posts == [
        {"text": "Released 1.2.3 :rocket:", "username": "quarterdeck", "unfurl_links": False}
    ]
    assert webhook.requests[-1].headers["content-type"] == "application/json"
    lines = " ".join(line for _, line in ctx.lines)  # type: ignore[attr-defined]
    assert "s3cr3tpath" not in lines  # a webhook URL's path is its secret


def test_webhook_failure_is_reported(tmp_path: Path) -> None:
    with WebhookReceiver(status=500) as hook:
        err = failure("notify.webhook", {"url": f"{hook.url}/hook", "text": "hi"}, tmp_path)
    assert "webhook answered 500" in err.message and err.retryable
    dead = free_port()
    err = failure(
        "notify.webhook",
        {"url": f"http://127.0.0.1:{dead}/hook/secretpart", "text": "hi"},
        tmp_path,
    )
    assert "cannot connect" in err.message and "secretpart" not in err.message


# -- validation --------------------------------------------------------------------------


def test_bad_parameters_fail_validation_with_lines(tmp_path: Path) -> None:
    path = write_workflow(
        tmp_path,
        """\
name: bad-http
stages:
  - id: s
    steps:
      - id: a
        uses: http.request
        with:
          url: "http://127.0.0.1:1/x"
          method: FETCH
      - id: b
        uses: http.request
        with:
          url: "ftp://example.org/file"
      - id: c
        uses: http.health_check
        with:
          url: "http://127.0.0.1:1/health"
          min_success_ratio: 1.5
      - id: d
        uses: http.health_check
        with:
          url: "http://127.0.0.1:1/health"
          every: 5s
      - id: e
        uses: notify.webhook
        with:
          url: "http://127.0.0.1:1/hook"
      - id: f
        uses: http.request
        with:
          url: "http://127.0.0.1:1/x"
          timeout: soon
""",
    )
    assert_invalid(
        path,
        {
            9: "http.request",
            13: "not an http(s) URL",
            18: "less than or equal to 1",
            23: "unknown parameter 'every'",
            27: "needs parameter 'text'",
            32: "bad duration 'soon'",
        },
    )
