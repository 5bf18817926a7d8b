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

from quarterdeck.core.journal.events import (
    ApprovalDecided,
    ApprovalRefused,
    ApprovalRequested,
    ApprovalVote,
    Event,
    EventType,
    GateEvaluated,
    GateSkipped,
    MemorySet,
    PersonaSwitched,
    RunFinished,
    RunInterrupted,
    RunPaused,
    RunResumed,
    RunUnpaused,
    SignalReceived,
    StageFinished,
    StageSkipped,
    StageStarted,
    StepFinished,
    StepRetry,
    StepSkipped,
    StepStarted,
)
from quarterdeck.core.journal.statuses import StageStatus, StepStatus

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
    match event.payload():
        case RunFinished() as p:
            return f"run {p.status}" + (f": {p.error}" if p.error else "")
        case RunInterrupted() as p:
            return f"run interrupted: {p.reason}"
        case RunResumed() as p:
            return f"run resumed by {p.by or '?'}"
        case RunPaused() as p:
            return f"run paused by {p.by or '?'}"
        case RunUnpaused() as p:
            return f"run unpaused by {p.by or '?'}"
        case StageStarted() as p:
            return "stage started" + (f" ({p.persona})" if p.persona else "")
        case StageFinished() as p:
            ok = p.status == StageStatus.SUCCEEDED
            return f"stage {p.status}" + (f": {p.error}" if p.error and not ok else "")
        case StageSkipped() as p:
            return f"stage skipped ({p.reason})"
        case StepRetry() as p:
            return f"retry after attempt {p.attempt}: {p.error}"
        case StepFinished() as p:
            text = f"{p.status}" + (f" via {p.via}" if p.via else "")
            if p.error and p.status != StepStatus.SUCCEEDED:
                text += f": {p.error}"
            return text
        case GateEvaluated() as p:
            return f"gate {p.gate} {'passed' if p.passed else 'failed'}"
        case GateSkipped() as p:
            return f"gate {p.gate} skipped by {p.by}: {p.reason}"
        case ApprovalRequested() as p:
            return f"approval {p.gate} requested: {p.prompt}"
        case ApprovalDecided() as p:
            return f"approval {p.gate} {p.decision} by {p.by}"
        case ApprovalRefused() as p:
            return f"approval {p.gate} refused for {p.by}: {p.why}"
        case PersonaSwitched() as p:
            return f"persona {p.from_ or 'start'} → {p.to}"
        case SignalReceived() as p:
            if p.kind == "note":
                return ""  # shown by the runner's journal; notes live in incident signals
            return f"{p.kind} by {p.by}" + (f": {p.reason}" if p.reason else "")
        case StepStarted() | StepSkipped() | ApprovalVote() | MemorySet():
            return ""  # a step's finish says more; a start per step would flood the timeline
    return event.type
