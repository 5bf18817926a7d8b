"""The incident model: a fold over a run's events and its incident signals.

An incident is an incident-response run seen by the people working it: a severity
(SEV1–SEV5, lower is worse), milestones that only move forward, roles held by named
people, status updates and notes. The run's own events say when it was detected and what
the automation did; everything people do is an ``incident`` signal in the store.

Why signals and not events: the events table is written by exactly one process — the
runner, which allocates ``seq`` in memory — while several war rooms, the CLI and the
alert listener act on one incident at once, with or without a live runner. Signal rows
have their own ``AUTOINCREMENT`` id, so any number of processes append safely, and
:func:`quarterdeck.core.incidents.record.record` checks permissions and inserts inside one
``BEGIN IMMEDIATE`` transaction, so two people taking command at the same moment cannot
both win. Incident signals are written already consumed (the runner has nothing to do
with them; it never sees them), and the fold reads them whether consumed or not
(:mod:`quarterdeck.core.incidents.read` reads them from the store).

The fold re-checks every action in signal-id order, so every reader reaches the same
state: a refused action (recorded for the audit trail) is refused again by every reader.
Events set detection, the initial severity and the timeline, and say what the run
achieved (:mod:`quarterdeck.core.incidents.progress`): those milestones are applied once a
person has acknowledged, before each later signal and at the end of the fold, so every
reader places them at the same point among people's actions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from quarterdeck.core.incidents.progress import RunProgress
from quarterdeck.core.incidents.rules import ACTIONS, MILESTONES, ROLE_TITLES, ROLES, why_not
from quarterdeck.core.incidents.severity import (
    DEFAULT_SEVERITY,
    UPDATE_EVERY,
    label_severity,
    parse_severity,
    severity_name,
)
from quarterdeck.core.incidents.timeline import (
    QUIET_EVENTS,
    TimelineEntry,
    alert_started_at,
    describe_event,
)
from quarterdeck.core.journal.events import (
    ApprovalDecided,
    ApprovalRefused,
    Event,
    RunFinished,
    RunInterrupted,
    RunPaused,
    RunResumed,
    RunStarted,
    RunUnpaused,
    SignalReceived,
)
from quarterdeck.core.journal.incident_rows import INCIDENT_KIND
from quarterdeck.core.journal.statuses import RunStatus
from quarterdeck.core.journal.store import Signal

SIGNAL_KIND = INCIDENT_KIND  # the rows are in quarterdeck.core.journal.incident_rows
__all__ = ["ACTIONS", "MILESTONES", "ROLES", "ROLE_TITLES", "Incident", "build"]
# An alert that started longer than this before its run (a replayed or fixture payload)
# does not set the detection time: the run's start does.
ALERT_LEAD_MAX = 24 * 3600.0


@dataclass
class SeverityChange:
    ts: float
    before: int
    after: int
    by: str
    reason: str

    @property
    def direction(self) -> str:
        return "escalated" if self.after < self.before else "de-escalated"


@dataclass
class Handover:
    ts: float
    role: str
    before: str | None
    after: str
    by: str


@dataclass
class StatusUpdate:
    ts: float
    by: str
    text: str


@dataclass
class Incident:
    """Everything known about one incident, folded from events and incident signals."""

    run_id: str
    title: str = ""
    workflow: str = ""
    run_status: RunStatus = RunStatus.PENDING
    severity: int = DEFAULT_SEVERITY
    initial_severity: int = DEFAULT_SEVERITY
    milestones: dict[str, float] = field(default_factory=dict)
    milestone_by: dict[str, str] = field(default_factory=dict)
    roles: dict[str, str | None] = field(default_factory=lambda: dict.fromkeys(ROLES))
    handovers: list[Handover] = field(default_factory=list)
    severity_changes: list[SeverityChange] = field(default_factory=list)
    updates: list[StatusUpdate] = field(default_factory=list)
    notes: list[StatusUpdate] = field(default_factory=list)
    refusals: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[TimelineEntry] = field(default_factory=list)
    alert: dict[str, Any] = field(default_factory=dict)
    alert_status: str | None = None
    resolution: str = ""
    run_started_at: float | None = None
    last_signal_id: int = 0
    alert_at: float | None = None
    progress: RunProgress = field(default_factory=RunProgress)
    _severity_fixed: bool = False

    # -- queries ----------------------------------------------------------------------

    @property
    def severity_label(self) -> str:
        return severity_name(self.severity)

    @property
    def detected_at(self) -> float | None:
        return self.milestones.get("detected")

    @property
    def resolved(self) -> bool:
        return "resolved" in self.milestones

    @property
    def milestone(self) -> str | None:
        """The furthest milestone reached."""
        reached = [m for m in MILESTONES if m in self.milestones]
        return reached[-1] if reached else None

    @property
    def alert_state(self) -> tuple[str, str] | None:
        """Whether the alert still fires, and who says so: the newest of Alertmanager's
        notifications and the run's last health probe; None with neither."""
        probe = self.progress.probe
        if probe is not None and (self.alert_at is None or probe.ts >= self.alert_at):
            state = "resolved" if probe.passed else "firing"
            return state, f"health probe {probe.step}"
        if self.alert_status is None:
            return None
        return self.alert_status, "alertmanager"

    @property
    def alert_firing(self) -> bool:
        state = self.alert_state
        return state is not None and state[0] == "firing"

    @property
    def commander(self) -> str | None:
        return self.roles.get("commander")

    @property
    def mtta(self) -> float | None:
        """Mean time to acknowledge, for this incident: detected → acknowledged."""
        return self._between("detected", "acknowledged")

    @property
    def mttr(self) -> float | None:
        """Mean time to resolve, for this incident: detected → resolved."""
        return self._between("detected", "resolved")

    def _between(self, start: str, end: str) -> float | None:
        a, b = self.milestones.get(start), self.milestones.get(end)
        if a is None or b is None:
            return None
        return max(0.0, b - a)

    @property
    def last_update_at(self) -> float | None:
        return self.updates[-1].ts if self.updates else None

    def update_interval(self) -> float | None:
        return UPDATE_EVERY.get(self.severity)

    def next_update_due(self) -> float | None:
        """When the next status update is due (SEV1 15 min, SEV2 30, SEV3 60), or None."""
        every = self.update_interval()
        if every is None or self.resolved:
            return None
        since = self.last_update_at or self.detected_at
        return None if since is None else since + every

    def update_overdue(self, now: float) -> bool:
        due = self.next_update_due()
        return due is not None and now > due

    def holder(self, role: str) -> str | None:
        return self.roles.get(role)

    def roles_of(self, person: str) -> list[str]:
        return [r for r, who in self.roles.items() if who == person]

    def sorted_timeline(self) -> list[TimelineEntry]:
        return sorted(self.timeline, key=lambda e: (e.ts, 0 if e.source == "run" else 1, e.ref))

    # -- permissions ------------------------------------------------------------------

    def why_not(self, actor: str, action: str, data: dict[str, Any]) -> str | None:
        """Why ``actor`` may not do ``action`` now, or None when they may
        (the rules: :func:`quarterdeck.core.incidents.rules.why_not`)."""
        return why_not(self, actor, action, data)

    # -- folding ----------------------------------------------------------------------

    def apply_event(self, event: Event) -> None:
        """Fold one run event: detection, the initial severity, and the timeline."""
        payload = event.payload()
        self.progress.apply(event)
        if isinstance(payload, RunStarted):
            self.title = payload.title or ""
            self.workflow = payload.workflow or ""
            self.run_started_at = event.ts
            self.run_status = RunStatus.RUNNING
            self._from_inputs(payload.inputs or {}, event.ts)
            self.title = alert_title(self.alert) or self.title
            self._line(event, f"run started by {payload.started_by or '?'}")
            return
        if event.type in QUIET_EVENTS:
            return
        match payload:
            case RunFinished():
                self.run_status = payload.status
            case RunInterrupted():
                self.run_status = RunStatus.INTERRUPTED
            case RunResumed() | RunUnpaused():
                self.run_status = RunStatus.RUNNING
            case RunPaused():
                self.run_status = RunStatus.PAUSED
        text = describe_event(event)
        if text:
            self._line(event, text)

    def _from_inputs(self, inputs: dict[str, Any], started: float) -> None:
        alert = inputs.get("alert")
        if isinstance(alert, str):
            try:
                alert = json.loads(alert)
            except json.JSONDecodeError:
                alert = {}
        if isinstance(alert, dict) and alert:
            self.alert = alert
            self.alert_status = str(alert.get("status") or "firing")
            self.alert_at = started
        level = parse_severity(inputs.get("severity"))
        if level is None and self.alert:
            labels = self.alert.get("commonLabels") or self.alert.get("labels") or {}
            if isinstance(labels, dict) and labels:
                level = label_severity(labels)
        level = level or DEFAULT_SEVERITY
        self.initial_severity = level
        if not self._severity_fixed:
            self.severity = level
        detected = started
        starts = alert_started_at(self.alert)
        if starts is not None and started - ALERT_LEAD_MAX <= starts <= started:
            detected = starts  # the alert fired before the run: MTTA counts from the alert
        if "detected" not in self.milestones and starts is not None and detected == starts:
            labels = self.alert.get("commonLabels") or {}
            name = labels.get("alertname") if isinstance(labels, dict) else None
            self.timeline.append(
                TimelineEntry(
                    starts,
                    "alert",
                    f"alert {name or ''} fired".replace("  ", " "),
                    "alertmanager",
                    0,
                )
            )
        self.milestones.setdefault("detected", detected)
        self.milestone_by.setdefault("detected", "alert" if detected == starts else "run")

    def _line(self, event: Event, text: str) -> None:
        where = event.step or event.stage
        prefix = f"{where}: " if where else ""
        by = ""  # a person's decision or signal is theirs, not the run's
        match event.payload():
            case ApprovalDecided() | ApprovalRefused() | SignalReceived() as p:
                by = p.by or ""
        self.timeline.append(TimelineEntry(event.ts, "run", prefix + text, by, event.seq))

    def settle(self, upto: float = float("inf")) -> None:
        """Apply the run's milestone marks that fall at or before ``upto``: only once a
        person acknowledged (a mark earned earlier counts from the acknowledgement), only
        forward, never after the resolution."""
        acked = self.milestones.get("acknowledged")
        if acked is None:
            return
        for mark in self.progress.marks:
            if mark.milestone in self.milestones:
                continue
            at = max(mark.ts, acked)
            resolved = self.milestones.get("resolved")
            if at > upto or (resolved is not None and at > resolved):
                continue
            rank = MILESTONES.index(mark.milestone)
            if any(MILESTONES.index(m) > rank and t <= at for m, t in self.milestones.items()):
                continue
            self.milestones[mark.milestone] = at
            self.milestone_by[mark.milestone] = "run"
            self.timeline.append(  # after people's entries of the same second (the ack)
                TimelineEntry(at, "incident", f"{mark.milestone}: {mark.why}", "run", 1 << 40)
            )

    def apply_signal(self, signal: Signal) -> str | None:
        """Fold one incident signal; returns why it was refused, or None when applied."""
        if signal.kind != SIGNAL_KIND:
            return None
        self.last_signal_id = max(self.last_signal_id, signal.id)
        self.settle(signal.created_at)
        data = dict(signal.data)
        action = str(data.get("action") or "")
        actor = signal.actor
        ts = signal.created_at
        why = self.why_not(actor, action, data)
        if why is not None:
            self.refusals.append(
                {"ts": ts, "by": actor, "action": action, "why": why, "id": signal.id}
            )
            self.timeline.append(
                TimelineEntry(ts, "refused", f"{action} refused: {why}", actor, signal.id)
            )
            return why
        text = str(data.get("text") or "").strip()
        entry: TimelineEntry | None = None
        if action == "note":
            self.notes.append(StatusUpdate(ts, actor, text))
            entry = TimelineEntry(ts, "note", text, actor, signal.id)
        elif action == "acknowledge":
            self._reach("acknowledged", ts, actor)
            entry = TimelineEntry(ts, "incident", "acknowledged", actor, signal.id)
            if self.commander is None:
                self._hand("commander", actor, actor, ts)
                entry.text = "acknowledged and took incident command"
        elif action == "update":
            self.updates.append(StatusUpdate(ts, actor, text))
            entry = TimelineEntry(ts, "update", text, actor, signal.id)
        elif action == "severity":
            level = parse_severity(data.get("severity"))
            assert level is not None
            change = SeverityChange(ts, self.severity, level, actor, text)
            self.severity_changes.append(change)
            self.severity = level
            self._severity_fixed = True
            why_text = f": {text}" if text else ""
            entry = TimelineEntry(
                ts,
                "incident",
                f"{change.direction} {severity_name(change.before)} → "
                f"{severity_name(change.after)}{why_text}",
                actor,
                signal.id,
            )
        elif action == "milestone":
            name = str(data["milestone"])
            self._reach(name, ts, actor)
            entry = TimelineEntry(
                ts, "incident", name + (f": {text}" if text else ""), actor, signal.id
            )
        elif action == "role":
            role = str(data["role"])
            to = str(data.get("to") or actor).strip()
            before = self.roles.get(role)
            self._hand(role, to, actor, ts)
            title = ROLE_TITLES[role].lower()
            if before is None and to == actor:
                what = f"took {title}"
            elif before is None:
                what = f"assigned {title} to {to}"
            else:
                what = f"handed {title} from {before} to {to}"
            entry = TimelineEntry(ts, "incident", what, actor, signal.id)
        elif action == "resolve":
            self._reach("resolved", ts, actor)
            self.resolution = text
            if text:
                self.updates.append(StatusUpdate(ts, actor, text))
            entry = TimelineEntry(
                ts, "incident", "resolved" + (f": {text}" if text else ""), actor, signal.id
            )
        elif action == "alert":
            status = str(data.get("status") or "firing")
            self.alert_status = status
            self.alert_at = ts
            entry = TimelineEntry(
                ts, "alert", f"alert {status}" + (f": {text}" if text else ""), actor, signal.id
            )
        if entry is not None:
            self.timeline.append(entry)
        return None

    def _reach(self, milestone: str, ts: float, actor: str) -> None:
        if milestone != "acknowledged" and "acknowledged" not in self.milestones:
            # working the incident acknowledges it: MTTA stops at the first human step
            self.milestones["acknowledged"] = ts
            self.milestone_by["acknowledged"] = actor
        self.milestones[milestone] = ts
        self.milestone_by[milestone] = actor

    def _hand(self, role: str, to: str, by: str, ts: float) -> None:
        self.handovers.append(Handover(ts, role, self.roles.get(role), to, by))
        self.roles[role] = to

    # -- output -----------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly picture (``show --json`` extras, the postmortem, tests)."""
        return {
            "run_id": self.run_id,
            "severity": self.severity_label,
            "initial_severity": severity_name(self.initial_severity),
            "milestone": self.milestone,
            "milestones": dict(self.milestones),
            "roles": dict(self.roles),
            "mtta_seconds": self.mtta,
            "mttr_seconds": self.mttr,
            "updates": len(self.updates),
            "notes": len(self.notes),
            "alert_status": self.alert_status,
            "alert_state": self.alert_state[0] if self.alert_state else None,
            "resolution": self.resolution,
        }


def build(run_id: str, events: Iterable[Event], signals: Iterable[Signal]) -> Incident:
    """The incident of a run from its events and its incident signals."""
    incident = Incident(run_id)
    for event in events:
        incident.apply_event(event)
    for signal in signals:
        incident.apply_signal(signal)
    incident.settle()
    return incident


def alert_title(alert: dict[str, Any]) -> str | None:
    """An incident's title from its alert: the alert's name and summary, if it says."""
    if not alert:
        return None
    labels = alert.get("commonLabels") or alert.get("labels") or {}
    notes = alert.get("commonAnnotations") or alert.get("annotations") or {}
    name = labels.get("alertname") if isinstance(labels, dict) else None
    summary = notes.get("summary") if isinstance(notes, dict) else None
    if name and summary:
        return f"{name}: {summary}"
    return str(name or summary) if (name or summary) else None
