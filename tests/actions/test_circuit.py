"""The per-target circuit breaker, against a real failing HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from quarterdeck.core.clock import FakeClock
from quarterdeck.core.engine.runner import RunOptions
from quarterdeck.core.errors import ActionError
from quarterdeck.core.policy.circuit import (
    SERVICE_KEY,
    CircuitBoard,
    CircuitOpenError,
    CircuitPolicy,
    http_target,
    ssh_target,
)
from tests.helpers import make_ctx, make_runner
from tests.servers import HTTPService, run_action


@pytest.fixture
def failing() -> Iterator[HTTPService]:
    with HTTPService("failing", fail_status=503) as svc:
        yield svc


class Harness:
    """One run's worth of context: a shared board, a fake clock, the events emitted."""

    def __init__(self, tmp_path: Path, policy: CircuitPolicy) -> None:
        self.clock = FakeClock()
        self.board = CircuitBoard(policy)
        self.events: list[tuple[str, dict[str, Any]]] = []

        async def emit(type_: str, data: dict[str, Any]) -> None:
            self.events.append((type_, data))

        self.ctx = make_ctx(
            tmp_path, clock=self.clock, services={SERVICE_KEY: self.board}, emit_event=emit
        )

    def get(self, url: str) -> dict[str, Any]:
        return asyncio.run(run_action("http.request", {"url": url}, self.ctx))

    def fails(self, url: str) -> ActionError:
        with pytest.raises(ActionError) as info:
            self.get(url)
        return info.value

    def types(self) -> list[str]:
        return [t for t, _ in self.events]


def test_opens_fails_fast_and_half_opens(failing: HTTPService, tmp_path: Path) -> None:
    h = Harness(tmp_path, CircuitPolicy(failure_threshold=3, window=60, cooldown=30))
    url = f"{failing.url}/health"
    target = http_target(url)
    for _ in range(3):
        err = h.fails(url)
        assert not isinstance(err, CircuitOpenError) and "answered 503" in err.message
    assert failing.hits() == 3
    assert h.types() == ["circuit.opened"]
    opened = h.events[0][1]
    assert opened["target"] == target and opened["state"] == "open"
    assert opened["failures"] == 3 and opened["retry_in"] == 30

    # open: fail fast, the server sees nothing
    for _ in range(5):
        err = h.fails(url)
        assert isinstance(err, CircuitOpenError) and err.retryable
        assert f"circuit open for {target}" in err.message
    assert failing.hits() == 3
    assert h.board.state(target, h.clock) == "open"
    assert h.board.snapshot(h.clock)[0]["state"] == "open"

    h.clock.advance(29.5)
    assert isinstance(h.fails(url), CircuitOpenError) and failing.hits() == 3

    # cool-down over: one trial goes through; it fails, so the breaker opens again
    h.clock.advance(0.5)
    assert h.board.state(target, h.clock) == "half_open"
    err = h.fails(url)
    assert not isinstance(err, CircuitOpenError) and failing.hits() == 4
    assert h.types() == ["circuit.opened", "circuit.half_open", "circuit.opened"]
    assert h.events[-1][1]["times_opened"] == 2
    assert isinstance(h.fails(url), CircuitOpenError) and failing.hits() == 4

    # the service recovers: the next trial closes the breaker
    failing.set("ok")
    h.clock.advance(30)
    assert h.get(url)["status"] == 200 and failing.hits() == 5
    assert h.types()[-2:] == ["circuit.half_open", "circuit.closed"]
    assert h.board.snapshot(h.clock)[0]["state"] == "closed"
    assert h.get(url)["status"] == 200 and failing.hits() == 6


def test_failures_outside_the_window_do_not_count(failing: HTTPService, tmp_path: Path) -> None:
    h = Harness(tmp_path, CircuitPolicy(failure_threshold=3, window=60, cooldown=30))
    url = f"{failing.url}/health"
    h.fails(url)
    h.fails(url)
    h.clock.advance(61)
    h.fails(url)
    h.fails(url)
    assert h.events == [] and failing.hits() == 4
    assert not isinstance(h.fails(url), CircuitOpenError)  # third within the window opens it
    assert h.types() == ["circuit.opened"] and failing.hits() == 5


