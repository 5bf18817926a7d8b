"""The postmortem draft written when an incident is resolved.

A Markdown file next to the run (``$QUARTERDECK_HOME/runs/<id>/postmortem.md``) and, when
``logseq_graph`` is configured, a Logseq page (``pages/Postmortem___<id>.md``, the page
``Postmortem/<id>``). Both come from the same journal: the incident signals and the run's
events, so the timeline is the real one, not a reconstruction. It is a draft: people
finish it; running it again (``quarterdeck postmortem RUN``) rewrites it from the journal.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quarterdeck.core.durations import format_duration
from quarterdeck.core.incidents.model import ROLE_TITLES, ROLES, Incident
from quarterdeck.core.incidents.read import incident_signals, is_incident_run, load
from quarterdeck.core.incidents.severity import severity_name
from quarterdeck.core.journal.state import RunState, fold
from quarterdeck.core.journal.statuses import APPROVAL_DECIDED, StepStatus
from quarterdeck.core.journal.store import Store
from quarterdeck.core.locations import state_home

if TYPE_CHECKING:
    from quarterdeck.core.config import Settings

FOLLOW_UP_PREFIXES = ("follow-up:", "followup:", "todo:", "action:")


def _utc(ts: float | None) -> str:
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) + " UTC"


def _hhmm(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ts))


def _alert(incident: Incident) -> str:
    """The alert's state and who says so: "firing (health probe watch)", "resolved"."""
    state = incident.alert_state
    if state is None:
        return "unknown"
    said, source = state
    return said if source == "alertmanager" else f"{said} ({source})"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


@dataclass
class Section:
    title: str
    lines: list[str]


def root_cause(incident: Incident, state: RunState) -> str:
    """The root cause as the run found it: memory ``root_cause``, a step output
    ``root_cause``, the text given with the ``identified`` milestone, else the evidence."""
    value = state.memory.get("root_cause")
    if value:
        return str(value)
    for step in state.all_steps():
        found = step.outputs.get("root_cause") if isinstance(step.outputs, dict) else None
        if found:
            return f"{found} (from step {step.id})"
    for entry in incident.sorted_timeline():
        if entry.source == "incident" and entry.text.startswith("identified: "):
            return entry.text[len("identified: ") :] + f" (identified by {entry.actor})"
    failed = [s for s in state.all_steps() if s.status == StepStatus.FAILED and s.error]
    if failed:
        evidence = "; ".join(f"{s.id}: {s.error}" for s in failed[:3])
        return f"Not determined by the run. Evidence: {evidence}"
    return "Not determined by the run."


def suggested(state: RunState, incident: Incident) -> list[str]:
    """The run's suggested follow-ups (memory ``follow_ups``), one per line, without list
    markers, the model's label, or anything that merely restates the root cause."""
    text = state.memory.get("follow_ups")
    if not isinstance(text, str):
        return []
    cause = " ".join(root_cause(incident, state).lower().split())
    found: list[str] = []
    for raw in text.splitlines():
        line = raw.strip().removeprefix("[demo model]").strip().lstrip("-*•0123456789.) ").strip()
        if not line or line.endswith(":") or " ".join(line.lower().split()) in cause:
            continue
        found.append(line)
    return found


def affected_hosts(state: RunState) -> dict[str, dict[str, Any]]:
    """The last ``ssh.run`` result per host (exit code, last output line)."""
    hosts: dict[str, dict[str, Any]] = {}
    steps = sorted(
        (s for s in state.all_steps() if s.uses == "ssh.run" and s.finished_at),
        key=lambda s: s.finished_at or 0.0,
    )
    for step in steps:
        for label, result in (step.outputs.get("hosts") or {}).items():
            if not isinstance(result, dict):
                continue
            out = str(result.get("stdout") or result.get("error") or "").strip().splitlines()
            hosts[label] = {
                "step": step.id,
                "exit_code": result.get("exit_code"),
                "last": out[-1] if out else "",
                "ts": step.finished_at,
            }
    return hosts


