"""Step processes die with their runner.

Every step process starts in its own process group (its own session) with a parent-death
signal (Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)``): when the runner dies, even by SIGKILL
or the OOM killer, the kernel kills the step's first process. What that process started
in the same group is found on ``resume`` instead: each group is journaled
(``step.process``), and :func:`reap` kills the groups of the previous owner's in-flight
steps before they run again. Only processes that carry the run's id in their environment
(``QUARTERDECK_RUN_ID``, set for every step) are ever killed, so a process group id the
system reused is left alone.

The parent-death signal reaches only the step's first process (a shell's children would
live on), so a tiny guard process holds the other end of a pipe from the runner and is told
each step's group as it starts and ends: when the runner dies, however it dies, the pipe
closes and the guard SIGKILLs the groups still in flight. The parent-death signal follows
the thread that started the process; the runner starts them from its event loop's thread,
which lives as long as the run.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING

from quarterdeck.core.journal.statuses import StepStatus

if TYPE_CHECKING:  # the journal's parts load with a run, not with `validate`
    from quarterdeck.core.journal.parts import StageState

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
REAP_WAIT_SECONDS = 5.0


@functools.cache
def _prctl() -> Callable[..., int] | None:
    """libc's ``prctl``, loaded on the first step process (None off Linux).

    glibc's soname is ``libc.so.6`` on every Linux it runs on; ``ctypes.util.find_library``
    would run ``ldconfig -p`` in a child process to find the same name.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    with contextlib.suppress(OSError):
        return ctypes.CDLL("libc.so.6", use_errno=True).prctl
    with contextlib.suppress(OSError):  # musl and others: the running process's own libc
        return ctypes.CDLL(None, use_errno=True).prctl
    return None


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` giving the child a parent-death SIGKILL (None off Linux)."""
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the runner died before the signal was armed
            os._exit(137)

    return preexec


# The guard: reads "+PGID"/"-PGID" lines; at end of input (its runner is gone) kills the rest.
_GUARD = """
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
groups = set()
for line in sys.stdin:
    line = line.strip()
    if line[1:].isdigit():
        (groups.add if line[0] == "+" else groups.discard)(int(line[1:]))
for group in groups:
    try:
        os.killpg(group, signal.SIGKILL)
    except OSError:
        pass
"""


class _Guard:
    """One guard process per runner process, started with the first step process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._pid = 0

    def _pipe(self) -> IO[bytes] | None:
        if self._proc is None or self._pid != os.getpid() or self._proc.poll() is not None:
            try:
                self._proc = subprocess.Popen(
                    [sys.executable, "-I", "-S", "-c", _GUARD],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            except OSError:
                log.warning("cannot start the process-group guard", exc_info=True)
                self._proc = None
                return None
            self._pid = os.getpid()
        return self._proc.stdin

    def tell(self, line: str) -> None:
        with self._lock:
            pipe = self._pipe()
            if pipe is None:
                return
            try:
                pipe.write(line.encode() + b"\n")
                pipe.flush()
            except OSError:
                log.warning("the process-group guard is gone", exc_info=True)
                self._proc = None


_guard = _Guard()


def guard(pgid: int) -> None:
    """Kill group ``pgid`` if this process dies before :func:`release` says it ended."""
    _guard.tell(f"+{pgid}")


def release(pgid: int) -> None:
    _guard.tell(f"-{pgid}")


def _members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid``."""
    out: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            out.append(int(entry.name))
    return out


def _carries(pid: int, run_id: str) -> bool:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"QUARTERDECK_RUN_ID={run_id}".encode() in environ


def reap(run_id: str, groups: Iterable[int], say: Callable[[str], None] | None = None) -> int:
    """SIGKILL what is left of ``groups`` that belongs to ``run_id``; wait until it is gone.

    Returns how many processes were found and killed.
    """
    killed = 0
    for pgid in sorted(set(groups)):
        members = [pid for pid in _members(pgid) if _carries(pid, run_id)]
        if not members:
            continue
        what = f"{len(members)} process(es) of group {pgid}, left running by its last owner"
        log.warning("run %s: killing %s", run_id, what)
        if say is not None:
            say(f"killed {what}")
        for pid in members:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        killed += len(members)
        deadline = time.monotonic() + REAP_WAIT_SECONDS
        while time.monotonic() < deadline and any(_carries(p, run_id) for p in _members(pgid)):
            time.sleep(0.02)
    return killed


def in_flight_groups(stages: Iterable[StageState]) -> list[int]:
    """The journaled process groups, on this host, of steps that had not finished."""
    host = socket.gethostname()
    return [
        pgid
        for stage in stages
        for step in stage.steps.values()
        if step.status == StepStatus.RUNNING
        for where, pgid in step.process_groups
        if where == host
    ]
