"""War-room widgets: severity banner, clocks, roles, health, hosts, runbook, timeline.

The dialogs behind the incident actions are screens (:mod:`quarterdeck.screens.prompts`).

Every widget renders from the folded :class:`~quarterdeck.core.incidents.model.Incident` and
:class:`~quarterdeck.core.journal.state.RunState` and repaints only when its text changed. Times
shown are UTC (``HH:MM:SS``) or relative to the injected clock, so snapshots do not depend on the
machine's time zone or clock.
"""

from __future__ import annotations

import operator
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.markup import escape
from textual.widgets import Sparkline, Static

from quarterdeck.core.durations import format_duration
from quarterdeck.core.incidents.model import MILESTONES, ROLE_TITLES, ROLES, Incident
from quarterdeck.core.incidents.postmortem import affected_hosts
from quarterdeck.core.incidents.severity import SEVERITIES
from quarterdeck.core.journal.state import RunState, StepState
from quarterdeck.core.journal.statuses import STEP_DONE, ApprovalStatus, GateStatus, StepStatus
from quarterdeck.tui.widgets.status import elide_middle, glyph

#: the alert's name and summary together; the run id and the store are never cut
TITLE_WIDTH = 40
SEVERITY_STYLE = {1: "$error", 2: "$warning", 3: "$accent", 4: "$primary", 5: "$primary"}
_LIVE_POLL = re.compile(r"^\[(\d+)/(\d+)\] t=[\d.]+s (\S+) (\d+) ms (ok|FAIL)")


def utc(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ts))


class _Pane(Static):
    """A Static that skips repaints nobody could see."""

    _last: str | None = None

    def show(self, markup: str) -> None:
        if markup != self._last:
            self._last = markup
            self.update(markup)


# -- banner and clocks ------------------------------------------------------------------


class SeverityBanner(_Pane):
    """``SEV1`` in the severity's colour, what fired, the milestone, and who you are."""

    DEFAULT_CSS = """
    SeverityBanner { height: 1; padding: 0 1; background: $panel; }
    SeverityBanner.-sev1 { background: $error 40%; }
    SeverityBanner.-sev2 { background: $warning 30%; }
    SeverityBanner.-resolved { background: $success 30%; }
    """

    def render_incident(
        self, incident: Incident, run_id: str, actor: str, store: str | None = None
    ) -> None:
        """The run id and the store come right after the severity and are never cut (they
        are what people paste to join); the title gives way, elided in the middle."""
        for level in SEVERITIES:
            self.set_class(incident.severity == level and not incident.resolved, f"-sev{level}")
        self.set_class(incident.resolved, "-resolved")
        style = SEVERITY_STYLE.get(incident.severity, "$text")
        labels = incident.alert.get("commonLabels") or {} if incident.alert else {}
        annotations = incident.alert.get("commonAnnotations") or {} if incident.alert else {}
        what = labels.get("alertname") or incident.title or incident.workflow or "incident"
        summary = annotations.get("summary")
        state = "RESOLVED" if incident.resolved else (incident.milestone or "open").upper()
        mine = incident.roles_of(actor)
        who = f"you: {escape(actor)}" + (
            f" ({', '.join(ROLE_TITLES[r].lower() for r in mine)})" if mine else ""
        )
        what = elide_middle(str(what), TITLE_WIDTH)
        summary = elide_middle(str(summary), max(0, TITLE_WIDTH - len(what))) if summary else ""
        parts = [
            f"[b reverse {style}] {incident.severity_label} [/]",
            f"run {escape(run_id)}",
            *([f"[$text-muted]store[/] {escape(store)}"] if store else []),
            f"[b]{escape(what)}[/b]" + (f" [$text-muted]— {escape(summary)}[/]" if summary else ""),
            f"[b]{state}[/b]",
            who,
        ]
        alert = incident.alert_state
        if alert is not None:
            state, source = alert
            alert_style = "$success" if state == "resolved" else "$warning"
            said = "" if source == "alertmanager" else f" [$text-muted]({escape(source)})[/]"
            parts.insert(-1, f"[{alert_style}]alert {escape(state)}[/]{said}")
        self.show("  ".join(parts))


