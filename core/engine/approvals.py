"""Approval gates: a stage's human gate, its timeout, budget gates, who may decide.

A gate opens with an ``approval.requested`` event, then waits for approve/reject signals
(handled in :mod:`~quarterdeck.core.engine.signals`, which counts the votes). Decisions
given on the command line are sent as ordinary signals, so the approver rules and the
audit trail are the same for everyone. ``--no-wait`` turns an undecided gate into a
resumable stop instead of a wait.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from quarterdeck.core.commands import cli_command
from quarterdeck.core.definition.expressions import evaluate, render_text
from quarterdeck.core.definition.models import Approval, Stage, is_approver
from quarterdeck.core.engine import recovery
from quarterdeck.core.engine.context import RunContext
from quarterdeck.core.engine.failures import NoWait
from quarterdeck.core.engine.journal_writer import JournalWriter
from quarterdeck.core.engine.scope import Scope
from quarterdeck.core.errors import ExpressionError
from quarterdeck.core.journal.events import ApprovalDecided, ApprovalRequested, StageFinished
from quarterdeck.core.journal.statuses import (
    APPROVAL_DECIDED,
    ApprovalStatus,
    RunStatus,
    StageStatus,
)


def approval_refusal(
    approval: Any,
    actor: str,
    started_by: str,
    groups: Mapping[str, list[str]],
    decision: str = ApprovalStatus.APPROVED,
) -> str | None:
    """Why ``actor`` may not decide this approval, or None when they may."""
    if approval.status != ApprovalStatus.WAITING:
        return f"gate {approval.id!r} is not waiting for a decision (it is {approval.status})"
    if actor in groups:
        return f"{actor!r} is a group, not a person: its members vote, one vote each"
    if not is_approver(actor, approval.approvers, groups):
        return f"{actor!r} may not decide gate {approval.id!r}; approvers: " + ", ".join(
            approval.approvers
        )
    self_approval = decision == ApprovalStatus.APPROVED and actor == started_by
    if self_approval and not approval.allow_self_approval:
        return (
            f"{actor!r} started this run and gate {approval.id!r} does not allow "
            "self-approval; someone else must decide"
        )
    if any(v.by == actor for v in approval.votes):
        return f"{actor!r} has already voted on gate {approval.id!r}"
    return None


class Inbox(Protocol):
    """Where decisions arrive (:class:`~quarterdeck.core.engine.signals.Signals`)."""

    def process(self) -> None: ...

    async def wait(self, seconds: float) -> None: ...


class Approvals:
    """Opens approval gates and waits for their decision."""

    def __init__(
        self,
        ctx: RunContext,
        writer: JournalWriter,
        scope: Scope,
        inbox: Inbox,
        *,
        stop_undecided: Callable[[str], None],
    ) -> None:
        """``stop_undecided`` ends the run resumably when a budget gate hits ``--no-wait``."""
        self._ctx = ctx
        self._writer = writer
        self._scope = scope
        self._inbox = inbox
        self._stop_undecided = stop_undecided

    async def request(self, stage: Stage, approval: Approval, where: str) -> StageStatus | None:
        """Open ``approval`` before ``stage`` and wait: None once approved (the stage goes
        on), else the stage's status (rejected, or failed on a timeout)."""
        ctx, emit = self._ctx, self._writer.emit
        where = f"{where}.approval[{approval.id}]"
        if approval.when is not None and not evaluate(approval.when, self._scope.get(), where):
            return None
        existing = ctx.state.approvals.get(approval.id)
        if recovery.approval_rejected(existing):
            # resuming a rejected run: a rejection is final for this run
            ctx.state.error = f"approval {approval.id!r} was rejected"
            return StageStatus.REJECTED
        scope = self._scope.get()
        try:
            prompt = render_text(approval.prompt, scope, where) if approval.prompt else ""
            evidence = [render_text(e, scope, where) for e in approval.evidence]
        except ExpressionError as exc:
            prompt, evidence = approval.prompt, [f"(evidence unavailable: {exc.message})"]
        now = ctx.clock.now()
        timeout_at = recovery.kept_deadline(existing)
        if timeout_at is None and approval.timeout is not None:
            timeout_at = now + approval.timeout
        emit(
            ApprovalRequested(
                gate=approval.id,
                prompt=prompt,
                evidence=evidence,
                approvers=approval.approvers,
                min_approvals=approval.min_approvals,
                allow_self_approval=approval.allow_self_approval,
                timeout_at=timeout_at,
                on_timeout=approval.on_timeout,
                command=cli_command("approve", ctx.run_id, approval.id, store=ctx.store.path),
            ),
            stage.id,
        )
        await self._writer.committed()
        self._writer.set_status(RunStatus.WAITING)
        pre = ctx.options.decisions.get(approval.id)
        if pre is not None:
            decision, actor, reason = pre
            self._writer.send_signal(decision, actor=actor, target=approval.id, reason=reason)
        elif ctx.options.no_wait and not self._has_pending_decision(approval.id):
            raise NoWait(
                f"approval {approval.id!r} is undecided and --no-wait was given: pass "
                f"--approve {approval.id} or --reject {approval.id} (or run "
                f"`{cli_command('approve', ctx.run_id, approval.id, store=ctx.store.path)}` "
                f"then `{cli_command('resume', ctx.run_id, store=ctx.store.path)}`)"
            )
        while True:
            self._inbox.process()
            current = ctx.state.approvals[approval.id]
            if current.status in APPROVAL_DECIDED:
                break
            if timeout_at is not None and ctx.clock.now() >= timeout_at:
                return await self._timed_out(stage, approval)
            wait_for = ctx.options.signal_poll_interval
            if timeout_at is not None:
                wait_for = max(0.0, min(wait_for, timeout_at - ctx.clock.now()))
            await self._inbox.wait(wait_for)
        self._writer.set_status(RunStatus.RUNNING)
        current = ctx.state.approvals[approval.id]
        if current.status == ApprovalStatus.REJECTED:
            emit(
                StageFinished(
                    status=StageStatus.REJECTED,
                    error=f"approval {approval.id!r} rejected by {current.decided_by}"
                    + (f": {current.reason}" if current.reason else ""),
                ),
                stage.id,
            )
            return StageStatus.REJECTED
        return None

    def _has_pending_decision(self, gate: str) -> bool:
        return any(
            s.kind in ("approve", "reject") and s.target == gate
            for s in self._writer.pending_signals()
        )

    async def _timed_out(self, stage: Stage, approval: Approval) -> StageStatus | None:
        """Apply ``on_timeout``: None when approved (the stage goes on), else its status."""
        emit = self._writer.emit
        action = approval.on_timeout
        if action == "approve":
            emit(
                ApprovalDecided(
                    gate=approval.id,
                    decision=ApprovalStatus.APPROVED,
                    by="timeout",
                    reason="approved on timeout (on_timeout: approve)",
                    timed_out=True,
                ),
                stage.id,
            )
            self._writer.set_status(RunStatus.RUNNING)
            return None
        emit(
            ApprovalDecided(
                gate=approval.id,
                decision=ApprovalStatus.REJECTED,
                by="timeout",
                reason=f"no decision before the timeout (on_timeout: {action})",
                timed_out=True,
            ),
            stage.id,
        )
        status = StageStatus.FAILED if action == "fail" else StageStatus.REJECTED
        emit(
            StageFinished(
                status=status,
                error=f"approval {approval.id!r} timed out (on_timeout: {action})",
            ),
            stage.id,
        )
        self._writer.set_status(RunStatus.RUNNING)
        return status

    async def budget_gate(self, gate: str) -> ApprovalStatus:
        """Wait for a budget gate (journaled by core/policy/budget.py) like a stage approval."""
        ctx = self._ctx
        await self._writer.committed()
        self._writer.set_status(RunStatus.WAITING)
        if ctx.options.no_wait and not self._has_pending_decision(gate):
            self._stop_undecided(
                f"budget approval {gate!r} is undecided and --no-wait was given: run "
                f"`{cli_command('approve', ctx.run_id, gate, store=ctx.store.path)}` then "
                f"`{cli_command('resume', ctx.run_id, store=ctx.store.path)}`"
            )
        while True:
            self._inbox.process()
            current = ctx.state.approvals[gate]
            if current.status in APPROVAL_DECIDED:
                break
            await self._inbox.wait(ctx.options.signal_poll_interval)
        self._writer.set_status(RunStatus.RUNNING)
        return current.status

    def may_decide(self, approval_id: str, actor: str) -> str | None:
        """Why ``actor`` may not decide ``approval_id``, or None when they may."""
        approval = self._ctx.state.approvals.get(approval_id)
        if approval is None:
            return f"gate {approval_id!r} is not waiting for a decision"
        state = self._ctx.state
        return approval_refusal(approval, actor, state.started_by, self._ctx.settings.groups)
