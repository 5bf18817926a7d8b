"""Every status a run, stage, step, gate or approval can have, and how each one looks.

The values are the journal's and the CLI's strings (contract): ``StrEnum`` members compare
and hash equal to them and serialise as them, so JSON output and the journal are unchanged.
How a status is drawn (glyph, style, label in every front end) and which statuses count as
ended, active, done or resumable are stated once here, so no view keeps a map of its own
that drifts from the others.
"""

from __future__ import annotations

from enum import StrEnum

from quarterdeck.core.lean import lean


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"  # on an approval
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    INTERRUPTED = "interrupted"  # crashed or stopped; resumable
    NOTHING_TO_DO = "nothing_to_do"  # ended early by a ``run.end`` step


class StageStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"  # its approval was rejected (or timed out)
    SKIPPED = "skipped"


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # in flight when the run stopped: runs again on resume


class GateStatus(StrEnum):
    PENDING = "pending"
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"  # by a skip-gate signal, with a reason


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    WAITING = "waiting"
    APPROVED = "approved"
    REJECTED = "rejected"


# -- sets, each defined once ------------------------------------------------------------------

#: A run still going (or about to): its process owns it; signals reach it live.
RUN_ACTIVE = frozenset({RunStatus.PENDING, RunStatus.RUNNING, RunStatus.WAITING, RunStatus.PAUSED})
#: A run that reached an end: no signal will be acted on any more.
RUN_ENDED = frozenset(
    {
        RunStatus.SUCCEEDED,
        RunStatus.FAILED,
        RunStatus.CANCELLED,
        RunStatus.REJECTED,
        RunStatus.NOTHING_TO_DO,
    }
)
#: An ended run that ``resume`` has nothing to do for.
RUN_DONE = frozenset({RunStatus.SUCCEEDED, RunStatus.NOTHING_TO_DO, RunStatus.CANCELLED})
#: A run ``resume`` can continue: it stopped short of its end.
RUN_RESUMABLE = frozenset({RunStatus.INTERRUPTED, RunStatus.FAILED, RunStatus.REJECTED})
#: A run that ended well (exit code 0).
RUN_SUCCESSFUL = frozenset({RunStatus.SUCCEEDED, RunStatus.NOTHING_TO_DO})

#: Stages and steps the run went on past, which a resumed run does not execute again
#: (their outputs are reused).
STAGE_KEPT_ON_RESUME = frozenset({StageStatus.SUCCEEDED, StageStatus.SKIPPED})
STEP_KEPT_ON_RESUME = frozenset({StepStatus.SUCCEEDED, StepStatus.SKIPPED})
#: Steps counted as done in a run's progress (``3/7 steps``).
STEP_DONE = frozenset({StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED})
#: Steps that did not get to succeed: reported as failures (JUnit, step summary).
STEP_FAILED = frozenset({StepStatus.FAILED, StepStatus.CANCELLED, StepStatus.INTERRUPTED})
#: Approvals somebody (or a timeout) decided.
APPROVAL_DECIDED = frozenset({ApprovalStatus.APPROVED, ApprovalStatus.REJECTED})
#: Statuses a trace marks as an error (``error.type``).
TRACE_ERRORS = frozenset({RunStatus.FAILED, RunStatus.REJECTED})  # stages and steps alike


# -- how each status looks ------------------------------------------------------------------


@lean(frozen=True, slots=True)
class Look:
    """How one status is drawn in every front end.

    ``glyph``/``style`` are the headless renderer's (a Rich style; ``show`` uses the glyph
    too), ``mark``/``theme`` the cockpit's (a Textual theme variable, never a colour),
    ``emoji`` the Markdown summary's, ``result`` the OpenTelemetry ``cicd.*.result``;
    ``label`` is the word shown beside the glyph.
    """

    label: str
    glyph: str
    style: str
    mark: str
    theme: str
    emoji: str
    result: str


#: One row per status string (the enums share values: ``failed`` looks the same everywhere).
LOOKS: dict[str, Look] = {
    "pending": Look("pending", "·", "", "○", "$text-muted", "·", "error"),
    "running": Look("running", "▶", "bold cyan", "●", "$accent", "▶️", "error"),
    "waiting": Look("waiting", "⏸", "bold yellow", "◆", "$warning", "⏸️", "error"),
    "paused": Look("paused", "⏸", "yellow", "‖", "$warning", "", "error"),
    "succeeded": Look("succeeded", "✔", "green", "✓", "$success", "✅", "success"),
    "passed": Look("passed", "✔", "green", "✓", "$success", "✅", "error"),
    "approved": Look("approved", "✔", "green", "✓", "$success", "✅", "error"),
    "nothing_to_do": Look("nothing_to_do", "✔", "", "✓", "$success", "✅", "success"),
    "failed": Look("failed", "✘", "bold red", "✗", "$error", "❌", "failure"),
    "rejected": Look("rejected", "⛔", "red", "✗", "$error", "⛔", "failure"),
    "cancelled": Look("cancelled", "■", "yellow", "⊘", "$warning", "⏹️", "cancellation"),
    "skipped": Look("skipped", "↷", "dim", "↷", "$text-muted", "⏭️", "skip"),
    "interrupted": Look("interrupted", "⚡", "yellow", "!", "$warning", "⚡", "cancellation"),
}


def look(status: str) -> Look:
    """How ``status`` looks; a status no table knows gets ``?`` and no colour."""
    found = LOOKS.get(status)
    if found is not None:
        return found
    return Look(status, "?", "", "?", "$text", "", "error")
