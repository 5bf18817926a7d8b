"""Commands that write to the store close it before the console script leaves.

The console script ends with ``os._exit`` once output is flushed (tui/cli/__init__.py),
which closes no connection: a command that wrote and did not close its store left that
write in the WAL file beside it (a copy of the store file alone missed it, and nothing
synced it into the file). ``verify`` checks evidence: it opens the store read-only and
writes nothing. Both through the installed console script, as a user runs them."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

from quarterdeck.core.journal.store import Store
from tests.helpers import bare_run

QUARTERDECK = str(Path(sys.executable).with_name("quarterdeck"))


def _store_with_a_crashed_run(tmp_path: Path) -> Path:
    """A store holding run ``r1``, journaled ``running`` by a process that is gone."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    db = tmp_path / "qd.db"
    with Store(db) as store:
        bare_run(store, "r1", owner="a runner that is gone")
        store.conn.execute("UPDATE runs SET pid = ? WHERE id = 'r1'", (gone.pid,))
    return db


def _quarterdeck(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [QUARTERDECK, *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "QUARTERDECK_HOME": str(home), "NO_COLOR": "1"},
        timeout=60,
        check=False,
    )


def test_a_signal_is_in_the_store_file_when_the_command_has_exited(tmp_path: Path) -> None:
    db = _store_with_a_crashed_run(tmp_path)
    done = _quarterdeck("pause", "r1", "--store", str(db), home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    assert "pause recorded for run r1" in done.stderr
    wal = Path(f"{db}-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # checkpointed into the file, closed
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT kind FROM signals WHERE run_id = 'r1'").fetchall() == [("pause",)]
    conn.close()


def test_verify_writes_nothing_to_the_store(tmp_path: Path) -> None:
    db = _store_with_a_crashed_run(tmp_path)
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    done = _quarterdeck("verify", "r1", "--store", str(db), home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    assert "run r1: 0 events chained" in done.stderr
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    wal = Path(f"{db}-wal")  # (a reader may leave the WAL's shared index, -shm: no data)
    assert not wal.exists() or wal.stat().st_size == 0
    conn = sqlite3.connect(db)
    # a reading command leaves the crashed run for the next writer to record as interrupted
    assert conn.execute("SELECT status FROM runs WHERE id = 'r1'").fetchone() == ("running",)
    conn.close()
