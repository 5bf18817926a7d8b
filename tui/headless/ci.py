"""What a headless run writes for CI besides its narration.

- :class:`GitHubActions`: when ``GITHUB_ACTIONS=true``, a ``::group::`` per stage and
  ``::error::`` / ``::warning::`` annotations for failed steps, gates and approvals
  (escaped per GitHub's rules, within its per-step limits), plus the run summary
  appended to ``$GITHUB_STEP_SUMMARY`` (under its 1 MiB cap). Workflow commands go to
  stderr with the narration (the runner reads both streams), keeping stdout for data.
- :class:`EventStream`: ``--events -`` writes every event as a JSON line as it happens.
- :class:`HeadlessExtras`: the composition of the above with ``--report-dir``,
  ``--approvals`` and tracing, built and checked before the run, finished after it.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import field
from pathlib import Path
from typing import IO, Any

from quarterdeck.core.commands import cli_command
from quarterdeck.core.errors import InvalidInput
from quarterdeck.core.journal.events import (
    ApprovalRefused,
    ApprovalRequested,
    Budget,
    BudgetOutcome,
    Event,
    GateEvaluated,
    GateSkipped,
    PersonaSwitched,
    RunFinished,
    RunInterrupted,
    RunStarted,
    StageFinished,
    StageSkipped,
    StageStarted,
    StepFinished,
)
from quarterdeck.core.journal.statuses import StageStatus, StepStatus
from quarterdeck.core.lean import lean
from quarterdeck.tui.headless.lines import line_batch

log = logging.getLogger(__name__)

#: GitHub shows at most this many annotations of each kind per step; later ones vanish.
ANNOTATION_LIMIT = 10
#: ``$GITHUB_STEP_SUMMARY`` takes at most 1 MiB per step; keep a margin.
STEP_SUMMARY_LIMIT = 1024 * 1024 - 4096
MESSAGE_LIMIT = 4000


def escape_data(value: str) -> str:
    """Escape a workflow command's message: ``%``, ``\\r`` and ``\\n``."""
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    """Escape a workflow command's property value: as data, plus ``:`` and ``,``."""
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str = "", **properties: str) -> str:
    """One workflow command line, ``::name key=value,...::message``, escaped."""
    props = ",".join(f"{k}={escape_property(v)}" for k, v in properties.items() if v)
    return f"::{name}{' ' + props if props else ''}::{escape_data(message)}"


