"""OpenTelemetry traces: span tree, CI/CD attributes, TRACEPARENT in and out.

Spans are captured with the SDK's in-memory exporter; the CLI test uses the standard
``OTEL_*`` variables with the console exporter (which must write to stderr, not stdout).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from quarterdeck.core.observability.tracing import TracingSubscriber, tracing_requested
from tests.helpers import cli, make_runner, write_workflow

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN}-01"

WORKFLOW = """\
name: traced
stages:
  - id: build
    persona: backend-engineer
    steps:
      - id: env
        uses: shell
        with:
          run: "sh -c 'echo tp=$TRACEPARENT >> $QUARTERDECK_OUTPUT'"
      - id: flaky
        uses: shell
        retry: {max_attempts: 2, initial_delay: 10ms}
        with: {run: "sh -c 'exit 1'"}
        continue_on_error: true
    gate:
      id: quality
      all: ["{{ steps.env.outputs.exit_code == 0 }}"]
  - id: skipped
    when: "{{ false }}"
    steps:
      - id: never
        uses: shell
        with: {run: "true"}
"""


@pytest.fixture(autouse=True)
def _no_host_otel(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "TRACEPARENT",
        "TRACESTATE",
        "OTEL_TRACES_EXPORTER",
        "OTEL_SDK_DISABLED",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ):
        monkeypatch.delenv(name, raising=False)


def _traced_run(tmp_path: Path, environ: dict[str, str]) -> tuple[list, object]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    runner = make_runner(tmp_path, WORKFLOW)
    tracer = TracingSubscriber(provider, environ=environ, step_env=runner.step_env)
    runner.subscribers.append(tracer)
    state = asyncio.run(runner.run())
    tracer.close()
    return list(exporter.get_finished_spans()), state


def test_span_tree_attributes_and_parent_from_traceparent(tmp_path: Path) -> None:
    spans, state = _traced_run(tmp_path, {"TRACEPARENT": TRACEPARENT})
    by_name = {s.name: s for s in spans}
    assert set(by_name) == {"RUN traced", "stage build", "stage skipped", "env", "flaky"}

    run = by_name["RUN traced"]
    assert run.kind == SpanKind.SERVER
    assert format(run.context.trace_id, "032x") == TRACE_ID
    assert run.parent is not None and format(run.parent.span_id, "016x") == PARENT_SPAN
    assert run.parent.is_remote
    assert run.attributes["cicd.pipeline.name"] == "traced"
    assert run.attributes["cicd.pipeline.run.id"] == state.id
    assert run.attributes["cicd.pipeline.result"] == "success"
    assert run.attributes["cicd.pipeline.action.name"] == "RUN"

    stage = by_name["stage build"]
    assert stage.parent.span_id == run.context.span_id
    assert stage.attributes["cicd.pipeline.task.name"] == "build"
    assert stage.attributes["quarterdeck.persona"] == "backend-engineer"
    assert stage.attributes["cicd.pipeline.task.run.result"] == "success"
    gate_events = [e for e in stage.events if e.name == "gate.evaluated"]
    assert gate_events and gate_events[0].attributes["quarterdeck.gate.passed"] is True

    for name in ("env", "flaky"):
        step = by_name[name]
        assert step.parent.span_id == stage.context.span_id
        assert step.context.trace_id == run.context.trace_id
        assert step.attributes["cicd.pipeline.task.name"] == name
        assert step.attributes["cicd.pipeline.task.run.id"] == f"{state.id}/{name}"
        assert step.attributes["quarterdeck.persona"] == "backend-engineer"
        assert step.attributes["quarterdeck.step.uses"] == "shell"
    assert by_name["env"].attributes["cicd.pipeline.task.run.result"] == "success"
    flaky = by_name["flaky"]
    assert flaky.attributes["cicd.pipeline.task.run.result"] == "failure"
    assert flaky.attributes["quarterdeck.step.attempts"] == 2
    assert flaky.status.status_code == StatusCode.ERROR
    assert [e.name for e in flaky.events] == ["retry", "attempt"]

    skipped = by_name["stage skipped"]
    assert skipped.attributes["cicd.pipeline.task.run.result"] == "skip"
    assert skipped.parent.span_id == run.context.span_id

    # spans follow the journal's clock: children inside their parents
    assert run.start_time <= stage.start_time <= by_name["env"].start_time
    assert by_name["env"].end_time <= stage.end_time <= run.end_time


def test_shell_step_sees_its_own_span_as_traceparent(tmp_path: Path) -> None:
    spans, state = _traced_run(tmp_path, {"TRACEPARENT": TRACEPARENT})
    env_span = next(s for s in spans if s.name == "env")
    seen = state.step("env").outputs["tp"]
    version, trace_id, span_id, flags = seen.split("-")
    assert (version, trace_id, flags) == ("00", TRACE_ID, "01")
    assert span_id == format(env_span.context.span_id, "016x")


def test_without_traceparent_the_run_is_a_root_span(tmp_path: Path) -> None:
    spans, state = _traced_run(tmp_path, {})
    run = next(s for s in spans if s.name == "RUN traced")
    assert run.parent is None
    seen = state.step("env").outputs["tp"]
    assert seen.split("-")[1] == format(run.context.trace_id, "032x")


def test_failed_run_span_records_the_failure(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    runner = make_runner(
        tmp_path,
        """\
