"""The incident timeline: its entries, and run events and alerts as timeline lines.

The run's events say what the automation did; :func:`describe_event` turns each one worth
showing into one line (output lines and token counts are not worth one). An alert that
fired before its run started is the timeline's first entry: :func:`alert_started_at`
reads when from the Alertmanager notification.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from quarterdeck.core.journal.events import Event, EventType

# Run events worth a line in the incident timeline (output lines and token counts are not).
QUIET_EVENTS = frozenset({EventType.STEP_OUTPUT, EventType.TOKENS_USED, EventType.BUDGET})


@dataclass
class TimelineEntry:
    """One line of the incident timeline: a run event, a person's action, or a refusal."""

    ts: float
    source: str  # run | incident | note | update | refused | alert
    text: str
    actor: str = ""
    ref: int = 0  # event seq or signal id (stable order for equal times)


def _parse_time(value: Any) -> float | None:
    """An RFC 3339 time (Alertmanager's ``startsAt``) or epoch seconds; None otherwise."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str) or not value or value.startswith("0001-"):
        return None
    text = value.strip().replace("Z", "+00:00")
    if "." in text:  # Go prints nanoseconds; Python takes microseconds
        head, _, rest = text.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6]}{zone}"
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def alert_started_at(alert: dict[str, Any]) -> float | None:
    """When the earliest alert of an Alertmanager notification started firing, if it says."""
    if not alert:
        return None
    starts = [
        _parse_time(a.get("startsAt")) for a in alert.get("alerts") or [] if isinstance(a, dict)
    ]
    found = [s for s in starts if s is not None]
    if not found and alert.get("startsAt"):
        single = _parse_time(alert.get("startsAt"))
        found = [single] if single is not None else []
    return min(found) if found else None


def describe_event(event: Event) -> str:
    """A run event as one timeline line (empty for the ones not worth a line)."""
    d = event.data
    kind = event.type
    if kind == EventType.RUN_FINISHED:
        return f"run {d.get('status', '?')}" + (f": {d['error']}" if d.get("error") else "")
    if kind == EventType.RUN_INTERRUPTED:
        return f"run interrupted: {d.get('reason', '')}"
    if kind == EventType.RUN_RESUMED:
        return f"run resumed by {d.get('by') or '?'}"
    if kind == EventType.RUN_PAUSED:
        return f"run paused by {d.get('by') or '?'}"
    if kind == EventType.RUN_UNPAUSED:
        return f"run unpaused by {d.get('by') or '?'}"
    if kind == EventType.STAGE_STARTED:
        return "stage started" + (f" ({d['persona']})" if d.get("persona") else "")
    if kind == EventType.STAGE_FINISHED:
        status = d.get("status", "?")
        return f"stage {status}" + (
            f": {d['error']}" if d.get("error") and status != "succeeded" else ""
        )
    if kind == EventType.STAGE_SKIPPED:
        return f"stage skipped ({d.get('reason', '')})"
    if kind == EventType.STEP_STARTED:
        return ""  # the finish says more; a start per step would flood the timeline
    if kind == EventType.STEP_RETRY:
        return f"retry after attempt {d.get('attempt')}: {d.get('error', '')}"
    if kind == EventType.STEP_FINISHED:
        status = d.get("status", "?")
        text = f"{status}"
        if d.get("via"):
            text += f" via {d['via']}"
        if d.get("error") and status != "succeeded":
            text += f": {d['error']}"
        return text
    if kind == EventType.STEP_SKIPPED:
        return ""
    if kind == EventType.GATE_EVALUATED:
        return f"gate {d.get('gate')} {'passed' if d.get('passed') else 'failed'}"
    if kind == EventType.GATE_SKIPPED:
        return f"gate {d.get('gate')} skipped by {d.get('by')}: {d.get('reason', '')}"
    if kind == EventType.APPROVAL_REQUESTED:
        return f"approval {d.get('gate')} requested: {d.get('prompt', '')}"
    if kind == EventType.APPROVAL_DECIDED:
        return f"approval {d.get('gate')} {d.get('decision')} by {d.get('by')}"
    if kind == EventType.APPROVAL_REFUSED:
        return f"approval {d.get('gate')} refused for {d.get('by')}: {d.get('why', '')}"
    if kind == EventType.PERSONA_SWITCHED:
        return f"persona {d.get('from') or 'start'} → {d.get('to')}"
    if kind == EventType.SIGNAL_RECEIVED:
        if d.get("kind") == "note":
            return ""  # shown by the runner's journal; notes live in incident signals
        return f"{d.get('kind')} by {d.get('by')}" + (f": {d['reason']}" if d.get("reason") else "")
    if kind in (EventType.APPROVAL_VOTE, EventType.MEMORY_SET):
        return ""
    return kind
