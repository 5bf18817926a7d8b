"""The in-process async runner: one workflow run, stage after stage, journaled.

Stages run in order; a stage's steps form a DAG (``needs``) run by the
:mod:`~quarterdeck.core.engine.scheduler`, independent steps concurrently under the run's
concurrency limit. Every event is committed to the journal before anyone acts on it (see
:mod:`~quarterdeck.core.engine.journal_writer`); subscribers (the cockpit, the headless
renderer, metrics) see an event only after it is committed, and must never block.

The runner composes the engine's parts and owns the run and stage lifecycle:

- :mod:`~quarterdeck.core.engine.step`: one step's attempts, retries, fallbacks;
- :mod:`~quarterdeck.core.engine.gates` and :mod:`~quarterdeck.core.engine.approvals`: the
  quality and human gates around a stage;
- :mod:`~quarterdeck.core.engine.signals`: pause, cancel, rollback, votes;
- :mod:`~quarterdeck.core.engine.recovery`: what a resumed run reuses from its journal;
- :mod:`~quarterdeck.core.engine.scope`: the names expressions see.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from pathlib import Path
from typing import Any

from quarterdeck.core.actions.process_groups import in_flight_groups, reap
from quarterdeck.core.config import Settings
from quarterdeck.core.credentials import (
    KNOWN_CREDENTIAL_VARS,
    credential_values,
    named_credentials,
)
from quarterdeck.core.definition.expressions import evaluate
from quarterdeck.core.definition.inputs import public_inputs, secret_values
from quarterdeck.core.definition.models import Stage
from quarterdeck.core.definition.validate import LoadedWorkflow
from quarterdeck.core.engine import recovery
from quarterdeck.core.engine.approvals import Approvals, approval_refusal
from quarterdeck.core.engine.context import RunContext, RunOptions
from quarterdeck.core.engine.failures import NoWait, StageFailed, StepFailed
from quarterdeck.core.engine.gates import QualityGates
from quarterdeck.core.engine.journal_writer import JournalFailed, JournalWriter, Subscriber
from quarterdeck.core.engine.scheduler import Scheduler
from quarterdeck.core.engine.scope import Scope
from quarterdeck.core.engine.signals import Signals
from quarterdeck.core.engine.step import StepRunner, retry_delay
from quarterdeck.core.engine.step_output import StepLogs
from quarterdeck.core.errors import ExitCode, ExpressionError
from quarterdeck.core.journal import snapshot
from quarterdeck.core.journal.events import (
    Event,
    PersonaInfo,
    PersonaSwitched,
    PlanStage,
    PlanStep,
    RunFinished,
    RunInterrupted,
    RunResumed,
    RunStarted,
    StageFinished,
    StageSkipped,
    StageStarted,
)
from quarterdeck.core.journal.payload import Payload
from quarterdeck.core.journal.state import RunState
from quarterdeck.core.journal.statuses import (
    RUN_SUCCESSFUL,
    STAGE_KEPT_ON_RESUME,
    ApprovalStatus,
    RunStatus,
    StageStatus,
    StepStatus,
)
from quarterdeck.core.journal.store import Store
from quarterdeck.core.locations import state_home
from quarterdeck.core.observability.redact import Redactor
from quarterdeck.core.policy.budget import BudgetLedger

__all__ = [
    "STATUS_EXIT",
    "RunOptions",
    "Runner",
    "Subscriber",
    "approval_refusal",
    "exit_code_for",
    "new_owner",
    "new_run_id",
    "retry_delay",
]

STATUS_EXIT: dict[str, ExitCode] = {
    RunStatus.SUCCEEDED: ExitCode.SUCCEEDED,
    RunStatus.NOTHING_TO_DO: ExitCode.SUCCEEDED,
    RunStatus.FAILED: ExitCode.FAILED,
    RunStatus.REJECTED: ExitCode.REJECTED,
    RunStatus.CANCELLED: ExitCode.CANCELLED,
    RunStatus.INTERRUPTED: ExitCode.INTERRUPTED,
}

# every credential an action might send, kept out of the journal (core/credentials.py)
CREDENTIAL_VARS = KNOWN_CREDENTIAL_VARS


def new_run_id(workflow: str, now: float | None = None) -> str:
    """Sortable, readable and collision-free: ``20261121-101502-3f9a0c1d7e2b4a65``.

    The UTC second orders runs; 64 random bits make two runs started in the same second
    (on any host, sharing a store) collide with odds of about n²/2⁶⁵."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now or time.time()))
    return f"{stamp}-{os.urandom(8).hex()}"


