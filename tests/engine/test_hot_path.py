"""What the runner computes once instead of per step, and the caches on its hot path.

No timings here (benchmarks/runner_overhead.py prints those): each test checks that a
per-run constant is computed once and stays right, or that a cache gives the same
result as computing afresh, on real runs journaled to SQLite."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest

from quarterdeck.core.config import Settings
from quarterdeck.core.definition.validate import load_workflow
from quarterdeck.core.engine.runner import Runner, RunOptions
from quarterdeck.core.journal.events import Event, StepFinished, StepStarted, event
from quarterdeck.core.journal.parts import StageState
from quarterdeck.core.journal.state import RunState, StepState
from quarterdeck.core.journal.store import GENESIS, Store, event_hash
from quarterdeck.personas.registry import load_catalog
from tests.helpers import make_runner

HELPERS = """
import os
from pathlib import Path


def folder(ctx, swap_to=""):
    seen = str(ctx.workflow_dir)
    if swap_to:  # point the workflow's folder (a symlink) somewhere else mid-run
        link = Path(os.environ["QD_TEST_LINK"])
        link.unlink()
        link.symlink_to(swap_to)
    return {"dir": seen}


def hidden(ctx):
    return {"hidden": sorted(ctx.credential_env)}
"""


CHAIN = "name: chain\nstages:\n  - id: s\n    steps:\n" + "".join(
    f"      - {{id: s{i}, uses: memory.set, with: {{key: k{i}, value: {i}}}"
    + (f", needs: [s{i - 1}]" if i else "")
    + "}\n"
    for i in range(5)
)


def test_the_workflow_folder_is_resolved_once_per_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every step of a run imports its helpers from the folder the run started with, even
    when a symlink on the way is repointed while it runs (it was resolved per attempt)."""
    first, second = tmp_path / "first", tmp_path / "second"
    for real in (first, second):
        real.mkdir()
        (real / "qd_hot_folder.py").write_text(HELPERS)
    link = tmp_path / "flows"
    link.symlink_to(first)
    monkeypatch.setenv("QD_TEST_LINK", str(link))
    text = (
        "name: folder\nstages:\n  - id: s\n    steps:\n"
        "      - {id: a, uses: python, with: {call: 'qd_hot_folder:folder',"
        f" args: {{swap_to: '{second}'}}}}}}\n"
        "      - {id: b, uses: python, needs: [a], with: {call: 'qd_hot_folder:folder'}}\n"
    )
    (first / "wf.yaml").write_text(text)
    catalog = load_catalog(tmp_path)
    loaded = load_workflow(link / "wf.yaml", catalog)
    runner = Runner(
        loaded,
        Store(tmp_path / "qd.db"),
        inputs={},
        settings=Settings(),
        personas=catalog,
        options=RunOptions(started_by="tester", workdir=tmp_path),
    )
    state = asyncio.run(runner.run())
    assert state.status == "succeeded", state.error
    assert link.resolve() == second  # the swap happened
    steps = state.stages["s"].steps
    assert steps["a"].outputs["dir"] == str(first)
    assert steps["b"].outputs["dir"] == str(first)


def test_credentials_are_hidden_per_step_with_the_runs_part_computed_once(
    tmp_path: Path,
) -> None:
    """Steps without ``env:`` share the run's set; a step naming a credential, the
    workflow's ``env:`` and variables added for one step (tracing) are each honoured."""
    (tmp_path / "qd_hot_hidden.py").write_text(HELPERS)
    call = "uses: python, with: {call: 'qd_hot_hidden:hidden'}"
    text = (
        "name: creds\nenv: {DEPLOY_PASSWORD: from-the-workflow}\nstages:\n  - id: s\n"
        "    steps:\n"
        f"      - {{id: a, {call}}}\n"
        f"      - {{id: b, needs: [a], env: {{GITHUB_TOKEN: mine}}, {call}}}\n"
        f"      - {{id: c, needs: [b], {call}}}\n"
        f"      - {{id: d, needs: [c], {call}}}\n"
        f"      - {{id: e, needs: [d], {call}}}\n"
    )
    environ = {"PATH": "/usr/bin:/bin", "GITHUB_TOKEN": "ghp-canary-1", "HOME": str(tmp_path)}
    runner = make_runner(tmp_path, text, options=RunOptions(started_by="tester", env=environ))

    def tracing(e: Event) -> None:  # like the tracing subscriber: extra env for one step
        if e.type == "step.finished" and e.step == "b":
            runner.step_env[("s", "d")] = {"SPAN_AUTH_TOKEN": "t0ken-for-d"}

    runner.subscribers.append(tracing)
    state = asyncio.run(runner.run())
    assert state.status == "succeeded", state.error
    hidden = {i: s.outputs["hidden"] for i, s in state.stages["s"].steps.items()}
    assert hidden["a"] == ["GITHUB_TOKEN"]
    assert hidden["b"] == []  # the step named it in env:
    assert hidden["c"] == ["GITHUB_TOKEN"]  # b's own env did not stick
    assert hidden["d"] == ["GITHUB_TOKEN", "SPAN_AUTH_TOKEN"]
    assert hidden["e"] == ["GITHUB_TOKEN"]


