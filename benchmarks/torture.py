"""Torture the journal: kill, contest, lock and starve real ``quarterdeck`` runs on purpose.

Every trial runs real ``quarterdeck run --headless`` / ``resume`` subprocesses on a fresh
SQLite store. Steps record their side effects (``start:ID`` / ``end:ID`` lines) in
``effects.txt``, so the script can count what the journal promises never happens:

- re-run: a step the journal had finished when the run was killed started again;
- gaps: the journal's sequence numbers are not 1..N;
- double: a step's effect happened twice, beyond the kills that caught it in flight;
- bad end: a run ended ``succeeded`` with a step not finished;
- stuck: a run that did not reach an end within the bounds (resumes, time);
- tracebacks: any process printed one.

Scenarios: ``kill`` (random SIGKILL points over a generated ~30-step workflow),
``waiting`` (kills while waiting on an approval gate, a pause, a retry backoff, an
approval timeout, a ``wait``), ``resumers`` (2-3 concurrent ``resume``, 0-300 ms apart),
``lock`` (another process holds the write lock past the writer's retries), ``disk-full``
(the store on a tiny tmpfs that fills up; needs root, skipped with the reason otherwise).

    .venv/bin/python benchmarks/torture.py [--trials 200] [--scenarios kill,lock] [--seed N]

``--trials`` is the number of ``kill`` trials; other scenarios run ``--others`` trials each.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PY = sys.executable
DONE = ("succeeded", "skipped")
TIMEOUT = 120.0


@dataclass(frozen=True)
class Pace:
    """How long the scenarios' workflows take: the full run's, or the quick subset's
    (``--quick``, the normal suite) that keeps every scenario and wait kind, shorter."""

    kill_steps: int = 30  # steps of the generated workflow the kill trials run
    wait: float = 3.0  # the `wait` step's duration (the kill lets it pass while dead)
    gate_timeout: float = 2.0  # the approval timeout that passes while dead
    backoff: float = 0.5  # the retry backoff a kill lands in


FULL = Pace()
QUICK = Pace(kill_steps=12, wait=1.2, gate_timeout=1.5, backoff=0.3)
PACE = FULL


@dataclass
class Tally:
    trials: int = 0
    rerun: int = 0
    gaps: int = 0
    double: int = 0
    bad_end: int = 0
    stuck: int = 0
    tracebacks: int = 0
    ok: int = 0  # the scenario's own promise held (see each scenario)
    locked: int = 0  # "database is locked" printed by any process
    seconds: float = 0.0
    skipped: str = ""
    notes: list[str] = field(default_factory=list)


# -- workflows -----------------------------------------------------------------------------


def effect(sid: str, body: str = "") -> str:
    return f"echo start:{sid} >> effects.txt; {body}echo end:{sid} >> effects.txt"


def generate(rng: random.Random, steps: int = 30, stages: int = 3) -> tuple[str, set[str]]:
    """A workflow of ``steps`` steps over ``stages`` stages with random DAGs: plain steps,
    ``continue_on_error`` failures, retried flaky steps, waits; the ids that record effects."""
    lines = ["name: torture", "concurrency: 4", "stages:"]
    recorded: set[str] = set()
    per = steps // stages
    for st in range(stages):
        lines += [f"  - id: st{st}", "    steps:"]
        ids: list[str] = []
        for i in range(per):
            sid = f"s{st}_{i}"
            needs = rng.sample(ids, k=min(len(ids), rng.choice([0, 1, 1, 2])))
            kind = rng.choices(["plain", "coe", "retry", "wait"], [70, 10, 12, 8])[0]
            nap = f"sleep {rng.choice(['0', '0.02', '0.05', '0.1', '0.2'])}; "
            lines.append(f"      - id: {sid}")
            if needs:
                lines.append(f"        needs: [{', '.join(needs)}]")
            if kind == "wait":
                lines += ["        uses: wait", "        with: {duration: 0.2}"]
            else:
                recorded.add(sid)
                run = effect(sid, nap)
                if kind == "coe":
                    run += "; exit 1"
                    lines.append("        continue_on_error: true")
                if kind == "retry":  # fails its first attempt (across resumes), then works
                    run = (
                        f"n=$(cat c_{sid} 2>/dev/null || echo 0); echo $((n+1)) > c_{sid}; "
                        f'[ "$n" -ge 1 ] || exit 1; ' + run
                    )
                    lines.append(
                        "        retry: {max_attempts: 3, backoff: constant, initial_delay: 0.1}"
                    )
                lines += [
                    "        uses: shell",
                    f"        with: {{shell: true, run: {json.dumps(run)}}}",
                ]
            ids.append(sid)
    return "\n".join(lines) + "\n", recorded


# -- processes and the journal --------------------------------------------------------------


class Trial:
    """One trial's directory, store, processes and what they printed."""

    def __init__(self, root: Path, n: int, store_dir: Path | None = None) -> None:
        self.dir = root / f"t{n}"
        self.dir.mkdir()
        self.db = (store_dir or self.dir) / "qd.db"
        # `approve/pause --as ops` decide as a name, not as a signed identity: this script
        # tortures the journal, not the approvers' proof (tests/conftest.py does the same)
        self.env = {
            **os.environ,
            "QUARTERDECK_HOME": str(self.dir / "home"),
            "QUARTERDECK_UNVERIFIED_NAMES": "1",
        }
        self.errs: list[str] = []
        self.count = 0

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        self.count += 1
        err = (self.dir / f"p{self.count}.err").open("w")
        return subprocess.Popen(
            [PY, "-m", "quarterdeck.tui.cli", *args, "--headless", "--store", str(self.db)],
            cwd=self.dir,
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
            env={**self.env, **(env or {})},
        )

    def cli(self, *args: str) -> int:
        return subprocess.run(
            [PY, "-m", "quarterdeck.tui.cli", *args, "--store", str(self.db), "--as", "ops"],
            cwd=self.dir,
            capture_output=True,
            env=self.env,
            timeout=TIMEOUT,
            check=False,
        ).returncode

    def wait(self, proc: subprocess.Popen[str], timeout: float = TIMEOUT) -> int | None:
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return None

    def stderr(self) -> str:
        return "".join(p.read_text() for p in sorted(self.dir.glob("p*.err")))

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if not self.db.exists():
            return []
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.Error:
            return []
        finally:
            conn.close()

    def run_id(self) -> str | None:
        rows = self.query("SELECT id FROM runs LIMIT 1")
        return rows[0][0] if rows else None

    def status(self) -> str | None:
        rows = self.query("SELECT status FROM runs LIMIT 1")
        return rows[0][0] if rows else None

    def events(self) -> list[tuple[int, str, str | None, dict[str, Any]]]:
        return [
            (r[0], r[1], r[2], json.loads(r[3]))
            for r in self.query("SELECT seq, type, step, data FROM events ORDER BY seq")
        ]

    def has(self, type_: str, step: str | None = None) -> bool:
        return any(t == type_ and (step is None or s == step) for _, t, s, _ in self.events())

    def steps(self) -> dict[str, str]:
        """Each step's journaled status: succeeded/skipped/continued/failed/running."""
        out: dict[str, str] = {}
        for _, type_, step, data in self.events():
            if step is None:
                continue
            if type_ == "step.started":
                out[step] = "running"
            elif type_ == "step.skipped":
                out[step] = "skipped"
            elif type_ == "step.finished":
                status = data.get("status", "failed")
                out[step] = "continued" if data.get("continue_on_error") else status
        return out

    def mark(self) -> None:
        with (self.dir / "effects.txt").open("a") as fh:
            fh.write("RESUME\n")

    def segments(self) -> list[list[str]]:
        path = self.dir / "effects.txt"
        text = path.read_text() if path.exists() else ""
        out: list[list[str]] = [[]]
        for line in text.split():
            if line == "RESUME":
                out.append([])
            else:
                out[-1].append(line)
        return out

    def gapless(self) -> bool:
        seqs = [e[0] for e in self.events()]
        return seqs == list(range(1, len(seqs) + 1))

    def until(self, what: Callable[[], Any], timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if what():
                return True
            time.sleep(0.03)
        return False


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def settle(trial: Trial, tally: Tally, code: int | None, limit: int = 4) -> int | None:
    """Resume an interrupted run until it ends (bounded); a run that cannot is stuck."""
    for _ in range(limit):
        if code is None:
            break
        status = trial.status()
        if status not in ("interrupted", "running"):
            return code
        trial.mark()
        code = trial.wait(trial.start("resume", str(trial.run_id())))
    tally.stuck += 1
    return code


def judge(
    trial: Trial,
    tally: Tally,
    done_at_kills: list[set[str]],
    inflight: list[set[str]],
    recorded: set[str],
) -> None:
    """Count the broken promises of one finished trial."""
    tally.trials += 1
    segs = trial.segments()
    for i, seg in enumerate(segs[1:]):
        done = done_at_kills[i] if i < len(done_at_kills) else set()
        tally.rerun += sum(1 for line in seg if line.startswith("start:") and line[6:] in done)
    ends: dict[str, int] = {}
    for seg in segs:
        for line in seg:
            if line.startswith("end:"):
                ends[line[4:]] = ends.get(line[4:], 0) + 1
    for sid, n in ends.items():
        allowed = 1 + sum(1 for caught in inflight if sid in caught)
        tally.double += max(0, n - allowed)
    if not trial.gapless():
        tally.gaps += 1
    if trial.status() == "succeeded":
        steps = trial.steps()
        if any(steps.get(sid) not in (*DONE, "continued") for sid in recorded):
            tally.bad_end += 1
    if "Traceback" in trial.stderr():
        tally.tracebacks += 1


def snapshot(trial: Trial) -> tuple[set[str], set[str]]:
    steps = trial.steps()
    done = {s for s, st in steps.items() if st in (*DONE, "continued")}
    return done, {s for s, st in steps.items() if st == "running"}


# -- scenarios -----------------------------------------------------------------------------


def s_kill(root: Path, n: int, rng: random.Random, tally: Tally) -> None:
    """SIGKILL the runner at 1-2 random points, resume after each; ok = it succeeded."""
    trial = Trial(root, n)
    text, recorded = generate(rng, steps=PACE.kill_steps)
    (trial.dir / "wf.yaml").write_text(text)
    proc = trial.start("run", "wf.yaml")
    done_at, inflight = [], []
    for _ in range(rng.choice([1, 1, 2])):
        if trial.wait(proc, rng.uniform(0.3, 3.5 * PACE.kill_steps / 30)) is not None:
            break
        kill(proc)
        done, running = snapshot(trial)
        done_at.append(done)
        inflight.append(running | _unjournaled(trial, done))
        trial.mark()
        if trial.run_id() is None:  # killed before the run existed: start it again
            proc = trial.start("run", "wf.yaml")
        else:
            proc = trial.start("resume", str(trial.run_id()))
    code = settle(trial, tally, trial.wait(proc))
    judge(trial, tally, done_at, inflight, recorded)
    # killed as it was exiting after success: the resume rightly says "nothing to resume"
    finished = code == 2 and "nothing to resume" in trial.stderr()
    ok = (code == 0 or finished) and trial.status() == "succeeded"
    tally.ok += ok
    if not ok:
        last = trial.stderr().strip().splitlines()[-3:]
        tally.notes.append(f"kill trial {n}: exit {code}, {trial.status()}: {' | '.join(last)}")


def _unjournaled(trial: Trial, done: set[str]) -> set[str]:
    """Steps whose effect ended but whose finish was not committed when the runner died:
    in flight as far as the journal knows (they may run again)."""
    ended = {line[4:] for seg in trial.segments() for line in seg if line.startswith("end:")}
    return ended - done


GATED = """\
name: waiting
stages:
  - id: one
    steps:
      - id: a
        uses: shell
        with: {shell: true, run: "echo start:a >> effects.txt; echo end:a >> effects.txt"}
  - id: two
    approval: {id: ship, allow_self_approval: true%s}
    steps:
      - id: b
        uses: shell
        with: {shell: true, run: "echo start:b >> effects.txt; echo end:b >> effects.txt"}
"""

HELD = """\
name: held
stages:
  - id: one
    steps:
      - id: a
        uses: shell
        with:
          shell: true
          run: >-
            echo start:a >> effects.txt; touch ready;
            while [ ! -f go ]; do sleep 0.05; done; echo end:a >> effects.txt
      - id: b
        needs: [a]
        uses: shell
        with: {shell: true, run: "echo start:b >> effects.txt; echo end:b >> effects.txt"}
"""

BACKOFF = """\
name: backoff
stages:
  - id: one
    steps:
      - id: up
        uses: shell
        retry: {max_attempts: 3, backoff: constant, initial_delay: %s}
        with: {shell: true, run: "echo start:up >> effects.txt; exit 1"}
"""

WAIT = """\
name: waits
stages:
  - id: one
    steps:
      - id: w
        uses: wait
        with: {duration: %s}
      - id: b
        needs: [w]
        uses: shell
        with: {shell: true, run: "echo start:b >> effects.txt; echo end:b >> effects.txt"}
"""


def s_waiting(root: Path, n: int, rng: random.Random, tally: Tally) -> None:
    """Kill while waiting; ok = the wait's rule held after resume exactly as without a kill:
    gate (asked again, approved once), pause (stays paused), backoff (3 attempts in all),
    approval timeout (its deadline passed while dead: rejected at once), wait (resumed
    past its deadline: goes on at once)."""
    kind = ["gate", "pause", "backoff", "timeout", "wait"][n % 5]
    trial = Trial(root, n)
    wf = trial.dir / "wf.yaml"
    ok = False
    done_at: list[set[str]] = []
    inflight: list[set[str]] = []

    def killed(proc: subprocess.Popen[str]) -> None:
        kill(proc)
        done, running = snapshot(trial)
        done_at.append(done)
        inflight.append(running | _unjournaled(trial, done))
        trial.mark()

    if kind in ("gate", "timeout"):
        wf.write_text(GATED % (f", timeout: {PACE.gate_timeout}" if kind == "timeout" else ""))
        proc = trial.start("run", "wf.yaml")
        trial.until(lambda: trial.has("approval.requested"))
        killed(proc)
        if kind == "timeout":
            time.sleep(PACE.gate_timeout + 0.2)  # the deadline passes while no runner is alive
            code = trial.wait(trial.start("resume", str(trial.run_id())), 30)
            ok = code == 3 and not [x for x in trial.segments()[-1] if x.startswith("start:")]
        else:
            proc = trial.start("resume", str(trial.run_id()))
            trial.until(lambda: trial.status() == "waiting")
            trial.cli("approve", str(trial.run_id()), "ship")
            code = trial.wait(proc)
            ok = code == 0 and sum(s.count("end:b") for s in trial.segments()) == 1
    elif kind == "pause":
        wf.write_text(HELD)
        proc = trial.start("run", "wf.yaml")
        trial.until(lambda: (trial.dir / "ready").exists())
        trial.cli("pause", str(trial.run_id()))
        trial.until(lambda: trial.has("run.paused"))
        killed(proc)
        (trial.dir / "go").touch()
        proc = trial.start("resume", str(trial.run_id()))
        trial.until(lambda: trial.has("run.resumed"))
        time.sleep(0.3)  # long enough for a wrongly unpaused run to start its steps
        # the killed runner's step may still finish (an orphan): nothing may *start*
        started = [x for x in trial.segments()[-1] if x.startswith("start:")]
        held = trial.status() == "paused" and not started
        trial.cli("unpause", str(trial.run_id()))
        code = trial.wait(proc)
        ok = held and code == 0
    elif kind == "backoff":
        wf.write_text(BACKOFF % PACE.backoff)
        proc = trial.start("run", "wf.yaml")
        trial.until(lambda: trial.has("step.retry", "up"))
        killed(proc)
        code = trial.wait(trial.start("resume", str(trial.run_id())))
        starts = sum(s.count("start:up") for s in trial.segments())
        ok = code == 1 and starts == 3
    else:
        wf.write_text(WAIT % PACE.wait)
        proc = trial.start("run", "wf.yaml")
        trial.until(lambda: trial.has("step.started", "w"))
        time.sleep(PACE.wait / 6)
        killed(proc)
        time.sleep(PACE.wait)  # the wait's deadline passes while no runner is alive
        code = trial.wait(trial.start("resume", str(trial.run_id())))
        waited = [
            d.get("duration") for _, t, s, d in trial.events() if t == "step.finished" and s == "w"
        ]
        ok = code == 0 and bool(waited) and float(waited[-1] or 0) < PACE.wait / 3
    settle(trial, tally, 0)
    judge(trial, tally, done_at, inflight, set())
    tally.ok += ok
    if not ok:
        tally.notes.append(f"{kind} trial {n}")


def s_resumers(root: Path, n: int, rng: random.Random, tally: Tally) -> None:
    """Kill a run, then start 2-3 resumers 0-300 ms apart; ok = exactly one proceeds, the
    others exit 2."""
    trial = Trial(root, n)
    (trial.dir / "wf.yaml").write_text(HELD)
    proc = trial.start("run", "wf.yaml")
    trial.until(lambda: (trial.dir / "ready").exists())
    kill(proc)
    done, running = snapshot(trial)
    trial.mark()
    rid = str(trial.run_id())
    procs = []
    for _ in range(rng.choice([2, 3])):
        procs.append(trial.start("resume", rid))
        time.sleep(rng.uniform(0, 0.3))
    trial.until(lambda: sum(p.poll() is not None for p in procs) >= len(procs) - 1, 60)
    (trial.dir / "go").touch()
    codes = [trial.wait(p) for p in procs]
    judge(trial, tally, [done], [running | {"a"}], {"a", "b"})
    tally.ok += sorted(c for c in codes if c is not None) == [0] + [2] * (len(procs) - 1)


def s_lock(root: Path, n: int, rng: random.Random, tally: Tally) -> None:
    """Hold the write lock (BEGIN IMMEDIATE in another process) past the writer's retries;
    ok = the run stops with 130 naming the store, then resumes to success."""
    trial = Trial(root, n)
    text, recorded = generate(rng, steps=12, stages=2)
    (trial.dir / "wf.yaml").write_text(text)
    env = {"QUARTERDECK_JOURNAL_RETRY_SECONDS": "1"}
    proc = trial.start("run", "wf.yaml", env=env)
    trial.until(lambda: trial.has("step.started"))
    time.sleep(rng.uniform(0, 0.5))
    locker = subprocess.Popen(
        [PY, "-c", _LOCKER, str(trial.db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert locker.stdout is not None and locker.stdin is not None
    locker.stdout.readline()  # locked
    code = trial.wait(proc)
    locker.stdin.close()
    locker.wait()
    done, running = snapshot(trial)
    named = str(trial.db) in trial.stderr()
    trial.mark()
    final = settle(trial, tally, code)
    judge(trial, tally, [done], [running | _unjournaled(trial, done)], recorded)
    tally.ok += (code == 130 and named and final == 0) or (
        code == 0 and trial.status() == "succeeded"
    )


_LOCKER = (
    "import sqlite3, sys\n"
    "c = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)\n"
    "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); sys.stdin.read()\n"
    "c.execute('ROLLBACK')\n"
)


def s_disk_full(root: Path, n: int, rng: random.Random, tally: Tally) -> None:
    """The store's file system fills up mid-run; ok = 130 naming the store, and after
    space is freed the run resumes to success."""
    if os.geteuid() != 0:
        tally.skipped = "needs root to mount a small tmpfs"
        return
    mnt = root / f"fs{n}"
    mnt.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        tally.skipped = f"cannot mount a tmpfs: {mounted.stderr.decode().strip()}"
        return
    try:
        trial = Trial(root, n, store_dir=mnt)
        text, recorded = generate(rng, steps=12, stages=2)
        (trial.dir / "wf.yaml").write_text(text)
        proc = trial.start("run", "wf.yaml", env={"QUARTERDECK_JOURNAL_RETRY_SECONDS": "1"})
        trial.until(lambda: trial.has("step.started"))
        time.sleep(rng.uniform(0, 0.5))
        subprocess.run(
            ["dd", "if=/dev/zero", f"of={mnt / 'filler'}", "bs=64k"], capture_output=True
        )
        code = trial.wait(proc)
        done, running = snapshot(trial)
        named = str(trial.db) in trial.stderr()
        (mnt / "filler").unlink()
        trial.mark()
        final = settle(trial, tally, code)
        judge(trial, tally, [done], [running | _unjournaled(trial, done)], recorded)
        tally.ok += (code == 130 and named and final == 0) or (
            code == 0 and trial.status() == "succeeded"
        )
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def s_concurrent(root: Path, n: int, rng: random.Random, tally: Tally) -> None:
    """50 runs started at once on one store; ok = every one succeeded. ``locked`` counts
    "database is locked" in their output (the figure must stay 0)."""
    trial = Trial(root, n)
    text, _recorded = generate(rng, steps=6, stages=1)
    (trial.dir / "wf.yaml").write_text(text)
    procs = [trial.start("run", "wf.yaml") for _ in range(50)]
    codes = [trial.wait(p, 600) for p in procs]
    tally.trials += 1
    tally.ok += all(c == 0 for c in codes)
    tally.locked += trial.stderr().count("database is locked")
    tally.tracebacks += "Traceback" in trial.stderr()
    tally.stuck += sum(c is None for c in codes)
    rows = trial.query("SELECT run_id, seq FROM events ORDER BY run_id, seq")
    by_run: dict[str, list[int]] = {}
    for rid, seq in rows:
        by_run.setdefault(rid, []).append(seq)
    tally.gaps += sum(seqs != list(range(1, len(seqs) + 1)) for seqs in by_run.values())


SCENARIOS: dict[str, Callable[[Path, int, random.Random, Tally], None]] = {
    "kill": s_kill,
    "waiting": s_waiting,
    "resumers": s_resumers,
    "lock": s_lock,
    "disk-full": s_disk_full,
    "concurrent": s_concurrent,
}


def run(
    scenarios: list[str], trials: int, others: int, seed: int, pace: Pace = FULL
) -> dict[str, Tally]:
    global PACE
    PACE = pace
    rng = random.Random(seed)
    out: dict[str, Tally] = {}
    root = Path(tempfile.mkdtemp(prefix="qd-torture-"))
    try:
        for name in scenarios:
            tally = out[name] = Tally()
            count = trials if name == "kill" else 1 if name == "concurrent" else others
            began = time.monotonic()
            for n in range(count):
                SCENARIOS[name](
                    root / name if (root / name).exists() else _mk(root / name), n, rng, tally
                )
                if tally.skipped:
                    break
            tally.seconds = time.monotonic() - began
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return out


def _mk(path: Path) -> Path:
    path.mkdir()
    return path


def table(results: dict[str, Tally]) -> str:
    cols = ["scenario", "trials", "ok", "re-run", "gaps", "double", "bad end", "stuck"]
    cols += ["tracebacks", "locked", "seconds"]
    rows = [cols]
    for name, t in results.items():
        if t.skipped:
            rows.append([name, "0", "skipped: " + t.skipped])
            continue
        values = (t.trials, t.ok, t.rerun, t.gaps, t.double, t.bad_end, t.stuck, t.tracebacks)
        rows.append([name, *(str(v) for v in values), str(t.locked), f"{t.seconds:.0f}"])
    widths = [
        max(len(r[i]) for r in rows if len(r) > i and len(r) == len(cols)) for i in range(len(cols))
    ]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=200, help="random-kill trials")
    parser.add_argument("--others", type=int, default=10, help="trials of each other scenario")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--quick", action="store_true", help="shorter workflows and waits")
    args = parser.parse_args(argv)
    names = [s for s in args.scenarios.split(",") if s]
    unknown = [s for s in names if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; one of {', '.join(SCENARIOS)}")
    started = time.monotonic()
    results = run(names, args.trials, args.others, args.seed, QUICK if args.quick else FULL)
    print(table(results))
    for name, t in results.items():
        for note in t.notes:
            print(f"{name}: promise broken in {note}")
    print(f"({time.monotonic() - started:.0f}s, seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
