"""Recording a person's incident action: checked and written in one transaction.

Several war rooms, the CLI and the alert listener act on one incident at once, with or
without a live runner. :func:`record` folds the incident, checks the action against it
(:meth:`~quarterdeck.core.incidents.model.Incident.why_not`) and inserts the signal inside
one ``BEGIN IMMEDIATE`` transaction, so two people taking command at the same moment
cannot both win. Resolving then writes the postmortem draft
(:mod:`quarterdeck.core.incidents.postmortem`), whoever resolves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quarterdeck.core.config import Settings, load_settings
from quarterdeck.core.errors import QuarterdeckError
from quarterdeck.core.incidents import postmortem
from quarterdeck.core.incidents.model import SIGNAL_KIND, Incident, build
from quarterdeck.core.journal.incident_rows import incident_signals, insert_incident_row
from quarterdeck.core.journal.store import Signal, Store
from quarterdeck.core.journal.transactions import immediate


@dataclass
class Recorded:
    """What :func:`record` did: the signal's id, the refusal (if any), the new incident."""

    signal_id: int
    refused: str | None
    incident: Incident
    postmortem: list[Path] = field(default_factory=list)
    postmortem_error: str | None = None


def record(
    store: Store,
    run_id: str,
    action: str,
    *,
    actor: str,
    data: dict[str, Any] | None = None,
    now: float | None = None,
    keep_refused: bool = True,
    settings: Settings | None = None,
) -> Recorded:
    """Check and record one incident action atomically; safe from any number of processes.

    The permission check and the insert happen in one ``BEGIN IMMEDIATE`` transaction:
    no other writer can slip an action in between. A refused action is recorded too
    (outcome ``refused: …``) for the audit trail, unless ``keep_refused`` is false.
    Resolving writes the postmortem draft (:mod:`quarterdeck.core.incidents.postmortem`), whoever
    resolves.
    """
    run_id = store.get_run(run_id).id  # a prefix works; an unknown run is InvalidInput
    payload = {**(data or {}), "action": action}
    text = str(payload.get("text") or "")
    ts = time.time() if now is None else now
    with immediate(store):
        incident = build(run_id, store.events(run_id), incident_signals(store, run_id))
        why = incident.why_not(actor, action, payload)
        signal_id = 0
        if why is None or keep_refused:
            outcome = "recorded" if why is None else f"refused: {why}"
            signal_id = insert_incident_row(
                store,
                run_id,
                action,
                actor=actor,
                text=text,
                payload=payload,
                ts=ts,
                outcome=outcome,
            )
            incident.apply_signal(
                Signal(signal_id, run_id, SIGNAL_KIND, action, actor, text, payload, ts)
            )
    done = Recorded(signal_id, why, incident)
    if action == "resolve" and why is None:
        try:
            done.postmortem = postmortem.write(
                store, run_id, settings if settings is not None else load_settings()
            )
        except (OSError, QuarterdeckError) as exc:  # the resolution stands; say what failed
            done.postmortem_error = f"could not write the postmortem: {exc}"
    return done