def test_a_run_states_repr_stays_short_whatever_the_size() -> None:
    """``asyncio.run`` formats the repr of its result when it restores the SIGINT
    handler: a state with 10,000 steps must not be printed whole (it took ~50 ms)."""
    state = RunState("r1", workflow="big")
    stage = state.stages["s"] = StageState("s")
    for i in range(10_000):
        stage.steps[f"s{i}"] = StepState(f"s{i}", "s")
    text = repr(state)
    assert len(text) < 200
    assert "'r1'" in text and "steps=10000" in text and "'big'" in text


def test_payloads_keep_each_writers_key_order_whatever_came_first() -> None:
    """``to_data`` keeps the order the keys were given in; orders are remembered per
    payload type, and a second order of the same type is not served the first one's."""
    one = StepFinished(status="succeeded", attempt=1, outputs={"k": 1}).to_data()
    two = StepFinished(outputs={"k": 1}, attempt=1, status="succeeded").to_data()
    again = StepFinished(status="succeeded", attempt=1, outputs={"k": 1}).to_data()
    assert list(one) == ["status", "attempt", "outputs"]
    assert list(two) == ["outputs", "attempt", "status"]
    assert again == one and list(again) == list(one)
    read = StepFinished.from_data({"error": "x", "status": "failed", "attempt": 2})
    assert list(read.to_data()) == ["error", "status", "attempt"]


def test_an_event_redaction_leaves_alone_keeps_its_payload_and_a_masked_one_is_reread(
    tmp_path: Path,
) -> None:
    """With secrets registered, every event's data is masked before it is applied; one
    that holds no secret keeps the payload it was built with (it was parsed again)."""
    text = (
        "name: red\nstages:\n  - id: s\n    steps:\n"
        "      - {id: a, uses: memory.set, with: {key: k, value: plain}}\n"
        "      - {id: b, uses: memory.set, needs: [a], with: {key: t, value: s3cret-canary}}\n"
    )
    runner = make_runner(
        tmp_path, text, options=RunOptions(started_by="tester", extra_secrets=["s3cret-canary"])
    )
    writer = runner._writer
    started = StepStarted(attempt=1, uses="memory.set")
    finished = StepFinished(status="succeeded", outputs={"value": "s3cret-canary"})

    async def journal() -> tuple[Event, Event]:
        kept = writer._journal(event(started, runner.run_id, "s", "a"))
        masked = writer._journal(event(finished, runner.run_id, "s", "b"))
        writer.flush_now()
        return kept, masked

    kept, masked = asyncio.run(journal())
    assert kept.payload() is started
    assert masked.data["outputs"] == {"value": "***"}
    reread = masked.payload()
    assert isinstance(reread, StepFinished) and reread.outputs == {"value": "***"}
    assert runner.state.stages["s"].steps["b"].outputs == {"value": "***"}
    stored = runner.store.events(runner.run_id)
    assert [e.data for e in stored] == [kept.data, masked.data]


def test_the_chain_links_are_the_json_of_the_row_whatever_it_holds() -> None:
    """The writer spells a row's canonical JSON out (faster than ``json.dumps``); the
    link must be the documented one, ``sha256(prev + "\\n" + json.dumps(list(row), ...))``,
    for any row: ``quarterdeck verify`` and anyone else recompute it that way."""
    texts = ["", "s", 'quo"te', "back\\slash", "tab\tnew\nline", "\x00\x1f\x7f", "é✓🚀", "\ud800"]
    numbers = [0.0, -1.5, 1e-7, 1764524460.123456, 1e22, 3.0, float("nan"), float("inf"), 7]
    rng = random.Random(16)
    rows: list[tuple[Any, ...]] = []
    for _ in range(400):
        rows.append(
            (
                rng.choice(texts) + "run",
                rng.choice([1, 2**40, True]),
                rng.choice(numbers),
                rng.choice(texts),
                rng.choice([None, *texts]),
                rng.choice([None, *texts]),
                json.dumps({"k": rng.choice(texts), "n": rng.choice(numbers[:6])}),
            )
        )
    for row in rows:
        canonical = json.dumps(list(row), separators=(",", ":"), ensure_ascii=False)
        expected = hashlib.sha256(f"{GENESIS}\n{canonical}".encode("utf-8", "surrogatepass"))
        try:
            got = event_hash(GENESIS, row)
        except UnicodeEncodeError:  # a lone surrogate cannot be journaled either way
            with pytest.raises(UnicodeEncodeError):
                hashlib.sha256(f"{GENESIS}\n{canonical}".encode())
            continue
        assert got == expected.hexdigest(), row


