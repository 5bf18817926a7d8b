"""Human text for ``quarterdeck show``: status, timeline, evidence."""

from __future__ import annotations

import time

from quarterdeck.core.durations import format_duration
from quarterdeck.core.journal.state import RunState
from quarterdeck.core.journal.statuses import (
    RUN_ACTIVE,
    ApprovalStatus,
    GateStatus,
    StageStatus,
    StepStatus,
    look,
)


def _clock(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def render_show(state: RunState, duration: float | None = None) -> str:
    """``duration``: the run's active time between its row's start and end
    (``RunState.active_time``, as Home and ``runs`` show it); without it, between the
    journal's own start and end."""
    took = duration if duration is not None else state.duration
    lines = [
        f"run {state.id}  {state.workflow}  {look(state.status).glyph} {state.status}",
        f"  started {_clock(state.started_at)} by {state.started_by or '?'}"
        f"  finished {_clock(state.finished_at)}  ({format_duration(took)})",
    ]
    if state.inputs:
        lines.append("  inputs: " + ", ".join(f"{k}={v}" for k, v in state.inputs.items()))
    if state.error:
        lines.append(f"  error: {state.error}")
    lines.append("")
    for stage in state.stages.values():
        persona = f"  ({stage.persona})" if stage.persona else ""
        lines.append(
            f"{look(stage.status).glyph} {stage.id}{persona}  {stage.status}"
            + (f": {stage.error}" if stage.error and stage.status != StageStatus.SUCCEEDED else "")
        )
        if stage.approval is not None:
            a = stage.approval
            decided = f" by {a.decided_by}" if a.decided_by else ""
            why = f" ({a.reason})" if a.reason else ""
            status = str(a.status)
            if a.status == ApprovalStatus.WAITING and state.status not in RUN_ACTIVE:
                status = f"never decided (the run is {state.status})"
            lines.append(f"    approval {a.id}: {status}{decided}{why}")
            for item in a.evidence:
                lines.append(f"      evidence: {item}")
        for step in stage.steps.values():
            attempts = f" ×{step.attempts}" if step.attempts > 1 else ""
            role = f" [{step.role}]" if step.role != "step" else ""
            lines.append(
                f"    {look(step.status).glyph} {step.id}{role}{attempts}  {step.status}"
                f"  {format_duration(step.duration) if step.started_at else ''}"
            )
            if step.error and step.status != StepStatus.SUCCEEDED:
                lines.append(f"        error: {step.error}")
            shown = {k: v for k, v in step.outputs.items() if k != "stdout"}
            if shown:
                text = ", ".join(f"{k}={v}" for k, v in list(shown.items())[:8])
                lines.append(f"        outputs: {text[:200]}")
        if stage.gate is not None and stage.gate.status != GateStatus.PENDING:
            lines.append(f"    gate {stage.gate.id}: {stage.gate.status}")
            for r in stage.gate.results:
                lines.append(f"      {'✔' if r.passed else '✘'} {r.condition}")
    people = state.persona_summary()
    if any(p["tokens_used"] or p["seconds"] for p in people):
        lines.append("")
        lines.append("personas:")
        for p in people:
            est = " (estimated)" if p["estimated"] else ""
            lines.append(
                f"  {p['name']:<22} {p['tokens_used']:>6}/{p['budget']} tokens{est}"
                f"  {p['remaining']} left  held {format_duration(p['seconds'])}"
                f"  switches {p['switches']}"
            )
    if state.memory:
        lines.append("")
        lines.append("memory: " + ", ".join(f"{k}={v!r}"[:80] for k, v in state.memory.items()))
    return "\n".join(lines) + "\n"
