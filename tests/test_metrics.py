"""Prometheus metrics from run events: scraped over HTTP during and after a known run,
served by the CLI (``--metrics-port``) and pushed to a real Pushgateway (``--pushgateway``).

Every value asserted here follows from the workflow: durations come from ``wait`` steps
under a :class:`~quarterdeck.core.clock.FakeClock`, tokens from the stand-in server's scripted usage.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from quarterdeck.core.clock import FakeClock
from quarterdeck.core.config import Settings
from quarterdeck.core.engine.runner import Runner, RunOptions
from quarterdeck.core.observability.metrics import MetricsSubscriber, start_metrics
from tests.helpers import cli, make_runner, run_workflow, write_workflow
from tests.llm_server import LLMServer, Reply

WF = "metrics-demo"
BACKEND, TESTER = "backend-engineer", "testing-specialist"

KNOWN_RUN = f"""\
name: {WF}
stages:
  - id: build
    persona: {BACKEND}
    steps:
      - id: think
        uses: llm.chat
        with: {{prompt: "plan"}}
      - id: work
        uses: wait
        needs: [think]
        with: {{duration: 5s}}
    gate:
      id: quality
      all: ["{{{{ steps.work.outputs.waited == 5 }}}}"]
  - id: verify
    persona: {TESTER}
    approval:
      id: ship
      allow_self_approval: true
    steps:
      - id: review
        uses: llm.chat
        with: {{prompt: "review", model: "local-7b"}}
      - id: soak
        uses: wait
        with: {{duration: 3s}}
    gate:
      id: checks
      all: ["{{{{ steps.review.outputs.usage.total == 12 }}}}"]
"""

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> tuple[Samples, dict[str, str]]:
    """Samples keyed by (name, sorted labels), and each family's type."""
    samples: Samples = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples, types


def scrape(url: str) -> tuple[Samples, dict[str, str]]:
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200
    return parse(response.text)