def test_every_row_a_run_journals_takes_the_spelled_out_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The event type is a ``StrEnum``: its rows are spelled out like any other (they all
    went through ``json`` because the check asked for exactly ``str``), and the links are
    still the documented ones (``quarterdeck verify`` recomputes them)."""
    from quarterdeck.core.journal import store as store_module
    from quarterdeck.core.journal.integrity import verify_run

    through_json: list[object] = []
    real = store_module._CANONICAL

    def counted(value: object) -> str:
        through_json.append(value)
        return real(value)

    monkeypatch.setattr(store_module, "_CANONICAL", counted)
    ran = make_runner(tmp_path, CHAIN)
    state = asyncio.run(ran.run())
    assert state.status == "succeeded"
    assert through_json == []
    monkeypatch.setattr(store_module, "_CANONICAL", real)
    assert verify_run(ran.store, state.id).ok


def test_event_data_is_the_json_it_always_was() -> None:
    """The writer calls the C encoder itself (``encode``'s two Python-level calls were on
    every event's path): the same text as ``json.dumps(data, default=str, separators=…)``
    for whatever an action returns, and the same error for a cycle."""
    from quarterdeck.core.journal.store import _data_json

    class Opaque:
        def __str__(self) -> str:
            return "opaque ✓"

    values: list[Any] = [
        {},
        [],
        "text",
        7,
        None,
        {"status": "succeeded", "attempt": 1, "outputs": {"key": "k0", "value": 0}},
        {"n": [1.5, float("nan"), float("inf"), -0.0, 1e22], "b": [True, False], 3: "int key"},
        {"s": 'quo"te\\ é✓🚀 \x00\x1f', "t": (1, 2), "o": Opaque(), "nested": [{"x": [{}]}]},
    ]
    for value in values:
        assert _data_json(value) == json.dumps(value, default=str, separators=(",", ":"))
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    with pytest.raises(ValueError, match="Circular reference"):
        _data_json(cyclic)
    assert _data_json({"after": "a cycle"}) == '{"after":"a cycle"}'


def test_a_step_without_a_retry_policy_shares_one_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Steps with no ``retry:`` read one default policy made once per run (a pydantic
    model was built for every step)."""
    from quarterdeck.core.engine import step as step_module

    made: list[int] = []

    class Counted(step_module.RetryPolicy):
        def __init__(self, **data: Any) -> None:
            made.append(1)
            super().__init__(**data)

    monkeypatch.setattr(step_module, "RetryPolicy", Counted)
    state = asyncio.run(make_runner(tmp_path, CHAIN).run())
    assert state.status == "succeeded" and len(state.stages["s"].steps) == 5
    assert len(made) == 1


def test_a_step_holds_a_tail_and_process_groups_only_once_it_has_some() -> None:
    """A 10,000-step run keeps 10,000 step states: those that print nothing and start no
    process hold no deque and no list (they were ~700 bytes each), and no instance dict."""
    from quarterdeck.core.journal.events import StepOutput, StepProcess

    run = [
        event(StepStarted(attempt=1, uses="shell"), "r1", "s", "loud", seq=1),
        event(StepProcess(pid=10, pgid=10, host="h"), "r1", "s", "loud", seq=2),
        event(StepOutput(lines=[f"a{i}" for i in range(15)]), "r1", "s", "loud", seq=3),
        event(StepProcess(pid=11, pgid=11, host="h"), "r1", "s", "loud", seq=4),
        event(StepOutput(lines=[f"b{i}" for i in range(10)]), "r1", "s", "loud", seq=5),
        event(StepStarted(attempt=1, uses="memory.set"), "r1", "s", "quiet", seq=6),
        event(StepFinished(status="succeeded"), "r1", "s", "quiet", seq=7),
    ]
    state = RunState("r1")
    for e in run:
        state.apply(e)
    loud, quiet = state.stages["s"].steps["loud"], state.stages["s"].steps["quiet"]
    assert list(loud.tail) == [f"a{i}" for i in range(5, 15)] + [f"b{i}" for i in range(10)]
    assert loud.lines == 25
    assert list(loud.process_groups) == [("h", 10), ("h", 11)]
    assert quiet.tail == () and quiet.process_groups == ()
    assert list(quiet.tail) == [] and quiet.lines == 0
    assert not hasattr(quiet, "__dict__")