def github_actions_enabled(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get("GITHUB_ACTIONS", "").lower() == "true"


class GitHubActions:
    """Groups and annotations for the GitHub Actions log; never blocks, never raises."""

    def __init__(
        self,
        stream: IO[str] | None = None,
        *,
        limit: int = ANNOTATION_LIMIT,
        store: Path | str | None = None,
    ) -> None:
        self.stream = stream or sys.stderr
        self.lines = line_batch(self.stream)
        self.store = store  # the journal's path: the resume hint must work as printed
        self.limit = limit
        self.counts = {"error": 0, "warning": 0}
        self.dropped = {"error": 0, "warning": 0}
        self.group: str | None = None
        self.close_pending = False
        self.workflow = ""

    def _write(self, line: str) -> None:
        # the narration's batch: a group opens above its stage's lines and closes below
        self.lines.write(line + "\n")

    def annotate(self, kind: str, title: str, message: str) -> None:
        """An ``::error::``/``::warning::``, unless GitHub's per-step limit is reached."""
        if self.counts[kind] >= self.limit:
            self.dropped[kind] += 1
            return
        self.counts[kind] += 1
        self._write(command(kind, message[:MESSAGE_LIMIT], title=title[:200]))

    def _end_group(self) -> None:
        self.close_pending = False
        if self.group is not None:
            self._write("::endgroup::")
            self.group = None

    def __call__(self, event: Event) -> None:
        try:
            self._handle(event)
        except Exception:  # the log decoration must never break a run
            log.warning("the CI log could not show %s", event.type, exc_info=True)

    def _handle(self, event: Event) -> None:
        p = event.payload()
        if self.close_pending:
            # this subscriber runs before the narration: a stage's group is closed at the
            # next event, so the stage's last narration line still lands inside it
            self._end_group()
        if isinstance(p, RunStarted):
            self.workflow = str(p.workflow or "")
        elif isinstance(p, (PersonaSwitched, ApprovalRequested)):
            # open the stage's group early so its persona switch and approval sit inside
            self._open(event.stage)
        elif isinstance(p, StageStarted):
            self._open(event.stage, p.persona)
        elif isinstance(p, (StageFinished, StageSkipped)):
            if isinstance(p, StageFinished) and p.status == StageStatus.REJECTED and p.error:
                self.annotate(
                    "error", f"{self.workflow}: stage {event.stage} rejected", str(p.error)
                )
            self.close_pending = self.group is not None
        elif isinstance(p, StepFinished) and p.status != StepStatus.SUCCEEDED:
            where = f"{self.workflow}: {event.stage} / {event.step}"
            error = str(p.error or p.status)
            note = " (continue_on_error: the run went on)" if p.continue_on_error else ""
            self.annotate("error", f"{where} {p.status}{note}", error)
        elif isinstance(p, StepFinished) and p.via:
            self.annotate(
                "warning",
                f"{self.workflow}: {event.stage} / {event.step} recovered by fallback {p.via}",
                str(p.error or ""),
            )
        elif isinstance(p, GateEvaluated) and not p.passed:
            failed = [
                f"{r.condition}" + (f" ({r.error})" if r.error else "")
                for r in p.results
                if not r.passed
            ]
            self.annotate(
                "error",
                f"{self.workflow}: quality gate {p.gate} failed (stage {event.stage})",
                "\n".join(failed),
            )
        elif isinstance(p, GateSkipped):
            self.annotate(
                "warning",
                f"{self.workflow}: quality gate {p.gate} skipped",
                f"skipped by {p.by}: {p.reason}",
            )
        elif isinstance(p, ApprovalRefused):
            self.annotate(
                "warning",
                f"{self.workflow}: decision on {p.gate} refused",
                str(p.why or ""),
            )
        elif isinstance(p, Budget) and p.outcome in (BudgetOutcome.WARNED, BudgetOutcome.EXCEEDED):
            self.annotate(
                "warning",
                f"{self.workflow}: token budget of {p.persona}",
                f"{p.used} of {p.budget} tokens used",
            )
        elif isinstance(p, (RunFinished, RunInterrupted)):
            self._end_group()
            if isinstance(p, RunInterrupted):
                self.annotate(
                    "warning",
                    f"{self.workflow}: run interrupted",
                    f"{p.reason}; resume with "
                    f"`{cli_command('resume', event.run_id, store=self.store)}`",
                )
            for level, count in self.dropped.items():
                if count:
                    self._write(
                        f"{count} more {level} annotation(s) left out (GitHub shows "
                        f"{self.limit} per step); see the step summary"
                    )

    def close(self) -> None:
        """End an open group (a run that stopped without a final event)."""
        self._end_group()

    def _open(self, stage: str | None, persona: Any = None) -> None:
        if stage is None or self.group == stage:
            return
        self._end_group()
        self.group = stage
        self._write(f"::group::stage {stage}" + (f" ({persona})" if persona else ""))


def append_step_summary(path: Path, text: str, limit: int = STEP_SUMMARY_LIMIT) -> int:
    """Append ``text`` to ``$GITHUB_STEP_SUMMARY``, cut to fit what is left of the cap.

    Returns the bytes written. ``text`` should already be sized (``summary_md``'s
    ``max_bytes``); this is the last guard.
    """
    used = path.stat().st_size if path.exists() else 0
    room = max(0, limit - used)
    data = text.encode("utf-8")
    if len(data) > room:
        note = b"\n\n_(summary cut: the step summary size limit was reached)_\n"
        data = data[: max(0, room - len(note))].decode("utf-8", "ignore").encode() + note
        data = data[:room]
    with path.open("ab") as fh:
        fh.write(data)
    return len(data)


class EventStream:
    """``--events -``/``--events FILE``: every committed event as one JSON line."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.lines = line_batch(stream)  # one write per turn of the run's loop

    @property
    def broken(self) -> bool:
        """A write failed (a closed pipe): no more lines, and the run goes on."""
        return self.lines.broken

    def __call__(self, event: Event) -> None:
        if self.lines.broken:
            return
        self.lines.write(event.to_json() + "\n")


def _narrate(message: str) -> None:
    lines = line_batch(sys.stderr)  # after the narration queued so far, written now
    lines.write(message.rstrip("\n") + "\n")
    lines.flush()


@lean
class HeadlessExtras:
    """Reports, event stream, approvals policy, GitHub Actions and tracing for one run."""

    report_dir: str | None = None
    events: str | None = None
    policy: Any = None  # quarterdeck.core.engine.approval_policy.ApprovalPolicy
    actor: str = ""
    trace: bool = False
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    _provider: Any = None
    _tracer: Any = None
    _events_file: IO[str] | None = None
    _github: GitHubActions | None = None

    @classmethod
    def prepare(
        cls,
        *,
        workflow: Any,
        json_out: bool,
        report_dir: Path | None,
        events: str | None,
        approvals: Path | None,
        trace: bool,
        actor: str,
        settings: Any,
    ) -> HeadlessExtras:
        """Check the options and load the policy before anything runs (exit 2 if bad)."""
        from quarterdeck.core.observability.tracing import otel_available, tracing_requested

        if events == "-" and json_out:
            raise InvalidInput(
                "--events - and --json both write to stdout; use one of them",
                hint="stream events with --events - (the last line is run.finished), or "
                "write them to a file with --events FILE and keep --json",
            )
        policy = None
        if approvals is not None:
            from quarterdeck.core.engine.approval_policy import check_policy_actor, load_policy

            policy = load_policy(approvals, workflow)
            check_policy_actor(policy, workflow, actor, settings.groups)
        extras = cls(
            report_dir=str(report_dir) if report_dir else settings.report_dir,
            events=events,
            policy=policy,
            actor=actor,
            trace=trace,
        )
        if tracing_requested(extras.environ, trace):
            if otel_available():
                from quarterdeck.core.observability.tracing import build_provider

                extras._provider = build_provider(extras.environ)  # bad OTEL_* fails here
            elif trace:
                raise InvalidInput(
                    "--trace needs OpenTelemetry, which is not installed",
                    hint="pip install 'quarterdeck[otel]'",
                )
            else:
                _narrate(
                    "warning: OTEL_* asks for traces but OpenTelemetry is not installed;"
                    " running without traces (pip install 'quarterdeck[otel]')"
                )
        return extras

    def attach(self, runner: Any) -> None:
        """Add the subscribers to ``runner`` (after the narration renderer)."""
        if self.events is not None:
            if self.events == "-":
                runner.subscribers.append(EventStream(sys.stdout))
            else:
                path = Path(self.events)
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                self._events_file = os.fdopen(fd, "a", encoding="utf-8")
                runner.subscribers.append(EventStream(self._events_file))
        if self.policy is not None:
            from quarterdeck.core.engine.approval_policy import PolicySubscriber

            runner.subscribers.append(
                PolicySubscriber(self.policy, runner, self.actor, notify=_narrate)
            )
        if github_actions_enabled(self.environ):
            # before the narration renderer, so a stage's group opens above its lines
            self._github = GitHubActions(store=runner.store.path)
            runner.subscribers.insert(0, self._github)
        if self._provider is not None:
            from quarterdeck.core.observability.tracing import TracingSubscriber

            self._tracer = TracingSubscriber(
                self._provider, environ=self.environ, step_env=runner.step_env, on_error=_narrate
            )
            runner.subscribers.append(self._tracer)

    def finish(self, runner: Any, state: Any) -> None:
        """After the run: reports, the step summary, exporting spans, closing files."""
        if self._github is not None:
            self._github.close()

        events: list[Event] | None = None
        if self._tracer is not None:
            self._tracer.close()
        if self._events_file is not None:
            line_batch(self._events_file).flush()  # its last lines, before it closes
            self._events_file.close()
        if self.report_dir:
            from quarterdeck.core.observability.reports import write_reports
            from quarterdeck.tui.json_text import dumps_indented

            directory = Path(self.report_dir.replace("{run}", state.id)).expanduser()
            try:
                events = runner.store.events(state.id)
                write_reports(directory, state, events, indented=dumps_indented)
                _narrate(f"reports written to {directory}")
            except OSError as exc:
                _narrate(f"error: cannot write reports to {directory}: {exc.strerror or exc}")
        summary_file = self.environ.get("GITHUB_STEP_SUMMARY")
        if github_actions_enabled(self.environ) and summary_file:
            from quarterdeck.core.observability.reports import summary_md

            try:
                if events is None:
                    events = runner.store.events(state.id)
                path = Path(summary_file)
                used = path.stat().st_size if path.exists() else 0
                text = summary_md(state, events, max_bytes=max(0, STEP_SUMMARY_LIMIT - used))
                append_step_summary(path, text)
            except OSError as exc:
                _narrate(f"warning: cannot append to $GITHUB_STEP_SUMMARY: {exc}")
