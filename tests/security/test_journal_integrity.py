"""The journal is tamper-evident and private: hash-chained events, ``quarterdeck verify``,
a warning from ``show``, and state and reports readable by their owner only."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

from tests.helpers import cli, write_workflow

GATED = """\
name: gated
stages:
  - id: build
    persona: backend-engineer
    steps:
      - {id: compile, uses: shell, with: {run: "echo built"}}
  - id: publish
    persona: devops-engineer
    approval: {id: publish, allow_self_approval: true}
    steps:
      - {id: upload, uses: shell, with: {run: "echo uploaded"}}
"""


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_an_edited_or_removed_event_makes_verify_fail_and_show_warn(
    tmp_path: Path, isolated_home: Path
) -> None:
    wf = write_workflow(tmp_path, GATED)
    home = isolated_home / "fresh"  # a state dir Quarterdeck creates itself
    env = {"QUARTERDECK_HOME": str(home)}
    db = home / "quarterdeck.db"
    reports = tmp_path / "reports"
    ran = cli(
        "run", str(wf), "--headless", "--json", "--approve", "publish",
        "--report-dir", str(reports), env=env, cwd=tmp_path,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    run_id = json.loads(ran.stdout)["id"]

    ok = cli("verify", run_id, env=env)
    assert ok.returncode == 0 and "verified" in ok.stderr, ok.stderr
    shown = cli("show", run_id, env=env)
    assert shown.returncode == 0 and "does not verify" not in shown.stderr

    # owner-only state and reports
    assert _mode(home) == 0o700 and _mode(db) == 0o600
    assert _mode(home / "runs" / run_id) == 0o700
    assert all(_mode(p) == 0o600 for p in reports.iterdir())

    conn = sqlite3.connect(db)
    conn.execute(
        "UPDATE events SET data = replace(data, ?, ?) WHERE run_id = ? AND type = 'approval.vote'",
        ('"decision":"approved"', '"decision":"approved","note":"signed off by the CTO"', run_id),
    )
    conn.commit()
    bad = cli("verify", run_id, "--json", env=env)
    assert bad.returncode == 2, bad.stderr
    report = json.loads(bad.stdout)
    assert not report["ok"] and any("hash mismatch" in p for p in report["problems"])
    shown = cli("show", run_id, env=env)
    assert shown.returncode == 0
    assert f"warning: run {run_id} does not verify" in shown.stderr

    conn.execute("DELETE FROM events WHERE run_id = ? AND type = 'approval.vote'", (run_id,))
    conn.commit()
    conn.close()
    gone = cli("verify", run_id, env=env)
    assert gone.returncode == 2 and "missing" in gone.stderr, gone.stderr


def test_verify_an_unknown_run_is_a_usage_error(tmp_path: Path) -> None:
    proc = cli("verify", "nope", "--store", str(tmp_path / "qd.db"))
    assert proc.returncode == 2 and "no run 'nope'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_old_store_gains_the_chain_and_old_runs_say_they_cannot_be_verified(
    tmp_path: Path,
) -> None:
    from quarterdeck.core.journal.events import Event
    from quarterdeck.core.journal.integrity import verify_run
    from quarterdeck.core.journal.schema import MIGRATIONS
    from quarterdeck.core.journal.store import Store
    from quarterdeck.core.journal.store_errors import GuardedConnection

    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    for number, migration in enumerate(MIGRATIONS[:2]):  # the schema before the chain (v2)
        migration(GuardedConnection(conn, db))
        conn.execute(f"PRAGMA user_version = {number + 1}")
    conn.execute(
        "INSERT INTO events (run_id, seq, ts, type, stage, step, data)"
        " VALUES ('old', 1, 1.0, 'run.started', NULL, NULL, '{}')"
    )
    conn.commit()
    conn.close()
    with Store(db) as store:
        old = verify_run(store, "old")
        assert not old.ok and old.problems == [
            "recorded before the journal was hash-chained: it cannot be verified"
        ]
        store.append(Event("run.started", "new", None, None, {}, 1.0, 1))
        store.append_many([Event("run.finished", "new", None, None, {"status": "ok"}, 2.0, 2)])
        assert verify_run(store, "new").ok


RESUMED = """\
name: resumed
stages:
  - id: build
    steps:
      - {id: check, uses: shell, with: {run: "test -f ready"}}
"""


def _ran(tmp_path: Path, text: str, store: Path, *extra: str) -> tuple[str, int]:
    wf = write_workflow(tmp_path, text)
    ran = cli("run", str(wf), "--headless", "--json", "--store", str(store), *extra, cwd=tmp_path)
    return json.loads(ran.stdout)["id"], ran.returncode


def test_a_run_whose_last_events_were_removed_does_not_verify(tmp_path: Path) -> None:
    """The chain cannot see its end cut off (nothing follows to break): the row's ended
    status, committed with ``run.finished``, is what says the end is missing."""
    store = tmp_path / "qd.db"
    run_id, code = _ran(tmp_path, GATED, store, "--approve", "publish")
    assert code == 0
    assert cli("verify", run_id, "--store", str(store)).returncode == 0
    conn = sqlite3.connect(store)
    last = conn.execute("SELECT MAX(seq) FROM events WHERE run_id = ?", (run_id,)).fetchone()[0]
    conn.execute("DELETE FROM events WHERE run_id = ? AND seq >= ?", (run_id, last - 1))
    conn.commit()
    conn.close()
    cut = cli("verify", run_id, "--store", str(store))
    assert cut.returncode == 2, cut.stderr
    assert "the store says the run ended succeeded, but its journal stops at event" in cut.stderr
    assert "its last events were removed" in cut.stderr
    shown = cli("show", run_id, "--store", str(store))
    assert shown.returncode == 0 and "does not verify" in shown.stderr


def test_a_run_s_row_edited_to_another_end_does_not_verify(tmp_path: Path) -> None:
    store = tmp_path / "qd.db"
    run_id, code = _ran(tmp_path, RESUMED, store)
    assert code == 1  # failed: no `ready` file
    conn = sqlite3.connect(store)
    conn.execute("UPDATE runs SET status = 'succeeded' WHERE id = ?", (run_id,))
    conn.commit()
    conn.close()
    edited = cli("verify", run_id, "--store", str(store))
    assert edited.returncode == 2, edited.stderr
    assert "the store says the run ended succeeded, but its journal's end" in edited.stderr
    assert "says failed: the run's row was edited" in edited.stderr


def test_a_resumed_run_verifies_by_its_last_end(tmp_path: Path) -> None:
    store = tmp_path / "qd.db"
    run_id, code = _ran(tmp_path, RESUMED, store)
    assert code == 1
    assert cli("verify", run_id, "--store", str(store)).returncode == 0  # failed, and said so
    (tmp_path / "ready").write_text("")
    resumed = cli("resume", run_id, "--headless", "--store", str(store), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    done = cli("verify", run_id, "--store", str(store))
    assert done.returncode == 0, done.stderr
    assert "verified" in done.stderr
