"""Step processes die with their runner, and stop signals always mean "interrupted" (130).

Real runs of the real CLI, real signals, real process groups.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from tests.store_faults import kill_marked, marked, start_cli, wait_for_event

NESTED = """\
name: nested
stages:
  - id: a
    steps:
      - id: long
        uses: shell
        with: {run: "sleep 300; echo done", shell: true}
"""


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_gone(pid: int, limit: float = 20.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.02)
    return False


def _process_events(store: Path, run_id: str) -> list[dict[str, int]]:
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT data FROM events WHERE run_id = ? AND type = 'step.process' ORDER BY seq",
            (run_id,),
        ).fetchall()
    finally:
        conn.close()
    return [json.loads(r[0]) for r in rows]


def _types(store: Path, run_id: str) -> list[str]:
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT type FROM events WHERE run_id = ? ORDER BY seq", (run_id,)
        ).fetchall()
    finally:
        conn.close()
    return [r[0] for r in rows]


@pytest.fixture
def wf(tmp_path: Path) -> Path:
    path = tmp_path / "nested.yaml"
    path.write_text(NESTED)
    return path


@pytest.mark.parametrize("signals", [["SIGHUP"], ["SIGTERM"], ["SIGINT"], ["SIGHUP", "SIGHUP"]])
def test_a_stop_signal_interrupts_resumably(tmp_path: Path, wf: Path, signals: list[str]) -> None:
    store = tmp_path / "qd.db"
    proc = start_cli("run", str(wf), "--store", str(store), "--headless", cwd=tmp_path)
    run_id = wait_for_event(store, "step.process", "long")
    for name in signals:
        proc.send_signal(getattr(signal, name))
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert _types(store, run_id)[-1] == "run.interrupted"
    assert marked(run_id) == []


def test_a_storm_of_sigterms_still_ends_in_130(tmp_path: Path, wf: Path) -> None:
    """Signals keep arriving while the run winds down, the loop closes and Python exits."""
    store = tmp_path / "qd.db"
    proc = start_cli("run", str(wf), "--store", str(store), "--headless", cwd=tmp_path)
    run_id = wait_for_event(store, "step.process", "long")
    sent = 0
    while proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
            sent += 1
        # a burst first (the run may wind down and exit within milliseconds), then a
        # steady stream until the process is gone
        time.sleep(0 if sent < 50 else 0.001)
    _out, err = proc.communicate(timeout=60)
    assert sent > 1
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert _types(store, run_id)[-1] == "run.interrupted"


def _guard_of(runner: int) -> int:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == runner and b"-S" in cmdline and b"-c" in cmdline:
            return int(entry.name)
    raise AssertionError(f"no process-group guard under {runner}")


def _wait_marked_gone(run_id: str, limit: float = 20.0) -> list[int]:
    deadline = time.monotonic() + limit
    while marked(run_id) and time.monotonic() < deadline:
        time.sleep(0.02)
    return marked(run_id)


def _started_sleep(proc_pid: int, run_id: str) -> None:
    deadline = time.monotonic() + 30
    while len([p for p in marked(run_id) if p != proc_pid]) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)  # the shell and its sleep


def test_a_killed_runner_takes_its_steps_whole_process_groups_with_it(
    tmp_path: Path, wf: Path
) -> None:
    store = tmp_path / "qd.db"
    proc = start_cli("run", str(wf), "--store", str(store), "--headless", cwd=tmp_path)
    run_id = wait_for_event(store, "step.process", "long")
    try:
        _started_sleep(proc.pid, run_id)
        os.kill(proc.pid, signal.SIGKILL)  # the runner only, as the OOM killer would
        proc.communicate(timeout=30)
        assert _wait_marked_gone(run_id) == [], "the step's processes outlived their runner"
    finally:
        kill_marked(run_id)


def test_resume_kills_what_a_dead_owner_left_before_running_the_step_again(
    tmp_path: Path, wf: Path
) -> None:
    store = tmp_path / "qd.db"
    proc = start_cli("run", str(wf), "--store", str(store), "--headless", cwd=tmp_path)
    run_id = wait_for_event(store, "step.process", "long")
    try:
        _started_sleep(proc.pid, run_id)
        first = _process_events(store, run_id)[0]
        os.kill(_guard_of(proc.pid), signal.SIGKILL)  # both die: only the journal is left
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        assert _wait_gone(first["pid"]), "the step's shell outlived its runner"
        left = marked(run_id)
        assert left, "the shell's own child is still running (what resume must clean up)"
        assert all(os.getpgid(p) == first["pgid"] for p in left)

        again = start_cli("resume", run_id, "--store", str(store), "--headless", cwd=tmp_path)
        deadline = time.monotonic() + 60
        while len(_process_events(store, run_id)) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(_process_events(store, run_id)) == 2
        assert [p for p in left if _alive(p)] == []  # killed before the step ran again
        again.send_signal(signal.SIGTERM)
        _out, err = again.communicate(timeout=60)
        assert again.returncode == 130, err
        log = Path(os.environ["QUARTERDECK_HOME"]) / "quarterdeck.log"
        assert f"run {run_id}: killing" in log.read_text()
    finally:
        kill_marked(run_id)
