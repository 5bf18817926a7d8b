"""Writers and readers agree on every event: each journaled event parses with its payload type.

Real workflows run to their end (success with a retry, a fallback and memory; failure
with compensation; approvals decided, refused and rejected; signals; a skipped gate; the
three budget policies against a real HTTP model server), then every event in the journal
is read strictly — no unknown key, no missing one — and written back to the very same
data. A key the runner adds, renames or drops without its payload type changing fails
here, instead of leaving a reader with a silently empty field.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from quarterdeck.core.clock import FakeClock
from quarterdeck.core.config import Settings
from quarterdeck.core.engine.runner import Runner, RunOptions
from quarterdeck.core.journal.events import (
    PAYLOADS,
    ApprovalRequested,
    Budget,
    BudgetOutcome,
    Event,
    EventType,
    GateResult,
    PayloadError,
    PersonaSwitched,
    RunFinished,
    StepFinished,
    StepStarted,
    TokensUsed,
    event,
    parse,
)
from quarterdeck.core.journal.state import fold
from quarterdeck.core.journal.statuses import (
    LOOKS,
    ApprovalStatus,
    GateStatus,
    RunStatus,
    StageStatus,
    StepStatus,
    look,
)
from quarterdeck.core.journal.store import Store
from tests.helpers import make_runner, run_workflow
from tests.llm_server import LLMServer, Reply
from tests.servers import HTTPService

PY = sys.executable

DRIFT = """\
name: drift
title: Every kind of event
stages:
  - id: build
    persona: backend-engineer
    steps:
      - id: flaky
        uses: shell
        retry: {{max_attempts: 3, backoff: constant, initial_delay: 1s}}
        with: {{run: "{py} {flaky} {counter}"}}
      - id: remember
        uses: memory.set
        with: {{key: version, value: "1.0"}}
      - id: broken
        uses: shell
        with: {{run: "{py} -c 'import sys; sys.exit(3)'"}}
        fallback:
          - id: rescue
            uses: shell
            with: {{run: "echo rescued"}}
      - id: optional
        uses: shell
        continue_on_error: true
        with: {{run: "{py} -c 'import sys; print(1, file=sys.stderr); sys.exit(1)'"}}
      - id: never
        uses: shell
        when: "{{{{ 1 > 2 }}}}"
        with: {{run: "echo never"}}
    gate:
      id: quality
      all: ["{{{{ 1 < 2 }}}}"]
      any: ["{{{{ nope.missing }}}}", "{{{{ 2 > 1 }}}}"]
  - id: docs
    when: "{{{{ 1 > 2 }}}}"
    steps:
      - id: write
        uses: shell
        with: {{run: "echo docs"}}
  - id: ship
    persona: devops-engineer
    approval:
      id: ship
      prompt: "Ship {{{{ memory.version }}}}?"
      evidence: ["built"]
      approvers: [alice, bob]
      timeout: 1h
    steps:
      - id: upload
        uses: shell
        with: {{run: "echo shipped"}}
  - id: check
    persona: testing-specialist
    steps:
      - id: measure
        uses: shell
        with: {{run: "echo measured"}}
    gate:
      id: coverage
      all: ["{{{{ 1 > 2 }}}}"]
      skippable: true
"""

FAILING = """\
name: failing
stages:
  - id: build
    steps:
      - id: a
        uses: shell
        with: {run: "echo a"}
    gate:
      id: strict
      all: ["{{ 1 > 2 }}"]
    on_failure:
      - id: undo
        uses: shell
        with: {run: "echo undone"}
  - id: later
    steps:
      - id: b
        uses: shell
        with: {run: "echo b"}
"""

STOPS = """\
name: stops
stages:
  - id: first
    steps:
      - id: bad
        uses: shell
        with: {run: "sh -c 'exit 2'"}
      - id: after
        uses: shell
        needs: [bad]
        with: {run: "echo after"}
"""

REJECTED = """\
name: rejected
stages:
  - id: ship
    approval: {id: ship, approvers: [bob]}
    steps:
      - id: upload
        uses: shell
        with: {run: "echo shipped"}
