"""One step's life: ``when``, attempts, retry backoff, timeout, fallbacks, the action call.

A step runs while holding one of the run's concurrency slots (a fallback takes its own
after the step released its slot). Each attempt is journaled before the action is called
(``step.started``, committed), so a crash mid-attempt resumes with the next attempt
number. A failure is retried per the step's (or stage's) ``retry`` policy, then each
``fallback`` is tried in order; only then does the step fail, and ``continue_on_error``
decides whether the stage goes on.
"""

from __future__ import annotations

import asyncio
import random
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from quarterdeck.core.actions.base import ActionContext, get_action
from quarterdeck.core.credentials import credential_env_names
from quarterdeck.core.definition.expressions import evaluate, render, render_text
from quarterdeck.core.definition.models import RetryPolicy, Stage, Step
from quarterdeck.core.engine import recovery
from quarterdeck.core.engine.context import RunContext
from quarterdeck.core.engine.failures import StepFailed
from quarterdeck.core.engine.journal_writer import JournalWriter
from quarterdeck.core.engine.scope import Scope
from quarterdeck.core.engine.signals import Signals
from quarterdeck.core.errors import ActionError, ExpressionError, NonRetryableError, StepSkipped
from quarterdeck.core.journal.events import (
    PAYLOADS,
    MemorySet,
    PayloadError,
    StepFinished,
    StepRetry,
    StepStarted,
)
from quarterdeck.core.journal.events import StepSkipped as StepSkippedEvent
from quarterdeck.core.journal.statuses import StepStatus


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


class _Where:
    """A step's place for its messages, ``file:line:col: step ID`` and what of it (``.with``,
    ``.env``, ``.when``), formatted when a message says it (``str``, ``format``).

    Every step's place was looked up and formatted before the step ran, ~2% of a step's
    instructions, for messages a step that succeeds never gives."""

    __slots__ = ("_part", "_runner", "_stage", "_step")

    def __init__(self, runner: StepRunner, stage: Stage, step: Step, part: str = "") -> None:
        self._runner, self._stage, self._step, self._part = runner, stage, step, part

    def part(self, part: str) -> _Where:
        """This place's ``part`` (``.with``...)."""
        return _Where(self._runner, self._stage, self._step, part)

    def __str__(self) -> str:
        return self._runner.where(self._stage, self._step) + self._part

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


