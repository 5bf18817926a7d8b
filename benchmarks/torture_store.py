"""Torture the store and the runner's process handling; print what broke, per scenario.

Scenarios (each trial a real CLI process, real SQLite, real signals):

- ``sighup``, ``sigterm``, ``sigint`` and ``double-*``: stop signals during a step whose
  shell has a child; expects exit 130, ``run.interrupted`` last, no process left.
- ``sigterm-storm``: SIGTERM every 5 ms until the process exits; expects 130.
- ``kill-runner``: SIGKILL of the runner alone (as the OOM killer would) during a step;
  counts the run's processes still alive after ``--orphan-wait`` seconds, then resumes and
  counts those still alive when the step runs again (must be 0).
- ``read-only``: ``runs``/``show`` on a read-only copy of a store holding a crashed run
  (a read-only bind mount as root, permissions otherwise) must work and write nothing;
  ``run``/``resume``/``approve`` must exit 2 naming the store.
- ``damaged``: garbage over 1-4 random pages of a real store; ``runs``, ``show``, ``run``,
  ``approve`` and ``cancel`` exit 0 (the damage missed what they read) or 2, never a
  traceback. (``resume`` on a damaged store is in tests/test_store_failures.py.)
- ``journal-deleted``/``journal-replaced``: the journal file goes away mid-run; the run
  must not end ``succeeded`` (exit 2 or 130) and must say so.

Columns: trials, tracebacks (in any stderr), orphans (processes of the run alive when
they should not be), wrong exits (not the contract's code), stuck (a process that did not
exit, or a journal not ending in run.interrupted/run.finished).

    .venv/bin/python benchmarks/torture_store.py [--trials 5] [--only sighup,damaged]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.store_faults import (
    copy_store,
    interrupted_store,
    kill_marked,
    marked,
    read_only,
    snapshot,
    start_cli,
    wait_for_event,
)

NESTED = """\
name: nested
stages:
  - id: a
    steps:
      - id: long
        uses: shell
        with: {run: "sleep 300; echo done", shell: true}
"""

TWO_STEPS = """\
name: twostep
stages:
  - id: a
    steps:
      - id: one
        uses: shell
        with: {run: "sleep 1"}
      - id: two
        uses: shell
        needs: [one]
        with: {run: "echo two"}
