"""The console script leaves with ``os._exit`` once a command is done, skipping the
interpreter's teardown — but only after everything the normal exit would have done that
anyone can see: output flushed, exit handlers run, the exit code unchanged."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import cli, write_workflow

ONE_STEP = (
    "name: quick\nstages:\n  - id: s\n    steps:\n"
    "      - {id: a, uses: memory.set, with: {key: k, value: 1}}\n"
)


def _home(tmp_path: Path) -> dict[str, str]:
    return {"QUARTERDECK_HOME": str(tmp_path / "home")}


def _leave(body: str) -> subprocess.CompletedProcess[str]:
    code = "import atexit, sys, threading\nfrom quarterdeck.tui.cli import _leave\n"
    code += textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_exit_handlers_run_and_the_code_is_kept() -> None:
    done = _leave(
        """
        atexit.register(lambda: print("handler ran", flush=False))
        sys.stdout.write("buffered, not flushed")
        _leave(3)
        """
    )
    assert done.returncode == 3
    assert done.stdout == "buffered, not flushedhandler ran\n"


def test_none_is_success_and_a_message_exits_the_normal_way() -> None:
    assert _leave("_leave(None)").returncode == 0
    done = _leave('_leave("error: something")')
    assert (done.returncode, done.stderr) == (1, "error: something\n")


def test_a_thread_still_running_gets_the_normal_exit() -> None:
    """A non-daemon thread still working would be killed by os._exit; the normal exit
    waits for it."""
    done = _leave(
        """
        import time
        def late():
            time.sleep(0.3)
            print("thread finished", flush=True)
        threading.Thread(target=late).start()
        _leave(5)
        """
    )
    assert (done.returncode, done.stdout) == (5, "thread finished\n")


def test_a_run_through_the_console_entry_prints_everything(tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        ONE_STEP + "      - {id: b, uses: shell, needs: [a], with: {run: 'false'}}\n",
    )
    done = cli(
        "run", "--headless", str(wf), "--store", str(tmp_path / "qd.db"), env=_home(tmp_path)
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.splitlines()  # the run's log and verdict go to stderr
    assert lines[-1].startswith("run ") and lines[-1].endswith(": failed"), done.stderr
    assert (tmp_path / "home" / "quarterdeck.log").exists()


def test_the_store_file_alone_holds_the_run_after_the_command(tmp_path: Path) -> None:
    """Open stores are closed on the way out (checkpointing the WAL), so the database file
    copied on its own — a backup, a bug report — has the run in it."""
    wf = write_workflow(tmp_path, ONE_STEP)
    store = tmp_path / "qd.db"
    done = cli("run", "--headless", str(wf), "--store", str(store), env=_home(tmp_path))
    assert done.returncode == 0, done.stderr
    copy = tmp_path / "copy.db"
    shutil.copyfile(store, copy)
    conn = sqlite3.connect(copy)
    try:
        assert conn.execute("SELECT workflow, status FROM runs").fetchall() == [
            ("quick", "succeeded")
        ]
    finally:
        conn.close()


def test_a_headless_run_freezes_start_up_objects_for_the_run_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """During the run what start-up and the load made is out of the cyclic GC's scans
    (a step sees a non-zero freeze count); afterwards it is back (count zero), so a
    process that goes on collects as usual."""
    import gc

    from typer.testing import CliRunner

    from quarterdeck.tui.cli import app

    (tmp_path / "probe.py").write_text(
        "import gc\n\ndef frozen() -> dict:\n    return {'frozen': gc.get_freeze_count()}\n"
    )
    wf = tmp_path / "wf.yaml"
    wf.write_text(
        "name: probe\nstages:\n  - id: s\n    steps:\n"
        "      - {id: p, uses: python, with: {call: 'probe:frozen'}}\n"
    )
    monkeypatch.setenv("QUARTERDECK_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    argv = ["run", "--headless", "--json", str(wf), "--store", str(tmp_path / "qd.db")]
    done = CliRunner().invoke(app, argv)
    assert done.exit_code == 0, done.output
    [stage] = json.loads(done.stdout)["stages"]
    [step] = stage["steps"]
    assert step["outputs"]["frozen"] > 0
    assert gc.get_freeze_count() == 0


def test_narration_still_queued_when_its_loop_stopped_is_written() -> None:
    """A run's lines wait for the end of the loop's turn; a loop stopped mid-turn (an
    exception out of the run) leaves them queued, and the quick exit wrote none of them."""
    done = _leave(
        """
        import asyncio
        from quarterdeck.tui.headless.lines import line_batch

        batch = line_batch(sys.stdout)
        loop = asyncio.new_event_loop()

        async def run():
            batch.write("the last line of the run\\n")
            raise SystemExit

        try:
            loop.run_until_complete(run())
        except SystemExit:
            pass
        loop.close()
        _leave(0)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "the last line of the run\n"
