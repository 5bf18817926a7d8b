"""What a resumed run reuses from its journal, and what it does again.

A resumed runner starts from the folded :class:`~quarterdeck.core.journal.state.RunState`
of the run. Stages and steps that succeeded (or were skipped) are not executed again and
their recorded outputs stay in scope; a step that was in flight runs again with its next
attempt number and the same idempotency key; a granted approval is not asked again, a
rejected one stays final, and a waiting one keeps the deadline it was given. A fresh run
has an empty state, so every question here answers "nothing to reuse".
"""

from __future__ import annotations

from quarterdeck.core.definition.models import Stage, Step
from quarterdeck.core.journal.state import ApprovalState, RunState
from quarterdeck.core.journal.statuses import (
    STAGE_KEPT_ON_RESUME,
    STEP_KEPT_ON_RESUME,
    ApprovalStatus,
    RunStatus,
    StepStatus,
)
from quarterdeck.core.journal.store import Store


def next_seq(store: Store, run_id: str, prior: RunState | None) -> int:
    """The last journaled sequence number: new events continue after it."""
    return store.last_seq(run_id) if prior is not None else 0


def stage_done(state: RunState, stage: Stage) -> bool:
    """The stage finished (succeeded or skipped) before: it is not run again."""
    prior = state.stages.get(stage.id)
    return prior is not None and prior.status in STAGE_KEPT_ON_RESUME


def steps_done(state: RunState, steps: list[Step]) -> dict[str, str]:
    """The steps of ``steps`` that finished before, with their status; the rest run."""
    done: dict[str, str] = {}
    for step in steps:
        prior = state.step(step.id)
        if prior is not None and prior.status in STEP_KEPT_ON_RESUME:
            done[step.id] = prior.status
    return done


def first_attempt(state: RunState, step: Step) -> int:
    """The attempt number a step starts at: attempts are counted across resumes."""
    prior = state.step(step.id)
    return (prior.attempts + 1) if prior is not None and prior.attempts else 1


def ended_by(state: RunState, stage: Stage) -> RunStatus | None:
    """The status a succeeded ``run.end`` step of ``stage`` ends the run with, if any.

    Read from the journaled step, so a resumed run stops at the same stage."""
    for step in stage.steps:
        if step.uses == "run.end":
            done = state.step(step.id)
            if done is not None and done.status == StepStatus.SUCCEEDED:
                return RunStatus(done.outputs.get("status") or RunStatus.SUCCEEDED)
    return None


def approval_granted(state: RunState, gate: str) -> bool:
    """The stage's approval was given before: the stage starts without asking again."""
    decided = state.approvals.get(gate)
    return decided is not None and decided.status == ApprovalStatus.APPROVED


def approval_rejected(existing: ApprovalState | None) -> bool:
    """A rejection is final for the run, even across a resume."""
    return existing is not None and existing.status == ApprovalStatus.REJECTED


def kept_deadline(existing: ApprovalState | None) -> float | None:
    """A gate that was waiting keeps its deadline: a resume does not restart the clock."""
    if existing is not None and existing.status == ApprovalStatus.WAITING and existing.timeout_at:
        return existing.timeout_at
    return None
