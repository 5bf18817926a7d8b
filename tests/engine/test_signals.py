"""Signals from other processes, approvals, cancel, pause, crash and resume."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from quarterdeck.core.engine.runner import RunOptions
from quarterdeck.core.journal.state import RunState
from quarterdeck.core.journal.store import Store
from tests.helpers import REPO, cli, make_runner

APPROVAL = """\
name: release
stages:
  - id: build
    persona: backend-engineer
    steps:
      - {id: version, uses: memory.set, with: {key: version, value: "1.2.3"}}
  - id: publish
    persona: devops-engineer
    approval:
      id: publish
      prompt: "Publish {{ memory.version }}?"
      evidence: ["version {{ memory.version }}"]
      approvers: [alice, bob]
      allow_self_approval: false
      TIMEOUT
    steps:
      - {id: upload, uses: shell, with: {run: "touch published"}}
"""


async def wait_for(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def quarterdeck(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "quarterdeck.tui.cli",
        *args,
        cwd=str(REPO),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, (out + err).decode()


def status_of(state: RunState, step_id: str) -> str | None:
    step = state.step(step_id)
    return None if step is None else step.status


def waiting(state: RunState) -> bool:
    return state.pending_approval() is not None


def approval_text(timeout: str = "") -> str:
    return APPROVAL.replace("      TIMEOUT\n", f"      {timeout}\n" if timeout else "")


def test_approval_from_a_second_process(tmp_path: Path) -> None:
    runner = make_runner(
        tmp_path, approval_text(), options=RunOptions(run_id="run-approve", started_by="carol")
    )

    async def scenario() -> RunState:
        task = asyncio.create_task(runner.run())
        await wait_for(lambda: waiting(runner.state))
        approval = runner.state.pending_approval()
        assert approval is not None and approval.prompt == "Publish 1.2.3?"
        assert approval.evidence == ["version 1.2.3"]
        code, out = await quarterdeck(
            "approve",
            "run-approve",
            "publish",
            "--as",
            "alice",
            "--store",
            str(tmp_path / "qd.db"),
            "--reason",
            "lgtm",
        )
        assert code == 0, out
        return await asyncio.wait_for(task, 30)

    state = asyncio.run(scenario())
    assert state.status == "succeeded"
    assert (tmp_path / "published").exists()
    approval = state.approvals["publish"]
    assert approval.decided_by == "alice" and approval.reason == "lgtm"


def test_self_approval_and_outsiders_are_refused(tmp_path: Path) -> None:
    runner = make_runner(
        tmp_path, approval_text(), options=RunOptions(run_id="run-self", started_by="alice")
    )
    db = str(tmp_path / "qd.db")

    async def scenario() -> RunState:
        task = asyncio.create_task(runner.run())
        await wait_for(lambda: waiting(runner.state))
        code, out = await quarterdeck(
            "approve", "run-self", "publish", "--as", "alice", "--store", db
        )
        assert code == 2 and "does not allow self-approval" in out, out
        code, out = await quarterdeck(
            "approve", "run-self", "publish", "--as", "mallory", "--store", db
        )
        assert code == 2 and "'mallory' may not decide gate 'publish'" in out, out
        # a signal written straight to the store is refused by the runner too
        Store(db).send_signal("run-self", "approve", actor="alice", target="publish")
        await wait_for(lambda: bool(runner.state.approvals["publish"].refusals))
        assert runner.state.pending_approval() is not None
        code, out = await quarterdeck(
            "approve", "run-self", "publish", "--as", "bob", "--store", db
        )
        assert code == 0, out
        return await asyncio.wait_for(task, 30)

    state = asyncio.run(scenario())
    assert state.status == "succeeded"
    assert state.approvals["publish"].decided_by == "bob"
    assert "self-approval" in state.approvals["publish"].refusals[0].why


def test_rejection_ends_the_run_rejected(tmp_path: Path) -> None:
    runner = make_runner(
        tmp_path, approval_text(), options=RunOptions(run_id="run-reject", started_by="carol")
    )

    async def scenario() -> RunState:
        task = asyncio.create_task(runner.run())
        await wait_for(lambda: waiting(runner.state))
        code, out = await quarterdeck(
            "reject",
            "run-reject",
            "publish",
            "--as",
            "bob",
            "--reason",
            "changelog incomplete",
            "--store",
            str(tmp_path / "qd.db"),
        )
        assert code == 0, out
        return await asyncio.wait_for(task, 30)

    state = asyncio.run(scenario())
    assert state.status == "rejected"
    assert not (tmp_path / "published").exists()
    assert state.approvals["publish"].reason == "changelog incomplete"


@pytest.mark.parametrize(
    ("on_timeout", "status", "published"),
    [("reject", "rejected", False), ("approve", "succeeded", True), ("fail", "failed", False)],
)
def test_approval_timeout_applies_on_timeout(
    tmp_path: Path, on_timeout: str, status: str, published: bool
) -> None:
    text = approval_text(f"timeout: 300ms\n      on_timeout: {on_timeout}")
    runner = make_runner(tmp_path, text, options=RunOptions(started_by="carol"))
    state = asyncio.run(asyncio.wait_for(runner.run(), 30))
    assert state.status == status
    assert (tmp_path / "published").exists() is published
    assert state.approvals["publish"].timed_out


def test_cancel_from_a_second_process_kills_the_step(tmp_path: Path) -> None:
    text = """\
