"""Who may do what to an incident, now: the rules every reader re-checks in the fold.

Anyone posts notes and acknowledges; anyone takes a vacant role; the commander assigns any
role, a holder hands over their own, and only the commander hands over command or
resolves; status updates come from the commander or the communications lead, severity
from the commander, milestones from the commander or the operations lead — while nobody
holds command, anyone may do those three.
"""

from __future__ import annotations

from typing import Any, Protocol

from quarterdeck.core.incidents.severity import parse_severity, severity_name

MILESTONES = ("detected", "acknowledged", "investigating", "identified", "mitigated", "resolved")
ROLES = ("commander", "operations", "communications", "scribe")
ROLE_TITLES = {
    "commander": "Incident commander",
    "operations": "Operations lead",
    "communications": "Communications lead",
    "scribe": "Scribe",
}
ACTIONS = ("acknowledge", "note", "update", "role", "severity", "milestone", "resolve", "alert")


class Incident(Protocol):
    """What the rules read of an incident (:class:`~quarterdeck.core.incidents.model.Incident`)."""

    severity: int
    milestones: dict[str, float]
    milestone_by: dict[str, str]
    roles: dict[str, str | None]

    @property
    def commander(self) -> str | None: ...

    @property
    def resolved(self) -> bool: ...

    @property
    def milestone(self) -> str | None: ...


def why_not(incident: Incident, actor: str, action: str, data: dict[str, Any]) -> str | None:
    """Why ``actor`` may not do ``action`` now, or None when they may."""
    actor = actor.strip()
    if not actor:
        return "say who you are (--as NAME)"
    if action not in ACTIONS:
        return f"unknown incident action {action!r}; one of {', '.join(ACTIONS)}"
    text = str(data.get("text") or "").strip()
    commander = incident.commander
    is_ic = commander == actor
    vacant = commander is None
    if action == "alert":
        return None
    if action == "note":
        return None if text else "a note needs some text"
    if incident.resolved:
        return "the incident is resolved; only notes may be added"
    if action == "acknowledge":
        if "acknowledged" in incident.milestones:
            by = incident.milestone_by.get("acknowledged", "?")
            return f"already acknowledged by {by}"
        return None
    if action == "update":
        if not text:
            return "a status update needs some text"
        if vacant or is_ic or incident.roles.get("communications") == actor:
            return None
        return (
            f"only the incident commander ({commander}) or the communications lead "
            "posts status updates; post a note instead"
        )
    if action == "severity":
        level = parse_severity(data.get("severity"))
        if level is None:
            return f"unknown severity {data.get('severity')!r}; SEV1 (worst) to SEV5"
        if level == incident.severity:
            return f"the incident is already {severity_name(level)}"
        if vacant or is_ic:
            return None
        return f"only the incident commander ({commander}) changes the severity"
    if action == "milestone":
        name = str(data.get("milestone") or "")
        if name not in MILESTONES:
            return f"unknown milestone {name!r}; one of {', '.join(MILESTONES)}"
        if name == "detected":
            return "detection is recorded when the incident starts"
        if name == "resolved":
            return "resolve the incident instead (the incident commander does)"
        current = incident.milestone
        if current is not None and MILESTONES.index(name) <= MILESTONES.index(current):
            return f"milestones only move forward: the incident is already {current}"
        if name == "acknowledged" or vacant or is_ic:
            return None
        if incident.roles.get("operations") == actor:
            return None
        return f"only the incident commander ({commander}) or the operations lead marks milestones"
    if action == "role":
        role = str(data.get("role") or "")
        if role not in ROLES:
            return f"unknown role {role!r}; one of {', '.join(ROLES)}"
        to = str(data.get("to") or actor).strip()
        if not to:
            return "hand the role to someone: give a name"
        held = incident.roles.get(role)
        if held == to:
            return f"{to} already holds {ROLE_TITLES[role].lower()}"
        if role == "commander":
            if vacant:
                return None
            if is_ic:
                return None
            return (
                f"only the incident commander ({commander}) hands over command; "
                "ask them to hand it to you"
            )
        if held is None:
            if to == actor or is_ic or vacant:
                return None
            return (
                f"only the incident commander ({commander}) assigns a role to "
                "someone else; they may take it themselves"
            )
        if held == actor or is_ic:
            return None
        return (
            f"{ROLE_TITLES[role].lower()} is held by {held}: they or the incident "
            f"commander ({commander}) hand it over"
        )
    if action == "resolve":
        if vacant:
            return "nobody holds incident command: take command first, then resolve"
        if not is_ic:
            return f"only the incident commander ({commander}) resolves the incident"
        return None
    return None  # pragma: no cover - every action is handled above
