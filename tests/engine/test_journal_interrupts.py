"""A store locked by another process when a run starts or stops: say so, stay resumable.

Real CLI processes on a real SQLite store; the lock is held by another process
(``BEGIN IMMEDIATE``) for longer than the store's busy timeout or the writer's retries.
Starting a run must end with a message naming the store (exit 2: there is no run), resuming
one must leave it resumable (130); a SIGTERM while the writer retries must not wait out
the whole retry window, and ``resume`` must finish the run once the lock is gone.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.engine.procs import (
    effects,
    finish,
    has_event,
    held_until_go,
    no_gaps,
    row_status,
    run_id,
    start,
    wait_for,
)
from tests.helpers import write_workflow

GATED = held_until_go("gated")

_HOLD = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("held", flush=True)
sys.stdin.read()  # until the test closes our stdin
conn.execute("ROLLBACK")
"""


@contextmanager
def locked(db: Path) -> Iterator[None]:
    """Another process holds the store's write lock while the block runs."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)


def _interrupted_run(tmp: Path) -> str:
    """A run stopped by SIGTERM while its first step waits: interrupted, resumable."""
    proc = start(tmp, "run", str(write_workflow(tmp, GATED)))
    wait_for(lambda: (tmp / "ready").exists())
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc, tmp)
    assert code == 130, err
    rid = run_id(tmp)
    assert rid is not None and row_status(tmp) == "interrupted"
    (tmp / "ready").unlink()
    return rid


def test_a_store_locked_past_the_busy_timeout_at_start_says_so(tmp_path: Path) -> None:
    rid = _interrupted_run(tmp_path)
    db = tmp_path / "qd.db"
    with locked(db):
        fresh = start(tmp_path, "run", str(tmp_path / "wf.yaml"), tag="fresh")
        again = start(tmp_path, "resume", rid, tag="again")
        fresh_code, fresh_err = finish(fresh, tmp_path, "fresh")
        again_code, again_err = finish(again, tmp_path, "again")
    for err in (fresh_err, again_err):
        assert "Traceback" not in err, err
        assert str(db) in err and "locked by another process" in err, err
    assert fresh_code == 2, fresh_err  # no run was created
    assert again_code == 130, again_err  # the run was not touched: still resumable
    assert f"quarterdeck resume {rid}" in again_err
    assert row_status(tmp_path) == "interrupted"
    (tmp_path / "go").touch()
    code, err = finish(start(tmp_path, "resume", rid, tag="resume"), tmp_path, "resume")
    assert code == 0, err
    assert effects(tmp_path) == ["first", "first", "second"]  # first was in flight at SIGTERM
    assert no_gaps(tmp_path)


def test_sigterm_while_the_writer_retries_a_held_lock_exits_130_promptly(tmp_path: Path) -> None:
    wf = write_workflow(tmp_path, GATED)
    proc = start(tmp_path, "run", str(wf), env={"QUARTERDECK_JOURNAL_RETRY_SECONDS": "600"})
    wait_for(lambda: (tmp_path / "ready").exists())
    rid = run_id(tmp_path)
    assert rid is not None
    with locked(tmp_path / "qd.db"):
        (tmp_path / "go").touch()  # `first` ends: its step.finished cannot be committed
        time.sleep(1)  # let `first` end and the writer start retrying (either way: blocked)
        proc.send_signal(signal.SIGTERM)
        try:  # bounded far below the 600 s retry window the writer would otherwise wait out
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError("the run waited out the writer's retries after SIGTERM") from None
        err = (tmp_path / "run.err").read_text()
    assert code == 130, err
    assert "Traceback" not in err, err
    assert f"quarterdeck resume {rid}" in err, err
    assert effects(tmp_path) == ["first"]  # `second` never started on an unjournaled finish
    assert no_gaps(tmp_path)
    assert not has_event(tmp_path, "step.finished", "first")
    code, err = finish(start(tmp_path, "resume", rid, tag="resume"), tmp_path, "resume")
    assert code == 0, err
    assert effects(tmp_path).count("second") == 1
    assert no_gaps(tmp_path)