def new_owner() -> str:
    """One runner's claim token: who it is, and random bits so a pid reused is not it."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(6).hex()}"


def exit_code_for(status: str) -> ExitCode:
    return STATUS_EXIT.get(status, ExitCode.FAILED)


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
        # one walk over every step's parameters (10,000 steps: ~10 ms a walk), used twice
        self.credential_names = named_credentials(self.settings, self.workflow)
        self.redactor = self._redactor()
        # steps run where quarterdeck was started (like a CI workspace), not next to the
        # workflow file, which may be bundled in site-packages; --workdir changes it
        self.workdir = (self.options.workdir or Path.cwd()).resolve()
        self.run_dir = state_home() / "runs" / self.run_id
        self.exit_code: ExitCode | None = None  # set when the status alone does not say it
        self.journal_error: str | None = None  # why the journal stopped taking events
        # the claim: a resume claimed the run before folding its journal (tui.launch)
        self.owner = self.options.owner or new_owner()
        self._claimed = self.options.owner is not None
        self.services: dict[str, Any] = {}
        self.env = self._child_env()
        # extra env per (stage, step), filled by subscribers (tracing: TRACEPARENT)
        self.step_env: dict[tuple[str, str], dict[str, str]] = {}
        ctx = RunContext(
            run_id=self.run_id,
            loaded=loaded,
            store=store,
            state=self.state,
            inputs=inputs,
            settings=self.settings,
            personas=personas,
            options=self.options,
            clock=self.clock,
            redactor=self.redactor,
            workdir=self.workdir,
            run_dir=self.run_dir,
            env=self.env,
            step_env=self.step_env,
            services=self.services,
            credential_names=self.credential_names,
        )
        # the stricter wins: config, --durability, or the workflow's own field
        levels = (self.settings.durability, self.options.durability, self.workflow.durability)
        self.durability = "full" if "full" in levels else "normal"
        if self.durability == "full":
            store.set_durability("full")  # this connection commits the run's row updates
        self._writer = JournalWriter(
            store,
            self.run_id,
            self.state,
            clock=self.clock,
            redactor=self.redactor,
            subscribers=self.subscribers,
            seq=recovery.next_seq(store, self.run_id, prior),
            logs=StepLogs(self.run_dir, self.redactor, self.settings.output_journal_cap),
            owner=self.owner,
            on_failure=self._journal_failed,
            durability=self.durability,
        )
        self._scope = Scope(ctx)
        self._signals = Signals(ctx, self._writer)
        self._approvals = Approvals(
            ctx, self._writer, self._scope, self._signals, stop_undecided=self._stop_undecided
        )
        self._gates = QualityGates(ctx, self._writer, self._scope)
        limit = self.options.concurrency or self.workflow.concurrency
        slots = asyncio.Semaphore(limit)  # fallbacks and on_failure steps take one too
        self._steps = StepRunner(ctx, self._writer, self._scope, self._signals, slots)
        self._scheduler = Scheduler(ctx, self._writer, self._steps, self._signals, limit)
        # token budgets (core/policy/budget.py): one ledger per run, read by llm.chat
        self.services["budget"] = BudgetLedger(
            self.state,
            personas,
            workflow_policy=self.workflow.budget_policy,
            default_policy=self.settings.budget_policy,
            await_gate=self.await_budget_gate,
            run_id=self.run_id,
            store=store.path,
        )

    def _redactor(self) -> Redactor:
        """Secret inputs, ``--secret`` values and every credential an action may read."""
        environ = self.options.env if self.options.env is not None else os.environ
        redactor = Redactor(
            [*secret_values(self.workflow, self.inputs), *self.options.extra_secrets]
        )
        named = self.credential_names
        for value in credential_values(os.environ, self.settings, self.workflow, named):
            redactor.add(value)
        for value in credential_values(environ, self.settings, self.workflow, named):
            redactor.add(value)
        return redactor

    def _child_env(self) -> dict[str, str]:
        base = dict(self.options.env if self.options.env is not None else os.environ)
        base.update({k: str(v) for k, v in self.workflow.env.items()})
        return base

    # -- journal ----------------------------------------------------------------------

    def emit(
        self,
        payload: Payload,
        stage: str | None = None,
        step: str | None = None,
        *,
        kind: str | None = None,
    ) -> Event:
        """Journal an event (committed with the others of this loop iteration)."""
        return self._writer.emit(payload, stage, step, kind=kind)

    async def committed(self) -> None:
        """Return once every event emitted so far is committed."""
        await self._writer.committed()

    def flush_now(self) -> None:
        """Commit synchronously (at the end of a run, or before exiting)."""
        self._writer.flush_now()

    def scope(self) -> dict[str, Any]:
        """The names expressions see (``inputs``, ``steps``, ``stages``, ``memory``, …)."""
        return self._scope.get()

    # -- lifecycle --------------------------------------------------------------------

    def plan(self) -> list[PlanStage]:
        """The run's shape for ``run.started``: stages, gates and steps in file order."""
        return [
            PlanStage(
                id=stage.id,
                title=stage.title,
                persona=stage.persona,
                approval=stage.approval.id if stage.approval else None,
                gate=stage.gate.id if stage.gate else None,
                steps=[PlanStep(id=s.id, uses=s.uses, needs=s.needs) for s in stage.steps],
            )
            for stage in self.workflow.stages
        ]

    def _persona_budgets(self) -> dict[str, PersonaInfo]:
        out: dict[str, PersonaInfo] = {}
        for name in self.workflow.personas():
            persona = self.personas.get(name) if self.personas is not None else None
            if persona is not None:
                out[name] = PersonaInfo(
                    budget=persona.token_budget,
                    title=persona.title,
                    color=persona.color,
                    role=persona.role,
                    model=persona.model,
                )
        return out

    async def run(self) -> RunState:
        """Run to the end; returns the final state (``state.status`` says how it ended)."""
        self.run_dir.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.run_dir.mkdir(exist_ok=True, mode=0o700)  # outputs and logs: owner only
        loop = asyncio.get_running_loop()
        if self.prior is not None and not self._claimed:
            self.store.claim_run(self.run_id, self.owner)  # refused while another runner lives
            self._claimed = True
        self._writer.bind(loop)
        if self.prior is None:
            self.store.create_run(
                self.run_id,
                workflow=self.workflow.name,
                title=self.options.title or self.workflow.title,
                workflow_path=str(self.loaded.path),
                definition=self.loaded.text,
                definition_data=(self.loaded.data, self.loaded.source.values),  # for resume
                workdir=str(self.workdir),
                inputs=public_inputs(self.workflow, self.inputs),
                started_by=self.options.started_by,
                started_at=self.clock.now(),
                owner=self.owner,
            )
            self.emit(
                RunStarted(
                    workflow=self.workflow.name,
                    title=self.options.title or self.workflow.title,
                    inputs=public_inputs(self.workflow, self.inputs),
                    plan=self.plan(),
                    started_by=self.options.started_by,
                    personas=self._persona_budgets(),
                    pid=os.getpid(),
                )
            )
        else:
            reap(self.run_id, in_flight_groups(self.prior.stages.values()))  # no orphans
            self.emit(RunResumed(by=self.options.started_by, pid=os.getpid()))
            if self.state.paused:  # it stays paused until someone unpauses it
                self._writer.set_status(RunStatus.PAUSED)
        signals = self._signals
        poller = loop.create_task(signals.poll())
        signals.main = loop.create_task(self._execute())
        status = RunStatus.FAILED
        error: str | None = None
        try:
            status = await signals.main
        except asyncio.CancelledError:
            if signals.cancelled is not None:
                by, reason = signals.cancelled
                status = RunStatus.CANCELLED
                error = f"cancelled by {by}" + (f": {reason}" if reason else "")
            elif signals.interrupted is not None:
                status = RunStatus.INTERRUPTED
                error = signals.interrupted
            else:
                raise
        except NoWait as exc:
            status = RunStatus.INTERRUPTED  # resumable once someone decides the gate
            error = str(exc)
            self.exit_code = ExitCode.REJECTED
        except JournalFailed as exc:  # nothing acted on the events that were not committed
            status = RunStatus.INTERRUPTED
            error = str(exc)
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        if status == RunStatus.INTERRUPTED:
            ended = self.emit(RunInterrupted(reason=error or "interrupted"))
        else:
            if status not in RUN_SUCCESSFUL and error is None:
                error = self.state.error or self._first_error()
            if status == RunStatus.FAILED and self._refused():
                self.exit_code = ExitCode.INVALID  # a step refused the request (exit 2)
            ended = self.emit(RunFinished(status=status, error=error))
        # the row ends when the journal says it ended (`runs`, Home and `show` agree), in
        # the same commit as the end
        self._writer.set_status(status, ended.ts)
        self.flush_now()
        self._writer.logs.close()
        self._writer.close()
        if self._writer.failure is None:  # resume and show fold only what comes after it
            snapshot.keep(self.store, self.state, self.owner)
        return self.state

    def _refused(self) -> bool:
        """Whether a failed step refused its request (outputs ``refused: true``)."""
        return any(
            step.status == StepStatus.FAILED and step.outputs.get("refused") is True
            for stage in self.state.stages.values()
            for step in stage.steps.values()
        )

    def _journal_failed(self, failure: JournalFailed) -> None:
        """The journal cannot take events: stop acting now. The run is resumable from its
        last committed event; a lasting cause (damage) only once the store is fixed, so
        the command exits 2, a store error, instead of 130."""
        self.journal_error = reason = str(failure)
        if failure.lasting:
            self.exit_code = ExitCode.INVALID
        self.interrupt(reason)

    def _first_error(self) -> str | None:
        for stage in self.state.stages.values():
            if stage.status in (StageStatus.FAILED, StageStatus.REJECTED) and stage.error:
                return f"stage {stage.id}: {stage.error}"
        return None

    def cancel(self, by: str, reason: str = "") -> None:
        self._signals.cancel(by, reason)

    def interrupt(self, reason: str = "interrupted") -> None:
        """Stop now, resumably (Ctrl-C, SIGTERM): the journal retries only a few seconds more."""
        self._writer.hurry()
        self._signals.interrupt(reason)

    async def _execute(self) -> RunStatus:
        for stage in self.workflow.stages:
            if not recovery.stage_done(self.state, stage):
                await self._signals.wait_unpaused()
                outcome = await self._run_stage(stage)
                if outcome not in STAGE_KEPT_ON_RESUME:
                    return RunStatus(outcome)  # failed or rejected: the run ends so
            ended = recovery.ended_by(self.state, stage)
            if ended is not None:
                return ended
        return RunStatus.SUCCEEDED

    # -- stages -----------------------------------------------------------------------

    async def _run_stage(self, stage: Stage) -> StageStatus:
        """``when``, persona switch, approval, steps, gate; ``on_failure`` if it fails."""
        where = self._where_stage(stage)
        if stage.when is not None:
            try:
                should = evaluate(stage.when, self.scope(), f"{where}.when")
            except ExpressionError as exc:
                self.emit(StageFinished(status=StageStatus.FAILED, error=exc.message), stage.id)
                return StageStatus.FAILED
            if not should:
                self.emit(StageSkipped(reason="when is false"), stage.id)
                return StageStatus.SKIPPED
        if stage.persona and stage.persona != self.state.persona:
            self._switch_persona(stage)
        if stage.approval is not None and not recovery.approval_granted(
            self.state, stage.approval.id
        ):
            refused = await self._approvals.request(stage, stage.approval, where)
            if refused is not None:
                return refused
        self.emit(StageStarted(persona=stage.persona), stage.id)
        signals = self._signals
        try:
            signals.stage_task = asyncio.ensure_future(self._run_stage_steps(stage))
            signals.current_stage = stage.id
            try:
                await signals.stage_task
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if signals.abort is None or (task is not None and task.cancelling()):
                    raise
                by, reason = signals.abort
                signals.abort = None
                raise StageFailed(
                    f"rollback requested by {by}" + (f": {reason}" if reason else "")
                ) from None
            finally:
                signals.stage_task = None
                signals.current_stage = None
            if stage.gate is not None:
                await self._gates.check(stage, where)
        except StageFailed as exc:
            if stage.on_failure:
                await self._run_compensation(stage)
            self.emit(StageFinished(status=exc.status, error=str(exc)), stage.id)
            return exc.status
        self.emit(StageFinished(status=StageStatus.SUCCEEDED), stage.id)
        return StageStatus.SUCCEEDED

    def _switch_persona(self, stage: Stage) -> None:
        """Journal the hand-over to the stage's persona, with how long the last one held."""
        held = None
        if self.state.persona and self.state.persona in self.state.personas:
            since = self.state.personas[self.state.persona].since
            held = None if since is None else round(self.clock.now() - since, 3)
        self.emit(
            PersonaSwitched(
                from_=self.state.persona, to=stage.persona, stage=stage.id, held_seconds=held
            ),
            stage.id,
        )

    async def _run_stage_steps(self, stage: Stage) -> None:
        if stage.timeout is None:
            await self._scheduler.run(stage, stage.steps)
            return
        try:
            async with asyncio.timeout(stage.timeout):
                await self._scheduler.run(stage, stage.steps)
        except TimeoutError:
            raise StageFailed(f"stage timed out after {stage.timeout:g}s") from None

    def _where_stage(self, stage: Stage) -> str:
        index = next(i for i, s in enumerate(self.workflow.stages) if s is stage)
        return f"{self.loaded.where(('stages', index))}: stages[{stage.id}]"

    async def _run_compensation(self, stage: Stage) -> None:
        """Run ``on_failure`` steps in order; each failure is recorded, none stops the rest."""
        for step in stage.on_failure:
            with contextlib.suppress(StepFailed):
                await self._steps.run(stage, step, role="on_failure")

    # -- approvals --------------------------------------------------------------------

    async def await_budget_gate(self, gate: str) -> ApprovalStatus:
        """Wait for a budget gate (journaled by core/policy/budget.py) like a stage approval."""
        return await self._approvals.budget_gate(gate)

    def _stop_undecided(self, message: str) -> None:
        self.exit_code = ExitCode.REJECTED  # as for an undecided stage approval
        self.interrupt(message)

    def may_decide(self, approval_id: str, actor: str) -> str | None:
        """Why ``actor`` may not decide ``approval_id``, or None when they may."""
        return self._approvals.may_decide(approval_id, actor)
