"""The headless streams write one batch per turn of the run's loop, in order, and a broken
stream never stops the run (tui/headless/lines.py)."""

from __future__ import annotations

import asyncio
import io
import logging
import sys
from pathlib import Path
from typing import TextIO, cast

import pytest

from quarterdeck.core.journal.events import Event
from quarterdeck.core.journal.state import RunState
from quarterdeck.core.logs import ALSO, setup
from quarterdeck.tui.headless.ci import EventStream, GitHubActions
from quarterdeck.tui.headless.lines import BatchFile, flush_lines, line_batch
from quarterdeck.tui.headless.render import PlainRenderer

RUN = "20261121-101500-0123456789abcdef"
T0 = 1_763_720_100.0


class CountingStream(io.StringIO):
    """A stream that counts the writes and flushes it is asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.flushes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)

    def flush(self) -> None:
        self.flushes += 1


class ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def started(i: int) -> Event:
    return Event("step.started", RUN, "s", f"s{i}", {"attempt": 1, "uses": "memory.set"}, T0, i)


def test_a_turn_of_the_loop_is_one_write() -> None:
    """A concurrent stage's thousand starts, delivered in one turn, are one write."""
    out = CountingStream()
    render = PlainRenderer(RunState(id=RUN), out, color=False)

    async def deliver() -> tuple[int, int]:
        for i in range(1000):
            render(started(i))
        queued = (out.writes, out.flushes)
        await asyncio.sleep(0)
        return queued

    assert asyncio.run(deliver()) == (0, 0)  # nothing written inside the turn
    assert (out.writes, out.flushes) == (1, 1)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1000
    assert lines[0] == "2025-11-21T10:15:00Z [s] s0: started memory.set (attempt 1)"
    assert lines[-1].endswith("s999: started memory.set (attempt 1)")


def test_outside_a_loop_each_line_is_written_at_once() -> None:
    out = CountingStream()
    render = PlainRenderer(RunState(id=RUN), out, color=False)
    render(started(1))
    assert (out.writes, out.flushes) == (1, 1)
    render(started(2))
    assert out.getvalue().count("\n") == 2


def test_every_writer_of_a_stream_shares_its_batch() -> None:
    out = io.StringIO()
    github = GitHubActions(out)
    render = PlainRenderer(RunState(id=RUN), out, color=False)
    assert github.lines is render.lines is line_batch(out)
    assert line_batch(io.StringIO()) is not render.lines


def test_a_loop_closed_before_its_turn_ended_does_not_hold_later_lines() -> None:
    out = io.StringIO()
    render = PlainRenderer(RunState(id=RUN), out, color=False)
    loop = asyncio.new_event_loop()

    def one() -> None:
        render(started(1))
        loop.stop()  # this turn is the last: the flush it queued never runs

    loop.call_soon(one)
    loop.run_forever()
    loop.close()
    assert out.getvalue() == ""

    async def two() -> None:
        render(started(2))
        await asyncio.sleep(0)

    asyncio.run(two())  # the next loop's turn writes both
    assert out.getvalue().count("\n") == 2


def test_flush_lines_writes_what_is_queued() -> None:
    out = io.StringIO()
    render = PlainRenderer(RunState(id=RUN), out, color=False)

    async def queue() -> str:
        render(started(1))
        flush_lines()
        return out.getvalue()

    assert asyncio.run(queue()).count("\n") == 1


def test_a_closed_pipe_never_stops_the_run(tmp_path: Path) -> None:
    pipe = ClosedPipe()
    stream = EventStream(pipe)
    render = PlainRenderer(RunState(id=RUN), pipe, color=False)

    async def deliver() -> None:
        for i in range(3):
            stream(started(i))
            render(started(i))
            await asyncio.sleep(0)

    asyncio.run(deliver())
    assert stream.broken


def test_a_verbose_log_line_keeps_its_place_among_the_narration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--verbose logs to stderr, where the narration queues its lines for the end of the
    loop's turn: a log line written straight to stderr came out ahead of the lines queued
    before it. Through the same batch (BatchFile, as the CLI sets up) it does not."""
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setenv("QUARTERDECK_HOME", str(tmp_path / "home"))
    setup(verbose=True, stderr=cast(TextIO, BatchFile()))
    try:

        async def turn() -> None:
            line_batch(sys.stderr).write("narration before\n")
            logging.getLogger("quarterdeck.test").warning("the log's line")
            line_batch(sys.stderr).write("narration after\n")

        asyncio.run(turn())
        flush_lines()
    finally:
        for name in ("quarterdeck", *ALSO):
            for handler in list(logging.getLogger(name).handlers):
                if getattr(handler, "_quarterdeck", False):
                    logging.getLogger(name).removeHandler(handler)
                    handler.close()
    assert err.getvalue().splitlines() == [
        "narration before",
        "WARNING quarterdeck.test: the log's line",
        "narration after",
    ]
