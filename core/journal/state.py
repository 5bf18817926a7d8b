"""A run's state as a fold over its events.

The cockpit, the headless renderer, ``show``, ``attach`` and ``resume`` all build their
picture of a run here, from the same journaled events.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from quarterdeck.core.journal.events import Event, EventType

LOG_TAIL = 20


@dataclass
class StepState:
    id: str
    stage: str
    uses: str = ""
    needs: list[str] = field(default_factory=list)
    status: str = "pending"
    attempts: int = 0
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    role: str = "step"  # step | fallback | on_failure
    parent: str | None = None
    via: str | None = None
    next_retry_at: float | None = None
    lines: int = 0
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_TAIL))

    @property
    def duration(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at if self.finished_at is not None else time.time()
        return max(0.0, end - self.started_at)

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


@dataclass
class GateState:
    id: str
    status: str = "pending"  # pending | passed | failed | skipped
    results: list[dict[str, Any]] = field(default_factory=list)
    skipped_by: str | None = None
    reason: str | None = None


@dataclass
class Vote:
    by: str
    decision: str
    reason: str
    ts: float


@dataclass
class ApprovalState:
    id: str
    stage: str
    status: str = "pending"  # pending | waiting | approved | rejected
    prompt: str = ""
    evidence: list[str] = field(default_factory=list)
    approvers: list[str] = field(default_factory=list)
    min_approvals: int = 1
    allow_self_approval: bool = False
    requested_at: float | None = None
    timeout_at: float | None = None
    on_timeout: str = "reject"
    votes: list[Vote] = field(default_factory=list)
    refusals: list[dict[str, Any]] = field(default_factory=list)
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


@dataclass
class StageState:
    id: str
    title: str = ""
    persona: str | None = None
    status: str = "pending"
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
                "results": self.gate.results,
            }
        if self.approval is not None:
            out["approval"] = self.approval.to_json()
        return out


@dataclass
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


@dataclass
class LogLine:
    ts: float
    stage: str | None
    step: str | None
    stream: str
    text: str


@dataclass
class RunState:
    """Everything known about a run, rebuilt from its events."""

    id: str
    workflow: str = ""
    title: str = ""
    status: str = "pending"
    started_at: float | None = None
    finished_at: float | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    started_by: str = ""
    stages: dict[str, StageState] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)
    persona: str | None = None
    switches: list[dict[str, Any]] = field(default_factory=list)
    personas: dict[str, PersonaUsage] = field(default_factory=dict)
    approvals: dict[str, ApprovalState] = field(default_factory=dict)
    signals: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    paused: bool = False
    last_seq: int = 0
    token_series: list[tuple[float, int]] = field(default_factory=list)
    log: deque[LogLine] = field(default_factory=lambda: deque(maxlen=5000))
    keep_log: bool = False

    # -- queries ----------------------------------------------------------------------

    def step(self, step_id: str) -> StepState | None:
        for stage in self.stages.values():
            if step_id in stage.steps:
                return stage.steps[step_id]
        return None

    def all_steps(self) -> list[StepState]:
        return [s for stage in self.stages.values() for s in stage.steps.values()]

    def pending_approval(self) -> ApprovalState | None:
        for approval in self.approvals.values():
            if approval.status == "waiting":
                return approval
        return None

    def failing_step(self) -> StepState | None:
        for step in self.all_steps():
            if step.status == "failed" and step.role == "step":
                return step
        return None

    def counts(self) -> tuple[int, int]:
        steps = [s for s in self.all_steps() if s.role == "step"]
        done = sum(1 for s in steps if s.status in ("succeeded", "failed", "skipped"))
        return done, len(steps)

    @property
    def duration(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at if self.finished_at is not None else time.time()
        return max(0.0, end - self.started_at)

    # -- folding ----------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        self.last_seq = max(self.last_seq, event.seq)
        d = event.data
        kind = event.type
        if kind == EventType.RUN_STARTED:
            self.workflow = d.get("workflow", "")
            self.title = d.get("title", "")
            self.inputs = d.get("inputs", {})
            self.started_by = d.get("started_by", "")
            self.started_at = event.ts
            self.status = "running"
            for stage in d.get("plan", []):
                st = StageState(stage["id"], stage.get("title", ""), stage.get("persona"))
                for step in stage.get("steps", []):
                    st.steps[step["id"]] = StepState(
                        step["id"], stage["id"], step.get("uses", ""), step.get("needs", [])
                    )
                if stage.get("gate"):
                    st.gate = GateState(stage["gate"])
                self.stages[st.id] = st
            for name, info in d.get("personas", {}).items():
                self.personas[name] = PersonaUsage(
                    name,
                    budget=int(info.get("budget", 0)),
                    title=str(info.get("title", "")),
                    role=str(info.get("role", "")),
                    color=str(info.get("color", "")),
                    model=str(info.get("model", "")),
                )
        elif kind == EventType.RUN_RESUMED:
            self.status = "running"
            self.finished_at = None
            self.error = None
            self.paused = False
            if self.persona and self.persona in self.personas:  # it holds the run again
                self.personas[self.persona].since = event.ts
        elif kind == EventType.RUN_PAUSED:
            self.paused = True
            self.status = "paused"
        elif kind == EventType.RUN_UNPAUSED:
            self.paused = False
            self.status = "waiting" if self.pending_approval() else "running"
        elif kind == EventType.RUN_FINISHED:
            self.status = d.get("status", "failed")
            self.error = d.get("error")
            self.finished_at = event.ts
            self._close_persona(event.ts)
        elif kind == EventType.RUN_INTERRUPTED:
            self.status = "interrupted"
            self.finished_at = event.ts
            self._close_persona(event.ts)
            for step in self.all_steps():
                if step.status == "running":
                    step.status = "interrupted"
        elif kind == EventType.STAGE_STARTED:
            stage = self._stage(event.stage)
            stage.status = "running"
            stage.started_at = stage.started_at or event.ts
            if d.get("persona"):
                stage.persona = d["persona"]
        elif kind == EventType.STAGE_FINISHED:
            stage = self._stage(event.stage)
            stage.status = d.get("status", "failed")
            stage.error = d.get("error")
            stage.finished_at = event.ts
        elif kind == EventType.STAGE_SKIPPED:
            stage = self._stage(event.stage)
            stage.status = "skipped"
            stage.error = d.get("reason")
            stage.finished_at = event.ts
            for step in stage.steps.values():
                if step.status == "pending":
                    step.status = "skipped"
        elif kind == EventType.STEP_STARTED:
            step = self._step(event)
            step.status = "running"
            step.attempts = int(d.get("attempt", step.attempts + 1))
            step.started_at = step.started_at or event.ts
            step.finished_at = None
            step.next_retry_at = None
            if d.get("uses"):
                step.uses = d["uses"]
            if d.get("role"):
                step.role = d["role"]
                step.parent = d.get("parent")
        elif kind == EventType.STEP_OUTPUT:
            step = self._step(event)
            lines = d.get("lines", [])
            step.lines += len(lines)
            step.tail.extend(lines)
            if self.keep_log:
                stream = d.get("stream", "stdout")
                for text in lines:
                    self.log.append(LogLine(event.ts, event.stage, event.step, stream, text))
        elif kind == EventType.STEP_RETRY:
            step = self._step(event)
            step.error = d.get("error")
            step.next_retry_at = event.ts + float(d.get("delay", 0))
        elif kind == EventType.STEP_FINISHED:
            step = self._step(event)
            step.status = d.get("status", "failed")
            step.outputs = d.get("outputs", {}) or {}
            step.error = d.get("error")
            step.via = d.get("via")
            step.finished_at = event.ts
            if "attempt" in d:
                step.attempts = int(d["attempt"])
        elif kind == EventType.STEP_SKIPPED:
            step = self._step(event)
            step.status = "skipped"
            step.error = d.get("reason")
            step.finished_at = event.ts
        elif kind == EventType.GATE_EVALUATED:
            stage = self._stage(event.stage)
            gate = stage.gate or GateState(d.get("gate", "gate"))
            gate.status = "passed" if d.get("passed") else "failed"
            gate.results = d.get("results", [])
            stage.gate = gate
        elif kind == EventType.GATE_SKIPPED:
            stage = self._stage(event.stage)
            gate = stage.gate or GateState(d.get("gate", "gate"))
            gate.status = "skipped"
            gate.skipped_by = d.get("by")
            gate.reason = d.get("reason")
            stage.gate = gate
        elif kind == EventType.APPROVAL_REQUESTED:
            gate_id = d["gate"]
            approval = ApprovalState(
                id=gate_id,
                stage=event.stage or "",
                status="waiting",
                prompt=d.get("prompt", ""),
                evidence=d.get("evidence", []),
                approvers=d.get("approvers", []),
                min_approvals=int(d.get("min_approvals", 1)),
                allow_self_approval=bool(d.get("allow_self_approval", False)),
                requested_at=event.ts,
                timeout_at=d.get("timeout_at"),
                on_timeout=d.get("on_timeout", "reject"),
                kind=d.get("kind", "approval"),
                data=d.get("data", {}),
            )
            previous = self.approvals.get(gate_id)
            if previous is not None and previous.status == "waiting":
                approval.votes = previous.votes
                approval.requested_at = previous.requested_at
            self.approvals[gate_id] = approval
            if event.stage and event.stage in self.stages:
                self.stages[event.stage].approval = approval
            self.status = "paused" if self.paused else "waiting"
        elif kind == EventType.APPROVAL_VOTE:
            voted = self.approvals.get(d["gate"])
            if voted is not None:
                voted.votes.append(
                    Vote(d.get("by", ""), d.get("decision", ""), d.get("reason", ""), event.ts)
                )
        elif kind == EventType.APPROVAL_REFUSED:
            refused = self.approvals.get(d["gate"])
            if refused is not None:
                refused.refusals.append(d)
        elif kind == EventType.APPROVAL_DECIDED:
            decided = self.approvals.get(d["gate"])
            if decided is not None:
                decision = d.get("decision", "rejected")
                decided.status = decision
                decided.decided_by = d.get("by")
                decided.reason = d.get("reason")
                decided.decided_at = event.ts
                decided.timed_out = bool(d.get("timed_out"))
            if self.status == "waiting":
                self.status = "running"
        elif kind == EventType.PERSONA_SWITCHED:
            self.switches.append({**d, "ts": event.ts})
            previous = d.get("from")
            if previous and previous in self.personas:
                self._close_persona(event.ts)
            self.persona = d.get("to")
            if self.persona:
                usage = self.personas.setdefault(self.persona, PersonaUsage(self.persona))
                usage.since = event.ts
        elif kind == EventType.TOKENS_USED:
            name = d.get("persona") or ""
            if not name:  # a stage without a persona: counted, charged to nobody
                self.token_series.append((event.ts, int(d.get("total", 0))))
                return
            usage = self.personas.setdefault(name, PersonaUsage(name))
            usage.tokens_used = int(d.get("used", usage.tokens_used + int(d.get("total", 0))))
            usage.estimated = usage.estimated or bool(d.get("estimated"))
            if "budget" in d:
                usage.budget = int(d["budget"])
            self.token_series.append((event.ts, int(d.get("total", 0))))
        elif kind == EventType.BUDGET:
            name = d.get("persona") or ""
            usage = self.personas.setdefault(name, PersonaUsage(name))
            if "budget" in d:
                usage.budget = int(d["budget"])
            if "used" in d:
                usage.tokens_used = int(d["used"])
            budget_gate = self.approvals.get(d.get("gate") or "")
            if budget_gate is not None and d.get("outcome") in ("extended", "rejected"):
                budget_gate.data["applied"] = True  # a resumed run must not apply it twice
        elif kind == EventType.SIGNAL_RECEIVED:
            self.signals.append({**d, "ts": event.ts})
        elif kind == EventType.MEMORY_SET:
            self.memory[d["key"]] = d.get("value")

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
                    "switches": sum(1 for s in self.switches if s.get("to") == usage.name),
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