def val(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def ours(samples: Samples, ns: str = "quarterdeck") -> Samples:
    return {
        k: v
        for k, v in samples.items()
        if k[0].startswith(ns + "_") and not k[0].endswith("_created")
    }


@pytest.fixture
def server() -> Iterator[LLMServer]:
    with LLMServer() as srv:
        yield srv


def llm_settings(server: LLMServer, **extra: Any) -> Settings:
    return Settings.model_validate(
        {"llm": {"base_url": server.base_url, "api_key": "k-test"}, **extra}
    )


async def _wait_for(predicate: Any, what: str) -> None:
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.asyncio
async def test_scrape_during_and_after_a_known_run(tmp_path: Path, server: LLMServer) -> None:
    server.script(
        Reply(prompt_tokens=30, completion_tokens=12), Reply(prompt_tokens=8, completion_tokens=4)
    )
    runner = make_runner(
        tmp_path,
        KNOWN_RUN,
        settings=llm_settings(server),
        options=RunOptions(started_by="tester", clock=FakeClock(), signal_poll_interval=0.02),
    )
    said: list[str] = []
    wiring = start_metrics(runner, runner.settings, port=0, say=said.append)
    assert wiring.server is not None
    url = wiring.server.url
    assert said == [f"metrics: {url}"]
    assert url.startswith("http://127.0.0.1:")
    try:
        task = asyncio.create_task(runner.run())
        await _wait_for(lambda: runner.state.pending_approval() is not None, "gate ship")
        during, types = await asyncio.to_thread(scrape, url)
        q = "quarterdeck"
        assert types[f"{q}_persona_switches"] == "counter"
        assert types[f"{q}_persona_duration_seconds"] == "histogram"
        assert types[f"{q}_persona_token_budget_remaining"] == "gauge"
        assert types[f"{q}_workflow_stage_duration_seconds"] == "histogram"
        assert types[f"{q}_workflow_duration_seconds"] == "histogram"
        assert types[f"{q}_workflow_runs"] == "counter"
        assert (
            val(
                during,
                f"{q}_persona_switches_total",
                from_persona="none",
                to_persona=BACKEND,
                workflow=WF,
            )
            == 1
        )
        assert (
            val(
                during,
                f"{q}_persona_switches_total",
                from_persona=BACKEND,
                to_persona=TESTER,
                workflow=WF,
            )
            == 1
        )
        assert val(during, f"{q}_persona_duration_seconds_count", persona=BACKEND) == 1
        assert val(during, f"{q}_persona_duration_seconds_sum", persona=BACKEND) == 5
        assert val(during, f"{q}_persona_duration_seconds_count", persona=TESTER) is None
        assert (
            val(
                during,
                f"{q}_persona_tokens_used_total",
                persona=BACKEND,
                workflow=WF,
                model="gpt-4o-mini",
            )
            == 42
        )
        assert val(during, f"{q}_persona_token_budget_remaining", persona=BACKEND) == 1958
        assert val(during, f"{q}_persona_token_budget_remaining", persona=TESTER) == 1500
        assert (
            val(
                during,
                f"{q}_workflow_stage_duration_seconds_sum",
                workflow=WF,
                stage="build",
                persona=BACKEND,
            )
            == 5
        )
        assert (
            val(
                during,
                f"{q}_workflow_quality_gate_total",
                workflow=WF,
                stage="build",
                result="passed",
            )
            == 1
        )
        assert not [k for k in ours(during) if k[0].startswith(f"{q}_workflow_runs")]
        assert not [k for k in ours(during) if k[0].startswith(f"{q}_workflow_duration")]

        runner.store.send_signal(runner.run_id, "approve", actor="alice", target="ship")
        state = await asyncio.wait_for(task, 30)
        assert state.status == "succeeded"
        after, _ = await asyncio.to_thread(scrape, url)
    finally:
        wiring.finish()

    expected = {
        (
            "persona_switches_total",
            (("from_persona", "none"), ("to_persona", BACKEND), ("workflow", WF)),
        ): 1,
        (
            "persona_switches_total",
            (("from_persona", BACKEND), ("to_persona", TESTER), ("workflow", WF)),
        ): 1,
        ("persona_duration_seconds_count", (("persona", BACKEND),)): 1,
        ("persona_duration_seconds_sum", (("persona", BACKEND),)): 5,
        ("persona_duration_seconds_count", (("persona", TESTER),)): 1,
        ("persona_duration_seconds_sum", (("persona", TESTER),)): 3,
        (
            "persona_tokens_used_total",
            (("model", "gpt-4o-mini"), ("persona", BACKEND), ("workflow", WF)),
        ): 42,
        (
            "persona_tokens_used_total",
            (("model", "local-7b"), ("persona", TESTER), ("workflow", WF)),
        ): 12,
        ("persona_token_budget_remaining", (("persona", BACKEND),)): 1958,
        ("persona_token_budget_remaining", (("persona", TESTER),)): 1488,
        (
            "workflow_stage_duration_seconds_count",
            (("persona", BACKEND), ("stage", "build"), ("workflow", WF)),
        ): 1,
        (
            "workflow_stage_duration_seconds_sum",
            (("persona", BACKEND), ("stage", "build"), ("workflow", WF)),
        ): 5,
        (
            "workflow_stage_duration_seconds_count",
            (("persona", TESTER), ("stage", "verify"), ("workflow", WF)),
        ): 1,
        (
            "workflow_stage_duration_seconds_sum",
            (("persona", TESTER), ("stage", "verify"), ("workflow", WF)),
        ): 3,
        (
            "workflow_quality_gate_total",
            (("result", "passed"), ("stage", "build"), ("workflow", WF)),
        ): 1,
        (
            "workflow_quality_gate_total",
            (("result", "passed"), ("stage", "verify"), ("workflow", WF)),
        ): 1,
        ("workflow_duration_seconds_count", (("workflow", WF),)): 1,
        ("workflow_duration_seconds_sum", (("workflow", WF),)): 8,
        ("workflow_runs_total", (("result", "succeeded"), ("workflow", WF))): 1,
    }
    got = {
        (k[0].removeprefix("quarterdeck_"), k[1]): v
        for k, v in ours(after).items()
        if not k[0].endswith("_bucket")
    }
    assert got == expected
    # buckets: the 5 s hold is in le=5 and above, not in le=1
    assert val(after, "quarterdeck_persona_duration_seconds_bucket", persona=BACKEND, le="1.0") == 0
    assert val(after, "quarterdeck_persona_duration_seconds_bucket", persona=BACKEND, le="5.0") == 1
    for (_name, labels), _value in ours(after).items():
        assert runner.run_id not in dict(labels).values()
        assert not {"run", "run_id", "id"} & dict(labels).keys()
    # stopped with the run: nothing listens any more
    with pytest.raises(httpx.TransportError):
        httpx.get(url, timeout=2)


def test_failed_gates_and_runs_are_counted_and_the_namespace_is_configurable(
    tmp_path: Path,
) -> None:
    text = """\
name: gated
stages:
  - id: check
    persona: testing-specialist
    steps:
      - id: probe
        uses: wait
        with: {duration: 2s}
    gate:
      id: coverage
      all: ["{{ steps.probe.outputs.waited > 10 }}"]
"""
    subscriber = MetricsSubscriber(namespace="hypertool")
    runner = make_runner(tmp_path, text, options=RunOptions(started_by="t", clock=FakeClock()))
    runner.subscribers.append(subscriber)
    state = asyncio.run(runner.run())
    assert state.status == "failed"
    from prometheus_client import generate_latest

    samples, _ = parse(generate_latest(subscriber.registry).decode())
    assert (
        val(
            samples,
            "hypertool_workflow_quality_gate_total",
            workflow="gated",
            stage="check",
            result="failed",
        )
        == 1
    )
    assert val(samples, "hypertool_workflow_runs_total", workflow="gated", result="failed") == 1
    assert (
        val(
            samples,
            "hypertool_workflow_stage_duration_seconds_sum",
            workflow="gated",
            stage="check",
            persona="testing-specialist",
        )
        == 2
    )
    assert not [k for k in samples if k[0].startswith("quarterdeck_")]


def test_resumed_run_metrics_carry_on_from_the_journal(tmp_path: Path) -> None:
    text = """\
name: resumable
stages:
  - id: one
    persona: backend-engineer
    approval: {id: go, allow_self_approval: true}
    steps:
      - {id: nap, uses: wait, with: {duration: 4s}}
"""
    clock = FakeClock()
    ran = run_workflow(
        tmp_path, text, options=RunOptions(started_by="t", clock=clock, no_wait=True)
    )
    assert ran.state.status == "interrupted"
    ran.store.send_signal(ran.state.id, "approve", actor="alice", target="go")
    from quarterdeck.core.journal.state import fold

    prior = fold(ran.state.id, ran.store.events(ran.state.id))
    runner = Runner(
        ran.runner.loaded,
        ran.store,
        inputs={},
        personas=ran.runner.personas,
        prior=prior,
        options=RunOptions(started_by="t", clock=clock, workdir=tmp_path),
    )
    wiring = start_metrics(runner, Settings(), pushgateway=None, port=0, say=lambda _t: None)
    try:
        asyncio.run(runner.run())
        assert wiring.server is not None
        samples, _ = scrape(wiring.server.url)
    finally:
        wiring.finish()
    assert (
        val(samples, "quarterdeck_workflow_runs_total", workflow="resumable", result="succeeded")
        == 1
    )
    assert val(samples, "quarterdeck_workflow_duration_seconds_sum", workflow="resumable") == 4
    assert val(samples, "quarterdeck_persona_duration_seconds_sum", persona="backend-engineer") == 4
    assert (
        val(samples, "quarterdeck_persona_token_budget_remaining", persona="backend-engineer")
        == 2000
    )


# -- the CLI -----------------------------------------------------------------------------


def _read_lines(stream: Any, into: queue.Queue[str]) -> None:
    for line in iter(stream.readline, ""):
        into.put(line)
    into.put("")


def test_cli_serves_metrics_while_a_run_waits(tmp_path: Path) -> None:
    text = """\
name: cli-metrics
stages:
  - id: prep
    persona: devops-engineer
    steps:
      - {id: hello, uses: shell, with: {run: "echo hi"}}
  - id: ship
    persona: backend-engineer
    approval: {id: release, allow_self_approval: true}
    steps:
      - {id: bye, uses: shell, with: {run: "echo bye"}}
"""
    path = write_workflow(tmp_path, text)
    db = str(tmp_path / "qd.db")
    env = {**os.environ, "QUARTERDECK_USER": "tester"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "quarterdeck.tui.cli",
            "run",
            str(path),
            "--headless",
            "--store",
            db,
            "--metrics-port",
            "0",
        ],
        cwd=str(tmp_path),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_read_lines, args=(proc.stderr, lines), daemon=True)
    reader.start()
    try:
        url = None
        seen: list[str] = []
        while url is None:
            line = lines.get(timeout=30)
            assert line, f"the run ended before serving metrics: {seen}"
            seen.append(line)
            if line.startswith("metrics: http://127.0.0.1:"):
                url = line.split("metrics: ", 1)[1].strip()
        samples: Samples = {}
        for _ in range(500):  # until the run reaches its approval gate
            samples, _ = scrape(url)
            if (
                val(
                    samples,
                    "quarterdeck_persona_switches_total",
                    from_persona="devops-engineer",
                    to_persona="backend-engineer",
                    workflow="cli-metrics",
                )
                == 1
            ):
                break
            time.sleep(0.02)
        assert (
            val(
                samples,
                "quarterdeck_persona_switches_total",
                from_persona="none",
                to_persona="devops-engineer",
                workflow="cli-metrics",
            )
            == 1
        )
        assert (
            val(
                samples,
                "quarterdeck_workflow_quality_gate_total",
                workflow="cli-metrics",
                stage="prep",
                result="passed",
            )
            is None
        )  # prep has no gate
        assert (
            val(samples, "quarterdeck_persona_token_budget_remaining", persona="backend-engineer")
            == 2000
        )
        assert (
            val(
                samples,
                "quarterdeck_workflow_stage_duration_seconds_count",
                workflow="cli-metrics",
                stage="prep",
                persona="devops-engineer",
            )
            == 1
        )
        (row,) = json.loads(cli("runs", "--json", "--store", db).stdout)
        approved = cli("approve", row["id"], "release", "--as", "tester", "--store", db)
        assert approved.returncode == 0, approved.stderr
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    with pytest.raises(httpx.TransportError):
        httpx.get(url, timeout=2)


