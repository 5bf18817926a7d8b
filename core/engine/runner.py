"""The in-process async runner.

Stages run in order; a stage's steps form a DAG (``needs``) and independent steps run
concurrently under the run's concurrency limit. Every event is committed to the journal
before anyone acts on it: :meth:`Runner.emit` buffers events and one callback per event
loop iteration commits the buffer in a single transaction (group commit); code that acts
on an event first awaits :meth:`Runner.committed`. Subscribers (the cockpit, the headless
renderer, metrics) see an event only after it is committed, and must never block.

Resuming a run folds its journal into a :class:`~quarterdeck.core.journal.state.RunState`;
completed steps are not executed again and their recorded outputs are reused, the step that was in
flight runs again (its ``idempotency_key`` is the same, so actions can notice).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from quarterdeck.core.actions.base import ActionContext, get_action
from quarterdeck.core.clock import Clock
from quarterdeck.core.config import Settings, state_home
from quarterdeck.core.definition.expressions import evaluate, render, render_text
from quarterdeck.core.definition.inputs import public_inputs, secret_values
from quarterdeck.core.definition.models import Approval, RetryPolicy, Stage, Step, is_approver
from quarterdeck.core.definition.validate import LoadedWorkflow
from quarterdeck.core.errors import (
    ActionError,
    ExitCode,
    ExpressionError,
    NonRetryableError,
    StepSkipped,
)
from quarterdeck.core.journal.events import Event, EventType
from quarterdeck.core.journal.state import RunState
from quarterdeck.core.journal.store import Signal, Store
from quarterdeck.core.observability.redact import Redactor
from quarterdeck.core.policy.budget import BudgetLedger

Subscriber = Callable[[Event], None]

STATUS_EXIT = {
    "succeeded": ExitCode.SUCCEEDED,
    "nothing_to_do": ExitCode.SUCCEEDED,
    "failed": ExitCode.FAILED,
    "rejected": ExitCode.REJECTED,
    "cancelled": ExitCode.CANCELLED,
    "interrupted": ExitCode.INTERRUPTED,
}
OUTPUT_FLUSH_SECONDS = 0.05
OUTPUT_FLUSH_LINES = 500
HEARTBEAT_SECONDS = 5.0


def new_run_id(workflow: str, now: float | None = None) -> str:
    """Sortable and readable: ``20261121-101502-3f9a``."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now or time.time()))
    return f"{stamp}-{os.urandom(2).hex()}"


def exit_code_for(status: str) -> ExitCode:
    return STATUS_EXIT.get(status, ExitCode.FAILED)


@dataclass
class RunOptions:
    """How to run: who starts it, pre-decided gates, limits, clock, where to work."""

    run_id: str | None = None
    started_by: str = "unknown"
    concurrency: int | None = None
    decisions: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    no_wait: bool = False
    workdir: Path | None = None
    clock: Clock = field(default_factory=Clock)
    signal_poll_interval: float = 0.1
    env: dict[str, str] | None = None
    extra_secrets: list[str] = field(default_factory=list)


class _StageFailed(Exception):
    def __init__(self, message: str, status: str = "failed") -> None:
        super().__init__(message)
        self.status = status


class _StepsView(Mapping[str, Any]):
    """``steps.<id>`` in expressions, without copying every step per render."""

    def __init__(self, state: RunState) -> None:
        self._state = state

    def __getitem__(self, key: str) -> Any:
        step = self._state.step(key)
        if step is None:
            raise KeyError(key)
        return {"outputs": step.outputs, "status": step.status, "attempts": step.attempts}

    def __iter__(self) -> Iterator[str]:
        return (s.id for s in self._state.all_steps())

    def __len__(self) -> int:
        return len(self._state.all_steps())


class _StagesView(Mapping[str, Any]):
    def __init__(self, state: RunState) -> None:
        self._state = state

    def __getitem__(self, key: str) -> Any:
        stage = self._state.stages[key]
        return {"status": stage.status, "persona": stage.persona}

    def __iter__(self) -> Iterator[str]:
        return iter(self._state.stages)

    def __len__(self) -> int:
        return len(self._state.stages)


