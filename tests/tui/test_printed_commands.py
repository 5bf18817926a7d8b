"""Every command Quarterdeck prints for another terminal works as printed in a fresh
shell: a clean environment (HOME in a temp dir, no QUARTERDECK_* variables), the command
line pasted verbatim into ``sh -c``."""

from __future__ import annotations

import asyncio
import os
import pwd
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from quarterdeck.core.commands import store_label
from quarterdeck.core.engine.runner import RunOptions
from quarterdeck.core.journal.store import Store
from quarterdeck.tui.launch import load, load_context
from tests.helpers import cli, gated_workflow, make_runner, write_workflow

GATED = gated_workflow("allow_self_approval: true")


def fresh_shell(command: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``command`` pasted into a new shell: nothing of this process's environment but the
    PATH to the installed ``quarterdeck``; a new HOME; another working directory."""
    home = tmp_path / "fresh-home"
    home.mkdir(exist_ok=True)
    bin_dir = str(Path(sys.executable).parent)
    return subprocess.run(
        ["sh", "-c", command],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(home), "CI": "true"},
        cwd=str(home),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def printed(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    assert found is not None, f"no {pattern!r} in:\n{text}"
    return found.group(1).strip()


def test_headless_approve_and_resume_hints_work_as_printed(tmp_path: Path) -> None:
    store = tmp_path / "team" / "journal.db"
    wf = write_workflow(tmp_path, GATED)
    ran = cli("run", str(wf), "--headless", "--no-wait", "--store", str(store))
    assert ran.returncode == 3, ran.stderr
    approve = printed(r"approve: (.*quarterdeck approve .*)", ran.stderr)
    assert "RUN" not in approve and "NAME" not in approve
    done = fresh_shell(approve, tmp_path)
    assert done.returncode == 0, done.stderr
    resume = printed(r"applies when you `([^`]*)`", done.stderr)
    finished = fresh_shell(resume, tmp_path)
    assert finished.returncode == 0, finished.stderr
    with Store(store) as db:
        (row,) = db.list_runs()
        assert row.status == "succeeded"


def test_the_printed_reject_works_as_printed(tmp_path: Path) -> None:
    store = tmp_path / "journal.db"
    wf = write_workflow(tmp_path, GATED)
    ran = cli("run", str(wf), "--headless", "--no-wait", "--store", str(store))
    reject = printed(r"reject:  (.*quarterdeck reject .*)", ran.stderr)
    done = fresh_shell(reject, tmp_path)
    assert done.returncode == 0, done.stderr
    with Store(store) as db:
        (row,) = db.list_runs()
        assert [s.kind for s in db.pending_signals(row.id)] == ["reject"]


def test_the_no_wait_message_names_commands_that_work(tmp_path: Path) -> None:
    store = tmp_path / "journal.db"
    wf = write_workflow(tmp_path, GATED)
    ran = cli("run", str(wf), "--headless", "--no-wait", "--store", str(store))
    approve = printed(r"\(or run `([^`]*)` then", ran.stderr)
    assert fresh_shell(approve, tmp_path).returncode == 0
    resume = printed(r"\(resume with `([^`]*)`\)", ran.stderr)
    assert fresh_shell(resume, tmp_path).returncode == 0


def test_the_demo_approve_hint_names_the_run_its_journal_and_its_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from quarterdeck.workflows.sandbox.demo import DemoSession

    session = DemoSession("release", tmp_path / "demo")
    box = session.sandbox
    box.config_dir.mkdir(parents=True)
    (box.config_dir / "config.yaml").write_text("report_dir: null\n")
    # inside the session the demo points this process at its config and journal
    monkeypatch.setenv("QUARTERDECK_CONFIG_DIR", str(box.config_dir))
    monkeypatch.setenv("QUARTERDECK_HOME", str(box.state_dir))
    runner = make_runner(
        tmp_path,
        GATED,
        store=Store(box.store),
        options=RunOptions(started_by="demo-user", no_wait=True, workdir=tmp_path),
    )
    asyncio.run(runner.run())
    runner.store.close()
    hint = session.approve_hint("publish", runner.run_id)
    command = hint.split(": ", 1)[1]
    assert runner.run_id in command and "RUN" not in command
    done = fresh_shell(command, tmp_path)
    assert done.returncode == 0, done.stderr
    # the decision is the OS account's (a typed name would need a signature), and the
    # command carries the demo's config dir, which a fresh shell lacks
    me = pwd.getpwuid(os.geteuid()).pw_name
    assert f"QUARTERDECK_CONFIG_DIR={box.config_dir}" in command
    assert f"by {me}" in done.stderr
    with Store(box.store) as db:
        assert [(s.kind, s.actor) for s in db.pending_signals(runner.run_id)] == [("approve", me)]


@pytest.mark.asyncio
async def test_the_share_key_shows_and_copies_a_join_command_that_works(
    make_app: Any, project: Path, tmp_path: Path
) -> None:
    from tests.tui.conftest import wait_until

    store = project / "team.db"
    app = make_app(store_path=store)
    async with app.run_test(size=(80, 24)) as pilot:
        run_id = app.launch(load("chatty", load_context()), {"wait": "0"})
        await wait_until(pilot, lambda: bool(app.screen.query("#tree")), what="the dashboard")
        await pilot.press("y")
        await pilot.pause()
        command = app.clipboard
        assert command.endswith(f"quarterdeck attach {run_id} --store {store}"), command
        assert any(command in n.message for n in app._notifications)
        # the id and the store are always in the header as drawn, even at 80 columns
        await pilot.pause(0.2)
        drawn = "".join(seg.text for seg in app.screen.query_one("#run-bar").render_line(0))
        label = store_label(store, width=20)
        assert run_id in drawn and label is not None and f"store\u00a0{label}" in drawn, drawn
    app.stop_runs()
    # pasted into a fresh shell (no terminal here, so attach points at `show` — after
    # finding the run in the store the command names)
    joined = fresh_shell(command, tmp_path)
    assert f"quarterdeck show {run_id} --store {store}" in joined.stderr, joined.stderr
    shown = fresh_shell(printed(r"`([^`]*)`", joined.stderr), tmp_path)
    assert shown.returncode == 0 and run_id in shown.stdout
