"""Prometheus metrics (contract), driven by run events.

A :class:`MetricsSubscriber` is a runner subscriber ``(Event) -> None``: it updates a
:class:`~prometheus_client.CollectorRegistry` of its own (never the process-global one,
so several runs in one process do not mix). Names carry the namespace from
``settings.metrics.namespace`` (``quarterdeck``; ``hypertool`` reproduces the seed
dashboards' names). Labels never carry run ids: a series per run would grow without
bound in a Prometheus server.

Served on ``127.0.0.1`` unless told otherwise (``--metrics-port``/``--metrics-host``);
a headless run may push once at its end to a Pushgateway, grouped by workflow.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from quarterdeck.core.lean import lean

if TYPE_CHECKING:  # prometheus_client loads when metrics are asked for, not on every run
    from prometheus_client import CollectorRegistry

from quarterdeck.core.errors import InvalidInput
from quarterdeck.core.journal.events import (
    Budget,
    Event,
    GateEvaluated,
    GateSkipped,
    PersonaSwitched,
    RunFinished,
    RunInterrupted,
    RunResumed,
    RunStarted,
    StageFinished,
    StageStarted,
    TokensUsed,
)
from quarterdeck.core.journal.statuses import GateStatus, StageStatus

log = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "quarterdeck"
DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, float("inf"))
NO_PERSONA = "none"


@lean
class _Run:
    workflow: str = ""
    started_at: float | None = None
    persona: str | None = None
    since: float | None = None
    stage_started: dict[str, float] = field(default_factory=dict)
    stage_persona: dict[str, str] = field(default_factory=dict)


class RunMetrics:
    """The contract's metrics in one registry."""

    def __init__(
        self, namespace: str = DEFAULT_NAMESPACE, registry: CollectorRegistry | None = None
    ) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.namespace = namespace or DEFAULT_NAMESPACE
        self.registry = registry if registry is not None else CollectorRegistry()
        ns, reg = self.namespace, self.registry
        self.persona_switches = Counter(
            "persona_switches",
            "Persona switches at stage boundaries",
            ["from_persona", "to_persona", "workflow"],
            namespace=ns,
            registry=reg,
        )
        self.persona_duration = Histogram(
            "persona_duration_seconds",
            "How long a persona held the run, per hold",
            ["persona"],
            namespace=ns,
            registry=reg,
            buckets=DURATION_BUCKETS,
        )
        self.persona_tokens = Counter(
            "persona_tokens_used",
            "Model tokens charged to a persona (estimates included)",
            ["persona", "workflow", "model"],
            namespace=ns,
            registry=reg,
        )
        self.persona_budget_remaining = Gauge(
            "persona_token_budget_remaining",
            "Tokens a persona has left in the latest run",
            ["persona"],
            namespace=ns,
            registry=reg,
        )
        self.stage_duration = Histogram(
            "workflow_stage_duration_seconds",
            "Stage duration, from start to finish",
            ["workflow", "stage", "persona"],
            namespace=ns,
            registry=reg,
            buckets=DURATION_BUCKETS,
        )
        self.quality_gates = Counter(
            "workflow_quality_gate",
            "Quality gate results (passed, failed, skipped)",
            ["workflow", "stage", "result"],
            namespace=ns,
            registry=reg,
        )
        self.workflow_duration = Histogram(
            "workflow_duration_seconds",
            "Run duration, from start to its end",
            ["workflow"],
            namespace=ns,
            registry=reg,
            buckets=DURATION_BUCKETS,
        )
        self.workflow_runs = Counter(
            "workflow_runs",
            "Runs that reached an end, by result",
            ["workflow", "result"],
            namespace=ns,
            registry=reg,
        )