class Runner:
    """Runs one workflow run to an end (or a clean stop) and journals everything."""

    def __init__(
        self,
        loaded: LoadedWorkflow,
        store: Store,
        *,
        inputs: dict[str, Any],
        settings: Settings | None = None,
        personas: Any | None = None,
        options: RunOptions | None = None,
        prior: RunState | None = None,
        subscribers: list[Subscriber] | None = None,
    ) -> None:
        self.loaded = loaded
        self.workflow = loaded.workflow
        self.store = store
        self.inputs = inputs
        self.settings = settings or Settings()
        self.personas = personas
        self.options = options or RunOptions()
        self.clock = self.options.clock
        self.prior = prior
        self.subscribers: list[Subscriber] = list(subscribers or [])
        self.run_id = prior.id if prior else (self.options.run_id or new_run_id(self.workflow.name))
        self.state = prior if prior is not None else RunState(self.run_id)
        self._seq = store.last_seq(self.run_id) if prior is not None else 0
        self.redactor = Redactor(
            [*secret_values(self.workflow, inputs), *self.options.extra_secrets]
        )
        if self.settings.llm.api_key:
            self.redactor.add(self.settings.llm.api_key)
        for key_var in (
            self.settings.llm.api_key_env,
            "QUARTERDECK_LLM_API_KEY",
            "OPENAI_API_KEY",
            "GITHUB_TOKEN",
            "QUARTERDECK_PYPI_PASSWORD",
            "TWINE_PASSWORD",
        ):
            self.redactor.add(os.environ.get(key_var))  # every credential an action might send
        for value in [*self.settings.github.values(), *self.settings.pypi.values()]:
            if value and not value.startswith(("http://", "https://")):
                self.redactor.add(value)
        # steps run where quarterdeck was started (like a CI workspace), not next to the
        # workflow file, which may be bundled in site-packages; --workdir changes it
        self.workdir = (self.options.workdir or Path.cwd()).resolve()
        self.run_dir = state_home() / "runs" / self.run_id
        concurrency = self.options.concurrency or self.workflow.concurrency
        self._semaphore = asyncio.Semaphore(concurrency)
        self._buffer: list[Event] = []
        self._flush_future: asyncio.Future[None] | None = None
        self._lines: dict[tuple[str | None, str | None, str], list[str]] = {}
        self._lines_timer: asyncio.TimerHandle | None = None
        self._unpaused = asyncio.Event()
        self._unpaused.set()
        self._signal_wakeup = asyncio.Event()
        self._cancel: tuple[str, str] | None = None
        self._interrupt: str | None = None
        self._main: asyncio.Task[str] | None = None
        self._finished_status: str | None = None
        self.exit_code: ExitCode | None = None  # set when the status alone does not say it
        self.services: dict[str, Any] = {}
        # token budgets (core/budget.py): one ledger per run, read by llm.chat
        self.services["budget"] = BudgetLedger(
            self.state,
            personas,
            workflow_policy=self.workflow.budget_policy,
            default_policy=self.settings.budget_policy,
            await_gate=self.await_budget_gate,
            run_id=self.run_id,
        )
        self._scope_cache: dict[str, Any] | None = None
        self._step_where: dict[int, str] = {}
        self._stage_task: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._current_stage: str | None = None
        self._abort: tuple[str, str] | None = None  # a rollback asked for: (by, reason)
        self.env = self._child_env()
        # extra env per (stage, step), filled by subscribers (tracing: TRACEPARENT)
        self.step_env: dict[tuple[str, str], dict[str, str]] = {}

    # -- journal ----------------------------------------------------------------------

    def emit(
        self,
        type_: str,
        stage: str | None = None,
        step: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> Event:
        """Journal an event (committed with the others of this loop iteration)."""
        self._seq += 1
        payload = self.redactor.obj(data) if data and self.redactor else (data or {})
        event = Event(type_, self.run_id, stage, step, payload, self.clock.now(), self._seq)
        self.state.apply(event)
        self._buffer.append(event)
        if self._flush_future is None:
            loop = asyncio.get_running_loop()
            self._flush_future = loop.create_future()
            loop.call_soon(self._flush)
        return event

    def _flush(self) -> None:
        batch, self._buffer = self._buffer, []
        future, self._flush_future = self._flush_future, None
        try:
            if len(batch) == 1:
                self.store.append(batch[0])
            elif batch:
                self.store.append_many(batch)
        except Exception as exc:
            if future is not None and not future.done():
                future.set_exception(exc)
                future.exception()  # mark retrieved; awaiting code re-raises
            raise
        if future is not None and not future.done():
            future.set_result(None)
        for event in batch:
            for subscriber in self.subscribers:
                try:
                    subscriber(event)
                except Exception:  # a broken viewer must never break the run
                    continue

    async def committed(self) -> None:
        """Return once every event emitted so far is committed."""
        future = self._flush_future
        if future is not None:  # flushes are FIFO: this one covers everything so far
            await asyncio.shield(future)

    def flush_now(self) -> None:
        """Commit synchronously (at the end of a run, or before exiting)."""
        self._flush_lines()
        if self._buffer or self._flush_future is not None:
            self._flush()

    def _emit_line(self, stage: str, step: str, stream: str, text: str) -> None:
        if self._loop is not None and threading.get_ident() != self._loop_thread:
            # a sync `python` function logging from its worker thread
            self._loop.call_soon_threadsafe(self._emit_line, stage, step, stream, text)
            return
        key = (stage, step, stream)
        bucket = self._lines.setdefault(key, [])
        bucket.append(self.redactor.text(text) if self.redactor else text)
        if len(bucket) >= OUTPUT_FLUSH_LINES:
            self._flush_lines()
        elif self._lines_timer is None:
            loop = asyncio.get_running_loop()
            self._lines_timer = loop.call_later(OUTPUT_FLUSH_SECONDS, self._flush_lines)

    def _flush_lines(self, only: tuple[str | None, str | None] | None = None) -> None:
        if self._lines_timer is not None and only is None:
            self._lines_timer.cancel()
            self._lines_timer = None
        for key in list(self._lines):
            if only is not None and key[:2] != only:
                continue
            lines = self._lines.pop(key)
            if lines:
                self.emit(EventType.STEP_OUTPUT, key[0], key[1], {"stream": key[2], "lines": lines})

    # -- scope ------------------------------------------------------------------------

    def scope(self) -> dict[str, Any]:
        if self._scope_cache is None:
            self._scope_cache = {
                "inputs": self.inputs,
                "steps": _StepsView(self.state),
                "stages": _StagesView(self.state),
                "memory": self.state.memory,
                "env": dict(self.workflow.env),
                "run": {
                    "id": self.run_id,
                    "workflow": self.workflow.name,
                    "started_at": self.state.started_at,
                    "started_by": self.state.started_by,
                    "dir": str(self.run_dir),
                },
            }
        return self._scope_cache

    def _child_env(self) -> dict[str, str]:
        base = dict(self.options.env if self.options.env is not None else os.environ)
        for name in list(base):
            # credentials for Quarterdeck itself never reach child processes
            if name.startswith("QUARTERDECK_LLM_") or name == self.settings.llm.api_key_env:
                del base[name]
        base.update({k: str(v) for k, v in self.workflow.env.items()})
        return base

    # -- lifecycle --------------------------------------------------------------------

    def plan(self) -> list[dict[str, Any]]:
        out = []
        for stage in self.workflow.stages:
            out.append(
                {
                    "id": stage.id,
                    "title": stage.title,
                    "persona": stage.persona,
                    "approval": stage.approval.id if stage.approval else None,
                    "gate": stage.gate.id if stage.gate else None,
                    "steps": [{"id": s.id, "uses": s.uses, "needs": s.needs} for s in stage.steps],
                }
            )
        return out

    def _persona_budgets(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name in self.workflow.personas():
            persona = self.personas.get(name) if self.personas is not None else None
            if persona is not None:
                out[name] = {
                    "budget": persona.token_budget,
                    "title": persona.title,
                    "color": persona.color,
                    "role": persona.role,
                    "model": persona.model,
                }
        return out

    async def run(self) -> RunState:
        """Run to the end; returns the final state (``state.status`` says how it ended)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        self._loop, self._loop_thread = loop, threading.get_ident()
        if self.prior is None:
            self.store.create_run(
                self.run_id,
                workflow=self.workflow.name,
                title=self.workflow.title,
                workflow_path=str(self.loaded.path),
                definition=self.loaded.text,
                workdir=str(self.workdir),
                inputs=public_inputs(self.workflow, self.inputs),
                started_by=self.options.started_by,
                started_at=self.clock.now(),
            )
            self.emit(
                EventType.RUN_STARTED,
                data={
                    "workflow": self.workflow.name,
                    "title": self.workflow.title,
                    "inputs": public_inputs(self.workflow, self.inputs),
                    "plan": self.plan(),
                    "started_by": self.options.started_by,
                    "personas": self._persona_budgets(),
                    "pid": os.getpid(),
                },
            )
        else:
            self.store.claim_run(self.run_id)
            self.emit(
                EventType.RUN_RESUMED, data={"by": self.options.started_by, "pid": os.getpid()}
            )
        poller = loop.create_task(self._poll_signals())
        self._main = loop.create_task(self._execute())
        status = "failed"
        error: str | None = None
        try:
            status = await self._main
        except asyncio.CancelledError:
            if self._cancel is not None:
                status = "cancelled"
                error = f"cancelled by {self._cancel[0]}" + (
                    f": {self._cancel[1]}" if self._cancel[1] else ""
                )
            elif self._interrupt is not None:
                status = "interrupted"
                error = self._interrupt
            else:
                raise
        except _NoWait as exc:
            status = "interrupted"  # resumable once someone decides the gate
            error = str(exc)
            self.exit_code = ExitCode.REJECTED
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        if status == "interrupted":
            self.emit(EventType.RUN_INTERRUPTED, data={"reason": error or "interrupted"})
        else:
            if status not in ("succeeded", "nothing_to_do") and error is None:
                error = self.state.error or self._first_error()
            self.emit(EventType.RUN_FINISHED, data={"status": status, "error": error})
        self.flush_now()
        self.store.set_status(self.run_id, status, self.clock.now())
        return self.state

    def _first_error(self) -> str | None:
        for stage in self.state.stages.values():
            if stage.status in ("failed", "rejected") and stage.error:
                return f"stage {stage.id}: {stage.error}"
        return None

    def cancel(self, by: str, reason: str = "") -> None:
        self._cancel = (by, reason)
        self._unpaused.set()
        if self._main is not None and not self._main.done():
            self._main.cancel()

    def interrupt(self, reason: str = "interrupted") -> None:
        """Stop now, resumably (Ctrl-C, SIGTERM)."""
        if self._interrupt is None:
            self._interrupt = reason
            if self._main is not None and not self._main.done():
                self._main.cancel()

    async def _execute(self) -> str:
        for stage in self.workflow.stages:
            prior = self.state.stages.get(stage.id)
            if prior is None or prior.status not in ("succeeded", "skipped"):
                await self._wait_unpaused()
                outcome = await self._run_stage(stage)
                if outcome != "succeeded" and outcome != "skipped":
                    return outcome
            ended = self._ended_by(stage)
            if ended is not None:
                return ended
        return "succeeded"

    def _ended_by(self, stage: Stage) -> str | None:
        """The status a succeeded ``run.end`` step of ``stage`` ends the run with, if any.

        Read from the journaled step, so a resumed run stops at the same stage."""
        for step in stage.steps:
            if step.uses == "run.end":
                done = self.state.step(step.id)
                if done is not None and done.status == "succeeded":
                    return str(done.outputs.get("status") or "succeeded")
        return None

    # -- stages -----------------------------------------------------------------------

    async def _run_stage(self, stage: Stage) -> str:
        where = self._where_stage(stage)
        if stage.when is not None:
            try:
                should = evaluate(stage.when, self.scope(), f"{where}.when")
            except ExpressionError as exc:
                self.emit(
                    EventType.STAGE_FINISHED,
                    stage.id,
                    data={"status": "failed", "error": exc.message},
                )
                return "failed"
            if not should:
                self.emit(EventType.STAGE_SKIPPED, stage.id, data={"reason": "when is false"})
                return "skipped"
        if stage.persona and stage.persona != self.state.persona:
            held = None
            if self.state.persona and self.state.persona in self.state.personas:
                since = self.state.personas[self.state.persona].since
                held = None if since is None else round(self.clock.now() - since, 3)
            self.emit(
                EventType.PERSONA_SWITCHED,
                stage.id,
                data={
                    "from": self.state.persona,
                    "to": stage.persona,
                    "stage": stage.id,
                    "held_seconds": held,
                },
            )
        if stage.approval is not None:
            decided = self.state.approvals.get(stage.approval.id)
            if decided is None or decided.status not in ("approved",):
                outcome = await self._approval(stage, stage.approval)
                if outcome != "approved":
                    return outcome
        self.emit(EventType.STAGE_STARTED, stage.id, data={"persona": stage.persona})
        try:
            self._stage_task = asyncio.ensure_future(self._run_stage_steps(stage))
            self._current_stage = stage.id
            try:
                await self._stage_task
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if self._abort is None or (task is not None and task.cancelling()):
                    raise
                by, reason = self._abort
                self._abort = None
                raise _StageFailed(
                    f"rollback requested by {by}" + (f": {reason}" if reason else "")
                ) from None
            finally:
                self._stage_task = None
                self._current_stage = None
            if stage.gate is not None:
                await self._evaluate_gate(stage)
        except _StageFailed as exc:
            if stage.on_failure:
                await self._run_compensation(stage)
            self.emit(
                EventType.STAGE_FINISHED, stage.id, data={"status": exc.status, "error": str(exc)}
            )
            return exc.status
        self.emit(EventType.STAGE_FINISHED, stage.id, data={"status": "succeeded"})
        return "succeeded"

    async def _run_stage_steps(self, stage: Stage) -> None:
        if stage.timeout is None:
            await self._run_steps(stage, stage.steps)
            return
        try:
            async with asyncio.timeout(stage.timeout):
                await self._run_steps(stage, stage.steps)
        except TimeoutError:
            raise _StageFailed(f"stage timed out after {stage.timeout:g}s") from None

    def _where_stage(self, stage: Stage) -> str:
        index = next(i for i, s in enumerate(self.workflow.stages) if s is stage)
        return f"{self.loaded.where(('stages', index))}: stages[{stage.id}]"

    async def _run_compensation(self, stage: Stage) -> None:
        """Run ``on_failure`` steps in order; each failure is recorded, none stops the rest."""
        for step in stage.on_failure:
            with contextlib.suppress(_StepFailed):
                await self._run_step(stage, step, role="on_failure")

    async def _evaluate_gate(self, stage: Stage) -> None:
        gate = stage.gate
        assert gate is not None
        results: list[dict[str, Any]] = []
        where = f"{self._where_stage(stage)}.gate[{gate.id}]"
        for kind, conditions in (("all", gate.all), ("any", gate.any)):
            for condition in conditions:
                try:
                    ok = evaluate(condition, self.scope(), where)
                    results.append({"condition": condition, "kind": kind, "passed": ok})
                except ExpressionError as exc:
                    results.append(
                        {
                            "condition": condition,
                            "kind": kind,
                            "passed": False,
                            "error": exc.message,
                        }
                    )
        all_ok = all(r["passed"] for r in results if r["kind"] == "all")
        any_results = [r for r in results if r["kind"] == "any"]
        any_ok = not any_results or any(r["passed"] for r in any_results)
        passed = all_ok and any_ok
        self.emit(
            EventType.GATE_EVALUATED,
            stage.id,
            data={"gate": gate.id, "passed": passed, "results": results},
        )
        await self.committed()
        if passed:
            return
        if gate.skippable:
            for signal in self.store.pending_signals(self.run_id):
                if signal.kind == "skip-gate" and signal.target == gate.id:
                    if not signal.reason.strip():
                        self.store.consume_signal(signal.id, "refused: a reason is required")
                        continue
                    self.store.consume_signal(signal.id, "skipped")
                    self.emit(
                        EventType.GATE_SKIPPED,
                        stage.id,
                        data={"gate": gate.id, "by": signal.actor, "reason": signal.reason},
                    )
                    return
        failed = [r["condition"] for r in results if not r["passed"]]
        raise _StageFailed(f"quality gate {gate.id!r} failed: " + "; ".join(failed))

    # -- approvals --------------------------------------------------------------------

    async def _approval(self, stage: Stage, approval: Approval) -> str:
        where = f"{self._where_stage(stage)}.approval[{approval.id}]"
        if approval.when is not None and not evaluate(approval.when, self.scope(), where):
            return "approved"
        existing = self.state.approvals.get(approval.id)
        if existing is not None and existing.status == "rejected":
            # resuming a rejected run: a rejection is final for this run
            self.state.error = f"approval {approval.id!r} was rejected"
            return "rejected"
        scope = self.scope()
        try:
            prompt = render_text(approval.prompt, scope, where) if approval.prompt else ""
            evidence = [render_text(e, scope, where) for e in approval.evidence]
        except ExpressionError as exc:
            prompt, evidence = approval.prompt, [f"(evidence unavailable: {exc.message})"]
        now = self.clock.now()
        timeout_at = None
        if existing is not None and existing.status == "waiting" and existing.timeout_at:
            timeout_at = existing.timeout_at
        elif approval.timeout is not None:
            timeout_at = now + approval.timeout
        self.emit(
            EventType.APPROVAL_REQUESTED,
            stage.id,
            data={
                "gate": approval.id,
                "prompt": prompt,
                "evidence": evidence,
                "approvers": approval.approvers,
                "min_approvals": approval.min_approvals,
                "allow_self_approval": approval.allow_self_approval,
                "timeout_at": timeout_at,
                "on_timeout": approval.on_timeout,
                "command": f"quarterdeck approve {self.run_id} {approval.id} --as NAME",
            },
        )
        await self.committed()
        self.store.set_status(self.run_id, "waiting")
        pre = self.options.decisions.get(approval.id)
        if pre is not None:
            decision, actor, reason = pre
            self.store.send_signal(
                self.run_id, decision, actor=actor, target=approval.id, reason=reason
            )
        elif self.options.no_wait and not self._has_pending_decision(approval.id):
            raise _NoWait(
                f"approval {approval.id!r} is undecided and --no-wait was given: pass "
                f"--approve {approval.id} or --reject {approval.id} (or run "
                f"`quarterdeck approve {self.run_id} {approval.id} --as NAME` then "
                f"`quarterdeck resume {self.run_id}`)"
            )
        while True:
            self._process_signals()
            current = self.state.approvals[approval.id]
            if current.status in ("approved", "rejected"):
                break
            if timeout_at is not None and self.clock.now() >= timeout_at:
                outcome = await self._approval_timeout(stage, approval)
                if outcome is not None:
                    return outcome
                break
            self._signal_wakeup.clear()
            wait_for = self.options.signal_poll_interval
            if timeout_at is not None:
                wait_for = max(0.0, min(wait_for, timeout_at - self.clock.now()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._signal_wakeup.wait(), wait_for)
        self.store.set_status(self.run_id, "running")
        current = self.state.approvals[approval.id]
        if current.status == "rejected":
            self.emit(
                EventType.STAGE_FINISHED,
                stage.id,
                data={
                    "status": "rejected",
                    "error": f"approval {approval.id!r} rejected by {current.decided_by}"
                    + (f": {current.reason}" if current.reason else ""),
                },
            )
            return "rejected"
        return "approved"

    def _has_pending_decision(self, gate: str) -> bool:
        return any(
            s.kind in ("approve", "reject") and s.target == gate
            for s in self.store.pending_signals(self.run_id)
        )

    async def _approval_timeout(self, stage: Stage, approval: Approval) -> str | None:
        action = approval.on_timeout
        if action == "approve":
            self.emit(
                EventType.APPROVAL_DECIDED,
                stage.id,
                data={
                    "gate": approval.id,
                    "decision": "approved",
                    "by": "timeout",
                    "reason": "approved on timeout (on_timeout: approve)",
                    "timed_out": True,
                },
            )
            return None
        decision = "rejected"
        self.emit(
            EventType.APPROVAL_DECIDED,
            stage.id,
            data={
                "gate": approval.id,
                "decision": decision,
                "by": "timeout",
                "reason": f"no decision before the timeout (on_timeout: {action})",
                "timed_out": True,
            },
        )
        status = "failed" if action == "fail" else "rejected"
        self.emit(
            EventType.STAGE_FINISHED,
            stage.id,
            data={
                "status": status,
                "error": f"approval {approval.id!r} timed out (on_timeout: {action})",
            },
        )
        self.store.set_status(self.run_id, "running")
        return status

    async def await_budget_gate(self, gate: str) -> str:
        """Wait for a budget gate (journaled by core/budget.py) like a stage approval."""
        await self.committed()
        self.store.set_status(self.run_id, "waiting")
        if self.options.no_wait and not self._has_pending_decision(gate):
            self.exit_code = ExitCode.REJECTED  # as for an undecided stage approval
            self.interrupt(
                f"budget approval {gate!r} is undecided and --no-wait was given: run "
                f"`quarterdeck approve {self.run_id} {gate} --as NAME` then "
                f"`quarterdeck resume {self.run_id}`"
            )
        while True:
            self._process_signals()
            current = self.state.approvals[gate]
            if current.status in ("approved", "rejected"):
                break
            self._signal_wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._signal_wakeup.wait(), self.options.signal_poll_interval
                )
        self.store.set_status(self.run_id, "running")
        return current.status

    def may_decide(self, approval_id: str, actor: str) -> str | None:
        """Why ``actor`` may not decide ``approval_id``, or None when they may."""
        approval = self.state.approvals.get(approval_id)
        if approval is None:
            return f"gate {approval_id!r} is not waiting for a decision"
        return approval_refusal(approval, actor, self.state.started_by, self.settings.groups)

    # -- signals ----------------------------------------------------------------------

    async def _poll_signals(self) -> None:
        last_beat = 0.0
        while True:
            try:
                self._process_signals()
                now = time.monotonic()
                if now - last_beat > HEARTBEAT_SECONDS:
                    self.store.heartbeat(self.run_id)
                    last_beat = now
            except Exception:  # a locked store for a moment must not kill the run
                pass
            await asyncio.sleep(self.options.signal_poll_interval)

    def _process_signals(self) -> None:
        for signal in self.store.pending_signals(self.run_id):
            outcome = self._handle_signal(signal)
            if outcome is not None:
                self.store.consume_signal(signal.id, outcome)
                self._signal_wakeup.set()

    def _handle_signal(self, signal: Signal) -> str | None:
        """Act on one signal; None leaves it pending (a gate that has not opened yet)."""
        base = {
            "signal_id": signal.id,
            "kind": signal.kind,
            "by": signal.actor,
            "reason": signal.reason,
            "target": signal.target,
        }
        kind = signal.kind
        if kind == "pause":
            if self.state.paused:
                return "already paused"
            self.emit(EventType.SIGNAL_RECEIVED, data=base)
            self.emit(EventType.RUN_PAUSED, data={"by": signal.actor, "reason": signal.reason})
            self._unpaused.clear()
            self.store.set_status(self.run_id, "paused")
            return "paused"
        if kind == "unpause":
            if not self.state.paused:
                return "not paused"
            self.emit(EventType.SIGNAL_RECEIVED, data=base)
            self.emit(EventType.RUN_UNPAUSED, data={"by": signal.actor, "reason": signal.reason})
            self._unpaused.set()
            self.store.set_status(self.run_id, self.state.status)
            return "unpaused"
        if kind == "cancel":
            self.emit(EventType.SIGNAL_RECEIVED, data=base)
            self.cancel(signal.actor, signal.reason)
            return "cancelled"
        if kind == "note":
            self.emit(EventType.SIGNAL_RECEIVED, data={**base, "data": signal.data})
            return "noted"
        if kind in ("approve", "reject"):
            gate = signal.target or ""
            known = {s.approval.id for s in self.workflow.stages if s.approval}
            known |= {a.id for a in self.state.approvals.values()}
            if gate not in known:
                return f"refused: no approval gate {gate!r} in this workflow"
            approval = self.state.approvals.get(gate)
            if approval is None or approval.status != "waiting":
                if approval is not None and approval.status in ("approved", "rejected"):
                    return f"refused: gate {gate!r} was already {approval.status}"
                return None  # the gate has not opened yet: keep the decision for it
            decision = "approved" if kind == "approve" else "rejected"
            why = approval_refusal(
                approval, signal.actor, self.state.started_by, self.settings.groups, decision
            )
            self.emit(EventType.SIGNAL_RECEIVED, data=base)
            if why is not None:
                self.emit(
                    EventType.APPROVAL_REFUSED,
                    approval.stage,
                    data={"gate": gate, "by": signal.actor, "decision": decision, "why": why},
                )
                return f"refused: {why}"
            self.emit(
                EventType.APPROVAL_VOTE,
                approval.stage,
                data={
                    "gate": gate,
                    "by": signal.actor,
                    "decision": decision,
                    "reason": signal.reason,
                },
            )
            approvals = {v.by for v in approval.votes if v.decision == "approved"}
            if decision == "rejected":
                self.emit(
                    EventType.APPROVAL_DECIDED,
                    approval.stage,
                    data={
                        "gate": gate,
                        "decision": "rejected",
                        "by": signal.actor,
                        "reason": signal.reason,
                    },
                )
                return "rejected"
            if len(approvals) >= approval.min_approvals:
                self.emit(
                    EventType.APPROVAL_DECIDED,
                    approval.stage,
                    data={
                        "gate": gate,
                        "decision": "approved",
                        "by": ", ".join(sorted(approvals)),
                        "reason": signal.reason,
                    },
                )
                return "approved"
            return f"vote recorded ({len(approvals)}/{approval.min_approvals})"
        if kind == "rollback":
            target = signal.target
            if self._stage_task is None or self._stage_task.done():
                return "refused: no stage is running"
            if target and target != self._current_stage:
                return f"refused: stage {target!r} is not running (running: {self._current_stage})"
            self.emit(EventType.SIGNAL_RECEIVED, data=base)
            self._abort = (signal.actor, signal.reason)
            self._stage_task.cancel()
            return f"rolling back stage {self._current_stage}"
        if kind == "skip-gate":
            return None  # read when the gate fails (see _evaluate_gate)
        return f"ignored: {kind} is not handled by a running run"

    async def _wait_unpaused(self) -> None:
        if not self._unpaused.is_set():
            await self._unpaused.wait()

    # -- steps ------------------------------------------------------------------------

    async def _run_steps(self, stage: Stage, steps: list[Step]) -> None:
        """Run a stage's DAG; raise :class:`_StageFailed` when a step fails for good."""
        status: dict[str, str] = {}
        for step in steps:
            prior = self.state.step(step.id)
            if prior is not None and prior.status in ("succeeded", "skipped"):
                status[step.id] = prior.status
        pending = [s for s in steps if s.id not in status]
        # ready-queue scheduling: each step waits on the needs not yet satisfied
        blocked: dict[str, set[str]] = {
            s.id: {n for n in s.needs if n not in status} for s in pending
        }
        dependents: dict[str, list[Step]] = {}
        for step in pending:
            for need in blocked[step.id]:
                dependents.setdefault(need, []).append(step)
        ready = [s for s in pending if not blocked[s.id]]
        waiting = {s.id: s for s in pending if blocked[s.id]}
        running: dict[asyncio.Task[str], Step] = {}
        failure: str | None = None
        loop = asyncio.get_running_loop()
        try:
            while ready or running:
                if failure is None and ready:
                    await self._wait_unpaused()
                    for step in ready:
                        task = loop.create_task(self._run_step_guarded(stage, step))
                        running[task] = step
                    ready = []
                if not running:
                    break
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    step = running.pop(task)
                    result = task.result()
                    status[step.id] = result
                    if result == "failed":
                        if failure is None:
                            err = self.state.step(step.id)
                            failure = f"step {step.id!r} failed" + (
                                f": {err.error}" if err is not None and err.error else ""
                            )
                        continue
                    for dependent in dependents.get(step.id, []):
                        unmet = blocked[dependent.id]
                        unmet.discard(step.id)
                        if not unmet and dependent.id in waiting:
                            ready.append(waiting.pop(dependent.id))
            pending = [s for s in pending if s.id not in status]
        except BaseException:
            for task in running:
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)
            if self._interrupt is None:  # an interrupt leaves them resumable as they are
                final = "cancelled" if self._cancel is not None else "failed"
                reason = (
                    "cancelled"
                    if self._cancel is not None
                    else "stopped for a rollback"
                    if self._abort is not None
                    else "the stage timed out"
                )
                for step in running.values():
                    current = self.state.step(step.id)
                    if current is not None and current.status == "running":
                        self.emit(
                            EventType.STEP_FINISHED,
                            stage.id,
                            step.id,
                            data={"status": final, "attempt": current.attempts, "error": reason},
                        )
            raise
        if failure is not None:
            for step in pending:
                self.emit(
                    EventType.STEP_SKIPPED,
                    stage.id,
                    step.id,
                    data={"reason": "not run: the stage failed"},
                )
            raise _StageFailed(failure)

    async def _run_step_guarded(self, stage: Stage, step: Step) -> str:
        try:
            await self._run_step(stage, step)
        except _StepFailed as exc:
            return "continued" if exc.continued else "failed"
        current = self.state.step(step.id)
        return current.status if current is not None else "succeeded"

    async def _run_step(
        self, stage: Stage, step: Step, *, role: str = "step", parent: str | None = None
    ) -> dict[str, Any]:
        """Run one step with its retries and fallbacks. Raises :class:`_StepFailed`."""
        where = self._where_step(stage, step)
        if step.when is not None:
            try:
                should = evaluate(step.when, self.scope(), f"{where}.when")
            except ExpressionError as exc:
                self.emit(
                    EventType.STEP_FINISHED,
                    stage.id,
                    step.id,
                    data={"status": "failed", "error": exc.message, "attempt": 0},
                )
                raise _StepFailed(exc.message, step.continue_on_error) from None
            if not should:
                self.emit(
                    EventType.STEP_SKIPPED, stage.id, step.id, data={"reason": "when is false"}
                )
                return {}
        policy = step.retry or stage.retry or RetryPolicy()
        prior = self.state.step(step.id)
        first_attempt = (prior.attempts + 1) if prior is not None and prior.attempts else 1
        attempt = first_attempt
        error = "failed"
        outputs: dict[str, Any] = {}
        async with self._semaphore:
            while True:
                await self._wait_unpaused()
                self.emit(
                    EventType.STEP_STARTED,
                    stage.id,
                    step.id,
                    data={"attempt": attempt, "uses": step.uses, "role": role, "parent": parent},
                )
                await self.committed()
                started = self.clock.monotonic()
                retryable = True
                try:
                    outputs = await self._attempt(stage, step, attempt, where)
                except ActionError as exc:
                    error, retryable, outputs = exc.message, exc.retryable, dict(exc.outputs)
                    code = outputs.get("exit_code")
                    if isinstance(code, int) and code in policy.non_retryable_exit_codes:
                        retryable = False
                except ExpressionError as exc:
                    error, retryable = exc.message, False
                except StepSkipped as exc:
                    self._flush_lines((stage.id, step.id))
                    self.emit(
                        EventType.STEP_FINISHED,
                        stage.id,
                        step.id,
                        data={
                            "status": "skipped",
                            "attempt": attempt,
                            "error": exc.reason,
                            "outputs": exc.outputs,
                        },
                    )
                    return exc.outputs
                except TimeoutError:
                    error = f"timed out after {step.timeout:g}s"
                else:
                    self._flush_lines((stage.id, step.id))
                    self.emit(
                        EventType.STEP_FINISHED,
                        stage.id,
                        step.id,
                        data={
                            "status": "succeeded",
                            "attempt": attempt,
                            "outputs": outputs,
                            "duration": round(self.clock.monotonic() - started, 6),
                        },
                    )
                    return outputs
                self._flush_lines((stage.id, step.id))
                attempts_used = attempt - first_attempt + 1
                if not retryable or attempts_used >= policy.max_attempts:
                    break
                delay = retry_delay(policy, attempts_used)
                self.emit(
                    EventType.STEP_RETRY,
                    stage.id,
                    step.id,
                    data={"attempt": attempt, "delay": delay, "error": error},
                )
                await self.clock.sleep(delay)
                attempt += 1
        for fallback in step.fallback:
            try:
                result = await self._run_step(stage, fallback, role="fallback", parent=step.id)
            except _StepFailed:
                continue
            self.emit(
                EventType.STEP_FINISHED,
                stage.id,
                step.id,
                data={
                    "status": "succeeded",
                    "attempt": attempt,
                    "outputs": result,
                    "via": fallback.id,
                    "error": error,
                },
            )
            return result
        self.emit(
            EventType.STEP_FINISHED,
            stage.id,
            step.id,
            data={
                "status": "failed",
                "attempt": attempt,
                "error": error,
                "outputs": outputs,
                "continue_on_error": step.continue_on_error,
            },
        )
        raise _StepFailed(error, step.continue_on_error)

    def _where_step(self, stage: Stage, step: Step) -> str:
        """``file:line:col: step ID`` for messages; computed once per workflow."""
        if not self._step_where:
            for i, st in enumerate(self.workflow.stages):
                for key in ("steps", "on_failure"):
                    todo: list[tuple[tuple[Any, ...], Step]] = [
                        (("stages", i, key, j), s) for j, s in enumerate(getattr(st, key))
                    ]
                    while todo:
                        loc, item = todo.pop()
                        self._step_where[id(item)] = f"{self.loaded.where(loc)}: step {item.id}"
                        todo.extend(
                            ((*loc, "fallback", k), fb) for k, fb in enumerate(item.fallback)
                        )
        return self._step_where.get(id(step), f"{self.loaded.path}: step {step.id}")

    async def _attempt(self, stage: Stage, step: Step, attempt: int, where: str) -> dict[str, Any]:
        spec = get_action(step.uses)
        if spec is None:
            raise NonRetryableError(f"unknown action {step.uses!r}")
        scope = self.scope()
        raw = {k: v for k, v in step.with_.items() if k in spec.raw}
        rendered = render(
            {k: v for k, v in step.with_.items() if k not in spec.raw}, scope, f"{where}.with"
        )
        try:
            params = spec.params.model_validate({**rendered, **raw})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                for e in exc.errors(include_url=False)
            )
            raise NonRetryableError(
                f"{where}: bad parameters for {step.uses}: {problems}"
            ) from None
        persona = (
            self.personas.get(stage.persona)
            if self.personas is not None and stage.persona
            else None
        )
        env = dict(self.env)
        env.update({k: render_text(v, scope, f"{where}.env") for k, v in step.env.items()})
        env.update(self.step_env.get((stage.id, step.id), {}))
        ctx = ActionContext(
            run_id=self.run_id,
            workflow=self.workflow.name,
            stage_id=stage.id,
            step_id=step.id,
            attempt=attempt,
            persona=persona,
            workdir=self.workdir,
            run_dir=self.run_dir,
            env=env,
            settings=self.settings,
            clock=self.clock,
            idempotency_key=f"{self.run_id}/{step.id}",
            emit_line=lambda stream, text: self._emit_line(stage.id, step.id, stream, text),
            memory=self.state.memory,
            set_memory=self._set_memory(stage.id, step.id),
            render=lambda text: render(text, self.scope(), f"{where}.with"),
            render_text=lambda text: render_text(text, self.scope(), f"{where}.with"),
            redact=self.redactor.text,
            services=self.services,
            workflow_dir=self.loaded.path.parent.resolve(),
            emit_event=self._emit_from_action(stage.id, step.id),
        )
        if step.timeout is not None:
            async with asyncio.timeout(step.timeout):
                result = await spec.fn(params, ctx)
        else:
            result = await spec.fn(params, ctx)
        return dict(result or {})

    def _set_memory(self, stage: str, step: str) -> Callable[[str, Any], Any]:
        async def set_memory(key: str, value: Any) -> None:
            self.emit(EventType.MEMORY_SET, stage, step, data={"key": key, "value": value})

        return set_memory

    def _emit_from_action(self, stage: str, step: str) -> Callable[[str, dict[str, Any]], Any]:
        async def emit(type_: str, data: dict[str, Any]) -> None:
            self.emit(type_, stage, step, data=data)
            await self.committed()

        return emit


