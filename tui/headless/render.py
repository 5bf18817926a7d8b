"""Headless rendering of a run: plain timestamped lines, or a live rich view on a TTY.

Narration goes to stderr; stdout is kept for data (``--json``, ``--events -``). Plain
lines are flushed one by one so a CI log viewer shows them as they happen.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from quarterdeck.core.durations import format_duration
from quarterdeck.core.journal.events import Event, EventType
from quarterdeck.core.journal.state import RunState

ICONS = {
    "pending": "·",
    "running": "▶",
    "waiting": "⏸",
    "paused": "⏸",
    "succeeded": "✔",
    "failed": "✘",
    "skipped": "↷",
    "cancelled": "■",
    "rejected": "⛔",
    "interrupted": "⚡",
    "continued": "✘",
    "nothing_to_do": "✔",
}
STYLES = {
    "running": "bold cyan",
    "succeeded": "green",
    "failed": "bold red",
    "skipped": "dim",
    "cancelled": "yellow",
    "rejected": "red",
    "interrupted": "yellow",
    "waiting": "bold yellow",
    "paused": "yellow",
}


def _ts(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def describe(event: Event, state: RunState) -> str | None:
    """One human line for an event, or None for events not worth a line."""
    d = event.data
    kind = event.type
    if kind == EventType.RUN_STARTED:
        return f"run {event.run_id} of {d.get('workflow')} started by {d.get('started_by')}"
    if kind == EventType.RUN_RESUMED:
        return f"run {event.run_id} resumed by {d.get('by')}"
    if kind == EventType.RUN_FINISHED:
        error = f": {d['error']}" if d.get("error") else ""
        return f"run {d.get('status')}{error}"
    if kind == EventType.RUN_INTERRUPTED:
        resume = f"resume with `quarterdeck resume {event.run_id}`"
        return f"run interrupted: {d.get('reason')} ({resume})"
    if kind == EventType.RUN_PAUSED:
        return f"paused by {d.get('by')}" + (f": {d['reason']}" if d.get("reason") else "")
    if kind == EventType.RUN_UNPAUSED:
        return f"unpaused by {d.get('by')}"
    if kind == EventType.STAGE_STARTED:
        return "stage started"
    if kind == EventType.STAGE_FINISHED:
        error = f": {d['error']}" if d.get("error") else ""
        return f"stage {d.get('status')}{error}"
    if kind == EventType.STAGE_SKIPPED:
        return f"stage skipped ({d.get('reason')})"
    if kind == EventType.PERSONA_SWITCHED:
        return f"persona {d.get('from') or '-'} → {d.get('to')}"
    if kind == EventType.STEP_STARTED:
        role = f" [{d['role']}]" if d.get("role") not in (None, "step") else ""
        return f"started {d.get('uses')}{role} (attempt {d.get('attempt')})"
    if kind == EventType.STEP_RETRY:
        return f"attempt {d.get('attempt')} failed: {d.get('error')}; retrying in {d.get('delay')}s"
    if kind == EventType.STEP_FINISHED:
        status = d.get("status")
        if status == "succeeded":
            via = f" via fallback {d['via']}" if d.get("via") else ""
            return f"succeeded{via} ({format_duration(d.get('duration'))})"
        note = " (continue_on_error)" if d.get("continue_on_error") else ""
        return f"{status}: {d.get('error')}{note}"
    if kind == EventType.STEP_SKIPPED:
        return f"skipped ({d.get('reason')})"
    if kind == EventType.GATE_EVALUATED:
        verdict = "passed" if d.get("passed") else "FAILED"
        parts = [
            f"{'✔' if r.get('passed') else '✘'} {r.get('condition')}"
            + (f" ({r['error']})" if r.get("error") else "")
            for r in d.get("results", [])
        ]
        return f"quality gate {d.get('gate')} {verdict}: " + "; ".join(parts)
    if kind == EventType.GATE_SKIPPED:
        return f"quality gate {d.get('gate')} skipped by {d.get('by')}: {d.get('reason')}"
    if kind == EventType.APPROVAL_REQUESTED:
        anyone = "anyone" if d.get("allow_self_approval") else "anyone but the starter"
        who = ", ".join(d.get("approvers") or []) or anyone
        lines = [f"waiting for approval {d.get('gate')!r}: {d.get('prompt')}"]
        for item in d.get("evidence") or []:
            lines.append(f"  evidence: {item}")
        lines.append(f"  approvers: {who}; {d.get('min_approvals')} needed")
        if d.get("timeout_at"):
            lines.append(f"  on timeout ({_ts(d['timeout_at'])}): {d.get('on_timeout')}")
        lines.append(f"  approve: {d.get('command')}")
        lines.append(
            f"  reject:  quarterdeck reject {event.run_id} {d.get('gate')} --as NAME --reason TEXT"
        )
        return "\n".join(lines)
    if kind == EventType.APPROVAL_VOTE:
        return f"{d.get('by')} voted {d.get('decision')} on {d.get('gate')}"
    if kind == EventType.APPROVAL_REFUSED:
        return f"decision by {d.get('by')} on {d.get('gate')} refused: {d.get('why')}"
    if kind == EventType.APPROVAL_DECIDED:
        reason = f": {d['reason']}" if d.get("reason") else ""
        return f"approval {d.get('gate')} {d.get('decision')} by {d.get('by')}{reason}"
    if kind == EventType.SIGNAL_RECEIVED and d.get("kind") == "note":
        return f"note from {d.get('by')}: {d.get('reason')}"
    if kind == EventType.TOKENS_USED:
        est = " (estimated)" if d.get("estimated") else ""
        return (
            f"{d.get('persona')} used {d.get('total')} tokens{est}; "
            f"{d.get('remaining')} of {d.get('budget')} left"
        )
    if kind == EventType.BUDGET and d.get("outcome"):
        return f"budget {d.get('persona')}: {d.get('outcome')}"
    return None


class PlainRenderer:
    """Timestamped lines: ``2026-11-21T10:15:02Z [stage · persona] step: message``."""

    def __init__(
        self,
        state: RunState,
        stream: IO[str] | None = None,
        *,
        show_output: bool = True,
        color: bool | None = None,
    ) -> None:
        self.state = state
        self.stream = stream or sys.stderr
        self.show_output = show_output
        # colour=False must win over FORCE_COLOR in the environment (rich reads it too):
        # not a terminal means no escape sequences at all, not even bold
        self.console = Console(
            file=self.stream,
            highlight=False,
            soft_wrap=True,
            force_terminal=color,
            color_system=None if color is False else "auto",
            no_color=(color is False) or None,
        )

    def prefix(self, event: Event) -> str:
        stage = event.stage or "-"
        persona = None
        if event.stage and event.stage in self.state.stages:
            persona = self.state.stages[event.stage].persona
        where = f"[{stage} · {persona}]" if persona else f"[{stage}]"
        step = f" {event.step}:" if event.step else ""
        return f"{_ts(event.ts)} {where}{step}"

    def __call__(self, event: Event) -> None:
        if event.type == EventType.STEP_OUTPUT:
            if not self.show_output:
                return
            prefix = self.prefix(event)
            mark = "!" if event.data.get("stream") == "stderr" else "|"
            for line in event.data.get("lines", []):
                self.console.print(Text(f"{prefix} {mark} {line}"))
            self.stream.flush()
            return
        message = describe(event, self.state)
        if message is None:
            return
        style = None
        status = event.data.get("status")
        if isinstance(status, str):
            style = STYLES.get(status)
        for i, line in enumerate(message.splitlines()):
            text = Text(f"{self.prefix(event)} {line}" if i == 0 else f"{' ' * 21}{line}")
            if style and i == 0:
                text.stylize(style)
            self.console.print(text)
        self.stream.flush()


class LiveRenderer:
    """A compact live view of a run for an interactive terminal (rich)."""

    def __init__(self, state: RunState, console: Console | None = None) -> None:
        self.state = state
        self.console = console or Console(stderr=True)
        self.recent: list[str] = []
        self.notices: list[str] = []
        self.live = Live(
            self.render(),
            console=self.console,
            refresh_per_second=8,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )

    def __enter__(self) -> LiveRenderer:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.live.update(self.render())
        self.live.__exit__(*exc)

    def __call__(self, event: Event) -> None:
        if event.type == EventType.STEP_OUTPUT:
            for line in event.data.get("lines", []):
                self.recent.append(f"{event.step}: {line}")
            del self.recent[:-8]
        elif event.type in (
            EventType.APPROVAL_REQUESTED,
            EventType.APPROVAL_DECIDED,
            EventType.GATE_EVALUATED,
            EventType.RUN_FINISHED,
            EventType.RUN_INTERRUPTED,
            EventType.APPROVAL_REFUSED,
            EventType.STEP_RETRY,
        ):
            message = describe(event, self.state)
            if message:
                self.notices.extend(message.splitlines())
                del self.notices[:-10]
        self.live.update(self.render())

    def render(self) -> Group:
        s = self.state
        head = Text()
        head.append(f"{s.workflow or '…'} ", style="bold")
        head.append(f"{s.id}  ", style="dim")
        head.append(f"{ICONS.get(s.status, '?')} {s.status}", style=STYLES.get(s.status, ""))
        done, total = s.counts()
        head.append(f"   {done}/{total} steps   {format_duration(s.duration)}", style="dim")
        if s.persona:
            head.append(f"   persona: {s.persona}", style="bold")
        table = Table.grid(padding=(0, 1))
        table.add_column(width=2)
        table.add_column()
        table.add_column(justify="right", style="dim")
        for stage in s.stages.values():
            table.add_row(
                Text(ICONS.get(stage.status, "?"), style=STYLES.get(stage.status, "")),
                Text(
                    f"{stage.id}" + (f" ({stage.persona})" if stage.persona else ""), style="bold"
                ),
                format_duration(stage.finished_at - stage.started_at)
                if stage.finished_at and stage.started_at
                else "",
            )
            for step in stage.steps.values():
                attempts = f" ×{step.attempts}" if step.attempts > 1 else ""
                table.add_row(
                    "",
                    Text(
                        f"  {ICONS.get(step.status, '?')} {step.id}{attempts}",
                        style=STYLES.get(step.status, ""),
                    ),
                    format_duration(step.duration) if step.started_at else "",
                )
        parts: list[Any] = [head, table]
        if self.recent:
            parts.append(Text("\n".join(self.recent), style="dim"))
        if self.notices:
            parts.append(Text("\n".join(self.notices), style="yellow"))
        return Group(*parts)
