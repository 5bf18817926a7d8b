"""Reading incidents from the store: which runs are incidents, their incident rows, the
incident folded from them, and the newest open one (what ``warroom`` opens by default).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from quarterdeck.core.errors import InvalidInput
from quarterdeck.core.journal.incident_rows import incident_signals
from quarterdeck.core.journal.statuses import RUN_ACTIVE
from quarterdeck.core.journal.store import Store

if TYPE_CHECKING:
    from quarterdeck.core.incidents.model import Incident


def load(store: Store, run_id: str) -> Incident:
    """Read and fold one run's incident from the store."""
    # here, not at the top: `show` asks `is_incident_run` of every run, most are not
    from quarterdeck.core.incidents.model import build

    row = store.get_run(run_id)
    incident = build(row.id, store.events(row.id), incident_signals(store, row.id))
    if incident.run_status in RUN_ACTIVE:
        incident.run_status = row.status  # the store knows about crashed runs
    return incident


def is_incident_run(workflow: str, inputs: dict[str, Any] | None = None) -> bool:
    """Incident-response runs (and anything started from an alert) open in the war room."""
    return workflow.startswith("incident") or bool((inputs or {}).get("alert"))


def latest_incident(store: Store, limit: int = 200) -> str:
    """The newest open incident's run id (else the newest incident); InvalidInput if none."""
    found: list[str] = []
    for row in store.list_runs(limit=limit):
        if is_incident_run(row.workflow, row.inputs) or incident_signals(store, row.id):
            if not load(store, row.id).resolved:
                return row.id
            found.append(row.id)
    if found:
        return found[0]
    raise InvalidInput(
        f"no incident runs in {store.path}",
        hint="start one with `quarterdeck run incident-response` or "
        "`quarterdeck listen --alertmanager 127.0.0.1:PORT`",
    )


__all__ = ["incident_signals", "is_incident_run", "latest_incident", "load"]
