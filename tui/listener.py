"""``quarterdeck listen``: the Alertmanager webhook server plus the runs it starts.

This is composition (it builds runners), so it lives beside :mod:`quarterdeck.tui.launch`
rather than in the engine; the intake rules themselves are
:mod:`quarterdeck.core.incidents.intake`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from quarterdeck.core.engine.runner import RunOptions
from quarterdeck.core.engine.runner import new_run_id as default_id
from quarterdeck.core.incidents.guard import ListenGuard
from quarterdeck.core.incidents.intake import (
    ALERT_ACTOR,
    AlertmanagerPayload,
    Intake,
    WebhookServer,
    run_inputs,
)
from quarterdeck.core.journal.store import Store
from quarterdeck.tui.launch import new_runner


class Listener:
    """``quarterdeck listen``: the webhook server plus the runs it starts, in one loop.

    Runs are background tasks of this process, each with its own store connection (made
    on the loop's thread, as SQLite wants). Stopping the listener interrupts them
    resumably: ``quarterdeck resume RUN`` continues one later.
    """

    def __init__(
        self,
        store_path: Path,
        loaded: Any,
        context: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        say: Callable[[str], None] | None = None,
        started_by: str = ALERT_ACTOR,
        new_run_id: Callable[[], str] | None = None,
        base_inputs: dict[str, Any] | None = None,
        guard: ListenGuard | None = None,
        label_inputs: Collection[str] = (),
        max_concurrent: int = 2,
    ) -> None:
        """``label_inputs``: the inputs alert labels may fill (never the ``-i`` ones);
        ``max_concurrent``: runs executing at once (the others queue, in arrival order)."""
        self.store_path = store_path
        self.loaded = loaded
        self.context = context
        self.say = say or (lambda text: None)
        self.started_by = started_by
        self.base_inputs = dict(base_inputs or {})  # `listen -i k=v`: they win over alerts
        self.label_inputs = frozenset(label_inputs)
        self.max_concurrent = max_concurrent
        self._slots: asyncio.Semaphore | None = None
        self.stopping = ""
        self.active: set[str] = set()  # runs executing now; the other unfinished ones queue
        self.runs: dict[str, Any] = {}
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.intake = Intake(
            store_path,
            self._start_from_thread,
            new_run_id or (lambda: default_id(loaded.workflow.name)),
            say=self.say,
        )
        self.server = WebhookServer(self.intake, host, port, guard)

    async def start(self) -> Listener:
        self._loop = asyncio.get_running_loop()
        self._slots = asyncio.Semaphore(self.max_concurrent)
        await self.server.start()
        return self

    def _start_from_thread(self, payload: AlertmanagerPayload, run_id: str) -> str:
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(self._start(payload, run_id), self._loop)
        return future.result(timeout=60)

    async def _start(self, payload: AlertmanagerPayload, run_id: str) -> str:
        store = Store(self.store_path)
        try:
            from_alert = run_inputs(payload, self.loaded.workflow.inputs, self.label_inputs)
            given = {**from_alert, **self.base_inputs}  # the operator's -i values win
            runner = new_runner(
                self.loaded,
                store,
                self.context,
                given,
                RunOptions(run_id=run_id, started_by=self.started_by),
            )
        except BaseException:
            store.close()
            raise
        self.runs[run_id] = runner
        self.tasks[run_id] = asyncio.get_running_loop().create_task(self._drive(runner, store))
        return run_id

    async def _drive(self, runner: Any, store: Store) -> None:
        assert self._slots is not None
        try:
            if self._slots.locked():
                self.say(f"run {runner.run_id} queued: {self.max_concurrent} already running")
            async with self._slots:
                self.active.add(runner.run_id)
                try:
                    state = await runner.run()
                finally:
                    self.active.discard(runner.run_id)
            self.say(f"run {runner.run_id}: {state.status}")
        except asyncio.CancelledError:
            self.say(f"run {runner.run_id} dropped from the queue: {self.stopping}")
        except Exception as exc:  # one broken run must not take the listener down
            self.say(f"run {runner.run_id} stopped: {type(exc).__name__}: {exc}")
        finally:
            store.close()

    async def wait_runs(self) -> None:
        if self.tasks:
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)

    async def close(self, reason: str = "the listener stopped") -> None:
        """Stop serving; interrupt runs still going (resumable) and wait for their journals."""
        self.stopping = reason
        await self.server.close()
        for run_id, task in self.tasks.items():
            if task.done():
                continue
            if run_id in self.active:
                self.runs[run_id].interrupt(reason)
            else:  # still queued: never started, nothing to resume
                task.cancel()
        await self.wait_runs()
