"""The names an expression sees: ``inputs``, ``steps``, ``stages``, ``memory``, ``env``, ``run``.

``steps`` and ``stages`` are live views over the run state, so the scope is built once per
run and every render reads the current values without copying each step.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from quarterdeck.core.engine.context import RunContext
from quarterdeck.core.journal.state import RunState


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
    """``stages.<id>.status`` and ``.persona`` in expressions."""

    def __init__(self, state: RunState) -> None:
        self._state = state

    def __getitem__(self, key: str) -> Any:
        stage = self._state.stages[key]
        return {"status": stage.status, "persona": stage.persona}

    def __iter__(self) -> Iterator[str]:
        return iter(self._state.stages)

    def __len__(self) -> int:
        return len(self._state.stages)


class Scope:
    """The run's expression scope, built on first use (``run.started_at`` is known then)."""

    def __init__(self, ctx: RunContext) -> None:
        self._ctx = ctx
        self._cache: dict[str, Any] | None = None

    def get(self) -> dict[str, Any]:
        if self._cache is None:
            ctx = self._ctx
            self._cache = {
                "inputs": ctx.inputs,
                "steps": _StepsView(ctx.state),
                "stages": _StagesView(ctx.state),
                "memory": ctx.state.memory,
                "env": dict(ctx.workflow.env),
                "run": {
                    "id": ctx.run_id,
                    "workflow": ctx.workflow.name,
                    "started_at": ctx.state.started_at,
                    "started_by": ctx.state.started_by,
                    "dir": str(ctx.run_dir),
                },
            }
        return self._cache
