"""Signals: approve, reject, pause, unpause, cancel, rollback, skip-gate and notes.

A signal is a row anyone may write to the store (the TUI, the CLI, another host); the
runner polls for pending ones, acts, and consumes each with an outcome the sender can
read. :class:`Signals` also holds the run's control state those signals change: paused
or not, a cancel or interrupt asked for, and the running stage a rollback would stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from quarterdeck.core.engine.approvals import approval_refusal
from quarterdeck.core.engine.context import RunContext
from quarterdeck.core.engine.journal_writer import JournalWriter
from quarterdeck.core.identity import prove
from quarterdeck.core.journal.events import (
    ApprovalDecided,
    ApprovalRefused,
    ApprovalVote,
    RunPaused,
    RunUnpaused,
    SignalReceived,
)
from quarterdeck.core.journal.statuses import APPROVAL_DECIDED, ApprovalStatus, RunStatus
from quarterdeck.core.journal.store import Signal

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0


class Signals:
    """Polls and handles one run's signals; the pause, cancel and rollback switches."""

    def __init__(self, ctx: RunContext, writer: JournalWriter) -> None:
        self._ctx = ctx
        self._writer = writer
        self._unpaused = asyncio.Event()
        if not ctx.state.paused:  # a run paused before a crash stays paused on resume
            self._unpaused.set()
        self._wakeup = asyncio.Event()
        self.cancelled: tuple[str, str] | None = None  # (by, reason)
        self.interrupted: str | None = None  # the reason
        self.abort: tuple[str, str] | None = None  # a rollback asked for: (by, reason)
        self.main: asyncio.Task[str] | None = None  # the run's task, cancelled to stop it
        self.stage_task: asyncio.Future[None] | None = None  # what a rollback cancels
        self.current_stage: str | None = None

    # -- control ----------------------------------------------------------------------

    def cancel(self, by: str, reason: str = "") -> None:
        self.cancelled = (by, reason)
        self._unpaused.set()
        if self.main is not None and not self.main.done():
            self.main.cancel()

    def interrupt(self, reason: str = "interrupted") -> None:
        """Stop now, resumably (Ctrl-C, SIGTERM)."""
        if self.interrupted is None:
            self.interrupted = reason
            if self.main is not None and not self.main.done():
                self.main.cancel()

    @property
    def paused(self) -> bool:
        """Whether :meth:`wait_unpaused` would wait: asked first on every step's path, so
        an unpaused run makes no coroutine to find out."""
        return not self._unpaused.is_set()

    async def wait_unpaused(self) -> None:
        if not self._unpaused.is_set():
            await self._unpaused.wait()

    async def wait(self, seconds: float) -> None:
        """Sleep until a signal is consumed or ``seconds`` pass, whichever comes first."""
        self._wakeup.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), seconds)

    # -- polling ----------------------------------------------------------------------

    async def poll(self) -> None:
        """Handle signals every poll interval and keep the run's heartbeat, until cancelled."""
        last_beat = time.monotonic()
        while True:
            try:
                self.process()
            except Exception:  # a store that fails for a moment must not kill the run
                log.warning(
                    "run %s: reading signals failed; next poll", self._ctx.run_id, exc_info=True
                )
            now = time.monotonic()
            if now - last_beat > HEARTBEAT_SECONDS:
                self._writer.heartbeat()  # committed by the writer thread, never blocks here
                last_beat = now
            await asyncio.sleep(self._ctx.options.signal_poll_interval)

    def process(self) -> None:
        """Handle every pending signal; one that is not for now stays pending."""
        for signal in self._writer.pending_signals():
            outcome = self.handle(signal)
            if outcome is not None:  # consumed in the same commit as the events it caused
                self._writer.consume_signal(signal.id, outcome)
                self._wakeup.set()

    def handle(self, signal: Signal) -> str | None:
        """Act on one signal; None leaves it pending (a gate that has not opened yet)."""
        ctx, emit = self._ctx, self._writer.emit
        base = SignalReceived(
            signal_id=signal.id,
            kind=signal.kind,
            by=signal.actor,
            reason=signal.reason,
            target=signal.target,
        )
        kind = signal.kind
        if kind == "pause":
            if ctx.state.paused:
                return "already paused"
            emit(base)
            emit(RunPaused(by=signal.actor, reason=signal.reason))
            self._unpaused.clear()
            self._writer.set_status(RunStatus.PAUSED)
            return "paused"
        if kind == "unpause":
            if not ctx.state.paused:
                return "not paused"
            emit(base)
            emit(RunUnpaused(by=signal.actor, reason=signal.reason))
            self._unpaused.set()
            self._writer.set_status(ctx.state.status)
            return "unpaused"
        if kind == "cancel":
            emit(base)
            self.cancel(signal.actor, signal.reason)
            return "cancelled"
        if kind == "note":
            emit(base.replace(data=signal.data))
            return "noted"
        if kind in ("approve", "reject"):
            return self._decide(signal, base)
        if kind == "rollback":
            return self._rollback(signal, base)
        if kind == "skip-gate":
            return None  # read when the gate fails (see gates.QualityGates)
        return f"ignored: {kind} is not handled by a running run"

    def _decide(self, signal: Signal, base: SignalReceived) -> str | None:
        """A vote on an approval gate; enough approvals (or one rejection) decide it."""
        ctx, emit = self._ctx, self._writer.emit
        gate = signal.target or ""
        known = {s.approval.id for s in ctx.workflow.stages if s.approval}
        known |= {a.id for a in ctx.state.approvals.values()}
        if gate not in known:
            return f"refused: no approval gate {gate!r} in this workflow"
        approval = ctx.state.approvals.get(gate)
        if approval is None or approval.status != ApprovalStatus.WAITING:
            if approval is not None and approval.status in APPROVAL_DECIDED:
                return f"refused: gate {gate!r} was already {approval.status}"
            return None  # the gate has not opened yet: keep the decision for it
        decision = ApprovalStatus.APPROVED if signal.kind == "approve" else ApprovalStatus.REJECTED
        proof = None
        why = approval_refusal(
            approval, signal.actor, ctx.state.started_by, ctx.settings.groups, decision
        )
        if why is None:  # the rules allow this name: is the signal really theirs?
            proof, why = prove(ctx.run_id, gate, signal, ctx.settings)
        if why is None and proof is not None:
            same = next((v.by for v in approval.votes if v.key == proof.fingerprint), None)
            if same is not None:
                why = f"this key already voted on gate {gate!r} as {same!r}: one person, one vote"
        emit(base)
        if why is not None:
            emit(
                ApprovalRefused(gate=gate, by=signal.actor, decision=decision, why=why),
                approval.stage,
            )
            return f"refused: {why}"
        emit(
            ApprovalVote(
                gate=gate,
                by=signal.actor,
                decision=decision,
                reason=signal.reason,
                signature=str(signal.data.get("signature", "")) if proof else "",
                key=proof.fingerprint if proof else "",
            ),
            approval.stage,
        )
        approvals = {v.by for v in approval.votes if v.decision == ApprovalStatus.APPROVED}
        if decision == ApprovalStatus.REJECTED:
            emit(
                ApprovalDecided(
                    gate=gate,
                    decision=ApprovalStatus.REJECTED,
                    by=signal.actor,
                    reason=signal.reason,
                ),
                approval.stage,
            )
            return "rejected"
        if len(approvals) >= approval.min_approvals:
            emit(
                ApprovalDecided(
                    gate=gate,
                    decision=ApprovalStatus.APPROVED,
                    by=", ".join(sorted(approvals)),
                    reason=signal.reason,
                ),
                approval.stage,
            )
            return "approved"
        return f"vote recorded ({len(approvals)}/{approval.min_approvals})"

    def _rollback(self, signal: Signal, base: SignalReceived) -> str:
        """Stop the running stage; the runner fails it and runs its ``on_failure`` steps."""
        target = signal.target
        if self.stage_task is None or self.stage_task.done():
            return "refused: no stage is running"
        if target and target != self.current_stage:
            return f"refused: stage {target!r} is not running (running: {self.current_stage})"
        self._writer.emit(base)
        self.abort = (signal.actor, signal.reason)
        self.stage_task.cancel()
        return f"rolling back stage {self.current_stage}"
