"""Engine behaviour the runner's speed depends on: durability, live tasks, commits per step.

No timings here (benchmarks/runner_overhead.py prints those): each test checks the
mechanism itself on a real SQLite journal."""

from __future__ import annotations

import asyncio
import itertools
import os
import sqlite3
import threading
from pathlib import Path

import pytest

from quarterdeck.core.clock import Clock
from quarterdeck.core.config import Settings
from quarterdeck.core.engine.journal_writer import JournalWriter
from quarterdeck.core.engine.runner import RunOptions
from quarterdeck.core.journal.events import Event, MemorySet
from quarterdeck.core.journal.state import RunState
from quarterdeck.core.journal.store import Store
from quarterdeck.core.observability.redact import Redactor
from tests.helpers import bare_run, make_runner

SYNCHRONOUS_FULL, SYNCHRONOUS_NORMAL = 2, 1


def one_step(extra: str = "") -> str:
    return (
        f"name: d\n{extra}stages:\n  - id: s\n    steps:\n"
        "      - {id: a, uses: memory.set, with: {key: k, value: 1}}\n"
    )


def pragmas_in_run(
    tmp_path: Path, text: str, *, settings: Settings | None = None, cli: str | None = None
) -> tuple[int, int]:
    """``PRAGMA synchronous`` on the writer thread's connection (asked through an op, which
    runs on that very connection inside a commit) and on the runner's own connection."""
    runner = make_runner(
        tmp_path,
        text,
        settings=settings,
        options=RunOptions(started_by="tester", durability=cli),
    )
    seen: list[int] = []

    def ask(event: Event) -> None:
        if event.type == "run.started":
            runner._writer.op(
                lambda store: seen.append(store.conn.execute("PRAGMA synchronous").fetchone()[0])
            )

    runner.subscribers.append(ask)
    state = asyncio.run(runner.run())
    assert state.status == "succeeded"
    assert runner._writer._thread is None  # closed: the op ran on the thread's connection
    main = runner.store.conn.execute("PRAGMA synchronous").fetchone()[0]
    assert len(seen) == 1
    return seen[0], main


def test_default_durability_is_normal(tmp_path: Path) -> None:
    assert pragmas_in_run(tmp_path, one_step()) == (SYNCHRONOUS_NORMAL, SYNCHRONOUS_NORMAL)


@pytest.mark.parametrize(
    ("extra", "settings", "cli"),
    [
        ("", Settings(durability="full"), None),  # config
        ("", None, "full"),  # --durability full
        ("durability: full\n", None, None),  # the workflow's field
        ("durability: full\n", Settings(durability="normal"), "normal"),  # the stricter wins
        ("durability: normal\n", Settings(durability="full"), None),
    ],
)
def test_durability_full_fsyncs_every_commit_connection(
    tmp_path: Path, extra: str, settings: Settings | None, cli: str | None
) -> None:
    assert pragmas_in_run(tmp_path, one_step(extra), settings=settings, cli=cli) == (
        SYNCHRONOUS_FULL,
        SYNCHRONOUS_FULL,
    )


def test_bad_durability_in_a_workflow_is_a_definition_error(tmp_path: Path) -> None:
    from quarterdeck.core.errors import DefinitionError

    with pytest.raises(DefinitionError, match="durability"):
        make_runner(tmp_path, one_step("durability: paranoid\n"))


def fan_out(n: int) -> str:
    return "name: fan\nconcurrency: 2\nstages:\n  - id: s\n    steps:\n" + "".join(
        f"      - {{id: s{i}, uses: memory.set, with: {{key: k{i}, value: {i}}}}}\n"
        for i in range(n)
    )


def chain(n: int) -> str:
    return "name: chain\nstages:\n  - id: s\n    steps:\n" + "".join(
        f"      - {{id: s{i}, uses: memory.set, with: {{key: k{i}, value: {i}}}"
        + (f", needs: [s{i - 1}]" if i else "")
        + "}\n"
        for i in range(n)
    )


def step_tasks() -> int:
    """Live tasks the scheduler made for steps (whatever its method is called)."""
    return sum(
        1
        for task in asyncio.all_tasks()
        if getattr(task.get_coro(), "__qualname__", "").startswith("Scheduler.")
    )


def test_at_most_concurrency_step_tasks_live(tmp_path: Path) -> None:
    runner = make_runner(tmp_path, fan_out(50))
    live: list[int] = []
    runner.subscribers.append(lambda event: live.append(step_tasks()))
    state = asyncio.run(runner.run())
    assert state.status == "succeeded"
    assert len(state.stages["s"].steps) == 50
    assert all(s.status == "succeeded" for s in state.stages["s"].steps.values())
    assert max(live) >= 1  # the probe saw the steps' tasks
    assert max(live) <= 2, f"up to {max(live)} step tasks alive with concurrency 2"


