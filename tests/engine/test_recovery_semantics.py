"""Recovery semantics (docs/architecture.md): what a run killed with SIGKILL does on resume.

A finished ``continue_on_error`` step is done; attempts count across resumes; a paused
run stays paused; ``wait`` and retry backoffs are durable deadlines. Each test kills a
real ``quarterdeck run`` at the point in question and resumes it.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sqlite3
import subprocess
from pathlib import Path

from quarterdeck.core.actions.builtin import WaitParams, wait
from quarterdeck.core.clock import FakeClock
from quarterdeck.core.engine.runner import new_run_id
from tests.engine.procs import (
    effects,
    finish,
    has_event,
    no_gaps,
    row_status,
    run_id,
    start,
    wait_for,
)
from tests.helpers import cli, make_ctx, write_workflow

HOLD = "touch ready; while [ ! -f go ]; do sleep 0.05; done"


def _kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _resume(tmp: Path) -> tuple[int, str]:
    return finish(start(tmp, "resume", str(run_id(tmp)), tag="resume"), tmp, "resume")


def test_a_finished_continue_on_error_step_is_not_run_again(tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        f"""\
name: coe
stages:
  - id: s
    steps:
      - id: flaky
        uses: shell
        continue_on_error: true
        with: {{shell: true, run: "echo flaky >> effects.txt; exit 1"}}
      - id: slow
        needs: [flaky]
        uses: shell
        with: {{shell: true, run: "echo slow >> effects.txt; {HOLD}"}}
""",
    )
    proc = start(tmp_path, "run", str(wf))
    wait_for(lambda: (tmp_path / "ready").exists())
    _kill(proc)
    (tmp_path / "go").touch()
    code, err = _resume(tmp_path)
    assert code == 0, err
    assert effects(tmp_path) == ["flaky", "slow", "slow"]
    assert no_gaps(tmp_path)


def test_the_retry_budget_counts_attempts_across_a_resume(tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        """\
name: budget
stages:
  - id: s
    steps:
      - id: upload
        uses: shell
        retry: {max_attempts: 3, backoff: constant, initial_delay: 1}
        with: {shell: true, run: "echo upload >> effects.txt; exit 1"}
""",
    )
    proc = start(tmp_path, "run", str(wf))
    wait_for(lambda: has_event(tmp_path, "step.retry", "upload"))  # killed in the backoff
    _kill(proc)
    code, err = _resume(tmp_path)
    assert code == 1, err
    assert effects(tmp_path).count("upload") == 3  # max_attempts is the total
    assert no_gaps(tmp_path)


def test_a_paused_run_stays_paused_after_a_crash(tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        f"""\
name: paused
stages:
  - id: s
    steps:
      - id: one
        uses: shell
        with: {{shell: true, run: "echo one >> effects.txt; {HOLD}"}}
      - id: two
        needs: [one]
        uses: shell
        with: {{shell: true, run: "echo two >> effects.txt"}}
""",
    )
    store = str(tmp_path / "qd.db")
    proc = start(tmp_path, "run", str(wf))
    wait_for(lambda: (tmp_path / "ready").exists())
    rid = str(run_id(tmp_path))
    cli("pause", rid, "--store", store, "--as", "ops", cwd=tmp_path)
    wait_for(lambda: has_event(tmp_path, "run.paused"))
    _kill(proc)
    (tmp_path / "go").touch()
    resumed = start(tmp_path, "resume", rid, tag="resume")
    wait_for(lambda: has_event(tmp_path, "run.resumed"))
    assert row_status(tmp_path) == "paused"
    assert effects(tmp_path) == ["one"]
    cli("unpause", rid, "--store", store, "--as", "ops", cwd=tmp_path)
    code, err = finish(resumed, tmp_path, "resume")
    assert code == 0, err
    assert effects(tmp_path) == ["one", "one", "two"]


def test_a_wait_counts_from_its_journaled_start() -> None:
    clock = FakeClock()
    ctx = make_ctx(Path("."), clock=clock, started_at=clock.now() - 40)
    out = asyncio.run(wait(WaitParams(duration=60), ctx))
    assert out == {"waited": 60}
    assert clock.sleeps == [20]  # resumed 40 s in: only what is left


def test_a_wait_past_its_deadline_ends_at_once() -> None:
    clock = FakeClock()
    ctx = make_ctx(Path("."), clock=clock, started_at=clock.now() - 600)
    asyncio.run(wait(WaitParams(duration=60), ctx))
    assert clock.sleeps == [0]


def test_a_wait_step_resumed_after_its_deadline_goes_on_at_once(tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        """\
name: waits
stages:
  - id: s
    steps:
      - id: cooldown
        uses: wait
        with: {duration: 1h}
      - id: after
        needs: [cooldown]
        uses: shell
        with: {shell: true, run: "echo after >> effects.txt"}
""",
    )
    proc = start(tmp_path, "run", str(wf))
    wait_for(lambda: has_event(tmp_path, "step.started", "cooldown"))
    _kill(proc)
    # the run was killed two hours ago: its journaled start says so
    conn = sqlite3.connect(tmp_path / "qd.db")
    conn.execute("UPDATE events SET ts = ts - 7200 WHERE type = 'step.started'")
    conn.commit()
    conn.close()
    code, err = _resume(tmp_path)  # bounded by finish(): a restarted hour would time out
    assert code == 0, err
    assert effects(tmp_path) == ["after"]


def test_run_ids_carry_64_random_bits_and_sort_by_time() -> None:
    ids = [new_run_id("w", now=1_700_000_000 + i // 1000) for i in range(5000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{16}", i) for i in ids)
    stamps = [i.rsplit("-", 1)[0] for i in ids]
    assert stamps == sorted(stamps)
