"""Typed run events: what happened, in order, committed before anyone acts on it.

A run's state is a fold over these events (:mod:`quarterdeck.core.journal.state`). Each
event type has one payload type below, the single statement of its ``data`` keys: writers
build it and journal ``to_data()``, readers call ``Payload.of(event)`` (see
:mod:`quarterdeck.core.journal.payload` for how absent and unknown keys are read).

Slightly over 500 lines on purpose: every event's keys are stated here, in one place, so a
reader looking for what ``step.finished`` carries finds it with one search.
"""

from __future__ import annotations

import json
from dataclasses import field
from enum import StrEnum
from typing import Any, Self

from quarterdeck.core.journal.payload import (
    OMIT,
    Payload,
    Record,
    dict_of,
    enum,
    list_of,
    meta,
    number,
    record,
)
from quarterdeck.core.journal.payload import (
    PayloadError as PayloadError,  # re-exported: readers catch it from here
)
from quarterdeck.core.journal.statuses import (
    ApprovalStatus,
    RunStatus,
    StageStatus,
    StepStatus,
)
from quarterdeck.core.lean import lean


class EventType(StrEnum):
    RUN_STARTED = "run.started"
    RUN_RESUMED = "run.resumed"
    RUN_PAUSED = "run.paused"
    RUN_UNPAUSED = "run.unpaused"
    RUN_FINISHED = "run.finished"
    RUN_INTERRUPTED = "run.interrupted"
    STAGE_STARTED = "stage.started"
    STAGE_FINISHED = "stage.finished"
    STAGE_SKIPPED = "stage.skipped"
    STEP_STARTED = "step.started"
    STEP_OUTPUT = "step.output"
    STEP_RETRY = "step.retry"
    STEP_FINISHED = "step.finished"
    STEP_SKIPPED = "step.skipped"
    STEP_PROCESS = "step.process"
    GATE_EVALUATED = "gate.evaluated"
    GATE_SKIPPED = "gate.skipped"
    APPROVAL_REQUESTED = "approval.requested"
    APPROVAL_VOTE = "approval.vote"
    APPROVAL_REFUSED = "approval.refused"
    APPROVAL_DECIDED = "approval.decided"
    PERSONA_SWITCHED = "persona.switched"
    TOKENS_USED = "tokens.used"
    BUDGET = "budget"
    SIGNAL_RECEIVED = "signal.received"
    MEMORY_SET = "memory.set"
    CIRCUIT_OPENED = "circuit.opened"
    CIRCUIT_HALF_OPEN = "circuit.half_open"
    CIRCUIT_CLOSED = "circuit.closed"


_STATUS = enum(RunStatus)
_INT = number(int)


@lean(slots=True)
class Event:
    """One journaled event. ``seq`` is assigned by the store, 1-based per run."""

    type: str
    run_id: str = ""
    stage: str | None = None
    step: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    ts: float = 0.0
    seq: int = 0
    _payload: Payload | None = field(default=None, init=False, repr=False, compare=False)

    def payload(self) -> Payload | None:
        """The typed ``data`` (None for a type without a payload), read once and kept."""
        if self._payload is None:
            kind = PAYLOADS.get(self.type)
            if kind is None:
                return None
            self._payload = kind.from_data(self.data)
        return self._payload

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "ts": self.ts,
            "run_id": self.run_id,
            "type": self.type,
            "stage": self.stage,
            "step": self.step,
            "data": self.data,
        }

    def to_json(self) -> str:
        return _COMPACT(self.to_dict())


#: ``json.dumps(..., default=str, separators=(",", ":"))``, its encoder made once: with any
#: option ``json.dumps`` builds a new encoder per call, a third of a line's cost when every
#: event of a 10,000-step run is written (``--events``, ``events.jsonl``).
_COMPACT = json.JSONEncoder(default=str, separators=(",", ":")).encode


class _Of(Payload):
    __slots__ = ()

    @classmethod
    def of(cls, event: Event) -> Self:
        """``event``'s payload as this type (the event must be one of ``TYPES``)."""
        found = event.payload()
        if not isinstance(found, cls):
            raise PayloadError(f"a {event.type} event has no {cls.__name__} payload")
        return found


# -- parts of payloads -------------------------------------------------------------------------


@record
class PlanStep(Record):
    id: str = field(metadata=meta("?"))
    uses: str = ""
    needs: list[str] = field(default_factory=list)


