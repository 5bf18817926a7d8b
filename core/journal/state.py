"""A run's state as a fold over its events.

The cockpit, the headless renderer, ``show``, ``attach`` and ``resume`` all build their
picture of a run here, from the same journaled events. :meth:`RunState.apply` looks the
event's type up in one table (``_FOLD``, at the end) of handlers, each reading its typed
payload; the parts of the state (stages, steps, gates, approvals) are in
:mod:`quarterdeck.core.journal.parts`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import field
from typing import Any

from quarterdeck.core.journal.events import (
    ApprovalDecided,
    ApprovalRefused,
    ApprovalRequested,
    ApprovalVote,
    Budget,
    BudgetOutcome,
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
    RunStarted,
    RunUnpaused,
    SignalReceived,
    StageFinished,
    StageSkipped,
    StageStarted,
    StepFinished,
    StepOutput,
    StepProcess,
    StepRetry,
    StepSkipped,
    StepStarted,
    TokensUsed,
)
from quarterdeck.core.journal.parts import (
    LOG_TAIL,
    ApprovalState,
    GateState,
    LogLine,
    PersonaUsage,
    Refusal,
    SignalSeen,
    StageState,
    StepState,
    Switch,
    Vote,
)
from quarterdeck.core.journal.statuses import (
    RUN_ACTIVE,
    STEP_DONE,
    ApprovalStatus,
    GateStatus,
    RunStatus,
    StageStatus,
    StepStatus,
)
from quarterdeck.core.lean import lean

#: statuses in which a run stands still: not counted in its active time
HELD = frozenset({RunStatus.PAUSED, RunStatus.WAITING, RunStatus.INTERRUPTED})

__all__ = [
    "LOG_TAIL",
    "ApprovalState",
    "GateState",
    "LogLine",
    "PersonaUsage",
    "Refusal",
    "RunState",
    "SignalSeen",
    "StageState",
    "StepState",
    "Switch",
    "Vote",
    "fold",
]


@lean(repr=False)
class RunState:
    """Everything known about a run, rebuilt from its events."""

    id: str
    workflow: str = ""
    title: str = ""
    _status: RunStatus = RunStatus.PENDING  # read and set as ``status``
    started_at: float | None = None
    finished_at: float | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    started_by: str = ""
    stages: dict[str, StageState] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)
    persona: str | None = None
    switches: list[Switch] = field(default_factory=list)
    personas: dict[str, PersonaUsage] = field(default_factory=dict)
    approvals: dict[str, ApprovalState] = field(default_factory=dict)
    signals: list[SignalSeen] = field(default_factory=list)
    error: str | None = None
    paused: bool = False
    last_seq: int = 0
    token_series: list[tuple[float, int]] = field(default_factory=list)
    log: deque[LogLine] = field(default_factory=lambda: deque(maxlen=5000))
    log_total: int = 0  # lines ever appended to ``log`` (a viewer's "what is new" counter)
    keep_log: bool = False
    # time the run stood still (paused, waiting on an approval, interrupted): closed spans
    # summed, and when the open one began (core/journal/active.py)
    held: float = 0.0
    held_since: float | None = None

    def __repr__(self) -> str:
        """Short, whatever the run's size: ``asyncio.run`` formats the repr of its main
        task's result (this state) when it restores the SIGINT handler, and the dataclass
        repr of a 10,000-step run took tens of milliseconds, twice, at every run's end."""
        steps = sum(len(stage.steps) for stage in self.stages.values())
        return (
            f"RunState(id={self.id!r}, workflow={self.workflow!r}, status={self._status.value!r},"
            f" stages={len(self.stages)}, steps={steps}, last_seq={self.last_seq})"
        )

    @property
    def status(self) -> RunStatus:
        return self._status

    @status.setter
    def status(self, value: str) -> None:
        """Front ends set a store row's status (``interrupted``); a typo fails here."""
        self._status = RunStatus(value)

    # -- queries ----------------------------------------------------------------------

    def step(self, step_id: str) -> StepState | None:
        for stage in self.stages.values():
            if step_id in stage.steps:
                return stage.steps[step_id]
        return None

    def all_steps(self) -> list[StepState]:
        return [s for stage in self.stages.values() for s in stage.steps.values()]

    def pending_approval(self) -> ApprovalState | None:
        """The gate a person can decide now. A run that is not going (ended, or interrupted
        until someone resumes it) has none: its runner will never record a decision, so no
        view may offer one (the journaled approval itself stays ``waiting``)."""
        if self.status not in RUN_ACTIVE:
            return None
        for approval in self.approvals.values():
            if approval.status == ApprovalStatus.WAITING:
                return approval
        return None

    def failing_step(self) -> StepState | None:
        for step in self.all_steps():
            if step.status == StepStatus.FAILED and step.role == "step":
                return step
        return None

    def counts(self) -> tuple[int, int]:
        steps = [s for s in self.all_steps() if s.role == "step"]
        done = sum(1 for s in steps if s.status in STEP_DONE)
        return done, len(steps)

    @property
    def duration(self) -> float | None:
        """Active time (:meth:`active_time`) from the journal's own start and end."""
        if self.started_at is None:
            return None
        return self.active_time(self.started_at, self.finished_at, time.time())

    # -- folding ----------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Fold one event in (the handler for its type, below, reads its typed payload)."""
        if event.seq > self.last_seq:
            self.last_seq = event.seq
        handler = _FOLD.get(event.type)
        if handler is not None:
            was_held = self._status in HELD
            payload = event._payload  # read once and kept (``Event.payload``)
            handler(self, event, payload if payload is not None else event.payload())
            now_held = self._status in HELD
            if now_held and not was_held:
                self.held_since = event.ts
            elif was_held and not now_held and self.held_since is not None:
                self.held += max(0.0, event.ts - self.held_since)
                self.held_since = None

    def active_time(self, started_at: float, finished_at: float | None, now: float) -> float:
        """The run's duration as every view shows it (Home, History, ``runs``, ``show``):
        wall-clock from ``started_at`` to ``finished_at`` (or ``now``) minus the time it
        stood still — paused, waiting on an approval, interrupted until resumed. Retried
        steps count as they ran (their back-off is active run time: the run was not held).
        """
        end = finished_at if finished_at is not None else now
        held = self.held
        if self.held_since is not None:
            held += max(0.0, end - self.held_since)
        return max(0.0, end - started_at - held)

    def _close_persona(self, ts: float) -> None:
        if self.persona and self.persona in self.personas:
            usage = self.personas[self.persona]
            if usage.since is not None:
                usage.seconds += max(0.0, ts - usage.since)
                usage.since = None

    def _stage(self, stage_id: str | None) -> StageState:
        key = stage_id or "?"
        if key not in self.stages:
            self.stages[key] = StageState(key)
        return self.stages[key]

    def _step(self, event: Event) -> StepState:
        stage = self._stage(event.stage)
        key = event.step or "?"
        if key not in stage.steps:
            stage.steps[key] = StepState(key, stage.id)
        return stage.steps[key]

    # -- output -----------------------------------------------------------------------

    def persona_summary(self) -> list[dict[str, Any]]:
        out = []
        now = time.time()
        for usage in self.personas.values():
            seconds = usage.seconds
            if usage.since is not None and self.finished_at is None:
                seconds += max(0.0, now - usage.since)
            out.append(
                {
                    "name": usage.name,
                    "tokens_used": usage.tokens_used,
                    "budget": usage.budget,
                    "remaining": usage.remaining,
                    "seconds": round(seconds, 3),
                    "estimated": usage.estimated,
                    "switches": sum(1 for s in self.switches if s.to == usage.name),
                }
            )
        return out

    def to_json(self) -> dict[str, Any]:
        """The ``run --json`` / ``show --json`` shape (contract), plus extras."""
        from quarterdeck.core.journal.store import _iso

        return {
            "id": self.id,
            "workflow": self.workflow,
            "status": self.status,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "started_by": self.started_by,
            "inputs": self.inputs,
            "error": self.error,
            "stages": [s.to_json() for s in self.stages.values()],
            "personas": self.persona_summary(),
            "memory": self.memory,
            "approvals": [a.to_json() for a in self.approvals.values()],
        }