"""

TINY = (
    "name: t\nstages:\n  - id: s\n    steps:\n      - {id: a, uses: shell, with: {run: 'true'}}\n"
)
EXIT_LIMIT = 60.0


@dataclass
class Tally:
    name: str
    trials: int = 0
    tracebacks: int = 0
    orphans: int = 0
    wrong_exits: int = 0
    stuck: int = 0
    notes: list[str] = field(default_factory=list)

    def add_stderr(self, text: str) -> None:
        if "Traceback" in text or "Exception ignored" in text:
            self.tracebacks += 1
            self.notes.append(text.strip().splitlines()[-1][:160])

    def row(self) -> str:
        return (
            f"{self.name:<18} {self.trials:>6} {self.tracebacks:>10} {self.orphans:>7} "
            f"{self.wrong_exits:>11} {self.stuck:>5}"
        )


def _journal(store: Path, run_id: str) -> list[tuple[str, dict[str, object]]]:
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT type, data FROM events WHERE run_id = ? ORDER BY seq", (run_id,)
        ).fetchall()
    finally:
        conn.close()
    return [(r[0], json.loads(r[1])) for r in rows]


def _finish(proc: os.PathLike[str] | object, tally: Tally) -> tuple[int | None, str]:
    import subprocess

    assert isinstance(proc, subprocess.Popen)
    try:
        _out, err = proc.communicate(timeout=EXIT_LIMIT)
    except subprocess.TimeoutExpired:
        tally.stuck += 1
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        _out, err = proc.communicate()
        return None, err
    tally.add_stderr(err)
    return proc.returncode, err


def _started(proc: object, store: Path, kind: str, step: str) -> str:
    """Wait for the run to reach ``kind``; kill its process group if it never does."""
    import subprocess

    assert isinstance(proc, subprocess.Popen)
    try:
        return wait_for_event(store, kind, step)
    except AssertionError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        _out, err = proc.communicate()
        raise AssertionError(f"{kind} never came: {err.strip()[-200:]}") from None


def _orphans_after(run_id: str, wait: float) -> int:
    time.sleep(wait)
    left = len(marked(run_id))
    kill_marked(run_id)
    return left


def stop_signals(names: list[str], storm: bool = False) -> Callable[[Path, Tally, float], None]:
    def trial(work: Path, tally: Tally, orphan_wait: float) -> None:
        wf = work / "nested.yaml"
        wf.write_text(NESTED)
        store = work / "qd.db"
        proc = start_cli("run", str(wf), "--store", str(store), "--headless", cwd=work)
        run_id = _started(proc, store, "step.process", "long")
        time.sleep(random.uniform(0, 0.3))
        if storm:
            while proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
                time.sleep(0.005)
        else:
            for name in names:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(getattr(signal, name))
                time.sleep(random.uniform(0, 0.05))
        code, err = _finish(proc, tally)
        if code is not None and code != 130:
            tally.wrong_exits += 1
            tally.notes.append(f"exit {code}: {err.strip()[-120:]}")
        if not _journal(store, run_id) or _journal(store, run_id)[-1][0] != "run.interrupted":
            tally.stuck += 1
        tally.orphans += _orphans_after(run_id, orphan_wait)

    return trial


def kill_runner(work: Path, tally: Tally, orphan_wait: float) -> None:
    wf = work / "nested.yaml"
    wf.write_text(NESTED)
    store = work / "qd.db"
    proc = start_cli("run", str(wf), "--store", str(store), "--headless", cwd=work)
    run_id = _started(proc, store, "step.process", "long")
    time.sleep(0.2 + random.uniform(0, 0.3))
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=EXIT_LIMIT)
    time.sleep(orphan_wait)
    left = set(marked(run_id))
    again = start_cli("resume", run_id, "--store", str(store), "--headless", cwd=work)
    deadline = time.monotonic() + EXIT_LIMIT
    while time.monotonic() < deadline:
        groups = [d for t, d in _journal(store, run_id) if t == "step.process"]
        if len(groups) >= 2:
            break
        time.sleep(0.02)
    else:
        tally.stuck += 1
    survivors = left & set(marked(run_id))  # the first owner's, alive beside the re-run
    tally.orphans += len(survivors)
    tally.notes.append(
        f"alive {orphan_wait}s after the kill: {len(left)}; at re-run: {len(survivors)}"
    )
    again.send_signal(signal.SIGTERM)
    code, _err = _finish(again, tally)
    if code != 130:
        tally.wrong_exits += 1
    kill_marked(run_id)


def _crashed(work: Path) -> tuple[Path, str]:
    store, run_id = interrupted_store(work / "crashed")
    return store, run_id


def read_only_store(work: Path, tally: Tally, orphan_wait: float) -> None:
    store, run_id = _crashed(work)
    copy = copy_store(store, work / "copy")
    (work / "tiny.yaml").write_text(TINY)
    before = snapshot(copy.parent)
    import subprocess

    with read_only(copy.parent) as folder:
        path = str(folder / copy.name)
        for args, want in (
            (("runs",), 0),
            (("show", run_id), 0),
            (("run", str(work / "tiny.yaml")), 2),
            (("resume", run_id), 2),
            (("approve", run_id, "gate"), 2),
        ):
            proc = subprocess.run(
                [sys.executable, "-m", "quarterdeck.tui.cli", *args, "--store", path],
                capture_output=True,
                text=True,
                timeout=EXIT_LIMIT,
                check=False,
                env={**os.environ, "CI": "true"},
            )
            tally.add_stderr(proc.stderr)
            if proc.returncode != want:
                tally.wrong_exits += 1
                tally.notes.append(f"{args[0]}: exit {proc.returncode}, wanted {want}")
    if snapshot(copy.parent) != before:
        tally.notes.append("the read-only copy changed")
        tally.wrong_exits += 1


def damaged_store(work: Path, tally: Tally, orphan_wait: float) -> None:
    import subprocess

    store, run_id = _crashed(work)
    copy = copy_store(store, work / "copy")
    conn = sqlite3.connect(copy)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size, count = (
        conn.execute("PRAGMA page_size").fetchone()[0],
        conn.execute("PRAGMA page_count").fetchone()[0],
    )
    conn.close()
    pages = random.sample(range(1, count), k=max(1, min(count - 1, random.randint(1, 4))))
    with open(copy, "r+b") as fh:
        for page in pages:
            fh.seek(page * size)
            fh.write(os.urandom(size))
    (work / "tiny.yaml").write_text(TINY)
    codes = []
    for args in (
        ("runs",),
        ("show", run_id),
        ("run", str(work / "tiny.yaml")),
        ("approve", run_id, "gate"),
        ("cancel", run_id),
    ):  # not resume: on pages it never reads, it would rightly run the 300 s step
        proc = subprocess.run(
            [sys.executable, "-m", "quarterdeck.tui.cli", *args, "--store", str(copy)],
            capture_output=True,
            text=True,
            timeout=EXIT_LIMIT,
            check=False,
            env={**os.environ, "CI": "true"},
        )
        tally.add_stderr(proc.stderr)
        codes.append(proc.returncode)
        if proc.returncode not in (0, 2):
            tally.wrong_exits += 1
            tally.notes.append(f"{args[0]} on pages {pages}: exit {proc.returncode}")
    kill_marked(run_id)
    tally.notes.append(f"pages {sorted(pages)} of {count}: exits {codes}")


def journal_gone(replace: bool) -> Callable[[Path, Tally, float], None]:
    def trial(work: Path, tally: Tally, orphan_wait: float) -> None:
        wf = work / "two.yaml"
        wf.write_text(TWO_STEPS)
        store = work / "qd.db"
        proc = start_cli("run", str(wf), "--store", str(store), "--headless", cwd=work)
        _started(proc, store, "step.started", "one")
        for path in work.glob("qd.db*"):
            path.unlink()
        if replace:
            conn = sqlite3.connect(store)
            conn.execute("CREATE TABLE other (x)")
            conn.commit()
            conn.close()
        code, err = _finish(proc, tally)
        if code not in (2, 130):
            tally.wrong_exits += 1
            tally.notes.append(f"exit {code}")
        if "the store" not in err or ("replaced" if replace else "deleted") not in err:
            tally.notes.append("no message naming the store")
            tally.wrong_exits += 1

    return trial


SCENARIOS: dict[str, Callable[[Path, Tally, float], None]] = {
    "sighup": stop_signals(["SIGHUP"]),
    "sigterm": stop_signals(["SIGTERM"]),
    "sigint": stop_signals(["SIGINT"]),
    "double-sighup": stop_signals(["SIGHUP", "SIGHUP"]),
    "double-sigterm": stop_signals(["SIGTERM", "SIGTERM"]),
    "double-sigint": stop_signals(["SIGINT", "SIGINT"]),
    "sigterm-storm": stop_signals([], storm=True),
    "kill-runner": kill_runner,
    "read-only": read_only_store,
    "damaged": damaged_store,
    "journal-deleted": journal_gone(replace=False),
    "journal-replaced": journal_gone(replace=True),
}


def run_scenario(name: str, trials: int, orphan_wait: float = 1.0) -> Tally:
    tally = Tally(name)
    scenario = SCENARIOS[name]
    for _ in range(trials):
        work = Path(tempfile.mkdtemp(prefix=f"qd-torture-{name}-"))
        home = work / "home"
        old = os.environ.get("QUARTERDECK_HOME")
        os.environ["QUARTERDECK_HOME"] = str(home)
        try:
            scenario(work, tally, orphan_wait)
        except AssertionError as exc:  # the run never got where the scenario strikes
            tally.stuck += 1
            tally.notes.append(f"did not start: {exc}")
        finally:
            if old is None:
                os.environ.pop("QUARTERDECK_HOME", None)
            else:
                os.environ["QUARTERDECK_HOME"] = old
            shutil.rmtree(work, ignore_errors=True)
        tally.trials += 1
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--orphan-wait", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    random.seed(args.seed)
    names = [n for n in args.only.split(",") if n] or list(SCENARIOS)
    print(f"{'scenario':<18} trials tracebacks orphans wrong exits stuck")
    for name in names:
        tally = run_scenario(name, args.trials, args.orphan_wait)
        print(tally.row(), flush=True)
        for note in dict.fromkeys(tally.notes):
            print(f"    {note}")


if __name__ == "__main__":
    main()