def test_breakers_are_per_target(failing: HTTPService, tmp_path: Path) -> None:
    h = Harness(tmp_path, CircuitPolicy(failure_threshold=1, window=60, cooldown=30))
    with HTTPService() as healthy:
        h.fails(f"{failing.url}/health")
        assert isinstance(h.fails(f"{failing.url}/echo"), CircuitOpenError)  # same base URL
        assert h.get(f"{healthy.url}/health")["status"] == 200
        assert healthy.hits() == 1
    assert [s["target"] for s in h.board.snapshot(h.clock)] == sorted(
        [http_target(failing.url), http_target(healthy.url)]
    )


def test_client_errors_do_not_open_it(tmp_path: Path) -> None:
    h = Harness(tmp_path, CircuitPolicy(failure_threshold=1, window=60, cooldown=30))
    with HTTPService() as svc:
        h.fails(f"{svc.url}/status/404")
        h.fails(f"{svc.url}/status/404")
        assert svc.hits() == 2 and h.events == []


def test_half_open_lets_one_trial_through(tmp_path: Path) -> None:
    h = Harness(tmp_path, CircuitPolicy(failure_threshold=1, window=60, cooldown=10))
    with HTTPService("failing") as svc:
        h.fails(f"{svc.url}/health")
        svc.set("slow", delay=0.2)
        h.clock.advance(10)

        async def both() -> list[Any]:
            return await asyncio.gather(
                *(
                    run_action("http.request", {"url": f"{svc.url}/health"}, h.ctx)
                    for _ in range(2)
                ),
                return_exceptions=True,
            )

        results = asyncio.run(both())
        assert svc.hits() == 2  # the first failure, then exactly one trial
    assert sum(isinstance(r, CircuitOpenError) for r in results) == 1
    assert sum(isinstance(r, dict) and r["status"] == 200 for r in results) == 1
    assert h.types()[-1] == "circuit.closed"


def test_shared_across_a_run_and_journaled(failing: HTTPService, tmp_path: Path) -> None:
    url = f"{failing.url}/health"
    steps = "\n".join(
        f"""\
      - id: call{i}
        uses: http.request
        continue_on_error: true
        {"needs: [call" + str(i - 1) + "]" if i else ""}
        with: {{url: "{url}"}}"""
        for i in range(4)
    )
    runner = make_runner(
        tmp_path,
        f"""
name: breaker
stages:
  - id: hit
    steps:
{steps}
""",
        options=RunOptions(started_by="tester", clock=FakeClock()),
    )
    runner.services[SERVICE_KEY] = CircuitBoard(
        CircuitPolicy(failure_threshold=2, window=60, cooldown=300)
    )
    state = asyncio.run(runner.run())
    assert failing.hits() == 2  # call2 and call3 never reached the server
    errors = {
        s: str(getattr(state.step(s), "error", "")) for s in ("call0", "call1", "call2", "call3")
    }
    assert "answered 503" in errors["call0"] and "answered 503" in errors["call1"]
    assert "circuit open for" in errors["call2"] and "circuit open for" in errors["call3"]
    events = runner.store.events(state.id)
    opened = [e for e in events if e.type == "circuit.opened"]
    assert len(opened) == 1 and opened[0].step == "call1"
    assert opened[0].data["target"] == http_target(url)


def test_default_board_is_created_once_per_run(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    with HTTPService() as svc:
        asyncio.run(run_action("http.request", {"url": f"{svc.url}/health"}, ctx))
        board = ctx.services[SERVICE_KEY]
        asyncio.run(run_action("http.request", {"url": f"{svc.url}/health"}, ctx))
    assert ctx.services[SERVICE_KEY] is board
    assert board.policy == CircuitPolicy()
    assert board.snapshot()[0]["state"] == "closed"


def test_targets_and_policy_checks() -> None:
    assert http_target("https://api.example.org/v1/x?y=1") == "https://api.example.org:443"
    assert http_target("http://127.0.0.1:8080/health") == "http://127.0.0.1:8080"
    assert ssh_target("web1", 2222) == "ssh://web1:2222"
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitPolicy(failure_threshold=0)
