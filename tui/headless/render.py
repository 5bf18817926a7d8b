"""Headless rendering of a run: plain timestamped lines, or a live rich view on a TTY.

Narration goes to stderr; stdout is kept for data (``--json``, ``--events -``). Plain
lines are flushed one by one so a CI log viewer shows them as they happen.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:  # rich is imported where it draws: a plain CI log never loads it
    from rich.console import Console, Group

from quarterdeck.core.commands import cli_command
from quarterdeck.core.durations import format_duration
from quarterdeck.core.journal.events import (
    ApprovalDecided,
    ApprovalRefused,
    ApprovalRequested,
    ApprovalVote,
    Budget,
    Event,
    EventType,
    GateEvaluated,
    GateSkipped,
    PersonaSwitched,
    RunFinished,
    RunInterrupted,
    RunPaused,
    RunResumed,
    RunStarted,
    RunUnpaused,
    SignalReceived,
    StageFinished,
    StageSkipped,
    StageStarted,
    StepFinished,
    StepOutput,
    StepRetry,
    StepSkipped,
    StepStarted,
    TokensUsed,
)
from quarterdeck.core.journal.state import RunState
from quarterdeck.core.journal.statuses import StepStatus, look
from quarterdeck.tui.headless.lines import BatchFile, line_batch


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or file-like stream without a tty
        return False


def _ts(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _started(p: StepStarted) -> str:
    role = f" [{p.role}]" if p.role not in ("", "step") else ""
    return f"started {p.uses}{role} (attempt {p.attempt})"


def _finished(p: StepFinished) -> str:
    if p.status == StepStatus.SUCCEEDED:
        via = f" via fallback {p.via}" if p.via else ""
        return f"succeeded{via} ({format_duration(p.duration)})"
    note = " (continue_on_error)" if p.continue_on_error else ""
    return f"{p.status}: {p.error}{note}"


def _interrupted(event: Event, p: RunInterrupted, store: Path | None) -> str:
    resume = f"resume with `{cli_command('resume', event.run_id, store=store)}`"
    return f"run interrupted: {p.reason} ({resume})"


def _gate(p: GateEvaluated) -> str:
    verdict = "passed" if p.passed else "FAILED"
    parts = [
        f"{'✔' if r.passed else '✘'} {r.condition}" + (f" ({r.error})" if r.error else "")
        for r in p.results
    ]
    return f"quality gate {p.gate} {verdict}: " + "; ".join(parts)


def _approval_requested(event: Event, p: ApprovalRequested, store: Path | None) -> str:
    anyone = "anyone" if p.allow_self_approval else "anyone but the starter"
    who = ", ".join(p.approvers or []) or anyone
    lines = [f"waiting for approval {p.gate!r}: {p.prompt}"]
    for item in p.evidence or []:
        lines.append(f"  evidence: {item}")
    lines.append(f"  approvers: {who}; {p.min_approvals} needed")
    if p.timeout_at:
        lines.append(f"  on timeout ({_ts(p.timeout_at)}): {p.on_timeout}")
    lines.append(f"  approve: {cli_command('approve', event.run_id, p.gate, store=store)}")
    reject = cli_command("reject", event.run_id, p.gate, "--reason", "TEXT", store=store)
    lines.append(f"  reject:  {reject}")
    return "\n".join(lines)


def _because(text: str | None) -> str:
    return f": {text}" if text else ""


#: One line (or None: not worth one) per payload type :func:`describe` narrates, from the
#: event, its payload and the journal's path (for commands that work pasted elsewhere).
_LINES: dict[type[Any], Callable[[Event, Any, Path | None], str | None]] = {
    RunStarted: lambda e, p, _: f"run {e.run_id} of {p.workflow} started by {p.started_by}",
    RunResumed: lambda e, p, _: f"run {e.run_id} resumed by {p.by}",
    RunFinished: lambda e, p, _: f"run {p.status}{_because(p.error)}",
    RunInterrupted: _interrupted,
    RunPaused: lambda e, p, _: f"paused by {p.by}{_because(p.reason)}",
    RunUnpaused: lambda e, p, _: f"unpaused by {p.by}",
    StageStarted: lambda e, p, _: "stage started",
    StageFinished: lambda e, p, _: f"stage {p.status}{_because(p.error)}",
    StageSkipped: lambda e, p, _: f"stage skipped ({p.reason})",
    PersonaSwitched: lambda e, p, _: f"persona {p.from_ or '-'} → {p.to}",
    StepStarted: lambda e, p, _: _started(p),
    StepRetry: lambda e, p, _: f"attempt {p.attempt} failed: {p.error}; retrying in {p.delay}s",
    StepFinished: lambda e, p, _: _finished(p),
    StepSkipped: lambda e, p, _: f"skipped ({p.reason})",
    GateEvaluated: lambda e, p, _: _gate(p),
    GateSkipped: lambda e, p, _: f"quality gate {p.gate} skipped by {p.by}: {p.reason}",
    ApprovalRequested: _approval_requested,
    ApprovalVote: lambda e, p, _: f"{p.by} voted {p.decision} on {p.gate}",
    ApprovalRefused: lambda e, p, _: f"decision by {p.by} on {p.gate} refused: {p.why}",
    ApprovalDecided: lambda e, p, _: (
        f"approval {p.gate} {p.decision} by {p.by}{_because(p.reason)}"
    ),
    SignalReceived: lambda e, p, _: f"note from {p.by}: {p.reason}" if p.kind == "note" else None,
    TokensUsed: lambda e, p, _: (
        f"{p.persona} used {p.total} tokens{' (estimated)' if p.estimated else ''}; "
        f"{p.remaining} of {p.budget} left"
    ),
    Budget: lambda e, p, _: f"budget {p.persona}: {p.outcome}" if p.outcome else None,
}

#: The event types with a line; any other event (memory, process, custom events) is
#: passed over before its payload is even read.
_NARRATED = frozenset(kind for payload in _LINES for kind in payload.TYPES)


def describe(event: Event, state: RunState, store: Path | None = None) -> str | None:
    """One human line for an event, or None for events not worth a line. Commands in it
    carry ``store`` (the journal's path) so they work pasted into another shell."""
    if event.type not in _NARRATED:
        return None
    payload = event.payload()
    line = _LINES.get(type(payload))
    return None if line is None else line(event, payload, store)


class PlainRenderer:
    """Timestamped lines: ``2026-11-21T10:15:02Z [stage · persona] step: message``.

    Lines are plain f-strings queued on the stream's :class:`LineBatch` (one write per
    turn of the run's loop); the prefix of a step and the time of a second are formatted
    once and reused, and the events a run has most of (a step's start, end and output)
    skip the general :func:`describe`. Styling (rich) only on a terminal or when asked.
    """

    def __init__(
        self,
        state: RunState,
        stream: IO[str] | None = None,
        *,
        show_output: bool = True,
        color: bool | None = None,
        store: Path | None = None,
    ) -> None:
        self.state = state
        self.store = store
        self.stream = stream or sys.stderr
        self.show_output = show_output
        self.lines = line_batch(self.stream)
        self._second: float = -1e18  # the whole second _stamp was formatted for
        self._stamp = ""
        self._wheres: dict[tuple[str | None, str | None, str | None], str] = {}
        self._codes: dict[str | None, tuple[str, str] | None] = {}  # style: rich's codes
        # Styling only when asked for (FORCE_COLOR) or on a terminal: everywhere else (CI
        # logs, files, pipes) lines are plain f-strings written straight to the stream,
        # which costs a fraction of a rich Text and Console.print per event.
        styled = color if color is not None else _isatty(self.stream)
        self.console: Console | None = None
        if styled:
            from rich.console import Console

            self.console = Console(
                file=BatchFile(self.stream),  # type: ignore[arg-type]
                highlight=False,
                soft_wrap=True,
                force_terminal=True if color else None,
                color_system="auto",
            )

    def flush(self) -> None:
        """Write what is queued now (the run ended)."""
        self.lines.flush()

    def _write(self, lines: list[str], style: str | None = None) -> None:
        if self.console is None:
            self.lines.write("".join(f"{line}\n" for line in lines))
            return
        for i, line in enumerate(lines):
            self._styled(self.console, line, style if i == 0 else None)

    def _styled(self, console: Console, line: str, style: str | None) -> None:
        """``console.print(Text(line) stylized)``'s text. A printable line (no tab, no
        control character: rich passes it through as it is) is put between the codes rich
        wrote for the same style around a probe; any other line goes through rich."""
        if line.isprintable():
            codes = self._codes.get(style)
            if codes is None:
                codes = self._codes[style] = self._probe(console, style)
            if codes is not None:
                self.lines.write(f"{codes[0]}{line}{codes[1]}")
                return
        console.print(self._text(line, style))

    @staticmethod
    def _text(line: str, style: str | None) -> Any:
        from rich.text import Text

        text = Text(line)
        if style:
            text.stylize(style)
        return text

    def _probe(self, console: Console, style: str | None) -> tuple[str, str] | None:
        probe = "quarterdeck-probe"
        with console.capture() as captured:
            console.print(self._text(probe, style))
        before, found, after = captured.get().partition(probe)
        return (before, after) if found and probe not in after else None

    def prefix(self, event: Event) -> str:
        ts = event.ts
        second = ts // 1  # the whole second gmtime shows
        if second != self._second:
            self._second, self._stamp = second, _ts(ts)
        stage, step = event.stage, event.step
        persona = None
        if stage:
            found = self.state.stages.get(stage)
            if found is not None:
                persona = found.persona
        key = (stage, persona, step)
        where = self._wheres.get(key)
        if where is None:
            if len(self._wheres) > 4096:  # a long run's steps come and go
                self._wheres.clear()
            place = f"[{stage or '-'} · {persona}]" if persona else f"[{stage or '-'}]"
            where = self._wheres[key] = f"{place} {step}:" if step else place
        return f"{self._stamp} {where}"

    def __call__(self, event: Event) -> None:
        kind = event.type
        if kind == EventType.STEP_OUTPUT:
            if not self.show_output:
                return
            out = StepOutput.of(event)
            prefix = self.prefix(event)
            mark = "!" if out.stream == "stderr" else "|"
            self._write([f"{prefix} {mark} {line}" for line in out.lines])
            return
        # the events a run has most of skip the general describe
        style: str | None = None
        if kind == EventType.STEP_STARTED:
            message = _started(StepStarted.of(event))
        elif kind == EventType.STEP_FINISHED:
            finished = StepFinished.of(event)
            message, style = _finished(finished), look(finished.status).style
        else:
            described = describe(event, self.state, self.store)
            if described is None:
                return
            message, p = described, event.payload()
            if isinstance(p, (RunFinished, StageFinished)):
                style = look(p.status).style
        head = self.prefix(event)
        lines = message.splitlines()
        if len(lines) == 1 and self.console is None:
            self.lines.write(f"{head} {lines[0]}\n")
            return
        self._write(
            [f"{head} {line}" if i == 0 else f"{' ' * 21}{line}" for i, line in enumerate(lines)],
            style,
        )


class LiveRenderer:
    """A compact live view of a run for an interactive terminal (rich)."""

    def __init__(
        self, state: RunState, console: Console | None = None, store: Path | None = None
    ) -> None:
        from rich.console import Console
        from rich.live import Live

        self.state = state
        self.store = store
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
            for line in StepOutput.of(event).lines:
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
            message = describe(event, self.state, self.store)
            if message:
                self.notices.extend(message.splitlines())
                del self.notices[:-10]
        self.live.update(self.render())

    def render(self) -> Group:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        s = self.state
        head = Text()
        head.append(f"{s.workflow or '…'} ", style="bold")
        head.append(f"{s.id}  ", style="dim")
        head.append(f"{look(s.status).glyph} {s.status}", style=look(s.status).style)
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
                Text(look(stage.status).glyph, style=look(stage.status).style),
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
                        f"  {look(step.status).glyph} {step.id}{attempts}",
                        style=look(step.status).style,
                    ),
                    format_duration(step.duration) if step.started_at else "",
                )
        parts: list[Any] = [head, table]
        if self.recent:
            parts.append(Text("\n".join(self.recent), style="dim"))
        if self.notices:
            parts.append(Text("\n".join(self.notices), style="yellow"))
        return Group(*parts)