name: broken
stages:
  - id: s
    steps:
      - id: boom
        uses: shell
        with: {run: "sh -c 'exit 7'"}
""",
    )
    runner.subscribers.append(TracingSubscriber(provider, environ={}, step_env=runner.step_env))
    asyncio.run(runner.run())
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert spans["RUN broken"].attributes["cicd.pipeline.result"] == "failure"
    assert spans["RUN broken"].status.status_code == StatusCode.ERROR
    assert "exited with code 7" in spans["boom"].status.description
    assert runner.step_env == {}  # nothing left behind for later steps


def test_enabled_by_the_standard_variables() -> None:
    assert not tracing_requested({})
    assert tracing_requested({}, flag=True)
    assert tracing_requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert tracing_requested({"OTEL_TRACES_EXPORTER": "console"})
    assert not tracing_requested({"OTEL_TRACES_EXPORTER": "none"})
    assert not tracing_requested({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"})


def test_cli_console_exporter_keeps_stdout_for_data(tmp_path: Path) -> None:
    wf = write_workflow(tmp_path, WORKFLOW)
    proc = cli(
        "run",
        str(wf),
        "--json",
        "--store",
        str(tmp_path / "qd.db"),
        env={
            "OTEL_TRACES_EXPORTER": "console",
            "TRACEPARENT": TRACEPARENT,
            "OTEL_SERVICE_NAME": "ci-pipeline",
        },
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)  # spans did not leak onto stdout
    assert data["status"] == "succeeded"
    assert '"name": "RUN traced"' in proc.stderr
    assert f'"trace_id": "0x{TRACE_ID}"' in proc.stderr
    assert '"service.name": "ci-pipeline"' in proc.stderr
    outputs = data["stages"][0]["steps"][0]["outputs"]
    assert outputs["tp"].startswith(f"00-{TRACE_ID}-")


def test_cli_rejects_an_unknown_exporter(tmp_path: Path) -> None:
    wf = write_workflow(tmp_path, WORKFLOW)
    proc = cli(
        "run",
        str(wf),
        "--store",
        str(tmp_path / "qd.db"),
        env={"OTEL_TRACES_EXPORTER": "zipkin-carrier-pigeon"},
    )
    assert proc.returncode == 2
    assert "OTEL_TRACES_EXPORTER='zipkin-carrier-pigeon' is not supported" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_exports_otlp_http_to_a_collector(tmp_path: Path) -> None:
    """OTLP/HTTP protobuf to a local receiver, configured only by OTEL_* variables."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
        ExportTraceServiceResponse,
    )

    received: list[ExportTraceServiceRequest] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path == "/v1/traces":
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                received.append(request)
            payload = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        wf = write_workflow(tmp_path, WORKFLOW)
        proc = cli(
            "run",
            str(wf),
            "--store",
            str(tmp_path / "qd.db"),
            env={
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_port}",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "TRACEPARENT": TRACEPARENT,
            },
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert proc.returncode == 0, proc.stderr
    spans = [
        span
        for request in received
        for rs in request.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    ]
    names = {span.name for span in spans}
    assert {"RUN traced", "stage build", "env", "flaky"} <= names
    assert {span.trace_id.hex() for span in spans} == {TRACE_ID}
    run = next(span for span in spans if span.name == "RUN traced")
    assert run.parent_span_id.hex() == PARENT_SPAN
    attrs = {a.key: a.value.string_value for a in run.attributes}
    assert attrs["cicd.pipeline.name"] == "traced"
    assert attrs["cicd.pipeline.result"] == "success"