class StepRunner:
    """Runs single steps (main, fallback or ``on_failure``) and journals every attempt."""

    def __init__(
        self,
        ctx: RunContext,
        writer: JournalWriter,
        scope: Scope,
        signals: Signals,
        slots: asyncio.Semaphore,
    ) -> None:
        """``slots`` is the run's concurrency limit, shared by every step of every stage."""
        self._ctx = ctx
        self._writer = writer
        self._scope = scope
        self._signals = signals
        self._slots = slots
        self._where: dict[int, str] = {}
        self._locs: dict[int, tuple[Any, ...]] = {}  # each step's place in the definition
        # per-run constants, computed on first use (not per attempt: they cannot change)
        self._workflow_dir: Path | None = None
        self._base_hidden: frozenset[str] | None = None
        self._no_retry: RetryPolicy | None = None

    async def run(
        self, stage: Stage, step: Step, *, role: str = "step", parent: str | None = None
    ) -> dict[str, Any]:
        """Run one step with its retries and fallbacks. Raises :class:`StepFailed`."""
        ctx, writer, emit = self._ctx, self._writer, self._writer.emit
        where = _Where(self, stage, step)
        if step.when is not None:
            try:
                should = evaluate(step.when, self._scope.get(), where.part(".when"))
            except ExpressionError as exc:
                emit(
                    StepFinished(status=StepStatus.FAILED, error=exc.message, attempt=0),
                    stage.id,
                    step.id,
                )
                raise StepFailed(exc.message, step.continue_on_error) from None
            if not should:
                emit(StepSkippedEvent(reason="when is false"), stage.id, step.id)
                return {}
        policy = step.retry or stage.retry or self._default_policy()
        if ctx.state.step(step.id) is None:  # never started: nothing journaled to go on from
            first_attempt, failed_before = 1, 0
        else:
            first_attempt = recovery.first_attempt(ctx.state, step)
            failed_before = recovery.failed_attempts(ctx.state, step)  # before a crash: count
            backoff = recovery.retry_wait(ctx.state, step, ctx.clock.now())
            if backoff > 0:  # a resume honours the backoff it was killed in
                await ctx.clock.sleep(backoff)
        attempt = first_attempt
        error = "failed"
        outputs: dict[str, Any] = {}
        async with self._slots:
            while True:
                if self._signals.paused:
                    await self._signals.wait_unpaused()
                emit(
                    StepStarted(attempt=attempt, uses=step.uses, role=role, parent=parent),
                    stage.id,
                    step.id,
                )
                await writer.committed()
                started = ctx.clock.monotonic()
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
                    writer.flush_lines((stage.id, step.id))
                    emit(
                        StepFinished(
                            status=StepStatus.SKIPPED,
                            attempt=attempt,
                            error=exc.reason,
                            outputs=exc.outputs,
                        ),
                        stage.id,
                        step.id,
                    )
                    return exc.outputs
                except TimeoutError as exc:
                    error = (
                        f"timed out after {step.timeout:g}s"
                        if step.timeout is not None
                        else self._unexpected(stage, step, attempt, exc)
                    )
                except Exception as exc:  # any other failure is this step's, not the run's
                    error = self._unexpected(stage, step, attempt, exc)
                else:
                    writer.flush_lines((stage.id, step.id))
                    emit(
                        StepFinished(
                            status=StepStatus.SUCCEEDED,
                            attempt=attempt,
                            outputs=outputs,
                            duration=round(ctx.clock.monotonic() - started, 6),
                        ),
                        stage.id,
                        step.id,
                    )
                    return outputs
                writer.flush_lines((stage.id, step.id))
                attempts_used = failed_before + attempt - first_attempt + 1
                if not retryable or attempts_used >= policy.max_attempts:
                    break
                delay = retry_delay(policy, attempts_used)
                emit(StepRetry(attempt=attempt, delay=delay, error=error), stage.id, step.id)
                await ctx.clock.sleep(delay)
                attempt += 1
        for fallback in step.fallback:
            try:
                result = await self.run(stage, fallback, role="fallback", parent=step.id)
            except StepFailed:
                continue
            emit(
                StepFinished(
                    status=StepStatus.SUCCEEDED,
                    attempt=attempt,
                    outputs=result,
                    via=fallback.id,
                    error=error,
                ),
                stage.id,
                step.id,
            )
            return result
        emit(
            StepFinished(
                status=StepStatus.FAILED,
                attempt=attempt,
                error=error,
                outputs=outputs,
                continue_on_error=step.continue_on_error,
            ),
            stage.id,
            step.id,
        )
        raise StepFailed(error, step.continue_on_error)

    def _default_policy(self) -> RetryPolicy:
        """One attempt, no retry: made once a run (a model per step cost ~3 µs), read only."""
        if self._no_retry is None:
            self._no_retry = RetryPolicy()
        return self._no_retry

    def _unexpected(self, stage: Stage, step: Step, attempt: int, exc: Exception) -> str:
        """An exception no action turned into an :class:`ActionError` (a bug, or a case
        it did not foresee): the step's error names its type, the traceback goes to a file
        in the run dir (named in the step's log), and retries, fallbacks,
        ``continue_on_error`` and ``on_failure`` apply as usual."""
        error = f"{type(exc).__name__}: {str(exc)[:500] or type(exc).__name__}"
        path = self._ctx.run_dir / "logs" / f"{step.id}-{attempt}.traceback"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            text = "".join(traceback.format_exception(exc))
            path.write_text(self._ctx.redactor.text(text), encoding="utf-8")
            self._writer.emit_line(stage.id, step.id, "stderr", f"{error} (traceback in {path})")
        except OSError:
            self._writer.emit_line(stage.id, step.id, "stderr", error)
        return error

    def where(self, stage: Stage, step: Step) -> str:
        """``file:line:col: step ID`` for messages; each step's formatted when first asked
        (the locs of all are found once per workflow: formatting all 10,000 of a large one
        up front cost its first step ~25 ms)."""
        found = self._where.get(id(step))
        if found is not None:
            return found
        if not self._locs:
            for i, st in enumerate(self._ctx.loaded.workflow.stages):
                for key in ("steps", "on_failure"):
                    todo: list[tuple[tuple[Any, ...], Step]] = [
                        (("stages", i, key, j), s) for j, s in enumerate(getattr(st, key))
                    ]
                    while todo:
                        loc, item = todo.pop()
                        self._locs[id(item)] = loc
                        if item.fallback:
                            todo.extend(
                                ((*loc, "fallback", k), fb) for k, fb in enumerate(item.fallback)
                            )
        at = self._locs.get(id(step))
        if at is None:
            return f"{self._ctx.loaded.path}: step {step.id}"
        found = self._where[id(step)] = f"{self._ctx.loaded.where(at)}: step {step.id}"
        return found

    async def _attempt(
        self, stage: Stage, step: Step, attempt: int, where: _Where
    ) -> dict[str, Any]:
        """Render the parameters, build the action's context and call the action once."""
        ctx = self._ctx
        at_with = where.part(".with")
        spec = get_action(step.uses)
        if spec is None:
            raise NonRetryableError(f"unknown action {step.uses!r}")
        scope = self._scope.get()
        if spec.raw:
            raw = {k: v for k, v in step.with_.items() if k in spec.raw}
            rendered = render(
                {k: v for k, v in step.with_.items() if k not in spec.raw}, scope, at_with
            )
            given = {**rendered, **raw}
        else:  # (render makes a new dict: the step's own is never changed)
            given = render(step.with_, scope, at_with)
        try:
            params = spec.params.model_validate(given)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                for e in exc.errors(include_url=False)
            )
            raise NonRetryableError(
                f"{where}: bad parameters for {step.uses}: {problems}"
            ) from None
        persona = (
            ctx.personas.get(stage.persona) if ctx.personas is not None and stage.persona else None
        )
        env = dict(ctx.env)
        extra = ctx.step_env.get((stage.id, step.id))
        if step.env:
            at_env = where.part(".env")
            env.update({k: render_text(v, scope, at_env) for k, v in step.env.items()})
        if extra:
            env.update(extra)
        hidden = self._hidden(step, env, bool(extra))
        writer = self._writer
        action_ctx = ActionContext(
            run_id=ctx.run_id,
            workflow=ctx.workflow.name,
            stage_id=stage.id,
            step_id=step.id,
            attempt=attempt,
            persona=persona,
            workdir=ctx.workdir,
            run_dir=ctx.run_dir,
            env=env,
            settings=ctx.settings,
            clock=ctx.clock,
            idempotency_key=f"{ctx.run_id}/{step.id}",
            emit_line=lambda stream, text: writer.emit_line(stage.id, step.id, stream, text),
            memory=ctx.state.memory,
            set_memory=self._set_memory(stage.id, step.id),
            render=lambda text: render(text, self._scope.get(), at_with),
            render_text=lambda text: render_text(text, self._scope.get(), at_with),
            redact=ctx.redactor.text,
            services=ctx.services,
            workflow_dir=self._folder(),
            emit_event=self._emit_from_action(stage.id, step.id),
            credential_env=hidden,
            emit_fragment=lambda stream, text: writer.emit_fragment(
                stage.id, step.id, stream, text
            ),
            started_at=started.started_at if (started := ctx.state.step(step.id)) else None,
        )
        if step.timeout is not None:
            async with asyncio.timeout(step.timeout):
                result = await spec.fn(params, action_ctx)
        else:
            result = await spec.fn(params, action_ctx)
        return dict(result or {})

    def _folder(self) -> Path:
        """The workflow's folder, resolved once a run: every step imports its helpers
        from the same folder, even if a symlink on the way is changed while it runs."""
        if self._workflow_dir is None:
            self._workflow_dir = self._ctx.loaded.path.parent.resolve()
        return self._workflow_dir

    def _hidden(self, step: Step, env: dict[str, str], extra: bool) -> frozenset[str]:
        """The credentials kept out of this step's child processes: every one in its
        environment, less those the step (or the workflow) names in ``env:``.

        The run's environment is fixed when the run starts, so its part is computed once;
        only a step with its own ``env:`` or extra variables (tracing) is worked out anew.
        """
        ctx = self._ctx
        if self._base_hidden is None:
            names = credential_env_names(ctx.env, ctx.credential_names)
            self._base_hidden = frozenset(names - set(ctx.workflow.env))
        if not step.env and not extra:
            return self._base_hidden
        hidden = credential_env_names(env, ctx.credential_names) - set(step.env)
        return frozenset(hidden - set(ctx.workflow.env))

    def _set_memory(self, stage: str, step: str) -> Callable[[str, Any], Any]:
        async def set_memory(key: str, value: Any) -> None:
            self._writer.emit(MemorySet(key=key, value=value), stage, step)

        return set_memory

    def _emit_from_action(self, stage: str, step: str) -> Callable[[str, dict[str, Any]], Any]:
        """An action journals an event's data as it gives it (the built-in ones build it with
        the payload type); data its type's readers could not read fails the step, not the run."""

        async def emit(type_: str, data: dict[str, Any]) -> None:
            kind = PAYLOADS.get(type_)
            if kind is not None:
                try:
                    kind.from_data(data)
                except PayloadError as exc:
                    raise NonRetryableError(f"a bad {type_} event: {exc}") from None
            self._writer.emit_data(type_, data, stage, step)
            await self._writer.committed()

        return emit