"""

LLM = """\
name: ask
budget_policy: {policy}
stages:
  - id: think
    persona: backend-engineer
    steps:
      - id: ask
        uses: llm.chat
        with: {{prompt: "hi", max_tokens: 50}}
  - id: nobody
    steps:
      - id: ask-anyway
        uses: llm.chat
        with: {{prompt: "hi", max_tokens: 5}}
"""


def journal_of(store: Store, run_id: str) -> list[Event]:
    return store.events(run_id)


def check(events: list[Event]) -> set[str]:
    """Every event parses strictly and writes back its exact data; returns the types seen."""
    seen: set[str] = set()
    for ev in events:
        try:
            payload = parse(ev, strict=True)
        except PayloadError as exc:
            raise AssertionError(f"event {ev.seq} ({ev.type}) {ev.data}: {exc}") from None
        assert payload is not None, f"no payload type for {ev.type}"
        assert payload.to_data() == ev.data, f"{ev.type} does not write back what was journaled"
        assert list(payload.to_data()) == list(ev.data), f"{ev.type}: keys in another order"
        seen.add(ev.type)
    return seen


@pytest.fixture
def server() -> Iterator[LLMServer]:
    with LLMServer() as srv:
        yield srv


def _persona_budget(tmp_path: Path, budget: int) -> None:
    folder = tmp_path / ".quarterdeck" / "personas"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "backend-engineer.yaml").write_text(f"token_budget: {budget}\n")


def test_every_event_of_real_runs_parses_with_its_payload_type(tmp_path: Path) -> None:
    seen: set[str] = set()

    flaky = tmp_path / "flaky.py"
    flaky.write_text(
        "import pathlib, sys\np = pathlib.Path(sys.argv[1])\nn = int(p.read_text()) "
        "if p.exists() else 0\np.write_text(str(n + 1))\nprint('try', n)\nsys.exit(0 if n else 1)\n"
    )
    text = DRIFT.format(py=PY, flaky=flaky, counter=tmp_path / "count")
    store = Store(tmp_path / "qd.db")
    run_id = "drift-1"
    # queued before the run starts: processed in order at its first poll, and the decision
    # on `ship` waits until that gate opens (alice started the run: her approval is refused)
    for kind, actor, target, reason in (
        ("pause", "carol", None, "a moment"),
        ("unpause", "carol", None, ""),
        ("note", "carol", None, "looking good"),
        ("approve", "alice", "ship", ""),
        ("approve", "bob", "ship", "lgtm"),
        ("skip-gate", "bob", "coverage", "known gap"),
    ):
        store.send_signal(run_id, kind, actor=actor, target=target, reason=reason)
    ran = run_workflow(
        tmp_path,
        text,
        store=store,
        options=RunOptions(
            run_id=run_id, started_by="alice", clock=FakeClock(), signal_poll_interval=0.01
        ),
    )
    assert ran.state.status == "succeeded", ran.state.error
    seen |= check(journal_of(store, run_id))

    for name, workflow, status in (
        ("failing", FAILING, "failed"),
        ("stops", STOPS, "failed"),
    ):
        sub = tmp_path / name
        sub.mkdir()
        ran = run_workflow(sub, workflow)
        assert ran.state.status == status
        seen |= check(journal_of(ran.store, ran.state.id))

    sub = tmp_path / "rejected"
    sub.mkdir()
    ran = run_workflow(
        sub,
        REJECTED,
        options=RunOptions(started_by="alice", decisions={"ship": ("reject", "bob", "not now")}),
    )
    assert ran.state.status == "rejected"
    seen |= check(journal_of(ran.store, ran.state.id))

    sub = tmp_path / "undecided"
    sub.mkdir()
    ran = run_workflow(sub, REJECTED, options=RunOptions(started_by="alice", no_wait=True))
    assert ran.state.status == "interrupted"
    seen |= check(journal_of(ran.store, ran.state.id))

    sub = tmp_path / "cancelled"
    sub.mkdir()
    store = Store(sub / "qd.db")
    store.send_signal("drift-cancel", "cancel", actor="bob", reason="wrong branch")
    ran = run_workflow(
        sub,
        REJECTED,
        store=store,
        options=RunOptions(run_id="drift-cancel", started_by="alice", signal_poll_interval=0.01),
    )
    assert ran.state.status == "cancelled"
    seen |= check(journal_of(store, "drift-cancel"))

    assert seen >= {
        t
        for t in EventType
        if not t.startswith("circuit.") and t not in ("tokens.used", "budget", "run.resumed")
    }, "the runs above should journal every event type the runner writes"


@pytest.mark.parametrize("policy", ["warn", "fail", "approve"])
def test_budget_and_token_events_parse(tmp_path: Path, server: LLMServer, policy: str) -> None:
    _persona_budget(tmp_path, 40)
    server.script(Reply(prompt_tokens=35, completion_tokens=20), Reply())
    settings = Settings.model_validate({"llm": {"base_url": server.base_url, "api_key": "k"}})
    ran = run_workflow(
        tmp_path,
        LLM.format(policy=policy),
        settings=settings,
        options=RunOptions(started_by="tester", no_wait=True),
    )
    seen = check(journal_of(ran.store, ran.state.id))
    assert "budget" in seen
    if policy == "approve":  # stopped at the budget gate: approve it and resume
        assert ran.state.status == "interrupted"
        gate = next(iter(ran.state.approvals))
        ran.store.send_signal(ran.state.id, "approve", actor="alice", target=gate)
        prior = fold(ran.state.id, ran.store.events(ran.state.id))
        runner = Runner(
            ran.runner.loaded,
            ran.store,
            inputs={},
            settings=settings,
            personas=ran.runner.personas,
            prior=prior,
            options=RunOptions(started_by="tester", workdir=tmp_path),
        )
        state = asyncio.run(runner.run())
        assert state.status == "succeeded", state.error
        seen = check(journal_of(ran.store, ran.state.id))
        assert {"run.resumed", "tokens.used"} <= seen
    elif policy == "warn":
        assert "tokens.used" in seen


def test_circuit_events_parse(tmp_path: Path) -> None:
    from quarterdeck.core.policy.circuit import SERVICE_KEY, CircuitBoard, CircuitPolicy

    with HTTPService("failing", fail_status=503) as failing:
        url = f"{failing.url}/health"
        steps = "\n".join(
            f"      - id: call{i}\n        uses: http.request\n        continue_on_error: true\n"
            + (f"        needs: [call{i - 1}]\n" if i else "")
            + f'        with: {{url: "{url}"}}'
            for i in range(3)
        )
        runner = make_runner(
            tmp_path,
            f"name: breaker\nstages:\n  - id: hit\n    steps:\n{steps}\n",
            options=RunOptions(started_by="tester", clock=FakeClock()),
        )
        runner.services[SERVICE_KEY] = CircuitBoard(
            CircuitPolicy(failure_threshold=2, window=60, cooldown=300)
        )
        state = asyncio.run(runner.run())
    assert "circuit.opened" in check(journal_of(runner.store, state.id))


BAD_EVENT_MODULE = """
async def use(ctx):
    await ctx.emit_event("tokens.used", {"persona": "p", "model": "m", "total": "lots"})
    return {"ok": True}
