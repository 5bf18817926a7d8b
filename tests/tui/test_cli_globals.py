"""Global options (``--store``, ``--as``) before or after the subcommand: honoured by every
subcommand that takes them, refused (exit 2, a clear message) by the ones that do not."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from quarterdeck.core.engine.runner import RunOptions
from quarterdeck.core.journal.store import Store
from quarterdeck.tui.cli import app
from tests.helpers import gated_workflow, make_runner

GATED = gated_workflow("approvers: [alice, bob]")


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes else "")


def waiting_run(tmp_path: Path, store: Path) -> str:
    """A run stopped (resumably) at its ``publish`` gate, journaled in ``store``."""
    runner = make_runner(
        tmp_path,
        GATED,
        store=Store(store),
        options=RunOptions(started_by="carol", no_wait=True, workdir=tmp_path),
    )
    asyncio.run(runner.run())
    runner.store.close()
    return runner.run_id


def signals(store: Path, run_id: str) -> list[tuple[str, str, str | None]]:
    with Store(store) as db:
        return [(s.kind, s.actor, s.target) for s in db.pending_signals(run_id)]


@pytest.mark.parametrize("before", [True, False], ids=["before", "after"])
@pytest.mark.parametrize("command", ["runs", "show", "approve", "reject", "pause", "cancel"])
def test_store_is_honoured_before_or_after_the_subcommand(
    tmp_path: Path, command: str, before: bool
) -> None:
    store = tmp_path / "elsewhere.db"
    run_id = waiting_run(tmp_path, store)
    args = {
        "runs": ["runs"],
        "show": ["show", run_id],
        "approve": ["approve", run_id, "publish", "--as", "alice"],
        "reject": ["reject", run_id, "publish", "--as", "alice", "--reason", "not yet"],
        "pause": ["pause", run_id],
        "cancel": ["cancel", run_id],
    }[command]
    argv = ["--store", str(store), *args] if before else [*args, "--store", str(store)]
    code, out = invoke(*argv)
    assert code == 0, out
    if command in ("runs", "show"):
        assert run_id in out
    else:
        assert signals(store, run_id)[-1][0] == command
    # the default store (isolated $QUARTERDECK_HOME) knows nothing of it
    code, out = invoke(*args)
    assert run_id not in out or code != 0


@pytest.mark.parametrize("before", [True, False], ids=["before", "after"])
@pytest.mark.parametrize("command", ["approve", "reject", "pause", "unpause", "cancel"])
def test_as_is_the_recorded_actor_before_or_after_the_subcommand(
    tmp_path: Path, command: str, before: bool
) -> None:
    store = tmp_path / "qd.db"
    run_id = waiting_run(tmp_path, store)
    args = [command, run_id] + (["publish"] if command in ("approve", "reject") else [])
    args += ["--reason", "why not", "--store", str(store)]
    argv = ["--as", "alice", *args] if before else [*args, "--as", "alice"]
    code, out = invoke(*argv)
    assert code == 0, out
    assert signals(store, run_id)[-1][:2] == (command, "alice")


def test_the_same_option_twice_with_different_values_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "qd.db"
    run_id = waiting_run(tmp_path, store)
    code, out = invoke(
        "--as", "alice", "approve", run_id, "publish", "--as", "bob", "--store", str(store)
    )
    assert code == 2
    assert "given twice with different values" in out
    assert signals(store, run_id) == []


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--store", "x.db", "validate", "wf.yaml"], "--store"),
        (["--store", "x.db", "workflows"], "--store"),
        (["--as", "alice", "runs"], "--as"),
        (["--as", "alice", "show", "abc"], "--as"),
        (["--store", "x.db", "demo"], "--store"),
    ],
)
def test_a_global_option_a_subcommand_cannot_use_is_refused(
    tmp_path: Path, argv: list[str], flag: str
) -> None:
    code, out = invoke(*argv)
    assert code == 2
    assert f"does not take {flag}" in out
    assert not (tmp_path / "x.db").exists()


def test_run_records_the_global_as_as_its_starter(tmp_path: Path) -> None:
    wf = tmp_path / "wf.yaml"
    wf.write_text(GATED)
    store = tmp_path / "qd.db"
    code, out = invoke(
        "--as", "dave", "--store", str(store), "run", str(wf), "--headless", "--no-wait"
    )
    assert code == 3, out
    with Store(store) as db:
        (row,) = db.list_runs()
        assert row.started_by == "dave"