def test_ready_steps_start_in_file_order_under_the_limit(tmp_path: Path) -> None:
    runner = make_runner(tmp_path, fan_out(12))
    started: list[str] = []
    runner.subscribers.append(
        lambda event: started.append(event.step or "") if event.type == "step.started" else None
    )
    assert asyncio.run(runner.run()).status == "succeeded"
    assert started == [f"s{i}" for i in range(12)]


def test_a_chain_commits_once_per_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    commits: list[int] = []
    real = Store.commit_batch

    def counted(self: Store, *args: object, **kwargs: object) -> None:
        commits.append(1)
        real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Store, "commit_batch", counted)
    steps = 20
    ran = make_runner(tmp_path, chain(steps))
    state = asyncio.run(ran.run())
    assert state.status == "succeeded"
    order = [e.step for e in ran.store.events(state.id) if e.type == "step.started"]
    assert order == [f"s{i}" for i in range(steps)]
    # one per step plus a constant (run.started, stage.started, the end, the row status);
    # it was two per step (the dependent started a loop turn after its predecessor ended)
    assert len(commits) <= steps + 6, f"{len(commits)} commits for a {steps}-step chain"


# -- commits on the loop while the writer thread is idle ---------------------------------------


def committing_threads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The thread each real commit ran on, in order."""
    from quarterdeck.core.journal.store import Store

    seen: list[int] = []
    real = Store.commit_batch

    def recorded(self: Store, *args: object, **kwargs: object) -> None:
        real(self, *args, **kwargs)  # type: ignore[arg-type]
        seen.append(threading.get_ident())

    monkeypatch.setattr(Store, "commit_batch", recorded)
    return seen


def test_commits_are_made_on_the_loop_while_the_writer_thread_is_idle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing holds the store: every batch is committed at once on the loop's thread (it
    went to the writer thread and back, two hand-offs between threads per step)."""
    seen = committing_threads(monkeypatch)
    ran = make_runner(tmp_path, chain(10))
    state = asyncio.run(ran.run())
    assert state.status == "succeeded"
    assert seen and set(seen) == {threading.get_ident()}, "a commit left the loop's thread"
    assert no_gaps(ran.store, state.id)