"""


def test_an_action_event_its_readers_cannot_read_fails_its_step_and_is_not_journaled(
    tmp_path: Path,
) -> None:
    (tmp_path / "badmod.py").write_text(BAD_EVENT_MODULE)
    ran = run_workflow(
        tmp_path,
        "name: bad\nstages:\n  - id: s\n    steps:\n      - id: emit\n        uses: python\n"
        '        with: {call: "badmod:use"}\n',
    )
    assert ran.state.status == "failed"
    step = ran.state.step("emit")
    assert step is not None and step.status == StepStatus.FAILED
    assert step.error is not None and "a bad tokens.used event: TokensUsed.total" in step.error
    journal = journal_of(ran.store, ran.state.id)
    assert "tokens.used" not in {e.type for e in journal}
    assert [e.seq for e in journal] == list(range(1, len(journal) + 1))


def test_an_action_event_is_journaled_as_the_action_gave_it(tmp_path: Path) -> None:
    (tmp_path / "partial.py").write_text(
        "async def use(ctx):\n"
        '    await ctx.emit_event("tokens.used", {"total": 3, "persona": None})\n'
        "    return {}\n"
    )
    ran = run_workflow(
        tmp_path,
        "name: partial\nstages:\n  - id: s\n    steps:\n      - id: emit\n"
        '        uses: python\n        with: {call: "partial:use"}\n',
    )
    assert ran.state.status == "succeeded", ran.state.error
    (used,) = [e for e in journal_of(ran.store, ran.state.id) if e.type == "tokens.used"]
    assert used.to_json().endswith('"data":{"total":3,"persona":null}}')


# -- the payload types themselves ---------------------------------------------------------------


def test_strict_reading_refuses_unknown_and_missing_keys_lenient_reading_does_not() -> None:
    data = {"status": "succeeded", "error": None, "colour": "green"}
    with pytest.raises(PayloadError, match="unknown keys"):
        RunFinished.from_data(data, strict=True)
    assert RunFinished.from_data(data) == RunFinished(status=RunStatus.SUCCEEDED)
    with pytest.raises(PayloadError, match="no 'error'"):
        RunFinished.from_data({"status": "failed"}, strict=True)
    # an old or hand-written journal reads with the defaults its readers always used
    assert RunFinished.from_data({}).status == RunStatus.FAILED
    assert StepStarted.from_data({}).role == ""  # not said: the fold keeps the step's role
    with pytest.raises(PayloadError, match="status"):
        RunFinished.from_data({"status": "done"})


def test_writers_get_the_journals_exact_shape() -> None:
    budget = Budget(
        persona="p",
        used=1,
        budget=2,
        remaining=1,
        policy="warn",
        need=9,
        reserved=0,
        outcome=BudgetOutcome.WARNED,
    )
    data = budget.to_data()
    # key order as the ledger always wrote it, plain strings, optional keys only when set
    assert list(data) == [
        "persona",
        "used",
        "budget",
        "remaining",
        "policy",
        "need",
        "reserved",
        "outcome",
    ]
    assert type(data["outcome"]) is str
    # the order a writer gives the keys in is the journal's (step.finished has several)
    when_failed = StepFinished(status=StepStatus.FAILED, error="bad when", attempt=0)
    assert list(when_failed.to_data()) == ["status", "error", "attempt"]
    stopped = StepFinished(status=StepStatus.CANCELLED, attempt=2, error="cancelled")
    assert list(stopped.to_data()) == ["status", "attempt", "error"]
    extended = budget.replace(outcome=BudgetOutcome.EXTENDED, gate="g", extend_by=5)
    assert list(extended.to_data())[-3:] == ["outcome", "gate", "extend_by"]
    read = StepFinished.from_data({"attempt": 1, "status": "succeeded"})
    assert list(read.to_data()) == ["attempt", "status"]
    switched = PersonaSwitched(to="b", from_="a", stage="s").to_data()
    assert switched == {"to": "b", "from": "a", "stage": "s", "held_seconds": None}
    built = event(StepFinished(status=StepStatus.SUCCEEDED, attempt=1), "r", "s", "x", seq=3)
    assert built.type == EventType.STEP_FINISHED and built.data == {
        "status": "succeeded",
        "attempt": 1,
    }
    assert StepFinished.of(built).attempt == 1
    with pytest.raises(PayloadError):
        TokensUsed.of(built)
    gate = ApprovalRequested(gate="g", kind="budget", prompt="p").to_data()
    assert list(gate)[:3] == ["gate", "kind", "prompt"] and "command" not in gate
    assert GateResult(condition="c", passed=True).to_data() == {
        "condition": "c",
        "kind": "all",
        "passed": True,
    }


def test_every_event_type_has_one_payload_type() -> None:
    assert set(PAYLOADS) == set(EventType)


def test_statuses_keep_their_strings_and_every_one_has_a_look() -> None:
    every: set[str] = set()
    for kind in (RunStatus, StageStatus, StepStatus, GateStatus, ApprovalStatus):
        for member in kind:
            assert member == member.value and f"{member}" == member.value
            every.add(member.value)
    assert every == set(LOOKS)
    assert look("succeeded").glyph == "✔" and look("succeeded").mark == "✓"
    assert look("no-such-status").glyph == "?"


def test_numbers_are_read_as_written_so_the_narration_does_not_change() -> None:
    from quarterdeck.core.journal.state import RunState
    from quarterdeck.tui.headless.render import describe

    retry = Event(EventType.STEP_RETRY, "r", "s", "t", {"attempt": 1, "delay": 2, "error": "x"})
    assert describe(retry, RunState("r")) == "attempt 1 failed: x; retrying in 2s"