class MetricsSubscriber:
    """Feed it a run's events (``runner.subscribers.append(sub)``); it never raises."""

    def __init__(
        self, metrics: RunMetrics | None = None, *, namespace: str = DEFAULT_NAMESPACE
    ) -> None:
        self.metrics = metrics or RunMetrics(namespace)
        self._runs: dict[str, _Run] = {}

    @property
    def registry(self) -> CollectorRegistry:
        return self.metrics.registry

    def prime(self, state: Any) -> None:
        """Start from a folded :class:`~quarterdeck.core.journal.state.RunState` (resume,
        attach)."""
        run = self._runs.setdefault(state.id, _Run())
        run.workflow = state.workflow
        run.started_at = state.started_at
        run.persona = state.persona
        usage = state.personas.get(state.persona) if state.persona else None
        run.since = usage.since if usage is not None else None
        for stage in state.stages.values():
            if stage.status == StageStatus.RUNNING and stage.started_at is not None:
                run.stage_started[stage.id] = stage.started_at
            if stage.persona:
                run.stage_persona[stage.id] = stage.persona
        for name, usage in state.personas.items():
            if name and usage.budget:
                self.metrics.persona_budget_remaining.labels(name).set(usage.remaining)

    def __call__(self, event: Event) -> None:
        try:
            self._apply(event)
        except Exception:  # metrics must never break a run
            log.warning("metrics could not count %s", event.type, exc_info=True)

    def _end_hold(self, run: _Run, ts: float) -> None:
        if run.persona and run.since is not None:
            self.metrics.persona_duration.labels(run.persona).observe(max(0.0, ts - run.since))
        run.since = None

    def _apply(self, event: Event) -> None:
        m = self.metrics
        run = self._runs.setdefault(event.run_id, _Run())
        p = event.payload()
        if isinstance(p, RunStarted):
            run.workflow = p.workflow
            run.started_at = event.ts
            for name, info in p.personas.items():
                m.persona_budget_remaining.labels(name).set(info.budget)
        elif isinstance(p, RunResumed):
            if run.persona:
                run.since = event.ts
        elif isinstance(p, PersonaSwitched):
            self._end_hold(run, event.ts)
            to = p.to or NO_PERSONA
            m.persona_switches.labels(p.from_ or NO_PERSONA, to, run.workflow).inc()
            run.persona, run.since = p.to, event.ts
        elif isinstance(p, StageStarted):
            if event.stage:
                run.stage_started[event.stage] = event.ts
                if p.persona:
                    run.stage_persona[event.stage] = p.persona
        elif isinstance(p, StageFinished):
            started = run.stage_started.pop(event.stage or "", None)
            if started is not None:
                persona = run.stage_persona.get(event.stage or "") or NO_PERSONA
                m.stage_duration.labels(run.workflow, event.stage, persona).observe(
                    max(0.0, event.ts - started)
                )
        elif isinstance(p, GateEvaluated):
            result = GateStatus.PASSED if p.passed else GateStatus.FAILED
            m.quality_gates.labels(run.workflow, event.stage or "", result).inc()
        elif isinstance(p, GateSkipped):
            m.quality_gates.labels(run.workflow, event.stage or "", GateStatus.SKIPPED).inc()
        elif isinstance(p, TokensUsed):
            persona = p.persona or NO_PERSONA
            m.persona_tokens.labels(persona, run.workflow, p.model or "").inc(max(0, p.total))
            if p.persona and p.remaining is not None:
                m.persona_budget_remaining.labels(persona).set(p.remaining)
        elif isinstance(p, Budget):
            if p.persona and p.remaining is not None:
                m.persona_budget_remaining.labels(p.persona).set(p.remaining)
        elif isinstance(p, RunFinished):
            self._end_hold(run, event.ts)
            if run.started_at is not None:
                m.workflow_duration.labels(run.workflow).observe(
                    max(0.0, event.ts - run.started_at)
                )
            m.workflow_runs.labels(run.workflow, p.status).inc()
        elif isinstance(p, RunInterrupted):
            self._end_hold(run, event.ts)

    def workflow_of(self, run_id: str) -> str:
        run = self._runs.get(run_id)
        return run.workflow if run is not None else ""


# -- serving and pushing -----------------------------------------------------------------