class Clocks(_Pane):
    """Since detection, since the last update, and when the next update is due (red when
    overdue: SEV1 every 15 min, SEV2 30, SEV3 60)."""

    DEFAULT_CSS = """
    Clocks { height: 1; padding: 0 1; }
    Clocks.-overdue { background: $error 20%; }
    """

    def render_incident(self, incident: Incident, now: float) -> None:
        overdue = incident.update_overdue(now)
        self.set_class(overdue, "-overdue")
        detected = incident.detected_at
        if incident.resolved:
            self.show(
                f"[$success]resolved[/] after [b]{format_duration(incident.mttr)}[/b]  ·  "
                f"MTTA [b]{format_duration(incident.mtta)}[/b]  ·  MTTR "
                f"[b]{format_duration(incident.mttr)}[/b]  ·  {len(incident.updates)} "
                f"update(s), {len(incident.notes)} note(s)"
            )
            return
        parts = [
            f"since detection [b]{format_duration(now - detected)}[/b]"
            if detected is not None
            else "[$text-muted]not detected yet[/]"
        ]
        last = incident.last_update_at
        parts.append(
            f"since last update [b]{format_duration(now - last)}[/b]"
            if last is not None
            else "[$text-muted]no status update yet[/]"
        )
        due = incident.next_update_due()
        every = incident.update_interval()
        if due is None:
            parts.append(f"[$text-muted]no update cadence for {incident.severity_label}[/]")
        elif now > due:
            parts.append(
                f"[b $error]update OVERDUE by {format_duration(now - due)}[/] "
                f"(every {format_duration(every)})"
            )
        else:
            parts.append(
                f"next update in [b]{format_duration(due - now)}[/b] "
                f"(every {format_duration(every)})"
            )
        if incident.mtta is not None:
            parts.append(f"MTTA {format_duration(incident.mtta)}")
        self.show("  ·  ".join(parts))


# -- roles, hosts, runbook --------------------------------------------------------------


class RolesPanel(_Pane):
    """Who holds each role, and the milestones reached (side by side when there is room:
    at 80 columns the war room gives this pane a few rows, not a column)."""

    can_focus = True  # a pane a number key jumps to, with a visible focus ring
    SIDE_BY_SIDE = 70

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._seen: tuple[Incident, str] | None = None

    def on_resize(self) -> None:
        if self._seen is not None:
            self.render_incident(*self._seen)

    def render_incident(self, incident: Incident, actor: str) -> None:
        self._seen = (incident, actor)
        roles = ["[b]Roles[/b]"]
        for role in ROLES:
            who = incident.roles.get(role)
            name = (
                f"[b]{escape(who)}[/b]" + (" [$accent](you)[/]" if who == actor else "")
                if who
                else "[$text-muted]—[/]"
            )
            roles.append(f"{ROLE_TITLES[role]:<20} {name}")
        marks = ["[b]Milestones[/b]"]
        for name in MILESTONES:
            ts = incident.milestones.get(name)
            if ts is None:
                marks.append(f"[$text-muted]○ {name}[/]")
            else:
                by = incident.milestone_by.get(name, "")
                marks.append(f"[$success]✓[/] {name:<13} {utc(ts)} [$text-muted]{escape(by)}[/]")
        if self.size.width < self.SIDE_BY_SIDE:
            self.show("\n".join([*roles, "", *marks]))
            return
        width = max(Content.from_markup(line).cell_length for line in roles)
        lines = []
        for i in range(max(len(roles), len(marks))):
            left = roles[i] if i < len(roles) else ""
            pad = width - Content.from_markup(left).cell_length
            lines.append(left + " " * pad + "  " + (marks[i] if i < len(marks) else ""))
        self.show("\n".join(lines))