def fold(run_id: str, events: list[Event], *, keep_log: bool = False) -> RunState:
    state = RunState(run_id, keep_log=keep_log)
    for event in events:
        state.apply(event)
    return state


# -- the fold: one handler per event type ------------------------------------------------------


def _run_started(s: RunState, event: Event, p: RunStarted) -> None:
    s.workflow = p.workflow
    s.title = p.title
    s.inputs = p.inputs
    s.started_by = p.started_by
    s.started_at = event.ts
    s.status = RunStatus.RUNNING
    for stage in p.plan:
        st = StageState(stage.id, stage.title, stage.persona)
        for step in stage.steps:
            st.steps[step.id] = StepState(step.id, stage.id, step.uses, step.needs)
        if stage.gate:
            st.gate = GateState(stage.gate)
        s.stages[st.id] = st
    for name, info in p.personas.items():
        s.personas[name] = PersonaUsage(
            name,
            budget=info.budget,
            title=info.title,
            role=info.role,
            color=info.color,
            model=info.model,
        )


def _run_resumed(s: RunState, event: Event, p: RunResumed) -> None:
    s.status = RunStatus.RUNNING
    s.finished_at = None
    s.error = None
    if s.paused:  # a pause outlives a crash: the run waits for an unpause
        s.status = RunStatus.PAUSED
    if s.persona and s.persona in s.personas:  # it holds the run again
        s.personas[s.persona].since = event.ts


