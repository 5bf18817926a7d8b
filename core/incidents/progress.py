"""What the run's own events say about an incident's progress and its alert.

People move an incident, but the automation often knows first: the triage stage found a
root cause, the hotfix's health watch passed, the rollback finished. :class:`RunProgress`
reads those facts from the run's events as *marks* — a milestone the run has earned and
when — and remembers the last health probe. The incident fold
(:class:`~quarterdeck.core.incidents.model.Incident`) applies a mark only once a person
has acknowledged (nobody is working an unacknowledged incident), never before the
acknowledgement and only forward.

The rules, kept small and generic so any incident workflow gets them:

- **investigating**: the run's first stage started (it is looking).
- **identified**: the stage that recorded the root cause (memory ``root_cause``, or a
  step output ``root_cause``) finished successfully.
- **mitigated**: a health check passed after the root cause was identified (the hotfix's
  watch), or a stage's ``on_failure`` steps all succeeded (a finished rollback).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from quarterdeck.core.journal.events import (
    Event,
    MemorySet,
    StageFinished,
    StageStarted,
    StepFinished,
    StepStarted,
)
from quarterdeck.core.journal.statuses import StageStatus, StepStatus

HEALTH_ACTION = "http.health_check"


@dataclass(frozen=True)
class Mark:
    """A milestone the run earned at ``ts``, and why (a timeline line)."""

    milestone: str
    ts: float
    why: str


@dataclass(frozen=True)
class Probe:
    """The last health check's verdict: when it finished, whether it passed, which step."""

    ts: float
    passed: bool
    step: str


@dataclass
class RunProgress:
    """Milestone marks and the last health probe, folded from a run's events."""

    marks: list[Mark] = field(default_factory=list)
    probe: Probe | None = None
    _uses: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    _cause_stage: str | None = None
    _rollbacks: dict[str, list[bool]] = field(default_factory=dict)

    def _mark(self, milestone: str, ts: float, why: str) -> None:
        if not any(m.milestone == milestone for m in self.marks):
            self.marks.append(Mark(milestone, ts, why))

    def _has(self, milestone: str) -> bool:
        return any(m.milestone == milestone for m in self.marks)

    def apply(self, event: Event) -> None:
        payload = event.payload()
        stage = event.stage or ""
        match payload:
            case StageStarted():
                self._mark("investigating", event.ts, f"the run started stage {stage}")
            case MemorySet() if payload.key == "root_cause":
                self._cause_stage = stage
                if not stage:
                    self._mark("identified", event.ts, "the run recorded the root cause")
            case StepStarted():
                self._uses[(stage, event.step or "")] = (payload.uses, payload.role or "step")
            case StepFinished():
                self._step_finished(event, payload)
            case StageFinished():
                ok = payload.status == StageStatus.SUCCEEDED
                if ok and stage and stage == self._cause_stage:
                    self._mark("identified", event.ts, f"stage {stage} found the root cause")
                done = self._rollbacks.pop(stage, None)
                if done and all(done):
                    self._mark("mitigated", event.ts, f"the rollback in stage {stage} finished")

    def _step_finished(self, event: Event, payload: StepFinished) -> None:
        stage, step = event.stage or "", event.step or ""
        uses, role = self._uses.get((stage, step), ("", "step"))
        passed = payload.status == StepStatus.SUCCEEDED
        if role == "on_failure":
            self._rollbacks.setdefault(stage, []).append(passed)
        if isinstance(payload.outputs, dict) and payload.outputs.get("root_cause"):
            self._cause_stage = self._cause_stage or stage
        if uses != HEALTH_ACTION or payload.status == StepStatus.SKIPPED:
            return
        self.probe = Probe(event.ts, passed, step)
        if passed and role == "step" and self._has("identified"):
            self._mark("mitigated", event.ts, f"health watch {step} passed")