class HostsPanel(_Pane):
    """Affected hosts and their last command result (``ssh.run`` outputs)."""

    DEFAULT_CSS = """
    HostsPanel { text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def render_state(self, state: RunState) -> None:
        hosts = affected_hosts(state)
        if not hosts:
            self.show("[b]Hosts[/b]\n[$text-muted]no host commands yet[/]")
            return
        lines = ["[b]Hosts[/b]"]
        for label, info in sorted(hosts.items()):
            code = info.get("exit_code")
            mark = "[$success]✓[/]" if code == 0 else "[$error]✗[/]"
            last = str(info.get("last") or "")
            last = escape(last if len(last) <= 40 else last[:39] + "…")
            lines.append(
                f"{mark} {escape(label)} [$text-muted]{escape(info['step'])} exit {code}[/] {last}"
            )
        self.show("\n".join(lines))


class RunbookPanel(_Pane):
    """The workflow's stages as a checklist; the gate that waits and any rollback."""

    can_focus = True

    def render_state(self, state: RunState, frame: int) -> None:
        lines = ["[b]Runbook[/b]"]
        if not state.stages:
            lines.append("[$text-muted]waiting for the run…[/]")
        for stage in state.stages.values():
            steps = [s for s in stage.steps.values() if s.role == "step"]
            done = sum(1 for s in steps if s.status in STEP_DONE)
            title = escape(stage.title or stage.id)
            lines.append(
                f"{glyph(stage.status, frame)} {title} [$text-muted]{done}/{len(steps)}[/]"
            )
            pending = state.pending_approval()
            if pending is not None and stage.approval is pending:
                lines.append(
                    f"   [$warning]◆ approval {escape(stage.approval.id)} waiting (a approves)[/]"
                )
            elif stage.approval is not None and stage.approval.status == ApprovalStatus.WAITING:
                lines.append(
                    f"   [$text-muted]{escape(stage.approval.id)} never decided "
                    f"(the run is {state.status})[/]"
                )
            elif stage.approval is not None and stage.approval.decided_by:
                lines.append(
                    f"   [$text-muted]{escape(stage.approval.id)} "
                    f"{stage.approval.status} by {escape(stage.approval.decided_by)}[/]"
                )
            for step in stage.steps.values():
                if step.role == "on_failure" and step.status != StepStatus.PENDING:
                    lines.append(
                        f"   [$warning]↺[/] {glyph(step.status, frame)} "
                        f"{escape(step.id)} [$text-muted]{step.status}[/]"
                    )
        self.show("\n".join(lines))


# -- health -----------------------------------------------------------------------------


@dataclass
class Series:
    """One health signal: a step's samples against its threshold."""

    step: str
    kind: str  # health | prometheus
    values: list[float] = field(default_factory=list)
    status: str = "running"  # running | passing | failing
    text: str = ""
    at: float = 0.0
    oks: list[bool] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    limit: float = 0.0


BARS = "▁▂▃▄▅▆▇█"