def test_cli_refuses_a_bad_pushgateway_url(tmp_path: Path) -> None:
    path = write_workflow(
        tmp_path,
        "name: x\nstages:\n  - id: a\n    steps:\n"
        "      - {id: s, uses: shell, with: {run: 'true'}}\n",
    )
    result = cli(
        "run",
        str(path),
        "--headless",
        "--pushgateway",
        "ftp://nope",
        "--store",
        str(tmp_path / "qd.db"),
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "--pushgateway 'ftp://nope' is not an http(s) URL" in result.stderr
    assert "Traceback" not in result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("prometheus-pushgateway")
    if binary is None:
        message = "needs the Debian package prometheus-pushgateway (scripts/system-packages.txt)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    port = _free_port()
    proc = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=str(tmp_path),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, "prometheus-pushgateway exited at start"
            time.sleep(0.05)
        else:
            raise AssertionError("prometheus-pushgateway never became ready")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_a_headless_run_pushes_once_to_a_real_pushgateway(
    tmp_path: Path, server: LLMServer, pushgateway: str
) -> None:
    server.script(Reply(prompt_tokens=20, completion_tokens=5))
    text = """\
name: push-demo
stages:
  - id: draft
    persona: data-scientist
    steps:
      - {id: ask, uses: llm.chat, with: {prompt: "summarise"}}
    gate:
      id: sane
      all: ["{{ steps.ask.outputs.usage.total == 25 }}"]
"""
    path = write_workflow(tmp_path, text)
    result = cli(
        "run",
        str(path),
        "--headless",
        "--pushgateway",
        pushgateway,
        "--store",
        str(tmp_path / "qd.db"),
        cwd=tmp_path,
        env={"QUARTERDECK_LLM_BASE_URL": server.base_url, "QUARTERDECK_LLM_API_KEY": "k-test"},
    )
    assert result.returncode == 0, result.stderr
    assert f"metrics: pushed to {pushgateway} (workflow=push-demo)" in result.stderr
    samples, _ = scrape(f"{pushgateway}/metrics")
    group = {"job": "quarterdeck", "workflow": "push-demo", "instance": ""}

    def pushed(name: str, **labels: str) -> float | None:
        return val(samples, name, **group, **labels)

    assert pushed("quarterdeck_workflow_runs_total", result="succeeded") == 1
    assert (
        pushed(
            "quarterdeck_persona_switches_total", from_persona="none", to_persona="data-scientist"
        )
        == 1
    )
    assert (
        pushed(
            "quarterdeck_persona_tokens_used_total", persona="data-scientist", model="gpt-4o-mini"
        )
        == 25
    )
    assert pushed("quarterdeck_persona_token_budget_remaining", persona="data-scientist") == 1675
    assert pushed("quarterdeck_workflow_quality_gate_total", stage="draft", result="passed") == 1
    assert pushed("quarterdeck_workflow_duration_seconds_count") == 1
    assert pushed("quarterdeck_persona_duration_seconds_count", persona="data-scientist") == 1
    assert (
        pushed(
            "quarterdeck_workflow_stage_duration_seconds_count",
            stage="draft",
            persona="data-scientist",
        )
        == 1
    )
    (row,) = json.loads(cli("runs", "--json", "--store", str(tmp_path / "qd.db")).stdout)
    for (name, labels), _v in samples.items():
        if name.startswith("quarterdeck_"):
            assert row["id"] not in dict(labels).values()
            assert {k for k, _ in labels} <= {
                "job",
                "instance",
                "workflow",
                "persona",
                "model",
                "from_persona",
                "to_persona",
                "stage",
                "result",
                "le",
            }


def test_attach_metrics_follow_the_journal_of_a_run_elsewhere(tmp_path: Path) -> None:
    """`attach --metrics-port` serves a run's metrics read from its journal."""
    from quarterdeck.core.observability.metrics import JournalMetrics

    text = """\
name: journaled
stages:
  - id: build
    persona: backend-engineer
    steps:
      - {id: a, uses: memory.set, with: {key: a, value: 1}}
  - id: check
    persona: testing-specialist
    steps:
      - {id: b, uses: memory.set, with: {key: b, value: 2}}
    gate: {id: q, all: ["memory.b == 2"]}
"""
    ran = run_workflow(tmp_path, text)
    assert ran.state.status == "succeeded"
    follower = JournalMetrics(tmp_path / "qd.db", ran.state.id, port=0)
    try:
        deadline = time.monotonic() + 10
        while follower.last_seq < ran.store.last_seq(ran.state.id):
            assert time.monotonic() < deadline, "the journal was not followed"
            time.sleep(0.02)
        samples, _ = scrape(follower.url)
    finally:
        follower.close()
    assert (
        val(samples, "quarterdeck_workflow_runs_total", workflow="journaled", result="succeeded")
        == 1
    )
    assert (
        val(
            samples,
            "quarterdeck_persona_switches_total",
            from_persona="backend-engineer",
            to_persona="testing-specialist",
            workflow="journaled",
        )
        == 1
    )
    assert (
        val(
            samples,
            "quarterdeck_workflow_quality_gate_total",
            workflow="journaled",
            stage="check",
            result="passed",
        )
        == 1
    )
