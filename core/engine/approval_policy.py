"""Approval policies for runs without a person at the keyboard (``--approvals FILE``).

A CI job cannot answer a modal dialog, but it can carry a reviewed file that says, per
gate, what to do when the gate opens::

    default: wait                       # gates not listed: wait (the default), approve, reject
    gates:
      publish:                          # a list of rules; the first whose `when` holds wins
        - when: "{{ steps.tests.outputs.coverage >= 90 }}"
          decision: approve
          reason: coverage is at least 90%
        - decision: reject
          reason: coverage below 90%
      deploy: wait                      # shorthand for one rule without a condition

Conditions are expressions over the run scope (``inputs``, ``steps``, ``stages``,
``memory``, ``run``), evaluated when the gate opens. A decision is sent as an ordinary
approve/reject signal by the CI identity, so the gate's approvers, self-approval rule
and the audit trail apply exactly as for a person. ``wait`` leaves the gate to someone
else (``quarterdeck approve`` from another machine sharing the store), or ends the run
with exit 3 under ``--no-wait``. Errors in the file are reported ``file:line:col``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from quarterdeck.core.definition.expressions import condition_syntax_error, evaluate
from quarterdeck.core.definition.loader import SourceMap, load_yaml, parse_model, read_text
from quarterdeck.core.definition.models import Workflow, is_approver
from quarterdeck.core.errors import DefinitionError, ExpressionError, InvalidInput, Problem
from quarterdeck.core.journal.events import ApprovalRequested, Event

Decision = Literal["approve", "reject", "wait"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PolicyRule(_Strict):
    """One rule: a decision, taken when ``when`` holds (always, without ``when``)."""

    decision: Decision
    when: str | bool | None = None
    reason: str = Field(default="", description="Recorded with the decision (audit)")


class ApprovalPolicyFile(_Strict):
    """The whole ``--approvals`` file."""

    version: Literal[1] = 1
    default: Decision = "wait"
    gates: dict[str, Decision | PolicyRule | list[PolicyRule]] = Field(default_factory=dict)


@dataclass(frozen=True)
class PolicyDecision:
    """What the policy says for one gate, and which rule (file:line) said it."""

    gate: str
    decision: Decision
    reason: str
    where: str
    notes: tuple[str, ...] = ()


@dataclass
class ApprovalPolicy:
    """A loaded policy file with the source locations of its rules."""

    path: Path
    model: ApprovalPolicyFile
    source: SourceMap

    def rules(self, gate: str) -> list[tuple[PolicyRule, str]]:
        """The gate's rules in order, each with its ``file:line:col``."""
        entry = self.model.gates.get(gate)
        if entry is None:
            return []
        if isinstance(entry, str):
            return [(PolicyRule(decision=entry), self._where(("gates", gate)))]
        if isinstance(entry, PolicyRule):
            return [(entry, self._where(("gates", gate)))]
        return [(rule, self._where(("gates", gate, i))) for i, rule in enumerate(entry)]

    def _where(self, loc: tuple[Any, ...]) -> str:
        line, col = self.source.locate(loc)
        return f"{self.path}:{line}:{col}"

    def decide(self, gate: str, scope: Mapping[str, Any]) -> PolicyDecision:
        """Evaluate the gate's rules against ``scope``; the first that holds wins.

        A condition that fails to evaluate counts as not holding (noted in ``notes``),
        so a broken ``approve`` rule can never approve by accident.
        """
        notes: list[str] = []
        for rule, where in self.rules(gate):
            if rule.when is not None:
                try:
                    holds = evaluate(rule.when, scope, where)
                except ExpressionError as exc:
                    notes.append(f"{exc.message}; rule skipped")
                    continue
                if not holds:
                    continue
            reason = rule.reason or f"{rule.decision} by approvals policy"
            return PolicyDecision(gate, rule.decision, reason, where, tuple(notes))
        where = (
            self._where(("default",))
            if "default" in self.model.model_fields_set
            else str(self.path)
        )
        return PolicyDecision(gate, self.model.default, "policy default", where, tuple(notes))

    def decisions_possible(self, gate: str) -> set[str]:
        """Every decision this policy could take for ``gate``."""
        found: set[str] = {rule.decision for rule, _ in self.rules(gate)}
        if not found or any(rule.when is not None for rule, _ in self.rules(gate)):
            found.add(self.model.default)
        return found