name: long
stages:
  - id: s
    steps:
      - {id: hang, uses: shell, with: {run: "sh -c 'echo $$ > pid; sleep 60'"}}
      - {id: never, uses: shell, needs: [hang], with: {run: "touch never"}}
"""
    runner = make_runner(tmp_path, text, options=RunOptions(run_id="run-cancel"))

    async def scenario() -> RunState:
        task = asyncio.create_task(runner.run())
        await wait_for(lambda: (tmp_path / "pid").exists() and (tmp_path / "pid").read_text())
        code, out = await quarterdeck(
            "cancel",
            "run-cancel",
            "--as",
            "ops",
            "--reason",
            "wrong branch",
            "--store",
            str(tmp_path / "qd.db"),
        )
        assert code == 0, out
        return await asyncio.wait_for(task, 30)

    state = asyncio.run(scenario())
    assert state.status == "cancelled"
    assert state.error == "cancelled by ops: wrong branch"
    assert state.step("hang").status == "cancelled"  # type: ignore[union-attr]
    assert not (tmp_path / "never").exists()
    pid = int((tmp_path / "pid").read_text())
    with pytest.raises(ProcessLookupError):
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.05)


def test_pause_holds_new_steps_until_unpause(tmp_path: Path) -> None:
    text = """\
name: pausable
stages:
  - id: s
    steps:
      - {id: first, uses: shell, with: {run: "sh -c 'while [ ! -f go ]; do sleep 0.02; done'"}}
      - {id: second, uses: shell, needs: [first], with: {run: "touch second"}}
"""
    runner = make_runner(tmp_path, text, options=RunOptions(run_id="run-pause"))
    db = str(tmp_path / "qd.db")

    async def scenario() -> RunState:
        task = asyncio.create_task(runner.run())
        await wait_for(lambda: status_of(runner.state, "first") == "running")
        code, out = await quarterdeck("pause", "run-pause", "--as", "ops", "--store", db)
        assert code == 0, out
        await wait_for(lambda: runner.state.paused)
        (tmp_path / "go").touch()
        await wait_for(lambda: status_of(runner.state, "first") == "succeeded")
        await asyncio.sleep(0.3)
        assert runner.state.step("second").status == "pending"  # type: ignore[union-attr]
        assert Store(db).get_run("run-pause").status == "paused"
        code, out = await quarterdeck("unpause", "run-pause", "--as", "ops", "--store", db)
        assert code == 0, out
        return await asyncio.wait_for(task, 30)

    state = asyncio.run(scenario())
    assert state.status == "succeeded"
    assert (tmp_path / "second").exists()
    kinds = [s.kind for s in state.signals]
    assert kinds == ["pause", "unpause"]


CRASH = """\
name: crashy
stages:
  - id: one
    steps:
      - {id: a, uses: shell, with: {run: "sh -c 'echo a >> effects'"}}
      - {id: b, uses: shell, needs: [a], with: {run: "sh -c 'echo b >> effects'"}}
      - id: c
        uses: shell
        needs: [b]
        with: {run: "sh -c 'echo c-start >> effects; [ -f resumed ] || sleep 60; echo c >> effects'"}
  - id: two
    steps:
      - {id: d, uses: shell, with: {run: "sh -c 'echo d >> effects'"}}
