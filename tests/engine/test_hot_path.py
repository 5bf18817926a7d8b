"""What the runner computes once instead of per step, and the caches on its hot path.

No timings here (benchmarks/runner_overhead.py prints those): each test checks that a
per-run constant is computed once and stays right, or that a cache gives the same
result as computing afresh, on real runs journaled to SQLite."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from quarterdeck.core.config import Settings
from quarterdeck.core.definition.validate import load_workflow
from quarterdeck.core.engine.runner import Runner, RunOptions
from quarterdeck.core.journal.events import Event, StepFinished, StepStarted, event
from quarterdeck.core.journal.parts import StageState
from quarterdeck.core.journal.state import RunState, StepState
from quarterdeck.core.journal.store import Store
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
