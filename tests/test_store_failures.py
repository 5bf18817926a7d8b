"""Stores that fail say so: damaged, read-only, newer, locked, deleted or replaced stores
give a message naming the store and exit 2, never a traceback; reading never writes."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from quarterdeck.core.journal import schema
from quarterdeck.core.journal.events import Event
from quarterdeck.core.journal.store import Store
from quarterdeck.core.journal.store_errors import StoreError
from tests.helpers import cli
from tests.store_faults import copy_store, damage, interrupted_store, read_only, snapshot


@pytest.fixture(scope="module")
def crashed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A store whose run's runner was SIGKILLed mid-step; its row still says running."""
    return interrupted_store(tmp_path_factory.mktemp("crashed"))


def _row_status(store: Path, run_id: str) -> str:
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        return str(conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()[0])
    finally:
        conn.close()


def test_runs_and_show_work_on_a_read_only_copy_and_write_nothing(
    crashed: tuple[Path, str], tmp_path: Path
) -> None:
    store, run_id = crashed
    copy = copy_store(store, tmp_path / "copy")
    assert _row_status(copy, run_id) == "running"  # only a reader's reconcile would change it
    before = snapshot(copy.parent)
    with read_only(copy.parent) as folder:
        listed = cli("runs", "--json", "--store", str(folder / copy.name))
        shown = cli("show", run_id, "--json", "--store", str(folder / copy.name))
    assert listed.returncode == 0, listed.stderr
    assert "Traceback" not in listed.stderr + shown.stderr
    assert [r["status"] for r in json.loads(listed.stdout)] == ["interrupted"]
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["status"] == "interrupted"
    assert snapshot(copy.parent) == before


def test_reading_a_writable_store_leaves_the_crashed_row_for_the_next_writer(
    crashed: tuple[Path, str], tmp_path: Path
) -> None:
    store, run_id = crashed
    copy = copy_store(store, tmp_path / "copy")
    listed = cli("runs", "--json", "--store", str(copy))
    assert json.loads(listed.stdout)[0]["status"] == "interrupted"
    assert _row_status(copy, run_id) == "running"


def test_writing_commands_on_a_read_only_store_say_so(
    crashed: tuple[Path, str], tmp_path: Path
) -> None:
    store, run_id = crashed
    copy = copy_store(store, tmp_path / "copy")
    wf = tmp_path / "wf.yaml"
    wf.write_text(
        "name: t\nstages:\n  - id: s\n    steps:\n      - {id: a, uses: shell, with: {run: 'true'}}\n"
    )
    with read_only(copy.parent) as folder:
        path = str(folder / copy.name)
        for args in (("run", str(wf)), ("resume", run_id), ("approve", run_id, "gate")):
            proc = cli(*args, "--store", path)
            assert proc.returncode == 2, (args, proc.stderr)
            assert "Traceback" not in proc.stderr
            assert f"the store {path} is read-only" in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("runs",),
        ("show", "RUN"),
        ("resume", "RUN"),
        ("run", "WF"),
        ("approve", "RUN", "gate"),
        ("cancel", "RUN"),
        ("pause", "RUN"),
    ],
)
def test_every_command_names_a_damaged_store(
    crashed: tuple[Path, str], tmp_path: Path, args: tuple[str, ...]
) -> None:
    store, run_id = crashed
    copy = copy_store(store, tmp_path / "copy")
    damage(copy)
    wf = tmp_path / "wf.yaml"
    wf.write_text(
        "name: t\nstages:\n  - id: s\n    steps:\n      - {id: a, uses: shell, with: {run: 'true'}}\n"
    )
    real = [run_id if a == "RUN" else str(wf) if a == "WF" else a for a in args]
    proc = cli(*real, "--store", str(copy))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"the store {copy} is damaged" in proc.stderr
    assert "integrity_check" in proc.stderr


