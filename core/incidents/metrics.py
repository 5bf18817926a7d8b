"""Incident metrics for Prometheus: time to acknowledge and time to resolve, per severity."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from quarterdeck.core.incidents.model import Incident, build
from quarterdeck.core.incidents.severity import SEVERITIES, severity_name
from quarterdeck.core.journal.incident_rows import incident_runs, incident_signals
from quarterdeck.core.journal.store import Store

RESOLUTION_BUCKETS = (60, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400, float("inf"))


class IncidentCollector:
    """``incident_resolution_seconds{severity}`` and ``incident_acknowledge_seconds{severity}``
    from every resolved incident in a store, computed when Prometheus scrapes.

    Reading the store at scrape time means any process may resolve an incident (a war
    room, the CLI) and the numbers stay right, with no state to keep in sync. Labels carry
    the severity at resolution, never a run id.
    """

    def __init__(
        self,
        store_path: Any,
        namespace: str = "quarterdeck",
        workflows: Sequence[str] | None = None,
    ) -> None:
        self.store_path = store_path
        self.namespace = namespace or "quarterdeck"
        self.workflows = workflows
        self._cache: dict[str, tuple[int, Incident]] = {}

    def incidents(self) -> list[Incident]:
        out: list[Incident] = []
        with Store(self.store_path) as store:
            for run_id, last in incident_runs(store):
                cached = self._cache.get(run_id)
                if cached is None or cached[0] != last:
                    incident = build(run_id, store.events(run_id), incident_signals(store, run_id))
                    self._cache[run_id] = (last, incident)
                out.append(self._cache[run_id][1])
        return out

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import HistogramMetricFamily

        resolved = [i for i in self.incidents() if i.resolved]
        if self.workflows is not None:
            resolved = [i for i in resolved if i.workflow in self.workflows]
        measures: tuple[tuple[str, str, Callable[[Incident], float | None]], ...] = (
            (
                "incident_resolution_seconds",
                "Detection to resolution, per incident",
                lambda i: i.mttr,
            ),
            (
                "incident_acknowledge_seconds",
                "Detection to acknowledgement, per incident",
                lambda i: i.mtta,
            ),
        )
        for name, helptext, value in measures:
            family = HistogramMetricFamily(
                f"{self.namespace}_{name}", helptext, labels=["severity"]
            )
            for level in SEVERITIES:
                values = [
                    v for v in (value(i) for i in resolved if i.severity == level) if v is not None
                ]
                if not values:
                    continue
                buckets = []
                for bound in RESOLUTION_BUCKETS:
                    count = sum(1 for v in values if v <= bound)
                    label = "+Inf" if bound == float("inf") else f"{bound:g}"
                    buckets.append((label, count))
                family.add_metric([severity_name(level)], buckets, sum(values))
            yield family

    def describe(self) -> Iterable[Any]:
        return []
