"""Commit before act, for real: a journal that cannot take events stops the run resumably.

Each test runs the real CLI on a real SQLite store and makes the journal fail on purpose:
another process holds the write lock past the writer's retries, another runner takes the
run over, the store's file system fills up. The run must end ``interrupted`` (130) with a
message naming the store and the cause, no step may act on an event that was not
committed, the journal has no sequence gap, and ``resume`` finishes the run.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from quarterdeck.core.journal.store import Store
from tests.engine.procs import (
    effects,
    finish,
    held_until_go,
    no_gaps,
    run_id,
    start,
    wait_for,
)
from tests.helpers import bare_run, write_workflow

GATED = held_until_go("gated")

QUICK_RETRY = {"QUARTERDECK_JOURNAL_RETRY_SECONDS": "1"}


def _resume(tmp: Path) -> tuple[int, str]:
    return finish(start(tmp, "resume", str(run_id(tmp)), tag="resume"), tmp, "resume")


def test_a_lock_held_past_the_retries_stops_the_run_resumably(tmp_path: Path) -> None:
    wf = write_workflow(tmp_path, GATED)
    proc = start(tmp_path, "run", str(wf), env=QUICK_RETRY)
    wait_for(lambda: (tmp_path / "ready").exists())
    locker = sqlite3.connect(tmp_path / "qd.db", timeout=30, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # another process writes for longer than the retries
    try:
        (tmp_path / "go").touch()
        code, err = finish(proc, tmp_path)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert code == 130, err
    assert "Traceback" not in err
    assert str(tmp_path / "qd.db") in err and "locked" in err, err
    assert effects(tmp_path) == ["first"]  # `second` never started on an unjournaled finish
    assert no_gaps(tmp_path)
    code, err = _resume(tmp_path)
    assert code == 0, err
    assert effects(tmp_path).count("second") == 1
    assert no_gaps(tmp_path)


def test_a_short_lock_is_waited_out(tmp_path: Path) -> None:
    """A lock that passes within the retries costs nothing: the run succeeds."""
    wf = write_workflow(tmp_path, GATED)
    proc = start(tmp_path, "run", str(wf), env={"QUARTERDECK_JOURNAL_RETRY_SECONDS": "60"})
    wait_for(lambda: (tmp_path / "ready").exists())
    locker = sqlite3.connect(tmp_path / "qd.db", timeout=30, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    (tmp_path / "go").touch()
    # held past one attempt's 2 s busy timeout, so the batch is committed by a retry
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=4)
    locker.execute("ROLLBACK")
    locker.close()
    code, err = finish(proc, tmp_path)
    assert code == 0, err
    assert effects(tmp_path) == ["first", "second"]
    assert no_gaps(tmp_path)


def test_a_run_taken_over_stops_at_its_next_commit(tmp_path: Path) -> None:
    wf = write_workflow(tmp_path, GATED)
    proc = start(tmp_path, "run", str(wf))
    wait_for(lambda: (tmp_path / "ready").exists())
    thief = sqlite3.connect(tmp_path / "qd.db", timeout=30, isolation_level=None)
    thief.execute("UPDATE runs SET owner = 'elsewhere:1:beef' WHERE id = ?", (run_id(tmp_path),))
    thief.close()
    (tmp_path / "go").touch()
    code, err = finish(proc, tmp_path)
    assert code == 130, err
    assert "taken over" in err and "Traceback" not in err
    assert effects(tmp_path) == ["first"]
    assert no_gaps(tmp_path)


def test_a_commit_is_fenced_by_the_claim(tmp_path: Path) -> None:
    with Store(tmp_path / "qd.db") as store:
        bare_run(store, owner="mine")
        store.conn.execute("UPDATE runs SET owner = 'theirs' WHERE id = 'r1'")
        from quarterdeck.core.journal.events import Event
        from quarterdeck.core.journal.store import ClaimLost

        with pytest.raises(ClaimLost):
            store.commit_batch("r1", "mine", [Event("note", "r1", None, None, {}, 1.0, 1)])
        assert store.last_seq("r1") == 0


@contextlib.contextmanager
def _tiny_fs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_disk_stops_the_run_resumably(tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        held_until_go("full"),
    )
    with _tiny_fs(tmp_path / "fs", "1m") as fs:
        env = {**QUICK_RETRY}
        proc = subprocess.Popen(
            [
                "sh",
                "-c",
                'exec "$0" -m quarterdeck.tui.cli "$@" 2> run.err',
                _python(),
                "run",
                str(wf),
                "--headless",
                "--store",
                str(fs / "qd.db"),
            ],
            cwd=tmp_path,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
        )
        wait_for(lambda: (tmp_path / "ready").exists())
        filler = fs / "filler"
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True)
        (tmp_path / "go").touch()
        code = proc.wait(timeout=120)
        err = (tmp_path / "run.err").read_text()
        assert code == 130, err
        assert "Traceback" not in err and "full" in err and str(fs / "qd.db") in err, err
        assert effects(tmp_path) == ["first"]
        filler.unlink()  # space again: the run resumes and finishes
        seqs = _seqs(fs / "qd.db")
        assert seqs == list(range(1, len(seqs) + 1))
        resumed = subprocess.run(
            [
                _python(),
                "-m",
                "quarterdeck.tui.cli",
                "resume",
                _only_run(fs / "qd.db"),
                "--headless",
                "--store",
                str(fs / "qd.db"),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert resumed.returncode == 0, resumed.stderr
        assert effects(tmp_path).count("second") == 1
        seqs = _seqs(fs / "qd.db")
        assert seqs == list(range(1, len(seqs) + 1))


def _python() -> str:
    import sys

    return sys.executable


def _seqs(db: Path) -> list[int]:
    conn = sqlite3.connect(db)
    try:
        return [r[0] for r in conn.execute("SELECT seq FROM events ORDER BY seq")]
    finally:
        conn.close()


def _only_run(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return str(conn.execute("SELECT id FROM runs").fetchone()[0])
    finally:
        conn.close()


def test_damage_and_a_replaced_file_are_not_retried_a_lock_and_a_full_disk_are() -> None:
    """A batch is retried only while its cause may pass; a damaged store or a journal file
    replaced under the run stops it at once instead of after the whole retry window."""
    from quarterdeck.core.engine.journal_writer import _retryable
    from quarterdeck.core.journal.store_errors import StoreError

    def error(kind: str) -> StoreError:
        return StoreError("the store failed", path="qd.db", kind=kind)

    assert not _retryable(error("SQLITE_CORRUPT"))
    assert not _retryable(error("SQLITE_NOTADB"))
    assert not _retryable(error("SQLITE_READONLY"))
    assert not _retryable(error("replaced"))
    assert _retryable(error("SQLITE_BUSY"))
    assert _retryable(error("SQLITE_FULL"))
    assert _retryable(error("SQLITE_IOERR_WRITE"))