def _run_paused(s: RunState, event: Event, p: RunPaused) -> None:
    s.paused = True
    s.status = RunStatus.PAUSED


def _run_unpaused(s: RunState, event: Event, p: RunUnpaused) -> None:
    s.paused = False
    s.status = RunStatus.WAITING if s.pending_approval() else RunStatus.RUNNING


def _run_finished(s: RunState, event: Event, p: RunFinished) -> None:
    s.status = p.status
    s.error = p.error
    s.finished_at = event.ts
    s._close_persona(event.ts)
    for step in s.all_steps():  # nothing runs on after the end
        _close_attempt(step, event.ts)


def _run_interrupted(s: RunState, event: Event, p: RunInterrupted) -> None:
    s.status = RunStatus.INTERRUPTED
    s.finished_at = event.ts
    s._close_persona(event.ts)
    for step in s.all_steps():
        if step.status == StepStatus.RUNNING:
            step.status = StepStatus.INTERRUPTED
            _close_attempt(step, event.ts)


def _stage_started(s: RunState, event: Event, p: StageStarted) -> None:
    stage = s._stage(event.stage)
    stage.status = StageStatus.RUNNING
    stage.started_at = stage.started_at or event.ts
    if p.persona:
        stage.persona = p.persona


def _stage_finished(s: RunState, event: Event, p: StageFinished) -> None:
    stage = s._stage(event.stage)
    stage.status = p.status
    stage.error = p.error
    stage.finished_at = event.ts


def _stage_skipped(s: RunState, event: Event, p: StageSkipped) -> None:
    stage = s._stage(event.stage)
    stage.status = StageStatus.SKIPPED
    stage.error = p.reason
    stage.finished_at = event.ts
    for step in stage.steps.values():
        if step.status == StepStatus.PENDING:
            step.status = StepStatus.SKIPPED


def _step_started(s: RunState, event: Event, p: StepStarted) -> None:
    step = s._step(event)
    if step.status not in (StepStatus.RUNNING, StepStatus.INTERRUPTED):
        step.failed_attempts = 0  # a new series (first run, or again after it finished)
        step.continued = False
    step.status = StepStatus.RUNNING
    step.attempts = p.attempt or step.attempts + 1
    step.started_at = step.started_at or event.ts
    step.finished_at = None
    step.next_retry_at = None
    step.attempt_started = event.ts
    if p.uses:
        step.uses = p.uses
    if p.role:
        step.role = p.role
        step.parent = p.parent