def poll_strip(oks: list[bool], latencies: list[float], limit: float, width: int) -> str:
    """One bar per poll (the worst poll of a bucket when there are more than ``width``):
    higher is worse, like the error-rate sparklines — a passing poll's height is its
    latency against ``limit``, a failed (or over-limit) poll is a full red bar."""
    if not oks:
        return "[$text-muted]no polls yet[/]"
    polls = list(zip(oks, latencies, strict=False))
    if len(polls) > width > 0:
        size = len(polls) / width
        buckets = [
            polls[int(i * size) : max(int(i * size) + 1, int((i + 1) * size))] for i in range(width)
        ]
        polls = [min(b, key=lambda p: (p[0], -p[1])) for b in buckets]
    repeat = max(1, min(4, width // max(1, len(polls))))
    out = []
    for ok, latency in polls:
        level = min(len(BARS) - 1, int(latency / limit * (len(BARS) - 1))) if limit > 0 else 0
        over = limit > 0 and latency > limit
        if not ok or over:
            out.append(f"[$error]{BARS[-1] * repeat}[/]")
        else:
            out.append(f"[$success]{BARS[max(1, level)] * repeat}[/]")
    return "".join(out)


def _number(value: Any, default: float | None) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return default


def health_series(state: RunState, params: dict[str, dict[str, Any]]) -> list[Series]:
    """Every ``http.health_check`` and ``prometheus.query`` step that has data, oldest
    first; running health checks are read from their live output lines."""
    out: list[Series] = []
    steps: list[StepState] = sorted(
        (
            s
            for s in state.all_steps()
            if s.uses in ("http.health_check", "prometheus.query")
            and s.status not in (StepStatus.PENDING, StepStatus.SKIPPED)
        ),
        key=lambda s: s.started_at or 0.0,
    )
    for step in steps:
        with_ = params.get(step.id, {})
        if step.uses == "http.health_check":
            out.append(_health(step, with_))
        else:
            found = _prometheus(step, with_)
            if found is not None:
                out.append(found)
    return out


def _health(step: StepState, with_: dict[str, Any]) -> Series:
    min_ratio = _number(with_.get("min_success_ratio"), 0.99) or 0.0
    max_p99 = _number(with_.get("max_p99_ms"), 500.0) or 0.0
    series = step.outputs.get("series") if step.outputs else None
    item = Series(step.id, "health", at=step.started_at or 0.0)
    if isinstance(series, list) and series:
        points = [p for p in series if isinstance(p, dict)]
        oks = [bool(p.get("ok")) for p in points]
        item.latencies = [float(p.get("latency_ms") or 0.0) for p in points]
        ratio = float(step.outputs.get("success_ratio", sum(oks) / max(1, len(oks))))
        p99 = float(step.outputs.get("p99_ms", 0.0))
        item.values = [1.0 if ok else 0.0 for ok in oks]
        item.status = "passing" if step.outputs.get("passed") else "failing"
    else:  # still polling: the live lines say how each poll went
        polls = [m for m in (_LIVE_POLL.match(line) for line in step.tail) if m]
        oks = [m.group(5) == "ok" for m in polls]
        item.values = [1.0 if ok else 0.0 for ok in oks]
        ratio = sum(oks) / len(oks) if oks else 0.0
        item.latencies = [float(m.group(4)) for m in polls]
        p99 = max(item.latencies) if item.latencies else 0.0
        item.status = (
            "running"
            if step.status == StepStatus.RUNNING
            else ("passing" if step.status == StepStatus.SUCCEEDED else "failing")
        )
    item.oks = oks
    item.limit = max_p99
    ok_style = "$success" if ratio >= min_ratio else "$error"
    lat_style = "$success" if p99 <= max_p99 else "$error"
    item.text = (
        f"[{ok_style}]{ratio:.0%} ok[/] [$text-muted]≥{min_ratio:.0%}[/] · "
        f"[{lat_style}]p99 {p99:.0f}ms[/] [$text-muted]≤{max_p99:g} · "
        f"{len(item.values)} polls[/]"
    )
    return item


_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


def _prometheus(step: StepState, with_: dict[str, Any]) -> Series | None:
    outputs = step.outputs or {}
    values: list[float] = []
    for s in outputs.get("series") or []:
        if not isinstance(s, dict):
            continue
        if "values" in s:
            values.extend(float(v) for _, v in s["values"])
        elif "value" in s:
            values.append(float(s["value"]))
    value = outputs.get("value")
    if value is None and not values:
        return None
    threshold = _number(with_.get("threshold"), None)
    comparison = str(with_.get("comparison") or "<=")
    # coloured by the metric against its threshold, not by whether the step succeeded (a
    # query that returned error_rate 0.25 succeeded; the service did not); no threshold
    # means no verdict: neutral
    compare = _COMPARISONS.get(comparison)
    if step.status == StepStatus.RUNNING:
        status = "running"
    elif outputs.get("passed") is False or step.status == StepStatus.FAILED:
        status = "failing"  # the action compared it with a threshold and it missed
    elif threshold is None or compare is None or not isinstance(value, int | float):
        status = "neutral"
    else:
        status = "passing" if compare(float(value), threshold) else "failing"
    style = {"failing": "$error", "passing": "$success"}.get(status, "$text")
    shown = f"{float(value):.3g}" if isinstance(value, int | float) else "no data"
    limit = f" [$text-muted]{comparison} {threshold:g}[/]" if threshold is not None else ""
    # a query is one reading, not a live value: say when it was taken, so the triage's
    # error rate is not read as the service's state after the fix
    taken = step.finished_at or step.started_at
    when = f" · at {utc(taken)}" if taken and status != "running" else ""
    return Series(
        step.id,
        "prometheus",
        values,
        status,
        f"[{style}]{shown}[/]{limit} [$text-muted]· {len(values)} samples{when}[/]",
        step.started_at or 0.0,
    )


class HealthRow(Vertical):
    """One series: a line of text and its sparkline.

    A health check draws one bar per poll: a passing poll is green, as high as its
    latency is against the p99 threshold; a failed one is a full red bar, so a recovery
    reads as tall red turning low green. A Prometheus series is a
    :class:`Sparkline` of its values, where higher is worse (an error ratio, a latency).
    """

    DEFAULT_CSS = """
    HealthRow { height: 2; }
    HealthRow > .health-text { height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    HealthRow > Sparkline { height: 1; }
    HealthRow > .health-strip { height: 1; text-wrap: nowrap; }
    HealthRow.-health > Sparkline { display: none; }
    HealthRow.-prometheus > .health-strip { display: none; }
    HealthRow.-prometheus > Sparkline > .sparkline--max-color { color: $error; }
    HealthRow.-prometheus > Sparkline > .sparkline--min-color { color: $success; }
    """

    def compose(self) -> ComposeResult:
        yield _Pane(classes="health-text")
        yield Sparkline([0.0], summary_function=max)
        yield _Pane(classes="health-strip")

    def render_series(self, series: Series, frame: int) -> None:
        for kind in ("health", "prometheus"):
            self.set_class(series.kind == kind, f"-{kind}")
        looks = {"passing": GateStatus.PASSED, "failing": GateStatus.FAILED}
        if series.status == "neutral":
            mark = "[$text-muted]·[/]"  # a value without a threshold: no verdict
        else:
            mark = glyph(looks.get(series.status, StepStatus.RUNNING), frame)
        self.query_one(".health-text", _Pane).show(
            f"{mark} [b]{escape(series.step)}[/b] {series.text}"
        )
        if series.kind == "health":
            self.query_one(".health-strip", _Pane).show(
                poll_strip(series.oks, series.latencies, series.limit, self.size.width or 40)
            )
            return
        spark = self.query_one(Sparkline)
        data = series.values or [0.0]
        if list(spark.data or []) != data:
            spark.data = data


class HealthPanel(VerticalScroll):
    """Live health: health checks and Prometheus series as sparklines vs thresholds."""

    DEFAULT_CSS = """
    HealthPanel { height: 1fr; }
    HealthPanel > #health-title { height: 1; }
    """

    def compose(self) -> ComposeResult:
        yield _Pane("[b]Health[/b]", id="health-title")

    def render_state(self, state: RunState, params: dict[str, dict[str, Any]], frame: int) -> None:
        found = health_series(state, params)
        rows = list(self.query(HealthRow))
        for _ in range(len(found) - len(rows)):
            row = HealthRow()
            self.mount(row)
            rows.append(row)
        for row, series in zip(rows, found, strict=False):
            if row.is_mounted:
                row.render_series(series, frame)
            else:
                self.call_after_refresh(row.render_series, series, frame)
        title = "[b]Health[/b]" + ("" if found else "  [$text-muted]no health data yet[/]")
        self.query_one("#health-title", _Pane).show(title)