"""


def test_sigkill_mid_stage_then_resume_runs_each_completed_step_once(tmp_path: Path) -> None:
    wf = tmp_path / "crashy.yaml"
    wf.write_text(CRASH)
    db = str(tmp_path / "qd.db")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "quarterdeck.tui.cli",
            "run",
            str(wf),
            "--headless",
            "--store",
            db,
            "--workdir",
            str(tmp_path),
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    effects = tmp_path / "effects"
    deadline = time.monotonic() + 30
    while "c-start" not in (effects.read_text() if effects.exists() else ""):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    runs = json.loads(cli("runs", "--json", "--store", db).stdout)
    assert runs[0]["status"] == "interrupted"
    run_id = runs[0]["id"]
    (tmp_path / "resumed").touch()
    resumed = cli("resume", run_id, "--headless", "--store", db)
    assert resumed.returncode == 0, resumed.stderr
    lines = effects.read_text().split()
    assert lines.count("a") == 1 and lines.count("b") == 1
    assert lines.count("c") == 1 and lines.count("d") == 1
    assert lines.count("c-start") == 2, "the in-flight step ran again"
    shown = json.loads(cli("show", run_id, "--json", "--store", db).stdout)
    assert shown["status"] == "succeeded"
    assert [s["status"] for s in shown["stages"]] == ["succeeded", "succeeded"]


def test_no_wait_exits_3_naming_the_gate_and_flag(tmp_path: Path) -> None:
    wf = tmp_path / "release.yaml"
    wf.write_text(approval_text())
    result = cli(
        "run",
        str(wf),
        "--headless",
        "--no-wait",
        "--store",
        str(tmp_path / "qd.db"),
        "--workdir",
        str(tmp_path),
    )
    assert result.returncode == 3, result.stderr
    assert "approval 'publish' is undecided and --no-wait was given" in result.stderr
    assert "--approve publish" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_pre_approval_and_json_shape(tmp_path: Path) -> None:
    wf = tmp_path / "release.yaml"
    wf.write_text(
        approval_text().replace("allow_self_approval: false", "allow_self_approval: true")
    )
    result = cli(
        "run",
        str(wf),
        "--headless",
        "--json",
        "--approve",
        "publish",
        "--as",
        "bob",
        "--store",
        str(tmp_path / "qd.db"),
        "--workdir",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) >= {
        "id",
        "workflow",
        "status",
        "started_at",
        "finished_at",
        "inputs",
        "stages",
    }
    assert data["status"] == "succeeded"
    stage = data["stages"][1]
    assert set(stage) >= {"id", "persona", "status", "steps"}
    assert set(stage["steps"][0]) >= {"id", "status", "attempts", "outputs", "error"}
    assert stage["approval"]["decided_by"] == "bob"


def test_cli_pre_approval_by_the_starter_is_refused_up_front(tmp_path: Path) -> None:
    wf = tmp_path / "release.yaml"
    wf.write_text(approval_text())
    result = cli(
        "run",
        str(wf),
        "--headless",
        "--approve",
        "publish",
        "--as",
        "eve",
        "--store",
        str(tmp_path / "qd.db"),
    )
    assert result.returncode == 2
    assert "'eve' is not an approver of gate 'publish'" in result.stderr


def test_dry_run_has_no_side_effects(tmp_path: Path) -> None:
    wf = tmp_path / "release.yaml"
    wf.write_text(approval_text())
    db = tmp_path / "qd.db"
    result = cli("run", str(wf), "--dry-run", "--store", str(db), "--workdir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "stage publish (devops-engineer)" in result.stdout
    assert "approval publish" in result.stdout
    assert not (tmp_path / "published").exists()
    assert not db.exists()


def test_unknown_run_and_bad_inputs_are_clear(tmp_path: Path) -> None:
    result = cli("show", "nope", "--store", str(tmp_path / "qd.db"))
    assert result.returncode == 2 and "no run 'nope'" in result.stderr
    wf = tmp_path / "wf.yaml"
    wf.write_text(
        "name: x\ninputs:\n  n: {type: int, required: true}\nstages:\n"
        "  - id: s\n    steps:\n      - {id: a, uses: wait, with: {duration: 1ms}}\n"
    )
    missing = cli("run", str(wf), "--headless", "--store", str(tmp_path / "qd.db"))
    assert missing.returncode == 2 and "missing input 'n' (int)" in missing.stderr
    bad = cli("run", str(wf), "--headless", "-i", "n=abc", "--store", str(tmp_path / "qd.db"))
    assert bad.returncode == 2 and "input 'n': 'abc' is not a valid int" in bad.stderr
    unknown = cli("run", str(wf), "--headless", "-i", "m=1", "--store", str(tmp_path / "qd.db"))
    assert unknown.returncode == 2 and "has no input 'm'" in unknown.stderr
    for r in (result, missing, bad, unknown):
        assert "Traceback" not in r.stderr


def test_rollback_signal_fails_the_running_stage_and_runs_on_failure(tmp_path: Path) -> None:
    text = """\
name: deploy
stages:
  - id: deploy
    steps:
      - {id: roll-out, uses: shell, with: {run: "sh -c 'echo $$ > pid; sleep 60'"}}
    on_failure:
      - {id: restore, uses: shell, with: {run: "touch restored"}}
"""
    runner = make_runner(tmp_path, text, options=RunOptions(run_id="run-rollback"))
    db = str(tmp_path / "qd.db")

    async def scenario() -> RunState:
        task = asyncio.create_task(runner.run())
        await wait_for(lambda: (tmp_path / "pid").exists() and (tmp_path / "pid").read_text())
        Store(db).send_signal("run-rollback", "rollback", actor="ic", reason="error rate up")
        return await asyncio.wait_for(task, 30)

    state = asyncio.run(scenario())
    assert state.status == "failed"
    assert (tmp_path / "restored").exists()
    assert state.stages["deploy"].error == "rollback requested by ic: error rate up"
    assert state.step("roll-out").status == "failed"  # type: ignore[union-attr]
    assert state.step("roll-out").error == "stopped for a rollback"  # type: ignore[union-attr]
