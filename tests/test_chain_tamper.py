"""A real run's store, edited behind the journal's back through a second SQLite connection:
any column given another type (bytes, text, a real), in the table as it is or rebuilt with
no column types. ``verify_run``'s spelled-out links find exactly what ``event_hash`` finds,
and ``quarterdeck verify`` reports every such store as not verifying (exit 2), never with a
traceback: a row ``event_hash`` cannot encode (bytes) has no link, so it does not verify."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from quarterdeck.core.journal import snapshot
from quarterdeck.core.journal.integrity import verify_run
from quarterdeck.core.journal.statuses import RunStatus
from quarterdeck.core.journal.store import GENESIS, Store, event_hash
from quarterdeck.core.journal.store_errors import StoreError
from quarterdeck.tui.launch import read_state
from tests.helpers import cli, run_workflow

FAILING = """\
name: tampered
stages:
  - id: build
    steps:
      - id: make
        uses: shell
        with: {run: "echo built"}
      - id: broken
        uses: shell
        with: {run: "false"}
"""

# every column of row 3 given another type; "untyped": in the events table rebuilt with no
# column types (SQLite then keeps an int stage an int, a NULL ts a NULL)
EDITS = {
    "stage bytes": "UPDATE events SET stage = CAST(stage AS BLOB) WHERE seq = 3",
    "type bytes": "UPDATE events SET type = CAST(type AS BLOB) WHERE seq = 3",
    "data bytes": "UPDATE events SET data = CAST(data AS BLOB) WHERE seq = 3",
    "ts bytes": "UPDATE events SET ts = X'00' WHERE seq = 3",
    "ts text": "UPDATE events SET ts = 'now' WHERE seq = 3",
    "ts inf": "UPDATE events SET ts = 9e999 WHERE seq = 3",
    "seq text": "UPDATE events SET seq = 'three' WHERE seq = 3",
    "seq bytes": "UPDATE events SET seq = X'03' WHERE seq = 3",
    "seq real": "UPDATE events SET seq = 3.5 WHERE seq = 3",
    "data control": "UPDATE events SET data = data || char(0) || char(7) WHERE seq = 3",
    "step null": "UPDATE events SET step = NULL WHERE seq = 3",
    "data a list": "UPDATE events SET data = '[]' WHERE seq = 3",
    "untyped stage int": "UPDATE events SET stage = 5 WHERE seq = 3",
    "untyped step real": "UPDATE events SET step = 2.5 WHERE seq = 3",
    "untyped type int": "UPDATE events SET type = 1 WHERE seq = 3",
    "untyped data int": "UPDATE events SET data = 7 WHERE seq = 3",
    "untyped data null": "UPDATE events SET data = NULL WHERE seq = 3",
    "untyped ts null": "UPDATE events SET ts = NULL WHERE seq = 3",
    "untyped ts text number": "UPDATE events SET ts = CAST(ts AS TEXT) WHERE seq = 3",
    "untyped seq text number": "UPDATE events SET seq = '3' WHERE seq = 3",
    "hash bytes": "UPDATE events SET hash = CAST(hash AS BLOB) WHERE seq = 3",
    "hash in capitals": "UPDATE events SET hash = upper(hash) WHERE seq = 3",
    "untyped hash int": "UPDATE events SET hash = 5 WHERE seq = 3",
    "vote a string": "UPDATE events SET type = 'approval.vote', data = '\"x\"' WHERE seq = 3",
    "vote a list": "UPDATE events SET type = 'approval.vote', data = '[]' WHERE seq = 3",
    "untyped vote an int": "UPDATE events SET type = 'approval.vote', data = 5 WHERE seq = 3",
}
UNTYPED = """
CREATE TABLE untyped (run_id, seq, ts, type, stage, step, data, hash,
                      PRIMARY KEY (run_id, seq)) WITHOUT ROWID;
INSERT INTO untyped SELECT run_id, seq, ts, type, stage, step, data, hash FROM events;
DROP TABLE events;
ALTER TABLE untyped RENAME TO events;
"""


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A real run that failed, its state snapshot kept (``verify`` checks it too)."""
    where = tmp_path_factory.mktemp("ran")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(snapshot, "MIN_EVENTS", 0)
        patch.setattr(snapshot, "KEPT_FOR", frozenset(RunStatus))
        done = run_workflow(where, FAILING)
    done.store.close()
    assert done.state.status == "failed"
    with Store(where / "qd.db") as store:
        assert snapshot.stored(store, done.state.id) is not None
        assert verify_run(store, done.state.id).ok
    return where / "qd.db", done.state.id


