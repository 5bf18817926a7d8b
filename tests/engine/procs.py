"""Real ``quarterdeck`` processes on a real store, for the journal fault tests.

Steps record their side effects by appending a line to ``effects.txt`` in the workdir, so
a test counts how often each one really ran; the store is read through a separate
read-only connection, as another process would.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def effect(name: str, then: str = "") -> str:
    """A shell step body: record ``name`` in effects.txt, then run ``then``."""
    return f"echo {name} >> effects.txt" + (f"; {then}" if then else "")


def start(
    tmp: Path, *args: str, env: dict[str, str] | None = None, tag: str = "run"
) -> subprocess.Popen[str]:
    """``quarterdeck ARGS --headless --store tmp/qd.db`` in ``tmp``; output to files."""
    full = dict(os.environ)
    full.update(env or {})
    out = (tmp / f"{tag}.out").open("w")
    err = (tmp / f"{tag}.err").open("w")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "quarterdeck.tui.cli",
            *args,
            "--headless",
            "--store",
            str(tmp / "qd.db"),
        ],
        cwd=str(tmp),
        stdout=out,
        stderr=err,
        text=True,
        env=full,
    )


def finish(proc: subprocess.Popen[str], tmp: Path, tag: str = "run") -> tuple[int, str]:
    """Wait for a process (bounded); its exit code and stderr."""
    code = proc.wait(timeout=120)
    return code, (tmp / f"{tag}.err").read_text()


def wait_for(what: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Poll until ``what()`` is truthy (bounded, so a broken runner fails the test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = what()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def query(tmp: Path, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    db = tmp / "qd.db"
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError:  # not created yet
        return []
    finally:
        conn.close()


def run_id(tmp: Path) -> str | None:
    rows = query(tmp, "SELECT id FROM runs ORDER BY started_at DESC LIMIT 1")
    return rows[0][0] if rows else None


def events(tmp: Path) -> list[tuple[int, str, str | None]]:
    """Every journaled (seq, type, step) of the newest run."""
    rid = run_id(tmp)
    return [
        (r[0], r[1], r[2])
        for r in query(
            tmp, "SELECT seq, type, step FROM events WHERE run_id = ? ORDER BY seq", (rid,)
        )
    ]


def has_event(tmp: Path, type_: str, step: str | None = None) -> bool:
    return any(t == type_ and (step is None or s == step) for _, t, s in events(tmp))


def effects(tmp: Path) -> list[str]:
    path = tmp / "effects.txt"
    return path.read_text().split() if path.exists() else []


def no_gaps(tmp: Path) -> bool:
    seqs = [e[0] for e in events(tmp)]
    return seqs == list(range(1, len(seqs) + 1))


def row_status(tmp: Path) -> str | None:
    rows = query(tmp, "SELECT status FROM runs ORDER BY started_at DESC LIMIT 1")
    return rows[0][0] if rows else None


def held_until_go(name: str) -> str:
    """Two steps: ``first`` records its effect, touches ``ready`` and holds until a file
    ``go`` appears; ``second`` needs it. Faults are injected while ``first`` holds."""
    return f"name: {name}\n" + _HELD_STEPS


_HELD_STEPS = """\
stages:
  - id: s
    steps:
      - id: first
        uses: shell
        with: {shell: true, run: "echo first >> effects.txt; touch ready; while [ ! -f go ]; do sleep 0.05; done"}
      - id: second
        needs: [first]
        uses: shell
        with: {shell: true, run: "echo second >> effects.txt"}
"""
