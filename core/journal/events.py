"""Typed run events: what happened, in order, committed before anyone acts on it.

A run's state is a fold over these events (:mod:`quarterdeck.core.journal.state`). Each event type's
``data`` keys are listed beside it; readers must tolerate extra keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class EventType(StrEnum):
    RUN_STARTED = "run.started"  # workflow, title, inputs, plan, started_by, concurrency
    RUN_RESUMED = "run.resumed"  # by, pid
    RUN_PAUSED = "run.paused"  # by, reason
    RUN_UNPAUSED = "run.unpaused"  # by, reason
    RUN_FINISHED = "run.finished"  # status, error
    RUN_INTERRUPTED = "run.interrupted"  # reason
    STAGE_STARTED = "stage.started"  # persona
    STAGE_FINISHED = "stage.finished"  # status, error
    STAGE_SKIPPED = "stage.skipped"  # reason
    STEP_STARTED = "step.started"  # attempt, uses, parent (for fallback/on_failure)
    STEP_OUTPUT = "step.output"  # stream, lines
    STEP_RETRY = "step.retry"  # attempt, delay, error
    STEP_FINISHED = "step.finished"  # status, attempt, outputs, error, duration, via
    STEP_SKIPPED = "step.skipped"  # reason
    GATE_EVALUATED = "gate.evaluated"  # gate, passed, results: [{condition, passed, error}]
    GATE_SKIPPED = "gate.skipped"  # gate, by, reason
    APPROVAL_REQUESTED = "approval.requested"  # gate, prompt, evidence, approvers, ...
    APPROVAL_VOTE = "approval.vote"  # gate, by, decision, reason
    APPROVAL_REFUSED = "approval.refused"  # gate, by, decision, why
    APPROVAL_DECIDED = "approval.decided"  # gate, decision, by, reason, timed_out
    PERSONA_SWITCHED = "persona.switched"  # from, to, stage, held_seconds
    TOKENS_USED = "tokens.used"  # persona, model, prompt, completion, total, estimated, ...
    BUDGET = "budget"  # persona, used, budget, remaining, policy, outcome
    SIGNAL_RECEIVED = "signal.received"  # signal_id, kind, by, reason, target
    MEMORY_SET = "memory.set"  # key, value


TERMINAL_RUN_STATUSES = frozenset({"succeeded", "failed", "cancelled", "rejected", "nothing_to_do"})
ACTIVE_RUN_STATUSES = frozenset({"pending", "running", "waiting", "paused"})


@dataclass(slots=True)
class Event:
    """One journaled event. ``seq`` is assigned by the store, 1-based per run."""

    type: str
    run_id: str = ""
    stage: str | None = None
    step: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    ts: float = 0.0
    seq: int = 0

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
        return json.dumps(self.to_dict(), default=str, separators=(",", ":"))