@pytest.mark.parametrize("durability", ["normal", "full"])
def test_the_loop_never_checkpoints_the_wal_the_writer_thread_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, durability: str
) -> None:
    """Copying the WAL back into the file (and syncing it) is disk work: the loop's own
    connection used to do it whenever a commit took the WAL past 1,000 pages, stalling
    signals, timeouts and output meanwhile. Now its connection never checkpoints, and
    every CHECKPOINT_EVERY commits the writer thread does, so the WAL still stays small.
    With ``durability: full`` (every commit syncs on the loop anyway) the loop's
    connection checkpoints as SQLite does, at FULL_CHECKPOINT_PAGES: measured faster there."""
    import quarterdeck.core.engine.journal_writer as journal_writer

    monkeypatch.setattr(journal_writer, "CHECKPOINT_EVERY", 20)
    autocheckpoint: list[int] = []
    real_open = JournalWriter._open_inline

    def opened(self: JournalWriter) -> Store | None:
        store = real_open(self)
        if store is not None:
            autocheckpoint.append(store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
        return store

    monkeypatch.setattr(JournalWriter, "_open_inline", opened)
    checkpoints: list[str] = []
    real_checkpoint = Store.checkpoint

    def recorded(self: Store) -> None:
        real_checkpoint(self)
        checkpoints.append(threading.current_thread().name)

    monkeypatch.setattr(Store, "checkpoint", recorded)
    options = RunOptions(started_by="t", workdir=tmp_path, durability=durability)
    ran = make_runner(tmp_path, chain(100), options=options)
    state = asyncio.run(ran.run())
    assert state.status == "succeeded"
    if durability == "full":
        assert autocheckpoint == [journal_writer.FULL_CHECKPOINT_PAGES] and checkpoints == []
    else:
        assert autocheckpoint == [0]
        assert len(checkpoints) >= 100 // 20 - 1
        assert all(name.startswith("journal-") for name in checkpoints), checkpoints
    assert no_gaps(ran.store, state.id)


def test_with_durability_full_the_wal_stops_growing_early_and_is_rewritten_in_place(
    tmp_path: Path,
) -> None:
    """Each ``full`` commit waits for a sync of the WAL, dearer when the commit grew the
    file (its new size is journaled by the file system too). SQLite rewrites the WAL from
    its start after a checkpoint, so both writer connections checkpoint at
    FULL_CHECKPOINT_PAGES: the WAL file stops growing there, instead of at SQLite's 1,000
    pages (a 150-step chain writes ~400 pages: the whole run grew the file before)."""
    import quarterdeck.core.engine.journal_writer as journal_writer

    pages = journal_writer.FULL_CHECKPOINT_PAGES
    path = tmp_path / "qd.db"
    options = RunOptions(started_by="t", workdir=tmp_path, durability="full")
    ran = make_runner(tmp_path, chain(150), options=options, store=Store(path))
    wal = Path(f"{path}-wal")
    sizes: list[int] = []
    inline: list[int] = []

    def watch(event: Event) -> None:
        sizes.append(wal.stat().st_size if wal.exists() else 0)
        if not inline and ran._writer._inline is not None:  # the loop's connection
            conn = ran._writer._inline.conn
            inline.append(conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
            inline.append(conn.execute("PRAGMA synchronous").fetchone()[0])

    ran.subscribers.append(watch)
    state = asyncio.run(ran.run())
    assert state.status == "succeeded"
    assert inline == [pages, SYNCHRONOUS_FULL]
    thread = ran._writer._open()  # the thread's connection (here it never had a job)
    assert thread is not None
    assert thread.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == pages
    thread.close()
    frame = 24 + ran.store.conn.execute("PRAGMA page_size").fetchone()[0]
    # a commit past the limit checkpoints; the next is written from the WAL's start. Here
    # ~200 pages and ~73 commits that grew the file; at 1,000 pages ~430 and ~154 (the
    # margins leave room for a checkpoint that a reader held back for a while)
    assert max(sizes) <= 32 + (pages + 100) * frame, f"the WAL grew to {max(sizes)} bytes"
    grew = sum(1 for before, after in itertools.pairwise(sizes) if after > before)
    assert grew <= 110, f"{grew} commits grew the WAL"
    assert no_gaps(ran.store, state.id)


def no_gaps(store: Store, run_id: str) -> bool:
    seqs = [e.seq for e in store.events(run_id)]
    return seqs == list(range(1, len(seqs) + 1))


def memo(i: int) -> MemorySet:
    return MemorySet(key=f"k{i}", value=i)


@pytest.mark.parametrize("durability", ["normal", "full"])
def test_a_locked_store_hands_batches_to_the_thread_in_order_and_the_loop_runs_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, durability: str
) -> None:
    """Another process holds the write lock: the loop's attempt does not wait for it (the
    loop goes on: here it is the loop that lets go of the lock), the thread waits and
    commits; a batch flushed meanwhile queues behind it instead of overtaking; once the
    thread is idle the loop commits again. Both connections fsync as ``durability`` says."""
    seen = committing_threads(monkeypatch)
    path = tmp_path / "qd.db"
    store = Store(path)
    bare_run(store, owner="me")
    published: list[int] = []
    synchronous: list[int] = []

    def ask(db: Store) -> None:
        synchronous.append(db.conn.execute("PRAGMA synchronous").fetchone()[0])

    async def go() -> None:
        writer = JournalWriter(
            store,
            "r1",
            RunState("r1"),
            clock=Clock(),
            redactor=Redactor([]),
            subscribers=[lambda e: published.append(e.seq)],
            seq=0,
            owner="me",
            durability=durability,
        )
        writer.bind(asyncio.get_running_loop())
        writer.emit(memo(1))
        writer.op(ask)
        await writer.committed()  # on the loop
        locker = sqlite3.connect(path, isolation_level=None)
        locker.execute("BEGIN IMMEDIATE")
        writer.emit(memo(2))
        writer.op(ask)
        waiting = asyncio.ensure_future(writer.committed())
        await asyncio.sleep(0)  # flushed: the loop's attempt finds the lock, the thread waits
        writer.emit(memo(3))
        later = asyncio.ensure_future(writer.committed())
        for _ in range(3):  # the loop is not blocked by the lock
            await asyncio.sleep(0.01)
        assert not waiting.done() and not later.done()
        assert published == [1]
        locker.execute("ROLLBACK")
        locker.close()
        await later
        writer.emit(memo(4))
        await writer.committed()  # the thread is idle again: on the loop
        writer.flush_now()
        writer.close()

    asyncio.run(go())
    loop_thread = threading.get_ident()
    assert [t == loop_thread for t in seen] == [True, False, False, True]
    assert published == [1, 2, 3, 4]
    assert no_gaps(store, "r1") and store.last_seq("r1") == 4
    level = SYNCHRONOUS_FULL if durability == "full" else SYNCHRONOUS_NORMAL
    assert synchronous == [level, level]  # the loop's connection, then the thread's


def test_a_journal_replaced_before_the_writer_opened_its_connections_stops_the_run(
    tmp_path: Path,
) -> None:
    """The writer's own connections check commits against the file the run opened, not
    the one they found at the path when they opened (later)."""
    path = tmp_path / "qd.db"
    runner = make_runner(tmp_path, chain(2), store=Store(path))
    other = tmp_path / "other.db"
    Store(other).close()
    os.replace(other, path)
    state = asyncio.run(runner.run())
    assert state.status == "interrupted"
    assert runner.journal_error is not None and "replaced" in runner.journal_error
