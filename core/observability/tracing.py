"""Optional OpenTelemetry traces of a run: a span per run, stage and step.

Why a subscriber that builds spans from events (rather than spans around runner code):
the journal is the source of truth and events carry their own timestamps, so the trace
is exactly what was journaled, and the runner stays free of tracing code. OpenTelemetry
is imported lazily, only when tracing is enabled (the ``otel`` extra).

Attributes follow the CI/CD semantic conventions (``cicd.pipeline.*``) plus
``quarterdeck.*`` for personas and tokens. The parent context comes from ``TRACEPARENT``
(as CI systems and ``otel-cli`` pass it), and each step's own ``TRACEPARENT`` is handed
to the runner through ``Runner.step_env`` so a shell step's spans join the trace.
The exporter is configured by the standard ``OTEL_*`` variables.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from quarterdeck.core.errors import InvalidInput
from quarterdeck.core.journal.events import (
    ApprovalDecided,
    ApprovalRequested,
    Event,
    GateEvaluated,
    GateSkipped,
    PersonaSwitched,
    RunFinished,
    RunInterrupted,
    RunResumed,
    RunStarted,
    StageFinished,
    StageSkipped,
    StageStarted,
    StepFinished,
    StepRetry,
    StepSkipped,
    StepStarted,
    TokensUsed,
)
from quarterdeck.core.journal.statuses import TRACE_ERRORS, RunStatus, StepStatus, look

SERVICE_NAME = "quarterdeck"


def tracing_requested(environ: Mapping[str, str] | None = None, flag: bool = False) -> bool:
    """On with ``--trace``, or when the standard variables ask for an exporter."""
    env = os.environ if environ is None else environ
    if flag:
        return True
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none" or env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    return bool(
        exporter
        or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def otel_available() -> bool:
    try:
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        return False
    return True


def build_provider(environ: Mapping[str, str] | None = None) -> Any:
    """A ``TracerProvider`` with the exporter the ``OTEL_*`` variables name.

    ``OTEL_TRACES_EXPORTER``: ``otlp`` (default), ``console`` (to stderr: stdout is data)
    or several, comma-separated. OTLP uses ``OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL``:
    ``http/protobuf`` (the spec's default) or ``grpc``; endpoint, headers and timeouts
    are read by the exporter itself from the standard variables.
    """
    env = os.environ if environ is None else environ
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    except ImportError:
        raise InvalidInput(
            "tracing needs OpenTelemetry, which is not installed",
            hint="pip install 'quarterdeck[otel]', or unset OTEL_TRACES_EXPORTER / "
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ) from None
    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or SERVICE_NAME})
    provider = TracerProvider(resource=resource)
    names = [n.strip().lower() for n in env.get("OTEL_TRACES_EXPORTER", "otlp").split(",")]
    for name in names or ["otlp"]:
        if name in ("", "none"):
            continue
        if name == "console":
            exporter: Any = ConsoleSpanExporter(out=sys.stderr)
        elif name == "otlp":
            protocol = (
                env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or "http/protobuf"
            ).lower()
            try:
                if protocol == "grpc":
                    from opentelemetry.exporter.otlp.proto.grpc import trace_exporter as grpc

                    exporter = grpc.OTLPSpanExporter()
                elif protocol in ("http/protobuf", "http"):
                    from opentelemetry.exporter.otlp.proto.http import trace_exporter as http

                    exporter = http.OTLPSpanExporter()
                else:
                    raise InvalidInput(
                        f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported",
                        hint="use http/protobuf or grpc",
                    )
            except ImportError:
                raise InvalidInput(
                    f"the OTLP {protocol} exporter is not installed",
                    hint="pip install 'quarterdeck[otel]'",
                ) from None
        else:
            raise InvalidInput(
                f"OTEL_TRACES_EXPORTER={name!r} is not supported",
                hint="use otlp, console or none",
            )
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


class TracingSubscriber:
    """Turns a run's events into spans; hands each step its ``TRACEPARENT``.

    ``step_env`` is the runner's ``step_env`` mapping: on ``step.started`` (delivered
    after commit and before the step's action starts) this writes the step span's
    ``TRACEPARENT`` under ``(stage, step)``, and the runner merges it into that step's
    environment. Never blocks, never raises.
    """

    def __init__(
        self,
        provider: Any,
        *,
        environ: Mapping[str, str] | None = None,
        step_env: MutableMapping[tuple[str, str], dict[str, str]] | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self._trace = trace
        self._propagator = TraceContextTextMapPropagator()
        self.provider = provider
        self.tracer = provider.get_tracer("quarterdeck")
        env = os.environ if environ is None else environ
        carrier = {"traceparent": env.get("TRACEPARENT", "")}
        if env.get("TRACESTATE"):
            carrier["tracestate"] = env["TRACESTATE"]
        self.parent = self._propagator.extract(carrier) if carrier["traceparent"] else None
        self.step_env = step_env if step_env is not None else {}
        self.on_error = on_error or (lambda _message: None)
        self.run_span: Any = None
        self.stages: dict[str, Any] = {}
        self.steps: dict[tuple[str, str], Any] = {}
        self.workflow = ""
        self.run_id = ""
        self.tokens = 0
        self.stage_persona: dict[str, str] = {}

    @staticmethod
    def _ns(ts: float) -> int:
        return int(ts * 1_000_000_000)

    def __call__(self, event: Event) -> None:
        try:
            self._handle(event)
        except Exception as exc:  # tracing must never break a run
            self.on_error(f"tracing: {type(exc).__name__}: {exc}")

    def _context(self, span: Any) -> Any:
        return self._trace.set_span_in_context(span)

    def _start_run(self, event: Event, p: RunStarted | RunResumed) -> None:
        from opentelemetry.trace import SpanKind

        if isinstance(p, RunStarted):
            workflow, by, resumed = p.workflow, p.started_by, False
        else:
            workflow, by, resumed = "", p.by, True
        self.workflow = str(workflow or self.workflow or "run")
        self.run_id = event.run_id
        self.run_span = self.tracer.start_span(
            f"RUN {self.workflow}",
            context=self.parent,
            kind=SpanKind.SERVER,
            start_time=self._ns(event.ts),
            attributes={
                "cicd.pipeline.name": self.workflow,
                "cicd.pipeline.run.id": event.run_id,
                "cicd.pipeline.action.name": "RUN",
                "quarterdeck.run.started_by": str(by or ""),
                "quarterdeck.run.resumed": resumed,
            },
        )

    def _handle(self, event: Event) -> None:
        p = event.payload()
        if isinstance(p, (RunStarted, RunResumed)):
            if self.run_span is None:
                self._start_run(event, p)
            return
        if self.run_span is None:
            return
        if isinstance(p, PersonaSwitched) and event.stage:
            self.stage_persona[event.stage] = str(p.to or "")
            self.run_span.add_event(
                "persona.switched",
                {
                    "quarterdeck.persona.from": str(p.from_ or ""),
                    "quarterdeck.persona.to": str(p.to or ""),
                },
                timestamp=self._ns(event.ts),
            )
        elif isinstance(p, StageStarted) and event.stage:
            persona = str(p.persona or self.stage_persona.get(event.stage, ""))
            self.stage_persona[event.stage] = persona
            self.stages[event.stage] = self.tracer.start_span(
                f"stage {event.stage}",
                context=self._context(self.run_span),
                start_time=self._ns(event.ts),
                attributes={
                    "cicd.pipeline.name": self.workflow,
                    "cicd.pipeline.run.id": self.run_id,
                    "cicd.pipeline.task.name": event.stage,
                    "quarterdeck.stage": event.stage,
                    "quarterdeck.persona": persona,
                },
            )
        elif isinstance(p, (StageFinished, StageSkipped)) and event.stage:
            span = self.stages.pop(event.stage, None)
            if span is None:  # finished without starting: rejected, skipped, failed `when`
                span = self.tracer.start_span(
                    f"stage {event.stage}",
                    context=self._context(self.run_span),
                    start_time=self._ns(event.ts),
                    attributes={
                        "cicd.pipeline.task.name": event.stage,
                        "quarterdeck.stage": event.stage,
                        "quarterdeck.persona": self.stage_persona.get(event.stage, ""),
                    },
                )
            if isinstance(p, StageSkipped):
                status, error = str(StepStatus.SKIPPED), p.reason
            else:
                status, error = str(p.status), p.error
            self._finish(span, status, error, event.ts, "cicd.pipeline.task.run.result")
        elif isinstance(p, StepStarted) and event.stage and event.step:
            key = (event.stage, event.step)
            if key in self.steps:  # a retry: same span, one event per attempt
                self.steps[key].add_event(
                    "attempt",
                    {"quarterdeck.step.attempt": p.attempt},
                    timestamp=self._ns(event.ts),
                )
            else:
                parent = self.stages.get(event.stage, self.run_span)
                self.steps[key] = self.tracer.start_span(
                    event.step,
                    context=self._context(parent),
                    start_time=self._ns(event.ts),
                    attributes={
                        "cicd.pipeline.name": self.workflow,
                        "cicd.pipeline.run.id": self.run_id,
                        "cicd.pipeline.task.name": event.step,
                        "cicd.pipeline.task.run.id": f"{self.run_id}/{event.step}",
                        "quarterdeck.stage": event.stage,
                        "quarterdeck.step.uses": str(p.uses or ""),
                        "quarterdeck.step.role": str(p.role or "step"),
                        "quarterdeck.persona": self.stage_persona.get(event.stage, ""),
                    },
                )
            span = self.steps[key]
            span.set_attribute("quarterdeck.step.attempts", p.attempt or 1)
            carrier: dict[str, str] = {}
            self._propagator.inject(carrier, context=self._context(span))
            env = {"TRACEPARENT": carrier["traceparent"]} if "traceparent" in carrier else {}
            if carrier.get("tracestate"):
                env["TRACESTATE"] = carrier["tracestate"]
            self.step_env[key] = env
        elif isinstance(p, StepRetry) and event.stage and event.step:
            span = self.steps.get((event.stage, event.step))
            if span is not None:
                span.add_event(
                    "retry",
                    {
                        "quarterdeck.step.attempt": p.attempt,
                        "quarterdeck.retry.delay": p.delay,
                        "exception.message": str(p.error or ""),
                    },
                    timestamp=self._ns(event.ts),
                )
        elif isinstance(p, (StepFinished, StepSkipped)) and event.stage and event.step:
            key = (event.stage, event.step)
            self.step_env.pop(key, None)
            span = self.steps.pop(key, None)
            if span is None:
                parent = self.stages.get(event.stage, self.run_span)
                span = self.tracer.start_span(
                    event.step,
                    context=self._context(parent),
                    start_time=self._ns(event.ts),
                    attributes={
                        "cicd.pipeline.task.name": event.step,
                        "quarterdeck.stage": event.stage,
                    },
                )
            if isinstance(p, StepSkipped):
                status, error = str(StepStatus.SKIPPED), p.reason
            else:
                status, error = str(p.status), p.error
                if p.via:
                    span.set_attribute("quarterdeck.step.via", str(p.via))
            self._finish(span, status, error, event.ts, "cicd.pipeline.task.run.result")
        elif isinstance(p, TokensUsed):
            self.tokens += p.total
            target = self.steps.get((event.stage or "", event.step or ""))
            if target is not None:
                for name, value in (
                    ("gen_ai.usage.input_tokens", p.prompt),
                    ("gen_ai.usage.output_tokens", p.completion),
                    ("quarterdeck.tokens.total", p.total),
                ):
                    target.set_attribute(name, value)
                if p.model:
                    target.set_attribute("gen_ai.request.model", str(p.model))
            stage_span = self.stages.get(event.stage or "")
            if stage_span is not None:
                stage_span.add_event(
                    "tokens.used",
                    {
                        "quarterdeck.persona": str(p.persona or ""),
                        "quarterdeck.tokens.total": p.total,
                    },
                    timestamp=self._ns(event.ts),
                )
        elif isinstance(p, (GateEvaluated, GateSkipped, ApprovalRequested, ApprovalDecided)):
            target = self.stages.get(event.stage or "", self.run_span)
            attrs: dict[str, Any] = {"quarterdeck.gate": str(p.gate or "")}
            if isinstance(p, GateEvaluated):
                attrs["quarterdeck.gate.passed"] = bool(p.passed)
            if isinstance(p, ApprovalDecided):
                attrs["quarterdeck.approval.decision"] = str(p.decision)
                attrs["quarterdeck.approval.by"] = str(p.by or "")
            target.add_event(event.type, attrs, timestamp=self._ns(event.ts))
        elif isinstance(p, (RunFinished, RunInterrupted)):
            if isinstance(p, RunInterrupted):
                status, error = str(RunStatus.INTERRUPTED), p.reason
            else:
                status, error = str(p.status), p.error
            for key in list(self.steps):
                self._finish(
                    self.steps.pop(key),
                    RunStatus.INTERRUPTED,
                    error,
                    event.ts,
                    "cicd.pipeline.task.run.result",
                )
            for stage in list(self.stages):
                self._finish(
                    self.stages.pop(stage), status, error, event.ts, "cicd.pipeline.task.run.result"
                )
            self.run_span.set_attribute("quarterdeck.tokens.total", self.tokens)
            self.run_span.set_attribute("quarterdeck.run.status", status)
            self._finish(self.run_span, status, error, event.ts, "cicd.pipeline.result")
            self.step_env.clear()

    def _finish(self, span: Any, status: str, error: Any, ts: float, attribute: str) -> None:
        from opentelemetry.trace import Status, StatusCode

        span.set_attribute(attribute, look(status).result)
        span.set_attribute("quarterdeck.status", str(status))
        if status in TRACE_ERRORS:
            span.set_attribute("error.type", status)
            span.set_status(Status(StatusCode.ERROR, str(error or status)))
        span.end(end_time=self._ns(ts))

    def close(self) -> None:
        """Export what is buffered (call once, after the run)."""
        try:
            self.provider.force_flush()
            self.provider.shutdown()
        except Exception as exc:
            self.on_error(f"tracing: could not export spans: {exc}")