def sections(incident: Incident, state: RunState) -> list[Section]:
    """The postmortem, section by section (rendered as Markdown or as a Logseq page)."""
    summary = [
        f"Severity: **{incident.severity_label}**"
        + (
            f" (opened as {severity_name(incident.initial_severity)})"
            if incident.initial_severity != incident.severity
            else ""
        ),
        f"Status: {'resolved' if incident.resolved else incident.milestone or 'open'}"
        + (
            f" by {incident.milestone_by.get('resolved')}"
            f" at {_utc(incident.milestones['resolved'])}"
            if incident.resolved
            else ""
        ),
        f"Run: `{state.id}` ({state.workflow or incident.workflow}), {state.status}",
    ]
    if incident.resolution:
        summary.append(f"Resolution: {incident.resolution}")
    for role in ROLES:
        summary.append(f"{ROLE_TITLES[role]}: {incident.roles.get(role) or 'nobody'}")
    impact: list[str] = []
    alert = incident.alert
    if alert:
        labels = alert.get("commonLabels") or {}
        name = labels.get("alertname") or "alert"
        described = ", ".join(f"{k}={v}" for k, v in labels.items() if k != "alertname")
        impact.append(
            f"Alert **{name}**"
            + (f" ({described})" if described else "")
            + f", {len(alert.get('alerts') or [])} alert(s); "
            f"last status: {_alert(incident)}"
        )
        annotations = alert.get("commonAnnotations") or {}
        for key in ("summary", "description"):
            if annotations.get(key):
                impact.append(f"{key.title()}: {annotations[key]}")
    if incident.detected_at is not None:
        end = incident.milestones.get("resolved")
        impact.append(
            f"Detected {_utc(incident.detected_at)}; "
            + (
                f"impact lasted {format_duration(end - incident.detected_at)}"
                if end is not None
                else "not resolved yet"
            )
        )
    for step in state.all_steps():
        if step.uses == "http.health_check" and step.outputs:
            o = step.outputs
            impact.append(
                f"Health check `{step.id}`: {step.status}, success "
                f"{float(o.get('success_ratio', 0)):.0%} of {o.get('samples', '?')} polls, "
                f"p99 {float(o.get('p99_ms', 0)):.0f} ms"
                + (f" ({o['reason']})" if o.get("reason") else "")
            )
    hosts = affected_hosts(state)
    if hosts:
        impact.append(
            "Hosts: "
            + ", ".join(f"{label} (exit {h['exit_code']})" for label, h in sorted(hosts.items()))
        )
    if not impact:
        impact.append("Not recorded by the run; describe who and what was affected.")
    timeline = ["| time (UTC) | who | what |", "|---|---|---|"]
    for entry in incident.sorted_timeline():
        who = entry.actor or ("run" if entry.source == "run" else "")
        what = entry.text
        if entry.source == "note":
            what = f"note: {what}"
        elif entry.source == "update":
            what = f"status update: {what}"
        timeline.append(f"| {_hhmm(entry.ts)} | {_cell(who)} | {_cell(what)} |")
    times = [
        f"MTTA (detected → acknowledged): {format_duration(incident.mtta)}"
        if incident.mtta is not None
        else "MTTA: not acknowledged",
        f"MTTR (detected → resolved): {format_duration(incident.mttr)}"
        if incident.mttr is not None
        else "MTTR: not resolved",
    ]
    for name in (
        "detected",
        "acknowledged",
        "investigating",
        "identified",
        "mitigated",
        "resolved",
    ):
        if name in incident.milestones:
            by = incident.milestone_by.get(name, "")
            times.append(f"{name}: {_utc(incident.milestones[name])}" + (f" ({by})" if by else ""))
    for change in incident.severity_changes:
        times.append(
            f"{change.direction} {severity_name(change.before)} → "
            f"{severity_name(change.after)} by {change.by} at {_utc(change.ts)}"
            + (f": {change.reason}" if change.reason else "")
        )
    actions: list[str] = []
    for stage in state.stages.values():
        for step in stage.steps.values():
            if step.status in (StepStatus.PENDING, StepStatus.SKIPPED):
                continue
            role = f" [{step.role}]" if step.role != "step" else ""
            actions.append(
                f"`{stage.id}/{step.id}`{role} ({step.uses or '?'}): {step.status}"
                + (f": {step.error}" if step.error and step.status != StepStatus.SUCCEEDED else "")
            )
        if stage.approval is not None and stage.approval.status in APPROVAL_DECIDED:
            a = stage.approval
            actions.append(
                f"approval `{a.id}` {a.status} by {a.decided_by}"
                + (f": {a.reason}" if a.reason else "")
            )
    for handover in incident.handovers:
        if handover.before is not None:
            actions.append(
                f"{ROLE_TITLES[handover.role]} handed from {handover.before} to "
                f"{handover.after} at {_utc(handover.ts)}"
            )
    if not actions:
        actions.append("No automated actions ran.")
    follow: list[str] = []
    for note in incident.notes:
        lowered = note.text.lower()
        for prefix in FOLLOW_UP_PREFIXES:
            if lowered.startswith(prefix):
                follow.append(f"[ ] {note.text[len(prefix) :].strip()} ({note.by})")
                break
    follow += [f"[ ] {line} (suggested by the run)" for line in suggested(state, incident)]
    for step in state.all_steps():
        if step.status == StepStatus.FAILED and step.role == "step":
            follow.append(f"[ ] Find out why `{step.id}` failed and prevent it: {step.error}")
    if incident.mtta is not None and incident.mtta > 15 * 60:
        follow.append("[ ] Acknowledgement took over 15 minutes: review paging and on-call")
    if not follow:
        follow.append("[ ] Add the follow-ups agreed in the review")
    return [
        Section("Summary", summary),
        Section("Impact", impact),
        Section("Timeline", timeline),
        Section("Response times", times),
        Section("Root cause (as found by the run)", [root_cause(incident, state)]),
        Section("Actions taken", actions),
        Section("Follow-ups", follow),
    ]


