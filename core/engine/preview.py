"""``run --dry-run``'s decisions: evaluate the steps that only read, show what they decide.

A plan that lists steps hides what matters before a release: which version it would cut,
which commits would ship, which ``when:`` conditions hold. Actions that declare themselves
read-only (:attr:`~quarterdeck.core.actions.base.ActionSpec.read_only`, or
``read_only_when`` their parameters say so, like ``git.bump_version`` with ``write: false``)
are run for real, in a scratch directory, and their outputs feed later conditions; every
other step is only described. Nothing the run would write is written.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from quarterdeck.core.actions.base import ActionContext, get_action
from quarterdeck.core.clock import Clock
from quarterdeck.core.definition.expressions import evaluate, render, render_text
from quarterdeck.core.definition.graph import layers
from quarterdeck.core.definition.models import Step, Workflow
from quarterdeck.core.errors import ActionError, ExpressionError, StepSkipped

_MAX_ITEMS = 30


def _show(value: Any, indent: str) -> list[str]:
    if isinstance(value, list | tuple):
        shown = [f"{indent}- {item}" for item in value[:_MAX_ITEMS]]
        if len(value) > _MAX_ITEMS:
            shown.append(f"{indent}- … {len(value) - _MAX_ITEMS} more")
        return shown
    text = str(value)
    first, *rest = text.splitlines() or [""]
    return [f"{indent}{first}" + (" …" if rest else "")]


class Preview:
    """Walks a workflow in order, evaluating what may be evaluated without side effects."""

    def __init__(
        self,
        workflow: Workflow,
        inputs: dict[str, Any],
        *,
        settings: Any,
        workdir: Path,
        env: dict[str, str],
        redact: Callable[[str], str] = lambda text: text,
    ) -> None:
        self.workflow = workflow
        self.settings = settings
        self.workdir = workdir
        self.env = env
        self.redact = redact
        self.steps: dict[str, dict[str, Any]] = {}
        self.scope: dict[str, Any] = {
            "inputs": inputs,
            "steps": self.steps,
            "stages": {},
            "memory": {},
            "env": dict(workflow.env),
            "run": {"id": "dry-run", "workflow": workflow.name, "dir": ""},
        }

    def condition(self, text: str | bool) -> str:
        try:
            return "true" if evaluate(text, self.scope) else "false"
        except ExpressionError:
            return "unknown (needs results of steps a dry run does not execute)"

    async def step(self, stage_id: str, step: Step, run_dir: Path) -> list[str]:
        lines = [f"  {step.id} [{step.uses}]"]
        if step.when is not None:
            holds = self.condition(step.when)
            lines.append(f"    when {step.when} → {holds}")
            if holds == "false":
                return lines
        spec = get_action(step.uses)
        if spec is None:
            return [*lines, "    (unknown action)"]
        try:
            rendered = render(
                {k: v for k, v in step.with_.items() if k not in spec.raw}, self.scope
            )
            params = spec.params.model_validate(
                {**rendered, **{k: v for k, v in step.with_.items() if k in spec.raw}}
            )
        except ExpressionError:
            return [*lines, "    not evaluated: its parameters need results of earlier steps"]
        except ValidationError as exc:
            return [*lines, f"    not evaluated: bad parameters ({exc.error_count()} problem(s))"]
        if not spec.is_read_only(params):
            return [*lines, "    would run (not read-only: not executed in a dry run)"]
        ctx = ActionContext(
            run_id="dry-run",
            workflow=self.workflow.name,
            stage_id=stage_id,
            step_id=step.id,
            attempt=1,
            persona=None,
            workdir=self.workdir,
            run_dir=run_dir,
            env=dict(self.env),
            settings=self.settings,
            clock=Clock(),
            idempotency_key=f"dry-run/{step.id}",
            emit_line=lambda stream, text: None,
            memory={},
            set_memory=_no_memory,
            render=lambda text: render(text, self.scope),
            render_text=lambda text: render_text(text, self.scope),
            redact=self.redact,
        )
        try:
            outputs = dict(await spec.fn(params, ctx) or {})
        except ActionError as exc:
            self.steps[step.id] = {"outputs": dict(exc.outputs), "status": "failed"}
            refused = " (refused: the real run would stop here, exit 2)" * bool(
                exc.outputs.get("refused")
            )
            return [*lines, f"    evaluated: FAILED{refused}: {self.redact(exc.message)}"]
        except StepSkipped as exc:
            self.steps[step.id] = {"outputs": dict(exc.outputs), "status": "skipped"}
            return [*lines, f"    evaluated: skipped: {exc.reason}"]
        self.steps[step.id] = {"outputs": outputs, "status": "succeeded", "attempts": 1}
        lines.append("    evaluated (read-only):")
        for key, value in outputs.items():
            shown = _show(value, "        ")
            if isinstance(value, list | tuple):
                lines.append(f"      {key}:")
                lines.extend(self.redact(s) for s in shown)
            else:
                lines.append(f"      {key}: {self.redact(shown[0].strip())}")
        return lines

    async def lines(self) -> list[str]:
        out = ["decisions (dry run: read-only steps evaluated, nothing written):"]
        with tempfile.TemporaryDirectory(prefix="quarterdeck-dry-run-") as scratch:
            for stage in self.workflow.stages:
                head = f"stage {stage.id}"
                if stage.when is not None:
                    head += f" when {stage.when} → {self.condition(stage.when)}"
                out.append(head)
                if stage.approval is not None:
                    out.append(f"  approval {stage.approval.id} is asked before this stage")
                for layer in layers(stage.steps):
                    for step in layer:
                        out.extend(await self.step(stage.id, step, Path(scratch)))
                if stage.gate is not None:
                    for cond in [*stage.gate.all, *stage.gate.any]:
                        out.append(f"  gate {stage.gate.id}: {cond} → {self.condition(cond)}")
        return out


async def _no_memory(key: str, value: Any) -> None:
    raise ActionError("a read-only step may not set memory in a dry run", retryable=False)