def tampered(ran: tuple[Path, str], tmp_path: Path, edit: str) -> Path:
    db = tmp_path / "qd.db"
    shutil.copy(ran[0], db)
    conn = sqlite3.connect(db)
    if edit.startswith("untyped"):
        conn.executescript(UNTYPED)
    conn.execute(EDITS[edit])
    conn.commit()
    conn.close()
    return db


def links_that_fail(rows: list[tuple[Any, ...]]) -> list[int]:
    """The rows whose stored hash is not ``event_hash``'s link (a row it cannot encode has
    none); by position, as ``verify_run`` reports them in order."""
    failed, prev = [], GENESIS
    for i, (*row, stored) in enumerate(rows):
        try:
            link: str | None = event_hash(prev, tuple(row))
        except TypeError:
            link = None
        if link != stored:
            failed.append(i)
        prev = stored
    return failed


@pytest.mark.parametrize("edit", EDITS)
def test_verify_finds_what_event_hash_finds(
    ran: tuple[Path, str], tmp_path: Path, edit: str
) -> None:
    db = tampered(ran, tmp_path, edit)
    with Store(db) as store:
        rows = store.raw_events(ran[1])
        problems = verify_run(store, ran[1], rows=rows, snapshot=False).problems
    mismatched = [
        i
        for i, row in enumerate(rows)
        if f"event {row[1]} ({row[3]}): hash mismatch — edited after it was journaled" in problems
    ]
    assert mismatched == links_that_fail(rows)
    assert sum("hash mismatch" in p for p in problems) == len(mismatched) >= 1


@pytest.mark.parametrize("edit", EDITS)
def test_the_cli_says_it_does_not_verify(ran: tuple[Path, str], tmp_path: Path, edit: str) -> None:
    db = tampered(ran, tmp_path, edit)
    done = cli("verify", ran[1], "--store", str(db))
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2, done.stderr
    assert "does NOT verify" in done.stderr


@pytest.mark.parametrize("json_out", [False, True], ids=["text", "json"])
@pytest.mark.parametrize("folded", [False, True], ids=["from its snapshot", "folded whole"])
@pytest.mark.parametrize("edit", EDITS)
def test_show_warns_or_says_what_it_cannot_read(
    ran: tuple[Path, str], tmp_path: Path, edit: str, folded: bool, json_out: bool
) -> None:
    """``show`` of an edited store: shown with the warning when its events still read, or
    else a message naming the run, the store and ``verify`` (exit 2), never a traceback;
    with its snapshot (the events after it folded) or without (every event folded)."""
    db = tampered(ran, tmp_path, edit)
    if folded:
        conn = sqlite3.connect(db)
        conn.execute("DELETE FROM snapshots")
        conn.commit()
        conn.close()
    done = cli("show", ran[1], "--store", str(db), *(["--json"] if json_out else []))
    assert "Traceback" not in done.stderr, done.stderr
    if done.returncode == 0:  # shown, with the warning that its journal was edited
        assert "quarterdeck verify" in done.stderr, done.stderr
    else:
        assert done.returncode == 2, done.stderr
        assert f"run {ran[1]}" in done.stderr and str(db) in done.stderr, done.stderr
        assert f"quarterdeck verify {ran[1]}" in done.stderr, done.stderr
        assert done.stdout == ""


@pytest.mark.parametrize("keep_log", [False, True], ids=["folded", "with its log"])
@pytest.mark.parametrize("edit", EDITS)
def test_a_viewer_s_read_says_the_store_or_reads(
    ran: tuple[Path, str], tmp_path: Path, edit: str, keep_log: bool
) -> None:
    """What the cockpit and ``resume`` read a run with: its state, or a StoreError naming the
    store (exit 2), not a TypeError or ValueError out of the fold."""
    db = tampered(ran, tmp_path, edit)
    conn = sqlite3.connect(db)
    conn.execute("DELETE FROM snapshots")  # every event folded
    conn.commit()
    conn.close()
    with Store(db, readonly=True) as store:
        try:
            state = read_state(store, ran[1], keep_log=keep_log)
        except StoreError as exc:
            assert str(db) in str(exc) and exc.exit_code == 2
        else:
            assert state.id == ran[1]