def title_of(incident: Incident, state: RunState) -> str:
    alert = incident.alert.get("commonLabels", {}).get("alertname") if incident.alert else None
    what = alert or state.title or state.workflow or "incident"
    return f"Postmortem: {what} ({state.id})"


def render_markdown(incident: Incident, state: RunState) -> str:
    out = [
        f"# {title_of(incident, state)}",
        "",
        "_Draft written by Quarterdeck from the run's journal; finish it in the review._",
    ]
    for section in sections(incident, state):
        out += ["", f"## {section.title}", ""]
        if section.title == "Timeline":
            out += section.lines
        else:
            out += [f"- {line}" for line in section.lines]
    return "\n".join(out) + "\n"


def render_logseq(incident: Incident, state: RunState) -> str:
    """The same draft as a Logseq page: page properties, then an outline of blocks."""
    out = [
        f"title:: Postmortem/{state.id}",
        "tags:: postmortem, incident",
        f"severity:: {incident.severity_label}",
        f"run:: {state.id}",
        "",
    ]
    for section in sections(incident, state):
        out.append(f"- ## {section.title}")
        lines = section.lines
        if section.title == "Timeline":
            lines = [line for line in lines[2:]]  # a table is one block in Logseq: list rows
            lines = [
                " — ".join(cell.strip() for cell in line.strip("|").split(" | ")) for line in lines
            ]
        for line in lines:
            if line.startswith("[ ] "):
                line = "TODO " + line[4:]
            out.append(f"\t- {line}")
    return "\n".join(out) + "\n"


def postmortem_path(run_id: str) -> Path:
    return state_home() / "runs" / run_id / "postmortem.md"


def write(store: Store, run_id: str, settings: Settings | None = None) -> list[Path]:
    """Write the draft (and the Logseq page when configured); returns the paths written."""
    incident = load(store, run_id)
    row = store.get_run(run_id)
    state = fold(row.id, store.events(row.id))
    state.status = row.status
    path = postmortem_path(row.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_markdown(incident, state), encoding="utf-8")
    written = [path]
    graph = settings.logseq_graph if settings is not None else None
    if graph:
        pages = Path(graph).expanduser() / "pages"
        pages.mkdir(parents=True, exist_ok=True)
        page = pages / f"Postmortem___{row.id}.md"
        page.write_text(render_logseq(incident, state), encoding="utf-8")
        written.append(page)
    return written


def for_show(store: Store, run_id: str) -> Incident | None:
    """The incident of a run for ``quarterdeck show``, or None when it is not one."""
    row = store.get_run(run_id)
    if not incident_signals(store, row.id) and not is_incident_run(row.workflow, row.inputs):
        return None
    return load(store, row.id)


def show_json(incident: Incident) -> dict[str, Any]:
    """``show --json``'s ``incident`` object."""
    path = postmortem_path(incident.run_id)
    return {**incident.summary(), "postmortem": str(path) if path.is_file() else None}


def show_text(incident: Incident) -> str:
    """The incident block of ``quarterdeck show``."""
    state = "resolved" if incident.resolved else (incident.milestone or "open")
    lines = [
        "",
        f"incident: {incident.severity_label} {state}"
        f"  MTTA {format_duration(incident.mtta) if incident.mtta is not None else '-'}"
        f"  MTTR {format_duration(incident.mttr) if incident.mttr is not None else '-'}",
    ]
    roles = [f"{role} {who}" for role, who in incident.roles.items() if who]
    lines.append("  roles: " + (", ".join(roles) if roles else "nobody yet"))
    if incident.alert_state is not None:
        lines.append(f"  alert: {_alert(incident)}")
    if incident.updates:
        last = incident.updates[-1]
        lines.append(f"  last update ({last.by}, {_utc(last.ts)}): {last.text}")
    if incident.resolution:
        lines.append(f"  resolution: {incident.resolution}")
    path = postmortem_path(incident.run_id)
    if path.is_file():
        lines.append(f"  postmortem: {path}")
    return "\n".join(lines) + "\n"
