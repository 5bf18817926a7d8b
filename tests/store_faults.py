"""Faults to inflict on a real store: an interrupted run, a read-only copy, damaged pages.

Shared by the store tests and ``benchmarks/torture_store.py``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

SLOW = """\
name: slow
stages:
  - id: a
    steps:
      - id: one
        uses: shell
        with: {run: "echo one"}
      - id: long
        uses: shell
        needs: [one]
        with: {run: "sleep 300"}
"""


def start_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``quarterdeck ARGS`` in its own session (so a test can kill all it started)."""
    full = dict(os.environ)
    full.update(env or {})
    full.setdefault("CI", "true")
    return subprocess.Popen(
        [sys.executable, "-m", "quarterdeck.tui.cli", *args],
        cwd=str(cwd),
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for_event(store: Path, kind: str, step: str | None = None, limit: float = 60) -> str:
    """Poll the store (read-only) until an event of ``kind`` appears; returns its run id."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if store.exists():
            try:
                conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
                try:
                    row = conn.execute(
                        "SELECT run_id FROM events WHERE type = ? AND (? IS NULL OR step = ?)",
                        (kind, step, step),
                    ).fetchone()
                finally:
                    conn.close()
            except sqlite3.Error:
                row = None
            if row:
                return str(row[0])
        time.sleep(0.05)
    raise AssertionError(f"no {kind} event in {store} within {limit}s")


def interrupted_store(folder: Path) -> tuple[Path, str]:
    """A store holding a run whose runner was SIGKILLed mid-step (its row says running)."""
    folder.mkdir(parents=True, exist_ok=True)
    wf = folder / "slow.yaml"
    wf.write_text(SLOW)
    store = folder / "qd.db"
    proc = start_cli("run", str(wf), "--store", str(store), "--headless", cwd=folder)
    try:
        run_id = wait_for_event(store, "step.started", "long")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    kill_marked(run_id)
    return store, run_id


def kill_marked(run_id: str) -> int:
    """SIGKILL every process whose environment names ``run_id``; returns how many."""
    killed = 0
    for pid in marked(run_id):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
            killed += 1
    return killed


def marked(run_id: str) -> list[int]:
    """Live processes started for ``run_id`` (steps carry QUARTERDECK_RUN_ID)."""
    needle = f"QUARTERDECK_RUN_ID={run_id}".encode()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                stat = (entry / "stat").read_text()
                if stat.rsplit(")", 1)[1].split()[0] != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """``folder`` made really read-only: a read-only bind mount as root, else permissions.

    Root ignores permission bits, so only a mount proves that nothing writes.
    """
    if os.geteuid() == 0:
        target = folder.parent / (folder.name + "-ro")
        target.mkdir()
        subprocess.run(["mount", "--bind", str(folder), str(target)], check=True)
        try:
            subprocess.run(["mount", "-o", "remount,ro,bind", str(target)], check=True)
            yield target
        finally:
            subprocess.run(["umount", str(target)], check=False)
            target.rmdir()
        return
    modes = {p: p.stat().st_mode for p in [folder, *folder.iterdir()]}
    for path in modes:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        yield folder
    finally:
        for path, mode in modes.items():
            path.chmod(mode)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def damage(store: Path, *, first_page: int = 1, pages: int = 8) -> None:
    """Checkpoint the WAL into the file, then write garbage over ``pages`` pages of it."""
    conn = sqlite3.connect(store)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with open(store, "r+b") as fh:
        fh.seek(size * first_page)
        fh.write(b"\xa5\x5a" * (size * pages // 2))


def copy_store(store: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for path in store.parent.glob(store.name + "*"):
        shutil.copy2(path, folder / path.name)
    return folder / store.name