@record
class PlanStage(Record):
    id: str = field(metadata=meta("?"))
    title: str = ""
    persona: str | None = None
    approval: str | None = None
    gate: str | None = None
    steps: list[PlanStep] = field(default_factory=list, metadata=meta(parse=list_of(PlanStep)))


@record
class PersonaInfo(Record):
    budget: int = field(default=0, metadata=meta(parse=_INT))
    title: str = ""
    color: str = ""
    role: str = ""
    model: str = ""


@record
class GateResult(Record):
    condition: str = field(metadata=meta(""))
    kind: str = "all"  # all | any
    passed: bool = False
    error: str | None = field(default=None, metadata=OMIT)


# -- run ----------------------------------------------------------------------------------------


@record
class RunStarted(_Of):
    TYPES = (EventType.RUN_STARTED,)
    workflow: str = field(metadata=meta(""))
    title: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)
    plan: list[PlanStage] = field(default_factory=list, metadata=meta(parse=list_of(PlanStage)))
    started_by: str = ""
    personas: dict[str, PersonaInfo] = field(
        default_factory=dict, metadata=meta(parse=dict_of(PersonaInfo))
    )
    pid: int | None = None


@record
class RunResumed(_Of):
    TYPES = (EventType.RUN_RESUMED,)
    by: str = field(metadata=meta(""))
    pid: int | None = None


@record
class RunPaused(_Of):
    """Paused (or, as :class:`RunUnpaused`, unpaused) by a signal."""

    TYPES = (EventType.RUN_PAUSED,)
    by: str = field(metadata=meta(""))
    reason: str = ""


@record
class RunUnpaused(_Of):
    TYPES = (EventType.RUN_UNPAUSED,)
    by: str = field(metadata=meta(""))
    reason: str = ""


@record
class RunFinished(_Of):
    TYPES = (EventType.RUN_FINISHED,)
    status: RunStatus = field(metadata=meta(RunStatus.FAILED, parse=_STATUS))
    error: str | None = None


@record
class RunInterrupted(_Of):
    TYPES = (EventType.RUN_INTERRUPTED,)
    reason: str = field(metadata=meta("interrupted"))


# -- stages -------------------------------------------------------------------------------------


@record
class StageStarted(_Of):
    TYPES = (EventType.STAGE_STARTED,)
    persona: str | None = None


@record
class StageFinished(_Of):
    TYPES = (EventType.STAGE_FINISHED,)
    status: StageStatus = field(metadata=meta(StageStatus.FAILED, parse=enum(StageStatus)))
    error: str | None = field(default=None, metadata=OMIT)


@record
class StageSkipped(_Of):
    TYPES = (EventType.STAGE_SKIPPED,)
    reason: str | None = field(metadata=meta(None))


# -- steps --------------------------------------------------------------------------------------


@record
class StepStarted(_Of):
    """``attempt`` 0 is a journal that did not say (readers count on from the last one)."""

    TYPES = (EventType.STEP_STARTED,)
    attempt: int = field(metadata=meta(0, parse=_INT))
    uses: str = ""
    role: str = field(
        default="step", metadata=meta("")
    )  # step | fallback | on_failure ("": not said)
    parent: str | None = None  # the step a fallback stands in for


@record
class StepOutput(_Of):
    TYPES = (EventType.STEP_OUTPUT,)
    stream: str = "stdout"  # stdout | stderr
    lines: list[str] = field(default_factory=list)


@record
class StepRetry(_Of):
    TYPES = (EventType.STEP_RETRY,)
    attempt: int = field(metadata=meta(0, parse=_INT))
    delay: float = field(metadata=meta(0.0))  # as written: 2 stays 2 in the narration
    error: str | None = field(metadata=meta(None))


@record
class StepFinished(_Of):
    """``attempt`` is None only in a journal that did not say."""

    TYPES = (EventType.STEP_FINISHED,)
    status: StepStatus = field(metadata=meta(StepStatus.FAILED, parse=enum(StepStatus)))
    attempt: int | None = field(default=None, metadata=meta(omit=True, parse=_INT))
    outputs: dict[str, Any] | None = field(default=None, metadata=OMIT)
    error: str | None = field(default=None, metadata=OMIT)
    duration: float | None = field(default=None, metadata=OMIT)
    via: str | None = field(default=None, metadata=OMIT)  # the fallback that succeeded in its place
    continue_on_error: bool | None = field(default=None, metadata=OMIT)