def load_policy(path: Path, workflow: Workflow | None = None) -> ApprovalPolicy:
    """Read and check a policy file; :class:`DefinitionError` names file:line:col.

    With ``workflow``, gates the workflow does not have and conditions that do not
    parse are reported too, before anything runs.
    """
    data, source = load_yaml(read_text(path), str(path))
    model = parse_model(ApprovalPolicyFile, data, source, "approvals policy")
    policy = ApprovalPolicy(path, model, source)
    problems: list[Problem] = []
    known = {s.approval.id for s in workflow.stages if s.approval} if workflow else None
    for gate, entry in model.gates.items():
        if known is not None and gate not in known:
            line, col = source.locate(("gates", gate), key=True)
            listed = ", ".join(sorted(known)) or "none"
            problems.append(
                Problem(
                    str(path),
                    line,
                    col,
                    f"workflow {workflow.name!r} has no approval gate {gate!r} "  # type: ignore[union-attr]
                    f"(its gates: {listed})",
                    f"gates.{gate}",
                )
            )
        rules = entry if isinstance(entry, list) else [entry]
        for i, rule in enumerate(rules):
            if isinstance(rule, PolicyRule) and isinstance(rule.when, str):
                error = condition_syntax_error(rule.when)
                if error:
                    loc = (
                        ("gates", gate, i, "when")
                        if isinstance(entry, list)
                        else ("gates", gate, "when")
                    )
                    problems.append(source.problem(loc, error, data))
    if problems:
        raise DefinitionError(problems)
    return policy


def check_policy_actor(
    policy: ApprovalPolicy, workflow: Workflow, actor: str, groups: Mapping[str, list[str]]
) -> None:
    """Refuse, before the run, a policy whose decisions ``actor`` may not make.

    The CI identity both starts the run and sends the policy's decisions, so the same
    rules as ``--approve``/``--reject`` apply: be an approver, and approve only gates
    that allow self-approval.
    """
    for stage in workflow.stages:
        approval = stage.approval
        if approval is None:
            continue
        possible = policy.decisions_possible(approval.id) - {"wait"}
        if not possible:
            continue
        where = policy.rules(approval.id)[0][1] if policy.rules(approval.id) else str(policy.path)
        if not is_approver(actor, approval.approvers, groups):
            raise InvalidInput(
                f"{where}: the policy decides gate {approval.id!r} as {actor!r}, who is not "
                f"one of its approvers ({', '.join(approval.approvers)})",
                hint="pass --as NAME (or set QUARTERDECK_USER) to an approver's identity, "
                "or make the gate `wait` in the policy",
            )
        if "approve" in possible and not approval.allow_self_approval:
            raise InvalidInput(
                f"{where}: the policy may approve gate {approval.id!r} as {actor!r}, who "
                "starts this run, and the gate does not allow self-approval",
                hint="set allow_self_approval: true on the gate, or make it `wait` / `reject` "
                "in the policy and let an approver decide",
            )


class PolicySubscriber:
    """Applies a policy when a gate opens: sends the decision as a signal, or notes a wait.

    It runs inside the runner's commit callback, so it only evaluates an expression and
    writes one signal row; it never blocks and never raises.
    """

    def __init__(
        self,
        policy: ApprovalPolicy,
        runner: Any,
        actor: str,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        self.policy = policy
        self.runner = runner
        self.actor = actor
        self.notify = notify or (lambda _message: None)
        self.decided: list[PolicyDecision] = []

    def __call__(self, event: Event) -> None:
        requested = event.payload()
        if not isinstance(requested, ApprovalRequested):
            return
        gate = requested.gate
        if requested.kind not in (None, "approval") or not gate:
            return  # a budget gate is not the file's to decide
        if gate in getattr(self.runner.options, "decisions", {}):
            return  # --approve/--reject on the command line win over the file
        try:
            decision = self.policy.decide(gate, self.runner.scope())
            for note in decision.notes:
                self.notify(f"approvals policy: {note}")
            self.decided.append(decision)
            if decision.decision == "wait":
                self.notify(
                    f"approvals policy ({decision.where}): gate {gate!r}: wait for a "
                    "decision from an approver"
                )
                return
            self.runner.store.send_signal(
                self.runner.run_id,
                decision.decision,
                actor=self.actor,
                target=gate,
                reason=f"{decision.reason} (policy {decision.where})",
            )
            self.notify(
                f"approvals policy ({decision.where}): gate {gate!r}: "
                f"{decision.decision} as {self.actor}: {decision.reason}"
            )
        except Exception as exc:  # a subscriber never breaks the run
            self.notify(f"approvals policy: gate {gate!r}: could not apply: {exc}")