def _step_output(s: RunState, event: Event, p: StepOutput) -> None:
    step = s._step(event)
    step.lines += len(p.lines)
    if not isinstance(step.tail, deque):
        step.tail = deque(maxlen=LOG_TAIL)
    step.tail.extend(p.lines)
    if s.keep_log:
        # one extend and one count per event: a flood folds 50,000 lines/s here
        ts, stage, step_id, stream = event.ts, event.stage, event.step, p.stream
        s.log.extend([LogLine(ts, stage, step_id, stream, text) for text in p.lines])
        s.log_total += len(p.lines)


def _step_retry(s: RunState, event: Event, p: StepRetry) -> None:
    step = s._step(event)
    step.error = p.error
    step.next_retry_at = event.ts + p.delay
    _close_attempt(step, event.ts)
    step.failed_attempts += 1


def _step_finished(s: RunState, event: Event, p: StepFinished) -> None:
    step = s._step(event)
    step.status = p.status
    step.outputs = p.outputs or {}
    step.error = p.error
    step.via = p.via
    step.finished_at = event.ts
    _close_attempt(step, event.ts)
    step.continued = p.status == StepStatus.FAILED and bool(p.continue_on_error)
    if p.attempt is not None:
        step.attempts = p.attempt
    if s.keep_log and p.error and p.status != StepStatus.SUCCEEDED:
        # the reason belongs where people look when a step fails: its own log
        s.log.append(LogLine(event.ts, event.stage, event.step, "error", f"✗ {p.error}"))
        s.log_total += 1


def _close_attempt(step: StepState, ts: float) -> None:
    if step.attempt_started is not None:
        step.active += max(0.0, ts - step.attempt_started)
        step.attempt_started = None


def _step_process(s: RunState, event: Event, p: StepProcess) -> None:
    step = s._step(event)
    if not isinstance(step.process_groups, list):
        step.process_groups = []
    step.process_groups.append((p.host, p.pgid))


def _step_skipped(s: RunState, event: Event, p: StepSkipped) -> None:
    step = s._step(event)
    step.status = StepStatus.SKIPPED
    step.error = p.reason
    step.finished_at = event.ts


def _gate_evaluated(s: RunState, event: Event, p: GateEvaluated) -> None:
    stage = s._stage(event.stage)
    gate = stage.gate or GateState(p.gate)
    gate.status = GateStatus.PASSED if p.passed else GateStatus.FAILED
    gate.results = p.results
    stage.gate = gate


def _gate_skipped(s: RunState, event: Event, p: GateSkipped) -> None:
    stage = s._stage(event.stage)
    gate = stage.gate or GateState(p.gate)
    gate.status = GateStatus.SKIPPED
    gate.skipped_by = p.by
    gate.reason = p.reason
    stage.gate = gate


def _approval_requested(s: RunState, event: Event, p: ApprovalRequested) -> None:
    approval = ApprovalState(
        id=p.gate,
        stage=event.stage or "",
        status=ApprovalStatus.WAITING,
        prompt=p.prompt,
        evidence=p.evidence,
        approvers=p.approvers,
        min_approvals=p.min_approvals,
        allow_self_approval=bool(p.allow_self_approval),
        requested_at=event.ts,
        timeout_at=p.timeout_at,
        on_timeout=p.on_timeout,
        kind=p.kind or "approval",
        data=p.data if p.data is not None else {},
    )
    previous = s.approvals.get(p.gate)
    if previous is not None and previous.status == ApprovalStatus.WAITING:
        approval.votes = previous.votes
        approval.requested_at = previous.requested_at
    s.approvals[p.gate] = approval
    if event.stage and event.stage in s.stages:
        s.stages[event.stage].approval = approval
    s.status = RunStatus.PAUSED if s.paused else RunStatus.WAITING


def _approval_vote(s: RunState, event: Event, p: ApprovalVote) -> None:
    voted = s.approvals.get(p.gate)
    if voted is not None:
        voted.votes.append(Vote(p.by, p.decision, p.reason, event.ts, p.key))


