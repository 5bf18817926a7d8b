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

from collections.abc import Callable
from pathlib import Path
from typing import Any

from quarterdeck.core.definition.models import Stage, Step, Workflow
from quarterdeck.core.definition.validate import (
    LoadedWorkflow,
    load_validated_text,
    load_workflow_text,
)
from quarterdeck.core.errors import DefinitionError
from quarterdeck.core.journal import definition_data
from quarterdeck.core.journal.state import ApprovalState, RunState
from quarterdeck.core.journal.statuses import (
    STAGE_KEPT_ON_RESUME,
    STEP_KEPT_ON_RESUME,
    ApprovalStatus,
    RunStatus,
    StepStatus,
)
from quarterdeck.core.journal.store import RunRow, Store, definition_digest

#: A step that failed with ``continue_on_error``: its dependents start as if it succeeded.
CONTINUED = "continued"
#: The reason journaled with ``step.skipped`` for a step its failed stage never started
#: (``core/engine/scheduler.py``).
NOT_RUN = "not run: the stage failed"
#: At most this many ids are named per kind of change in a changed file's report.
NAMED = 8


def _quiet(note: str) -> None:
    """Where notes go when nobody is told (the cockpit resumes without them)."""


def resume_definition(
    store: Store, row: RunRow, personas: Any | None = None, say: Callable[[str], None] = _quiet
) -> LoadedWorkflow:
    """The definition a resumed run continues with; ``say`` tells the person resuming.

    A run goes on with the definition it started with, kept in its row, never the file as
    it is now. When that text still has the hash journaled at the start, it passed
    validation then and is only parsed (:func:`load_validated_text`), or read back from the
    JSON of its data kept with it (:mod:`quarterdeck.core.journal.definition_data`); a run
    from before hashes were kept, or a text changed in the store since, is validated in
    full. The file
    the run was started from is read too: if it changed since, the notes say so and what
    changed (the file as it is now is validated for that report, and not used).
    """
    stored, kept = store.definition_kept(row.id)
    path = Path(row.workflow_path)
    if stored is not None and stored == definition_digest(row.definition):
        # its data as kept with it (JSON, schema v7) when that is still the text's
        loaded = load_validated_text(
            row.definition, path, personas, definition_data.decode(stored, kept)
        )
    else:
        if stored is not None:
            say(
                f"note: the definition kept with run {row.id} in {store.path} does not match "
                "the hash it was started with (changed in the store since): validating it again"
            )
        loaded = load_workflow_text(row.definition, path, personas)
    for note in file_changes(row, loaded, personas):
        say(note)
    return loaded


def file_changes(row: RunRow, started: LoadedWorkflow, personas: Any | None) -> list[str]:
    """Notes on the workflow file when it no longer holds the text the run started with."""
    from quarterdeck.core.definition.loader import read_text

    path = Path(row.workflow_path)
    if not path.is_absolute() and row.workdir:
        path = Path(row.workdir) / path
    try:
        text = read_text(path)
    except DefinitionError:
        return []  # gone or unreadable: nothing to compare, and nothing was read from it
    if definition_digest(text) == definition_digest(row.definition):
        return []
    notes = [
        f"note: {path} changed since run {row.id} started; the run resumes with the "
        "definition it started with (kept in the store), not the file"
    ]
    try:
        now = load_workflow_text(text, path, personas)
    except DefinitionError as exc:
        first = exc.problems[0] if exc.problems else "invalid"
        return [*notes, f"  the file as it is now does not validate: {first}"]
    return [*notes, *describe_changes(started.workflow, now.workflow)]


def describe_changes(before: Workflow, after: Workflow) -> list[str]:
    """Stages and steps added, removed or changed, and other top-level fields changed."""

    def named(ids: list[str]) -> str:
        more = f" (+{len(ids) - NAMED} more)" if len(ids) > NAMED else ""
        return ", ".join(ids[:NAMED]) + more

    def steps(wf: Workflow) -> dict[str, Step]:
        return {s.id: s for stage in wf.stages for s in [*stage.steps, *stage.on_failure]}

    lines: list[str] = []
    old_stages = {s.id: s for s in before.stages}
    new_stages = {s.id: s for s in after.stages}
    old_steps, new_steps = steps(before), steps(after)
    for what, old, new in (("stages", old_stages, new_stages), ("steps", old_steps, new_steps)):
        added = [k for k in new if k not in old]
        removed = [k for k in old if k not in new]
        if what == "stages":
            changed = [
                k
                for k in old
                if k in new
                and old_stages[k].model_dump(exclude={"steps", "on_failure"})
                != new_stages[k].model_dump(exclude={"steps", "on_failure"})
            ]
        else:
            changed = [k for k in old if k in new and old_steps[k] != new_steps[k]]
        for label, ids in (("added", added), ("removed", removed), ("changed", changed)):
            if ids:
                lines.append(f"  {what} {label}: {named(ids)}")
    fields = [
        name
        for name in Workflow.model_fields
        if name != "stages" and getattr(before, name) != getattr(after, name)
    ]
    if fields:
        lines.append(f"  workflow fields changed: {', '.join(fields)}")
    return lines or ["  the same stages, steps and settings (comments or layout differ)"]


def next_seq(store: Store, run_id: str, prior: RunState | None) -> int:
    """The last journaled sequence number: new events continue after it."""
    return store.last_seq(run_id) if prior is not None else 0


def stage_done(state: RunState, stage: Stage) -> bool:
    """The stage finished (succeeded or skipped) before: it is not run again."""
    prior = state.stages.get(stage.id)
    return prior is not None and prior.status in STAGE_KEPT_ON_RESUME


def steps_done(state: RunState, steps: list[Step]) -> dict[str, str]:
    """The steps of ``steps`` that finished before, with their status; the rest run.

    A step journaled ``skipped`` because its stage failed before it could start was never
    run: it is not done, and runs when the resumed stage gets to it."""
    done: dict[str, str] = {}
    for step in steps:
        prior = state.step(step.id)
        if prior is not None and prior.status == StepStatus.SKIPPED and prior.error == NOT_RUN:
            continue
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
