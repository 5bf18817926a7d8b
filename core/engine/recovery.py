"""What a resumed run reuses from its journal, and what it does again.

A resumed runner starts from the folded :class:`~quarterdeck.core.journal.state.RunState`
of the run. Stages and steps that succeeded (or were skipped, or failed with
``continue_on_error``) are not executed again and their recorded outputs stay in scope; a
step that was in flight runs again with its next attempt number and the same idempotency
key, its failed attempts still counted against ``max_attempts`` and a backoff it was in
honoured to its journaled end; a granted approval is not asked again, a rejected one
stays final, and a waiting one keeps the deadline it was given. A fresh run has an empty
state, so every question here answers "nothing to reuse". The rules are written down in
docs/architecture.md ("Recovery semantics").
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

#: A step that failed with ``continue_on_error``: its dependents start as if it succeeded.
CONTINUED = "continued"


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
        elif prior is not None and prior.status == StepStatus.FAILED and prior.continued:
            done[step.id] = CONTINUED  # it finished; the stage went on past it
    return done


def first_attempt(state: RunState, step: Step) -> int:
    """The attempt number a step starts at: attempts are counted across resumes."""
    prior = state.step(step.id)
    return (prior.attempts + 1) if prior is not None and prior.attempts else 1


def failed_attempts(state: RunState, step: Step) -> int:
    """Attempts of a step in flight that already failed (before a crash): they count."""
    prior = state.step(step.id)
    if prior is None or prior.status not in (StepStatus.RUNNING, StepStatus.INTERRUPTED):
        return 0  # a step that finished (failed) and is run again starts a new budget
    return prior.failed_attempts


def retry_wait(state: RunState, step: Step, now: float) -> float:
    """What is left of the backoff a step was in when the run stopped (a durable deadline)."""
    prior = state.step(step.id)
    if prior is None or prior.next_retry_at is None:
        return 0.0
    if prior.status not in (StepStatus.RUNNING, StepStatus.INTERRUPTED):
        return 0.0
    return max(0.0, prior.next_retry_at - now)


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
