"""Token budgets: what each persona may spend in a run, and what happens when it would not fit.

Tokens are charged to the stage's persona, per run. Before a model call the request's
need (an estimate of the prompt plus its ``max_tokens``) is checked against what is
left; after the call the real usage replaces the reservation. When a call would go over,
the budget policy decides (the workflow's ``budget_policy`` first, then the persona's,
then the config file's, else ``approve``):

- ``warn``: journal a ``budget`` event and go on;
- ``approve``: open an approval gate (``budget-<persona>-<n>``, ``kind: budget``) asking
  to extend the budget by a stated amount, and wait for approve/reject signals exactly
  like a stage approval; approved extends the budget, rejected fails the step;
- ``fail``: fail the step before the call.

The ledger reads its starting figures from the run's folded state, so a resumed run
carries on from what its journal says was spent. Every figure it decides on is journaled
(``tokens.used``, ``budget``, ``approval.requested``) before the call goes out.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quarterdeck.core.commands import cli_command
from quarterdeck.core.errors import NonRetryableError
from quarterdeck.core.journal.statuses import APPROVAL_DECIDED, ApprovalStatus
from quarterdeck.core.lazy import lazy_module
from quarterdeck.core.lean import lean

if TYPE_CHECKING:
    import asyncio

    from quarterdeck.core.journal import events
    from quarterdeck.core.journal.events import Budget
    from quarterdeck.core.journal.payload import Payload
else:  # loaded with the first step, not when `validate` reads llm.chat's parameters
    asyncio = lazy_module("asyncio")
    events = lazy_module("quarterdeck.core.journal.events")

POLICIES = ("warn", "approve", "fail")
DEFAULT_POLICY = "approve"
GateWaiter = Callable[[str], Awaitable[str]]


def estimate_tokens(text: str) -> int:
    """A rough token count (about four characters per token) for servers that send none.

    Only ever used where the server is silent, and always marked ``estimated``.
    """
    return math.ceil(len(text) / 4) if text else 0


def budget_gate_id(persona: str, n: int) -> str:
    return f"budget-{persona}-{n}"


@lean
class Reservation:
    """Tokens set aside for one call in flight, so concurrent steps cannot overspend."""

    persona: str
    tokens: int
    released: bool = False


@lean
class _Account:
    budget: int
    used: int
    base: int
    reserved: int = 0

    @property
    def remaining(self) -> int:
        return self.budget - self.used


class BudgetLedger:
    """Per-run token accounts, one per persona; shared by all steps via ``ctx.services``.

    ``state`` is the run's :class:`~quarterdeck.core.journal.state.RunState` (or None when an
    action is called outside a run); ``await_gate`` waits for a journaled approval gate to be
    decided and returns its :class:`ApprovalStatus` (the runner supplies it).
    """

    def __init__(
        self,
        state: Any | None = None,
        personas: Any | None = None,
        *,
        workflow_policy: str | None = None,
        default_policy: str | None = None,
        await_gate: GateWaiter | None = None,
        run_id: str = "",
        store: Path | str | None = None,
    ) -> None:
        self._state = state
        self._personas = personas
        self._workflow_policy = workflow_policy
        self._default_policy = default_policy if default_policy in POLICIES else None
        self._await_gate = await_gate
        self._run_id = run_id
        self._store = store  # the journal's path, so the printed approve command finds it
        self._accounts: dict[str, _Account] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._gates: dict[str, int] = {}

    # -- figures ----------------------------------------------------------------------

    def _persona(self, name: str, fallback: Any | None = None) -> Any | None:
        if self._personas is not None:
            found = self._personas.get(name)
            if found is not None:
                return found
        return fallback

    def account(self, name: str, persona: Any | None = None) -> _Account:
        """The persona's account, started from the journal's figures when there are any."""
        acct = self._accounts.get(name)
        if acct is not None:
            return acct
        definition = self._persona(name, persona)
        base = int(getattr(definition, "token_budget", 0) or 0)
        budget, used = base, 0
        usage = self._state.personas.get(name) if self._state is not None else None
        if usage is not None:
            used = usage.tokens_used
            if usage.budget:  # the journal's figure wins: it includes approved extensions
                budget = usage.budget
        acct = _Account(budget=budget, used=used, base=base or budget)
        self._accounts[name] = acct
        return acct

    def policy_for(self, name: str, persona: Any | None = None) -> str:
        """The workflow's policy, else the persona's, else the config file's, else approve."""
        if self._workflow_policy in POLICIES:
            return str(self._workflow_policy)
        definition = self._persona(name, persona)
        own = getattr(definition, "budget_policy", None)
        if own in POLICIES:
            return str(own)
        return self._default_policy or DEFAULT_POLICY

    def figures(self, name: str) -> dict[str, int]:
        acct = self.account(name)
        return {"used": acct.used, "budget": acct.budget, "remaining": acct.remaining}

    # -- before a call ----------------------------------------------------------------

    async def reserve(
        self,
        ctx: Any,
        name: str,
        need: int,
        persona: Any | None = None,
    ) -> Reservation:
        """Set ``need`` tokens aside for ``name``, applying the policy when they do not fit.

        Raises :class:`~quarterdeck.core.errors.NonRetryableError` when the policy stops the call
        (``fail``, or an extension that was rejected).
        """
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            acct = self.account(name, persona)
            policy = self.policy_for(name, persona)
            for _ in range(100):  # each round either fits, stops, or extends the budget
                free = acct.remaining - acct.reserved
                if need <= free:
                    break
                data = events.Budget(
                    persona=name,
                    used=acct.used,
                    budget=acct.budget,
                    remaining=acct.remaining,
                    policy=policy,
                    need=need,
                    reserved=acct.reserved,
                    outcome=None,
                )
                if policy == "warn":
                    await _emit(ctx, data.replace(outcome=events.BudgetOutcome.WARNED))
                    ctx.log(
                        f"budget: persona {name} needs ~{need} tokens, {free} left of "
                        f"{acct.budget}; going on (budget_policy: warn)",
                        "stderr",
                    )
                    break
                if policy == "fail":
                    await _emit(ctx, data.replace(outcome=events.BudgetOutcome.STOPPED))
                    raise NonRetryableError(
                        f"token budget exceeded: persona {name!r} needs ~{need} tokens for "
                        f"this call but has {free} of {acct.budget} left (budget_policy: "
                        "fail); raise its token_budget in a persona override or choose "
                        "budget_policy: approve"
                    )
                await self._extend_with_approval(ctx, name, acct, need, free, data)
            acct.reserved += need
            return Reservation(name, need)

    async def _extend_with_approval(
        self, ctx: Any, name: str, acct: _Account, need: int, free: int, data: Budget
    ) -> None:
        if self._await_gate is None or ctx.emit_event is None:
            raise NonRetryableError(
                f"token budget exceeded: persona {name!r} needs ~{need} tokens but has "
                f"{free} left, and extending it needs an approval, which only a run can ask "
                "for"
            )
        gate, earlier = self._gate_for(name)
        if earlier is not None and earlier.status in APPROVAL_DECIDED:
            # decided while the run was stopped (resume): apply it, do not ask again
            decision = earlier.status
            extend_by = int(earlier.data.get("extend_by") or max(need - free, 1))
        else:
            if earlier is not None:  # still waiting (resume): the amount stated then
                extend_by = int(earlier.data.get("extend_by") or max(need - free, 1))
            else:
                extend_by = max(need - free, acct.base // 2, 1)
            prompt = (
                f"Persona {name} needs ~{need} tokens for step {ctx.step_id} but has "
                f"{free} of {acct.budget} left. Extend its budget by {extend_by} tokens "
                f"(to {acct.budget + extend_by})?"
            )
            await _emit(
                ctx,
                data.replace(
                    outcome=events.BudgetOutcome.APPROVAL_REQUESTED,
                    gate=gate,
                    extend_by=extend_by,
                ),
            )
            await _emit(
                ctx,
                events.ApprovalRequested(
                    gate=gate,
                    kind="budget",
                    prompt=prompt,
                    evidence=[
                        f"used {acct.used} of {acct.budget} tokens",
                        f"this call needs ~{need} (prompt estimate + max_tokens)",
                    ],
                    approvers=[],
                    min_approvals=1,
                    allow_self_approval=True,
                    timeout_at=None,
                    on_timeout="reject",
                    data={
                        "persona": name,
                        "extend_by": extend_by,
                        "need": need,
                        "used": acct.used,
                        "budget": acct.budget,
                        "step": ctx.step_id,
                    },
                    command=cli_command(
                        "approve", self._run_id or ctx.run_id, gate, store=self._store
                    ),
                ),
            )
            ctx.log(f"budget: waiting for approval {gate}: {prompt}", "stderr")
            decision = await self._await_gate(gate)
        if decision != ApprovalStatus.APPROVED:
            who = ""
            if self._state is not None and gate in self._state.approvals:
                approval = self._state.approvals[gate]
                who = f" by {approval.decided_by}" + (
                    f": {approval.reason}" if approval.reason else ""
                )
            await _emit(ctx, data.replace(outcome=events.BudgetOutcome.REJECTED, gate=gate))
            raise NonRetryableError(
                f"token budget exceeded: extending persona {name!r}'s budget "
                f"(gate {gate}) was rejected{who}"
            )
        acct.budget += extend_by
        await _emit(
            ctx,
            events.Budget(
                persona=name,
                used=acct.used,
                budget=acct.budget,
                remaining=acct.remaining,
                policy="approve",
                outcome=events.BudgetOutcome.EXTENDED,
                gate=gate,
                extend_by=extend_by,
            ),
        )

    def _gate_for(self, name: str) -> tuple[str, Any | None]:
        """This persona's open gate (waiting, or decided but not yet applied) or a new id.

        A resumed run finds the gate its journal left open instead of asking twice.
        """
        prefix = f"budget-{name}-"
        n = self._gates.get(name, 0)
        if self._state is not None:
            for gate_id, approval in self._state.approvals.items():
                if not gate_id.startswith(prefix):
                    continue
                if approval.status == ApprovalStatus.WAITING or (
                    approval.status in APPROVAL_DECIDED and not approval.data.get("applied")
                ):
                    return gate_id, approval
                tail = gate_id[len(prefix) :]
                if tail.isdigit():
                    n = max(n, int(tail))
        n += 1
        self._gates[name] = n
        return budget_gate_id(name, n), None

    # -- after a call -----------------------------------------------------------------

    def release(self, reservation: Reservation | None) -> None:
        """Give back a reservation whose call never produced a reply."""
        if reservation is None or reservation.released:
            return
        acct = self.account(reservation.persona)
        acct.reserved = max(0, acct.reserved - reservation.tokens)
        reservation.released = True

    async def settle(
        self,
        ctx: Any,
        reservation: Reservation | None,
        name: str,
        *,
        model: str,
        prompt: int,
        completion: int,
        estimated: bool,
    ) -> dict[str, Any]:
        """Charge the real usage, journal ``tokens.used``; returns the event's data."""
        self.release(reservation)
        acct = self.account(name)
        total = prompt + completion
        acct.used += total
        used = events.TokensUsed(
            persona=name,
            model=model,
            prompt=prompt,
            completion=completion,
            total=total,
            used=acct.used,
            budget=acct.budget,
            remaining=acct.remaining,
            estimated=estimated,
        )
        await _emit(ctx, used)
        if acct.remaining < 0:
            await _emit(
                ctx,
                events.Budget(
                    persona=name,
                    used=acct.used,
                    budget=acct.budget,
                    remaining=acct.remaining,
                    policy=self.policy_for(name),
                    outcome=events.BudgetOutcome.EXCEEDED,
                ),
            )
        return used.to_data()


async def _emit(ctx: Any, payload: Payload) -> None:
    if getattr(ctx, "emit_event", None) is not None:
        await ctx.emit_event(str(payload.TYPES[0]), payload.to_data())