class _StepFailed(Exception):
    def __init__(self, message: str, continued: bool = False) -> None:
        super().__init__(message)
        self.continued = continued


class _NoWait(Exception):
    pass


def retry_delay(policy: RetryPolicy, attempts_used: int, rng: random.Random | None = None) -> float:
    """The delay before the next attempt, after ``attempts_used`` failed attempts."""
    if policy.backoff == "constant":
        delay = policy.initial_delay
    elif policy.backoff == "linear":
        delay = policy.initial_delay * attempts_used
    else:
        delay = policy.initial_delay * (policy.multiplier ** (attempts_used - 1))
    delay = min(delay, policy.max_delay)
    jitter = 0.1 if policy.jitter is True else float(policy.jitter or 0)
    if jitter:
        spread = delay * jitter
        delay = max(0.0, delay + (rng or random).uniform(-spread, spread))
        delay = min(delay, policy.max_delay)
    return round(delay, 6)


def approval_refusal(
    approval: Any,
    actor: str,
    started_by: str,
    groups: Mapping[str, list[str]],
    decision: str = "approved",
) -> str | None:
    """Why ``actor`` may not decide this approval, or None when they may."""
    if approval.status != "waiting":
        return f"gate {approval.id!r} is not waiting for a decision (it is {approval.status})"
    if not is_approver(actor, approval.approvers, groups):
        return f"{actor!r} may not decide gate {approval.id!r}; approvers: " + ", ".join(
            approval.approvers
        )
    if decision == "approved" and actor == started_by and not approval.allow_self_approval:
        return (
            f"{actor!r} started this run and gate {approval.id!r} does not allow "
            "self-approval; someone else must decide"
        )
    if any(v.by == actor for v in approval.votes):
        return f"{actor!r} has already voted on gate {approval.id!r}"
    return None