@record
class StepSkipped(_Of):
    TYPES = (EventType.STEP_SKIPPED,)
    reason: str | None = field(metadata=meta(None))


@record
class StepProcess(_Of):
    """A step started a process group; ``resume`` kills what is left of an in-flight
    step's groups (on this host) before running the step again."""

    TYPES = (EventType.STEP_PROCESS,)
    pid: int = field(metadata=meta(0, parse=_INT))
    pgid: int = field(metadata=meta(0, parse=_INT))
    host: str = field(metadata=meta(""))


# -- gates and approvals ---------------------------------------------------------------------


@record
class GateEvaluated(_Of):
    TYPES = (EventType.GATE_EVALUATED,)
    gate: str = field(metadata=meta("gate"))
    passed: bool = field(metadata=meta(False))
    results: list[GateResult] = field(
        default_factory=list, metadata=meta(parse=list_of(GateResult))
    )


@record
class GateSkipped(_Of):
    TYPES = (EventType.GATE_SKIPPED,)
    gate: str = field(metadata=meta("gate"))
    by: str | None = field(metadata=meta(None))
    reason: str | None = field(metadata=meta(None))


@record
class ApprovalRequested(_Of):
    """A stage's approval, or (``kind: budget``) a token budget extension."""

    TYPES = (EventType.APPROVAL_REQUESTED,)
    gate: str = field(metadata=meta(""))
    kind: str | None = field(default=None, metadata=OMIT)  # approval (when absent) | budget
    prompt: str = ""
    evidence: list[str] = field(default_factory=list)
    approvers: list[str] = field(default_factory=list)
    min_approvals: int = field(default=1, metadata=meta(parse=_INT))
    allow_self_approval: bool = False
    timeout_at: float | None = None
    on_timeout: str = "reject"  # reject | approve | fail
    data: dict[str, Any] | None = field(default=None, metadata=OMIT)  # a budget gate's figures
    command: str | None = field(default=None, metadata=OMIT)  # how to approve it from a shell


@record
class ApprovalVote(_Of):
    TYPES = (EventType.APPROVAL_VOTE,)
    gate: str = field(metadata=meta(""))
    by: str = field(metadata=meta(""))
    decision: ApprovalStatus = field(
        metadata=meta(ApprovalStatus.REJECTED, parse=enum(ApprovalStatus))
    )
    reason: str = ""
    # a signed vote (core/identity.py): the SSH signature and the signing key's fingerprint,
    # so `quarterdeck verify` re-checks it anywhere; empty for the runner's own identity
    signature: str = ""
    key: str = ""


@record
class ApprovalRefused(_Of):
    TYPES = (EventType.APPROVAL_REFUSED,)
    gate: str = field(metadata=meta(""))
    by: str = field(metadata=meta(""))
    decision: ApprovalStatus = field(
        metadata=meta(ApprovalStatus.REJECTED, parse=enum(ApprovalStatus))
    )
    why: str = field(metadata=meta(""))


@record
class ApprovalDecided(_Of):
    TYPES = (EventType.APPROVAL_DECIDED,)
    gate: str = field(metadata=meta(""))
    decision: ApprovalStatus = field(
        metadata=meta(ApprovalStatus.REJECTED, parse=enum(ApprovalStatus))
    )
    by: str | None = field(metadata=meta(None))
    reason: str | None = None
    timed_out: bool | None = field(default=None, metadata=OMIT)


# -- personas and tokens ---------------------------------------------------------------------


@record
class PersonaSwitched(_Of):
    TYPES = (EventType.PERSONA_SWITCHED,)
    to: str | None = field(metadata=meta(None))
    from_: str | None = field(default=None, metadata=meta(key="from"))
    stage: str | None = None
    held_seconds: float | None = None  # how long ``from_`` held the run


@record
class TokensUsed(_Of):
    """A model call's usage; the budget figures only when a persona was charged."""

    TYPES = (EventType.TOKENS_USED,)
    persona: str | None = field(metadata=meta(None))
    model: str = ""
    prompt: int = field(default=0, metadata=meta(parse=_INT))
    completion: int = field(default=0, metadata=meta(parse=_INT))
    total: int = field(default=0, metadata=meta(parse=_INT))
    used: int | None = field(default=None, metadata=meta(omit=True, parse=_INT))
    budget: int | None = field(default=None, metadata=meta(omit=True, parse=_INT))
    remaining: int | None = field(default=None, metadata=meta(omit=True, parse=_INT))
    estimated: bool = False