def _approval_refused(s: RunState, event: Event, p: ApprovalRefused) -> None:
    refused = s.approvals.get(p.gate)
    if refused is not None:
        refused.refusals.append(Refusal(p.by, p.decision, p.why, event.ts))


def _approval_decided(s: RunState, event: Event, p: ApprovalDecided) -> None:
    decided = s.approvals.get(p.gate)
    if decided is not None:
        decided.status = p.decision
        decided.decided_by = p.by
        decided.reason = p.reason
        decided.decided_at = event.ts
        decided.timed_out = bool(p.timed_out)
    if s.status == RunStatus.WAITING:
        s.status = RunStatus.RUNNING


def _persona_switched(s: RunState, event: Event, p: PersonaSwitched) -> None:
    s.switches.append(Switch(p.from_, p.to, p.stage, p.held_seconds, event.ts))
    if p.from_ and p.from_ in s.personas:
        s._close_persona(event.ts)
    s.persona = p.to
    if s.persona:
        usage = s.personas.setdefault(s.persona, PersonaUsage(s.persona))
        usage.since = event.ts


def _tokens_used(s: RunState, event: Event, p: TokensUsed) -> None:
    s.token_series.append((event.ts, p.total))
    if not p.persona:  # a stage without a persona: counted, charged to nobody
        return
    usage = s.personas.setdefault(p.persona, PersonaUsage(p.persona))
    usage.tokens_used = p.used if p.used is not None else usage.tokens_used + p.total
    usage.estimated = usage.estimated or bool(p.estimated)
    if p.budget is not None:
        usage.budget = p.budget


def _budget(s: RunState, event: Event, p: Budget) -> None:
    usage = s.personas.setdefault(p.persona, PersonaUsage(p.persona))
    if p.budget is not None:
        usage.budget = p.budget
    if p.used is not None:
        usage.tokens_used = p.used
    gate = s.approvals.get(p.gate or "")
    if gate is not None and p.outcome in (BudgetOutcome.EXTENDED, BudgetOutcome.REJECTED):
        gate.data["applied"] = True  # a resumed run must not apply it twice


def _signal_received(s: RunState, event: Event, p: SignalReceived) -> None:
    s.signals.append(SignalSeen(p.signal_id, p.kind, p.by, p.reason, p.target, p.data, event.ts))


def _memory_set(s: RunState, event: Event, p: MemorySet) -> None:
    s.memory[p.key] = p.value


_FOLD: dict[str, Callable[[RunState, Event, Any], None]] = {
    EventType.RUN_STARTED: _run_started,
    EventType.RUN_RESUMED: _run_resumed,
    EventType.RUN_PAUSED: _run_paused,
    EventType.RUN_UNPAUSED: _run_unpaused,
    EventType.RUN_FINISHED: _run_finished,
    EventType.RUN_INTERRUPTED: _run_interrupted,
    EventType.STAGE_STARTED: _stage_started,
    EventType.STAGE_FINISHED: _stage_finished,
    EventType.STAGE_SKIPPED: _stage_skipped,
    EventType.STEP_STARTED: _step_started,
    EventType.STEP_OUTPUT: _step_output,
    EventType.STEP_RETRY: _step_retry,
    EventType.STEP_FINISHED: _step_finished,
    EventType.STEP_SKIPPED: _step_skipped,
    EventType.STEP_PROCESS: _step_process,
    EventType.GATE_EVALUATED: _gate_evaluated,
    EventType.GATE_SKIPPED: _gate_skipped,
    EventType.APPROVAL_REQUESTED: _approval_requested,
    EventType.APPROVAL_VOTE: _approval_vote,
    EventType.APPROVAL_REFUSED: _approval_refused,
    EventType.APPROVAL_DECIDED: _approval_decided,
    EventType.PERSONA_SWITCHED: _persona_switched,
    EventType.TOKENS_USED: _tokens_used,
    EventType.BUDGET: _budget,
    EventType.SIGNAL_RECEIVED: _signal_received,
    EventType.MEMORY_SET: _memory_set,
}
