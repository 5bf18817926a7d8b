"""The parts of a run's state: its stages, steps, gates, approvals and personas.

:mod:`quarterdeck.core.journal.state` folds events into these; they live apart from the
fold so each module stays one concern (and short).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import field
from typing import Any

from quarterdeck.core.journal.events import GateResult
from quarterdeck.core.journal.statuses import (
    ApprovalStatus,
    GateStatus,
    StageStatus,
    StepStatus,
)
from quarterdeck.core.lean import lean

LOG_TAIL = 20


@lean(slots=True)  # one per step: no per-instance dict (a 10,000-step run holds 10,000)
class StepState:
    id: str
    stage: str
    uses: str = ""
    needs: list[str] = field(default_factory=list)
    status: StepStatus = StepStatus.PENDING
    attempts: int = 0
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    role: str = "step"  # step | fallback | on_failure
    parent: str | None = None
    via: str | None = None
    next_retry_at: float | None = None
    # recovery (see docs/architecture.md, "Recovery semantics"): failed attempts of the
    # current series count against ``max_attempts`` across resumes; a failure let through
    # by ``continue_on_error`` is done
    failed_attempts: int = 0
    continued: bool = False
    lines: int = 0
    # (host, pgid); the last LOG_TAIL output lines. Empty tuples until the first one:
    # most steps start no process and many print nothing (a deque is ~600 bytes)
    process_groups: list[tuple[str, int]] | tuple[()] = ()
    tail: deque[str] | tuple[()] = ()
    active: float = 0.0  # time spent in finished attempts (retry back-offs not counted)
    attempt_started: float | None = None  # when the attempt in flight began

    def active_time(self, now: float) -> float | None:
        """How long the step ran: the sum of its attempts, not the idle gaps between them
        (one definition, used by every view and by ``show``)."""
        if self.started_at is None:
            return None
        if self.attempt_started is None:
            if self.active == 0.0 and self.finished_at is not None:
                return max(0.0, self.finished_at - self.started_at)  # no per-attempt events
            return self.active
        return self.active + max(0.0, now - self.attempt_started)

    @property
    def duration(self) -> float | None:
        return self.active_time(time.time())

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "uses": self.uses,
            "status": self.status,
            "attempts": self.attempts,
            "outputs": self.outputs,
            "error": self.error,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "role": self.role,
        }


@lean
class GateState:
    id: str
    status: GateStatus = GateStatus.PENDING
    results: list[GateResult] = field(default_factory=list)
    skipped_by: str | None = None
    reason: str | None = None


@lean
class Vote:
    by: str
    decision: ApprovalStatus
    reason: str
    ts: float
    key: str = ""  # the signing key's fingerprint (one key, one person)


@lean
class Refusal:
    """A decision the gate's rules refused (``approval.refused``): who, and why not."""

    by: str
    decision: ApprovalStatus
    why: str
    ts: float


@lean
class ApprovalState:
    id: str
    stage: str
    status: ApprovalStatus = ApprovalStatus.PENDING
    prompt: str = ""
    evidence: list[str] = field(default_factory=list)
    approvers: list[str] = field(default_factory=list)
    min_approvals: int = 1
    allow_self_approval: bool = False
    requested_at: float | None = None
    timeout_at: float | None = None
    on_timeout: str = "reject"
    votes: list[Vote] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    decided_by: str | None = None
    reason: str | None = None
    decided_at: float | None = None
    timed_out: bool = False
    kind: str = "approval"  # approval | budget
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "stage": self.stage,
            "status": self.status,
            "prompt": self.prompt,
            "approvers": self.approvers,
            "min_approvals": self.min_approvals,
            "votes": [v.__dict__ for v in self.votes],
            "decided_by": self.decided_by,
            "reason": self.reason,
            "timed_out": self.timed_out,
        }


@lean
class StageState:
    id: str
    title: str = ""
    persona: str | None = None
    status: StageStatus = StageStatus.PENDING
    steps: dict[str, StepState] = field(default_factory=dict)
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    gate: GateState | None = None
    approval: ApprovalState | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "persona": self.persona,
            "status": self.status,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "error": self.error,
            "steps": [s.to_json() for s in self.steps.values()],
        }
        if self.gate is not None:
            out["gate"] = {
                "id": self.gate.id,
                "status": self.gate.status,
                "results": [r.to_data() for r in self.gate.results],
            }
        if self.approval is not None:
            out["approval"] = self.approval.to_json()
        return out


@lean
class PersonaUsage:
    name: str
    budget: int = 0
    title: str = ""
    role: str = ""
    color: str = ""
    model: str = ""
    tokens_used: int = 0
    estimated: bool = False
    seconds: float = 0.0
    since: float | None = None

    @property
    def remaining(self) -> int:
        return self.budget - self.tokens_used


@lean
class Switch:
    """A persona hand-over (``persona.switched``): from whom, to whom, and when."""

    from_: str | None
    to: str | None
    stage: str | None
    held_seconds: float | None  # how long ``from_`` held the run
    ts: float


@lean
class SignalSeen:
    """A signal the run acted on (``signal.received``), and when."""

    signal_id: int
    kind: str
    by: str
    reason: str
    target: str | None
    data: dict[str, Any] | None  # a note's
    ts: float


@lean
class LogLine:
    ts: float
    stage: str | None
    step: str | None
    stream: str
    text: str
