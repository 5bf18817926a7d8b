"""The step DAG inside a stage: a ready-queue (:class:`.graph.ReadyQueue`, as graphlib hands out).

Steps whose ``needs`` are met run concurrently, at most the run's ``concurrency`` at once:
a stage has at most that many worker tasks, each running one ready step after another
(no task per ready step parked on a semaphore: that costs O(N²) wake-ups at 10,000 steps).
A worker that finishes a step takes the next ready one in the same loop turn, so in a
needs-chain the dependent's ``step.started`` is committed with its predecessor's
``step.finished`` (one commit per step). Ready steps start in the order they became ready.
Steps that finished in an earlier attempt of the run count as done from the start. When a
step fails for good no new step starts, the running ones finish, and the steps that never
ran are journaled as skipped; a step with ``continue_on_error`` releases its dependents.
"""

from __future__ import annotations

import asyncio
from collections import deque

from quarterdeck.core.definition.graph import ReadyQueue
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


class _StagePass:
    """One stage's DAG while it runs: what is ready, who runs what, the first failure."""

    def __init__(self, stage: Stage, graph: ReadyQueue, pending: dict[str, Step]) -> None:
        self.stage = stage
        self.graph = graph
        self.pending = pending
        self.status: dict[str, str] = {}
        # a need outside the stage is never a step here, so it never becomes done and its
        # dependents never start (validation reports it before a run)
        self.ready: deque[Step] = deque(pending[i] for i in graph.get_ready() if i in pending)
        self.workers: dict[asyncio.Task[None], Step | None] = {}  # the step each one runs
        self.failure: str | None = None
        self.broken = False  # a worker raised (cancelled, the journal failed): start nothing
        self.ended: list[asyncio.Task[None]] = []  # workers done, not yet collected
        self.waiter: asyncio.Future[None] | None = None

    def wake(self, task: asyncio.Task[None]) -> None:
        self.ended.append(task)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


class Scheduler:
    """Runs a stage's steps in dependency order, independent ones concurrently."""

    def __init__(
        self,
        ctx: RunContext,
        writer: JournalWriter,
        steps: StepRunner,
        signals: Signals,
        limit: int = 8,
    ) -> None:
        """``limit`` is the run's concurrency: at most that many steps run at once."""
        self._ctx = ctx
        self._writer = writer
        self._steps = steps
        self._signals = signals
        self._limit = max(1, limit)

    async def run(self, stage: Stage, steps: list[Step]) -> None:
        """Run a stage's DAG; raise :class:`StageFailed` when a step fails for good."""
        state = self._ctx.state
        status = recovery.steps_done(state, steps)
        pending = {s.id: s for s in steps if s.id not in status}
        graph = ReadyQueue({i: [n for n in s.needs if n not in status] for i, s in pending.items()})
        graph.prepare()
        run = _StagePass(stage, graph, pending)
        run.status = status
        loop = asyncio.get_running_loop()
        try:
            if run.ready:
                await self._signals.wait_unpaused()
            self._spawn(run)
            while run.workers:
                if not run.ended:
                    run.waiter = loop.create_future()
                    await run.waiter
                    continue
                finished, run.ended = run.ended, []
                for task in finished:
                    del run.workers[task]
                    task.result()  # a worker's exception (cancelled, journal failed) ends it
        except BaseException:
            run.broken = True
            await self._stop(stage, run.workers)
            raise
        if run.failure is not None:
            for step in steps:
                if step.id not in status:
                    self._writer.emit(
                        StepSkipped(reason="not run: the stage failed"), stage.id, step.id
                    )
            raise StageFailed(run.failure)

    def _spawn(self, run: _StagePass) -> None:
        """Start workers for the ready steps while a concurrency slot is free."""
        loop = asyncio.get_running_loop()
        while run.ready and run.failure is None and not run.broken:
            if len(run.workers) >= self._limit:
                return
            step = run.ready.popleft()
            task = loop.create_task(self._worker(run, step))
            run.workers[task] = step
            task.add_done_callback(run.wake)

    async def _worker(self, run: _StagePass, step: Step | None) -> None:
        """Run ready steps one after another; the next one starts in the same loop turn
        as the last one finished (its ``step.started`` rides in the same commit)."""
        task = asyncio.current_task()
        assert task is not None
        try:
            while step is not None:
                run.workers[task] = step
                try:  # (inline, not a coroutine of its own: this is every step's path)
                    await self._steps.run(run.stage, step)
                except StepFailed as exc:
                    result: str = CONTINUED if exc.continued else StepStatus.FAILED
                else:
                    current = self._ctx.state.step(step.id)
                    result = current.status if current is not None else StepStatus.SUCCEEDED
                run.workers[task] = None
                self._finished(run, step, result)
                step = await self._next(run)
                self._spawn(run)
        except BaseException:
            run.broken = True
            raise

    def _finished(self, run: _StagePass, step: Step, result: str) -> None:
        run.status[step.id] = result
        if result == StepStatus.FAILED:
            if run.failure is None:
                err = self._ctx.state.step(step.id)
                run.failure = f"step {step.id!r} failed" + (
                    f": {err.error}" if err is not None and err.error else ""
                )
            return
        run.graph.done(step.id)
        run.ready.extend(run.pending[i] for i in run.graph.get_ready() if i in run.pending)

    async def _next(self, run: _StagePass) -> Step | None:
        """The next ready step for this worker, once the run is not paused; None when
        there is none or the stage is failing."""
        if run.ready and self._signals.paused:
            await self._signals.wait_unpaused()
        if run.ready and run.failure is None and not run.broken:
            return run.ready.popleft()
        return None

    async def _stop(self, stage: Stage, running: dict[asyncio.Task[None], Step | None]) -> None:
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
            if step is None:
                continue
            current = self._ctx.state.step(step.id)
            if current is not None and current.status == StepStatus.RUNNING:
                self._writer.emit(
                    StepFinished(status=final, attempt=current.attempts, error=reason),
                    stage.id,
                    step.id,
                )
