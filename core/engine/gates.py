"""Quality gates: conditions over the run scope, checked after a stage's steps.

Every condition's result is journaled in one ``gate.evaluated`` event (an expression
that fails to evaluate counts as not passed, with its error). A failed gate fails the
stage unless it is ``skippable`` and someone sent a ``skip-gate`` signal with a reason.
"""

from __future__ import annotations

from quarterdeck.core.definition.expressions import evaluate
from quarterdeck.core.definition.models import Stage
from quarterdeck.core.engine.context import RunContext
from quarterdeck.core.engine.failures import StageFailed
from quarterdeck.core.engine.journal_writer import JournalWriter
from quarterdeck.core.engine.scope import Scope
from quarterdeck.core.errors import ExpressionError
from quarterdeck.core.journal.events import GateEvaluated, GateResult, GateSkipped


class QualityGates:
    """Evaluates a stage's ``gate`` and journals the outcome."""

    def __init__(self, ctx: RunContext, writer: JournalWriter, scope: Scope) -> None:
        self._ctx = ctx
        self._writer = writer
        self._scope = scope

    async def check(self, stage: Stage, where: str) -> None:
        """Return when the gate passed (or was skipped); raise :class:`StageFailed` if not."""
        gate = stage.gate
        assert gate is not None
        results: list[GateResult] = []
        where = f"{where}.gate[{gate.id}]"
        for kind, conditions in (("all", gate.all), ("any", gate.any)):
            for condition in conditions:
                try:
                    ok = evaluate(condition, self._scope.get(), where)
                    results.append(GateResult(condition=condition, kind=kind, passed=ok))
                except ExpressionError as exc:
                    results.append(
                        GateResult(condition=condition, kind=kind, passed=False, error=exc.message)
                    )
        all_ok = all(r.passed for r in results if r.kind == "all")
        any_results = [r for r in results if r.kind == "any"]
        any_ok = not any_results or any(r.passed for r in any_results)
        passed = all_ok and any_ok
        self._writer.emit(GateEvaluated(gate=gate.id, passed=passed, results=results), stage.id)
        await self._writer.committed()
        if passed:
            return
        if gate.skippable and self._skipped(stage, gate.id):
            return
        failed = [r.condition for r in results if not r.passed]
        raise StageFailed(f"quality gate {gate.id!r} failed: " + "; ".join(failed))

    def _skipped(self, stage: Stage, gate: str) -> bool:
        """Consume a ``skip-gate`` signal for ``gate``; one without a reason is refused."""
        writer = self._writer
        for signal in writer.pending_signals():
            if signal.kind == "skip-gate" and signal.target == gate:
                if not signal.reason.strip():
                    writer.consume_signal(signal.id, "refused: a reason is required")
                    continue
                writer.consume_signal(signal.id, "skipped")
                self._writer.emit(
                    GateSkipped(gate=gate, by=signal.actor, reason=signal.reason), stage.id
                )
                return True
        return False
