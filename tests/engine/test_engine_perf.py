"""Engine behaviour the runner's speed depends on: durability, live tasks, commits per step.

No timings here (benchmarks/runner_overhead.py prints those): each test checks the
mechanism itself on a real SQLite journal."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from quarterdeck.core.config import Settings
from quarterdeck.core.engine.runner import RunOptions
from quarterdeck.core.journal.events import Event
from tests.helpers import make_runner

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
