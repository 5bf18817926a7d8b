"""One runner per run: a claim is a compare-and-swap, a second resumer is refused (exit 2).

The store tests drive :meth:`Store.claim_run` on a real SQLite file from two connections;
the CLI test kills a run and starts three ``resume`` processes at once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from quarterdeck.core.errors import InvalidInput
from quarterdeck.core.journal.store import Store
from tests.engine.procs import effects, finish, held_until_go, no_gaps, run_id, start, wait_for
from tests.helpers import bare_run, write_workflow


def test_a_live_owner_on_this_host_keeps_its_run(tmp_path: Path) -> None:
    child = subprocess.Popen(["sleep", "60"])
    try:
        with Store(tmp_path / "qd.db") as a, Store(tmp_path / "qd.db") as b:
            bare_run(a, owner="first")
            a.conn.execute("UPDATE runs SET pid = ? WHERE id = 'r1'", (child.pid,))
            with pytest.raises(InvalidInput, match="already being run by pid"):
                b.claim_run("r1", "second")
            child.kill()
            child.wait()
            b.claim_run("r1", "second")  # its owner died: taken over
            assert a.owner_of("r1") == "second"
    finally:
        child.kill()


def test_another_hosts_run_is_taken_over_only_when_its_lease_expired(tmp_path: Path) -> None:
    with Store(tmp_path / "qd.db") as a, Store(tmp_path / "qd.db") as b:
        bare_run(a, owner="first")
        a.conn.execute(
            "UPDATE runs SET host = 'elsewhere', pid = 1, lease_until = ? WHERE id = 'r1'",
            (time.time() + 60,),
        )
        with pytest.raises(InvalidInput, match="on elsewhere"):
            b.claim_run("r1", "second")
        a.conn.execute("UPDATE runs SET lease_until = ? WHERE id = 'r1'", (time.time() - 1,))
        b.claim_run("r1", "second")
        row = b.get_run("r1")
        assert (row.host, row.pid) == (socket.gethostname(), os.getpid())


def test_a_finished_run_is_not_claimed(tmp_path: Path) -> None:
    with Store(tmp_path / "qd.db") as store:
        bare_run(store, owner="first")
        store.conn.execute("UPDATE runs SET status = 'succeeded' WHERE id = 'r1'")
        with pytest.raises(InvalidInput, match="nothing to resume"):
            store.claim_run("r1", "second")


def test_a_lost_lease_renewal_says_so(tmp_path: Path) -> None:
    with Store(tmp_path / "qd.db") as store:
        bare_run(store, owner="first")
        assert store.heartbeat("r1", "first")
        store.conn.execute("UPDATE runs SET owner = 'thief' WHERE id = 'r1'")
        assert not store.heartbeat("r1", "first")


def test_of_three_concurrent_resumers_exactly_one_runs(tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        held_until_go("contested"),
    )
    proc = start(tmp_path, "run", str(wf))
    wait_for(lambda: (tmp_path / "ready").exists())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (tmp_path / "ready").unlink()
    rid = str(run_id(tmp_path))
    resumers = [start(tmp_path, "resume", rid, tag=f"resume{i}") for i in range(3)]
    wait_for(lambda: sum(p.poll() is not None for p in resumers) == 2)  # the losers give up
    (tmp_path / "go").touch()
    results = [finish(p, tmp_path, f"resume{i}") for i, p in enumerate(resumers)]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2, 2], results
    for code, err in results:
        assert "Traceback" not in err
        if code == 2:
            assert "already being run" in err or "still running" in err, err
    assert effects(tmp_path) == ["first", "first", "second"]  # the in-flight step: once more
    assert no_gaps(tmp_path)