class BudgetOutcome(StrEnum):
    WARNED = "warned"
    STOPPED = "stopped"
    APPROVAL_REQUESTED = "approval_requested"
    REJECTED = "rejected"
    EXTENDED = "extended"
    EXCEEDED = "exceeded"


@record
class Budget(_Of):
    """What the budget policy decided about a call that would not fit (or went over)."""

    TYPES = (EventType.BUDGET,)
    persona: str = field(metadata=meta(""))
    used: int = field(metadata=meta(0, parse=_INT))
    budget: int = field(metadata=meta(0, parse=_INT))
    remaining: int = field(metadata=meta(0, parse=_INT))
    policy: str = field(metadata=meta(""))  # warn | approve | fail
    need: int | None = field(default=None, metadata=meta(omit=True, parse=_INT))
    reserved: int | None = field(default=None, metadata=meta(omit=True, parse=_INT))
    outcome: BudgetOutcome | None = field(metadata=meta(None, parse=enum(BudgetOutcome)))
    gate: str | None = field(default=None, metadata=OMIT)
    extend_by: int | None = field(default=None, metadata=meta(omit=True, parse=_INT))


# -- signals, memory, circuits ---------------------------------------------------------------


@record
class SignalReceived(_Of):
    TYPES = (EventType.SIGNAL_RECEIVED,)
    signal_id: int = field(metadata=meta(0))
    kind: str = field(metadata=meta(""))
    by: str = field(metadata=meta(""))
    reason: str = ""
    target: str | None = None
    data: dict[str, Any] | None = field(default=None, metadata=OMIT)  # a note's


@record
class MemorySet(_Of):
    TYPES = (EventType.MEMORY_SET,)
    key: str = field(metadata=meta(""))
    value: Any = None


@record
class CircuitChanged(_Of):
    """A circuit breaker opened, half-opened or closed (journaled by an action)."""

    TYPES = (EventType.CIRCUIT_OPENED, EventType.CIRCUIT_HALF_OPEN, EventType.CIRCUIT_CLOSED)
    target: str = field(metadata=meta(""))
    state: str = field(metadata=meta(""))  # closed | open | half_open
    failures: int = field(metadata=meta(0))
    failure_threshold: int = field(metadata=meta(0))
    window: float = field(metadata=meta(0.0))
    cooldown: float = field(metadata=meta(0.0))
    retry_in: float = field(metadata=meta(0.0))
    times_opened: int = field(metadata=meta(0))
    last_error: str | None = None


PAYLOADS: dict[str, type[Payload]] = {
    kind: cls
    for cls in (
        RunStarted,
        RunResumed,
        RunPaused,
        RunUnpaused,
        RunFinished,
        RunInterrupted,
        StageStarted,
        StageFinished,
        StageSkipped,
        StepStarted,
        StepOutput,
        StepRetry,
        StepFinished,
        StepSkipped,
        StepProcess,
        GateEvaluated,
        GateSkipped,
        ApprovalRequested,
        ApprovalVote,
        ApprovalRefused,
        ApprovalDecided,
        PersonaSwitched,
        TokensUsed,
        Budget,
        SignalReceived,
        MemorySet,
        CircuitChanged,
    )
    for kind in cls.TYPES
}


def event(
    payload: Payload,
    run_id: str = "",
    stage: str | None = None,
    step: str | None = None,
    *,
    ts: float = 0.0,
    seq: int = 0,
    kind: str | None = None,
) -> Event:
    """An :class:`Event` carrying ``payload`` (``kind`` picks one of several ``TYPES``)."""
    chosen = kind or payload.TYPES[0]
    if chosen not in payload.TYPES:
        raise PayloadError(f"{type(payload).__name__} is not a {chosen} payload")
    built = Event(chosen, run_id, stage, step, payload.to_data(), ts, seq)
    built._payload = payload
    return built


def parse(event: Event, *, strict: bool = False) -> Payload | None:
    """``event``'s payload read afresh (``strict``: every key known, none missing)."""
    kind = PAYLOADS.get(event.type)
    return None if kind is None else kind.from_data(event.data, strict=strict)
