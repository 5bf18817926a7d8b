"""The budget ledger on its own: policy order, reservations under concurrency, figures
taken from a journal (resume), and the events it journals.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from quarterdeck.core.errors import NonRetryableError
from quarterdeck.core.journal.events import Event
from quarterdeck.core.journal.state import fold
from quarterdeck.core.policy.budget import BudgetLedger, estimate_tokens
from quarterdeck.personas.registry import Persona, PersonaCatalog
from tests.helpers import make_ctx


def catalog(**policies: str | None) -> PersonaCatalog:
    out = PersonaCatalog()
    for name, policy in policies.items():
        out.personas[name] = Persona(
            name=name, title=name, role="r", token_budget=100, budget_policy=policy
        )  # type: ignore[arg-type]
    return out


def ctx_with_events(tmp_path: Path) -> tuple[Any, list[tuple[str, dict[str, Any]]]]:
    events: list[tuple[str, dict[str, Any]]] = []

    async def emit(type_: str, data: dict[str, Any]) -> None:
        events.append((type_, data))

    return make_ctx(tmp_path, emit_event=emit), events


def test_estimate_is_about_four_characters_a_token() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
    assert estimate_tokens("x" * 400) == 100


def test_policy_order_workflow_then_persona_then_config_then_approve() -> None:
    personas = catalog(strict="fail", easy=None)
    assert BudgetLedger(None, personas, workflow_policy="warn").policy_for("strict") == "warn"
    assert BudgetLedger(None, personas).policy_for("strict") == "fail"
    assert BudgetLedger(None, personas, default_policy="warn").policy_for("easy") == "warn"
    assert BudgetLedger(None, personas).policy_for("easy") == "approve"
    assert BudgetLedger(None, personas, default_policy="bogus").policy_for("easy") == "approve"


@pytest.mark.asyncio
async def test_concurrent_calls_cannot_both_spend_the_same_tokens(tmp_path: Path) -> None:
    ledger = BudgetLedger(None, catalog(p="fail"))
    ctx, events = ctx_with_events(tmp_path)
    first = await ledger.reserve(ctx, "p", 60)
    with pytest.raises(NonRetryableError, match="needs ~60 tokens for this call but has 40"):
        await ledger.reserve(ctx, "p", 60)
    assert events[-1][1]["outcome"] == "stopped"
    assert events[-1][1]["reserved"] == 60
    ledger.release(first)  # the first call never got a reply
    second = await ledger.reserve(ctx, "p", 60)
    charged = await ledger.settle(
        ctx, second, "p", model="m", prompt=20, completion=15, estimated=False
    )
    assert charged == {
        "persona": "p",
        "model": "m",
        "prompt": 20,
        "completion": 15,
        "total": 35,
        "used": 35,
        "budget": 100,
        "remaining": 65,
        "estimated": False,
    }
    assert ledger.figures("p") == {"used": 35, "budget": 100, "remaining": 65}
    # the reservation is gone once settled: 65 are free again
    await asyncio.wait_for(ledger.reserve(ctx, "p", 65), 5)


@pytest.mark.asyncio
async def test_approve_outside_a_run_is_a_clear_error(tmp_path: Path) -> None:
    ledger = BudgetLedger(None, catalog(p=None))
    ctx, _ = ctx_with_events(tmp_path)
    with pytest.raises(NonRetryableError, match="only a run can ask"):
        await ledger.reserve(ctx, "p", 500)


@pytest.mark.asyncio
async def test_the_budget_gates_printed_command_names_the_run_and_its_store(
    tmp_path: Path,
) -> None:
    """Pasted into another shell, the command must find the run: its real id and its
    store; no ``--as NAME`` placeholder (the approver is the OS account)."""

    async def approve(gate: str) -> str:
        return "approved"

    store = tmp_path / "elsewhere.db"
    ledger = BudgetLedger(None, catalog(p=None), await_gate=approve, run_id="rel-7", store=store)
    ctx, events = ctx_with_events(tmp_path)
    await ledger.reserve(ctx, "p", 150)
    (requested,) = [data for type_, data in events if type_ == "approval.requested"]
    # (the tests' config dir is not a fresh shell's, so it leads the command)
    assert requested["command"].endswith(
        f" quarterdeck approve rel-7 budget-p-1 --store {store.resolve()}"
    )
    assert "--as" not in requested["command"]


@pytest.mark.asyncio
async def test_a_ledger_starts_from_the_journal(tmp_path: Path) -> None:
    journal = [
        Event(
            "run.started",
            "r1",
            data={"workflow": "w", "plan": [], "personas": {"p": {"budget": 100}}},
            seq=1,
        ),
        Event(
            "tokens.used",
            "r1",
            data={
                "persona": "p",
                "model": "m",
                "total": 80,
                "used": 80,
                "budget": 100,
                "remaining": 20,
                "estimated": True,
            },
            seq=2,
        ),
        Event(
            "budget",
            "r1",
            data={
                "persona": "p",
                "used": 80,
                "budget": 150,
                "remaining": 70,
                "policy": "approve",
                "outcome": "extended",
                "gate": "budget-p-1",
            },
            seq=3,
        ),
    ]
    state = fold("r1", journal)
    assert state.personas["p"].estimated is True
    ledger = BudgetLedger(state, catalog(p="fail"))
    assert ledger.figures("p") == {"used": 80, "budget": 150, "remaining": 70}
    ctx, events = ctx_with_events(tmp_path)
    reservation = await ledger.reserve(ctx, "p", 70)
    await ledger.settle(ctx, reservation, "p", model="m", prompt=50, completion=30, estimated=False)
    assert [t for t, _ in events] == ["tokens.used", "budget"]
    assert events[1][1] == {
        "persona": "p",
        "used": 160,
        "budget": 150,
        "remaining": -10,
        "policy": "fail",
        "outcome": "exceeded",
    }