class MetricsServer:
    """``/metrics`` over HTTP on a background thread; :meth:`close` stops it."""

    def __init__(self, registry: CollectorRegistry, host: str = "127.0.0.1", port: int = 0):
        from prometheus_client.exposition import start_http_server

        try:
            self._httpd, self._thread = start_http_server(port, addr=host, registry=registry)
        except OSError as exc:
            raise InvalidInput(
                f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}",
                hint="choose another --metrics-port (0 picks a free one)",
            ) from None
        self.host = host
        self.port = int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def check_gateway_url(url: str) -> str:
    """A Pushgateway URL must be http(s)://host[:port]; say so before anything runs."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput(
            f"--pushgateway {url!r} is not an http(s) URL",
            hint="for example --pushgateway http://127.0.0.1:9091",
        )
    return url.rstrip("/")


def push(registry: CollectorRegistry, gateway: str, workflow: str, job: str) -> None:
    """Push every series once, grouped by workflow (no run id: the group is replaced)."""
    from prometheus_client import push_to_gateway

    push_to_gateway(
        check_gateway_url(gateway),
        job=job,
        registry=registry,
        grouping_key={"workflow": workflow or "unknown"},
        timeout=10,
    )


class MetricsWiring:
    """Metrics wired to one runner by the CLI: served while it runs, pushed when it ends."""

    def __init__(
        self,
        subscriber: MetricsSubscriber | None,
        server: MetricsServer | None,
        pushgateway: str | None,
        workflow: Callable[[], str],
        say: Callable[[str], None],
    ) -> None:
        self.subscriber = subscriber
        self.server = server
        self.pushgateway = pushgateway
        self._workflow = workflow
        self._say = say

    def finish(self) -> None:
        """Push once (when asked) and stop serving; a failed push is reported, not fatal."""
        try:
            if self.pushgateway and self.subscriber is not None:
                workflow = self._workflow()
                try:
                    push(
                        self.subscriber.registry,
                        self.pushgateway,
                        workflow,
                        self.subscriber.metrics.namespace,
                    )
                    self._say(f"metrics: pushed to {self.pushgateway} (workflow={workflow})")
                except OSError as exc:
                    self._say(f"metrics: could not push to {self.pushgateway}: {exc}")
        finally:
            if self.server is not None:
                self.server.close()
                self.server = None


def start_metrics(
    runner: Any,
    settings: Any,
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    pushgateway: str | None = None,
    say: Callable[[str], None] | None = None,
) -> MetricsWiring:
    """Subscribe metrics to ``runner`` and serve them; raises InvalidInput for bad options.

    Does nothing but return an inert wiring when neither a port nor a Pushgateway was
    asked for.
    """

    def to_stderr(text: str) -> None:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    tell = say or to_stderr

    def workflow() -> str:
        return str(runner.state.workflow or runner.workflow.name)

    if port is None and not pushgateway:
        return MetricsWiring(None, None, None, workflow, tell)
    gateway = check_gateway_url(pushgateway) if pushgateway else None
    namespace = getattr(getattr(settings, "metrics", None), "namespace", None)
    subscriber = MetricsSubscriber(namespace=namespace or DEFAULT_NAMESPACE)
    if runner.prior is not None:
        subscriber.prime(runner.state)
    server = MetricsServer(subscriber.registry, host, port) if port is not None else None
    if server is not None:
        tell(f"metrics: {server.url}")
    runner.subscribers.append(subscriber)
    return MetricsWiring(subscriber, server, gateway, workflow, tell)


class JournalMetrics:
    """Metrics for a run read from its journal (``attach --metrics-port``).

    A background thread with its own store connection folds the run's events, from the
    first, into a :class:`MetricsSubscriber` and keeps following the journal until
    :meth:`close`; the runner itself may be in another process or on another host.
    """

    def __init__(
        self,
        store_path: Any,
        run_id: str,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        port: int = 0,
        host: str = "127.0.0.1",
        poll: float = 0.25,
    ) -> None:
        import threading

        self.subscriber = MetricsSubscriber(namespace=namespace)
        self.server = MetricsServer(self.subscriber.registry, host, port)
        self._store_path = store_path
        self._run_id = run_id
        self._poll = poll
        self._stop = threading.Event()
        self.last_seq = 0
        self._thread = threading.Thread(target=self._follow, name="journal-metrics", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return self.server.url

    def _follow(self) -> None:
        from quarterdeck.core.journal.store import Store

        with Store(self._store_path) as store:
            while True:
                for event in store.events(self._run_id, after=self.last_seq, limit=5000):
                    self.subscriber(event)
                    self.last_seq = event.seq
                if self._stop.wait(self._poll):
                    return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.server.close()