def test_damage_met_after_the_run_started_exits_2_and_says_it_was_not_retried(
    crashed: tuple[Path, str], tmp_path: Path
) -> None:
    """Damage to the events table, which `run` only meets when it writes the journal (the
    run's row is already in): the run stops at once. It used to exit 130 ("interrupted, resume when
    you like") and claim it had retried for 60 s; damage does not pass by waiting, so it
    is a store error (exit 2), with the resume for once the store is fixed."""
    store, _ = crashed
    copy = copy_store(store, tmp_path / "copy")
    conn = sqlite3.connect(copy)
    page = conn.execute("SELECT pageno FROM dbstat WHERE name = 'events'").fetchone()[0]
    conn.close()
    damage(copy, first_page=page - 1, pages=1)  # dbstat counts pages from 1
    wf = tmp_path / "wf.yaml"
    wf.write_text(
        "name: t\nstages:\n  - id: s\n    steps:\n      - {id: a, uses: shell, with: {run: 'true'}}\n"
    )
    proc = cli("run", str(wf), "--store", str(copy), "--headless")
    assert "Traceback" not in proc.stderr
    assert f"cannot write the journal {copy}" in proc.stderr, proc.stderr
    assert proc.returncode == 2, proc.stderr
    assert "damaged" in proc.stderr and "not retried" in proc.stderr
    assert "gave up after" not in proc.stderr
    assert "once the store is fixed: quarterdeck resume" in proc.stderr


def test_a_file_that_is_not_a_store(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.db"
    bogus.write_bytes(b"these are my notes, not a database\n" * 200)
    for args in (("runs",), ("show", "x"), ("cancel", "x")):
        proc = cli(*args, "--store", str(bogus))
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        assert f"the store {bogus} is not a Quarterdeck store" in proc.stderr


def test_an_older_quarterdeck_refuses_a_newer_store(tmp_path: Path) -> None:
    path = tmp_path / "qd.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {schema.latest() + 1}")
    conn.close()
    for args in (("runs",), ("show", "x"), ("cancel", "x")):
        proc = cli(*args, "--store", str(path))
        assert proc.returncode == 2, proc.stderr
        assert "newer than this Quarterdeck knows" in proc.stderr
        assert "upgrade Quarterdeck" in proc.stderr


def test_a_store_from_before_versions_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "qd.db"
    conn = sqlite3.connect(path)
    for sql in schema.RUNS_EVENTS_SIGNALS:  # today's tables, user_version 0
        conn.execute(sql)
    conn.execute(
        "INSERT INTO runs (id, workflow, status, started_at) VALUES ('r1', 'w', 'succeeded', 1)"
    )
    conn.commit()
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    conn.close()
    with Store(path) as store:
        assert store.get_run("r1").workflow == "w"
        assert schema.version(store.conn) == schema.latest()
        tables = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master")}
    assert {"runs", "events", "signals", "alert_groups"} <= tables
    with Store(path) as again:  # opening a current store changes nothing
        assert schema.version(again.conn) == schema.latest()


def test_a_store_locked_by_another_process_names_it(tmp_path: Path) -> None:
    path = tmp_path / "qd.db"
    Store(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        blocked = sqlite3.connect(path, timeout=0, isolation_level=None)
        with pytest.raises(sqlite3.OperationalError) as raised:
            blocked.execute("BEGIN IMMEDIATE")
        error = StoreError.of(path, raised.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert f"the store {path} is locked by another process" in error.message
    assert error.exit_code == 2
    assert isinstance(error, sqlite3.OperationalError)  # retry loops still recognise it


def _event(seq: int) -> Event:
    return Event("run.note", "r1", None, None, {"text": "x"}, ts=1.0, seq=seq)


def test_the_store_notices_its_file_deleted_under_it(tmp_path: Path) -> None:
    path = tmp_path / "qd.db"
    with Store(path) as store:
        store.append(_event(1))
        for leftover in tmp_path.glob("qd.db*"):
            os.unlink(leftover)
        with pytest.raises(StoreError, match="was deleted while this process was writing"):
            store.append(_event(2))
        with pytest.raises(StoreError, match="was deleted"):
            store.append_many([_event(2), _event(3)])


def test_the_store_notices_its_file_replaced_under_it(tmp_path: Path) -> None:
    path = tmp_path / "qd.db"
    other = tmp_path / "other.db"
    Store(other).close()
    with Store(path) as store:
        store.append(_event(1))
        os.replace(other, path)
        with pytest.raises(StoreError, match="was replaced by another file"):
            store.append(_event(2))
