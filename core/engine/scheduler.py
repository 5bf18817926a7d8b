"""The step DAG inside a stage: a ready-queue on :class:`graphlib.TopologicalSorter`.

Steps whose ``needs`` are met start together and run concurrently; how many run at once
is bounded by the run's concurrency slots, which :class:`~quarterdeck.core.engine.step.StepRunner`
takes per step (so a step waiting on a slot still counts as started here). Steps that
finished in an earlier attempt of the run count as done from the start. When a step
fails for good no new step starts, the running ones finish, and the steps that never ran
are journaled as skipped; a step with ``continue_on_error`` releases its dependents.
"""

from __future__ import annotations

import asyncio

from quarterdeck.core.definition.graph import sorter
from quarterdeck.core.definition.models import Stage, Step
from quarterdeck.core.engine import recovery
from quarterdeck.core.engine.context import RunContext
from quarterdeck.core.engine.failures import StageFailed, StepFailed
from quarterdeck.core.engine.journal_writer import JournalWriter
from quarterdeck.core.engine.signals import Signals
from quarterdeck.core.engine.step import StepRunner
from quarterdeck.core.journal.events import StepFinished, StepSkipped
from quarterdeck.core.journal.statuses import StepStatus

CONTINUED = recovery.CONTINUED


class Scheduler:
    """Runs a stage's steps in dependency order, independent ones concurrently."""

    def __init__(
        self, ctx: RunContext, writer: JournalWriter, steps: StepRunner, signals: Signals
    ) -> None:
        self._ctx = ctx
        self._writer = writer
        self._steps = steps
        self._signals = signals

    async def run(self, stage: Stage, steps: list[Step]) -> None:
        """Run a stage's DAG; raise :class:`StageFailed` when a step fails for good."""
        state = self._ctx.state
        status = recovery.steps_done(state, steps)
        pending = {s.id: s for s in steps if s.id not in status}
        graph = sorter({i: [n for n in s.needs if n not in status] for i, s in pending.items()})
        graph.prepare()
        # a need outside the stage is never a step here, so it never becomes done and its
        # dependents never start (validation reports it before a run)
        ready = [pending[i] for i in graph.get_ready() if i in pending]
        running: dict[asyncio.Task[str], Step] = {}
        failure: str | None = None
        loop = asyncio.get_running_loop()
        try:
            while ready or running:
                if failure is None and ready:
                    await self._signals.wait_unpaused()
                    for step in ready:
                        task = loop.create_task(self._guarded(stage, step))
                        running[task] = step
                    ready = []
                if not running:
                    break
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    step = running.pop(task)
                    result = task.result()
                    status[step.id] = result
                    if result == StepStatus.FAILED:
                        if failure is None:
                            err = state.step(step.id)
                            failure = f"step {step.id!r} failed" + (
                                f": {err.error}" if err is not None and err.error else ""
                            )
                        continue
                    graph.done(step.id)
                    ready.extend(pending[i] for i in graph.get_ready() if i in pending)
        except BaseException:
            await self._stop(stage, running)
            raise
        if failure is not None:
            for step in steps:
                if step.id not in status:
                    self._writer.emit(
                        StepSkipped(reason="not run: the stage failed"), stage.id, step.id
                    )
            raise StageFailed(failure)

    async def _guarded(self, stage: Stage, step: Step) -> str:
        """Run one step; its final status (``continued`` when it failed but may go on)."""
        try:
            await self._steps.run(stage, step)
        except StepFailed as exc:
            return CONTINUED if exc.continued else StepStatus.FAILED
        current = self._ctx.state.step(step.id)
        return current.status if current is not None else StepStatus.SUCCEEDED

    async def _stop(self, stage: Stage, running: dict[asyncio.Task[str], Step]) -> None:
        """Cancel the running steps (cancel, rollback, stage timeout) and journal why."""
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        signals = self._signals
        if signals.interrupted is not None:  # an interrupt leaves them resumable as they are
            return
        final = StepStatus.CANCELLED if signals.cancelled is not None else StepStatus.FAILED
        reason = (
            "cancelled"
            if signals.cancelled is not None
            else "stopped for a rollback"
            if signals.abort is not None
            else "the stage timed out"
        )
        for step in running.values():
            current = self._ctx.state.step(step.id)
            if current is not None and current.status == StepStatus.RUNNING:
                self._writer.emit(
                    StepFinished(status=final, attempt=current.attempts, error=reason),
                    stage.id,
                    step.id,
                )
