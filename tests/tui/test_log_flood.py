"""The log pane under a flood: bounded work per frame, and never a silent drop.

A frame draws at most ``FRAME_LINES`` new lines (the newest, after a marker counting the
others), the scrollback keeps ``MAX_LINES`` (the title says so once older lines left),
and writing lines starts no thread (Textual's Log measured every line's width in one).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.widgets import Log, Static

from quarterdeck.core.journal.events import StepOutput, StepStarted
from quarterdeck.core.journal.parts import LogLine
from quarterdeck.core.journal.store import Store
from quarterdeck.screens import dashboard
from quarterdeck.screens.dashboard import DashboardScreen
from quarterdeck.tui.tails import JournalTail
from quarterdeck.tui.widgets.log_panel import (
    FRAME_LINES,
    MAX_LINES,
    SCROLLBACK_NOTE,
    LogPanel,
    skipped_marker,
)
from quarterdeck.tui.widgets.panels import _Panel
from tests.tui.conftest import wait_until
from tests.tui.seed import T0, _Journal


class PanelApp(App[None]):
    def compose(self) -> ComposeResult:
        yield LogPanel(id="log-panel")


def lines(start: int, count: int, step: str = "spew") -> list[LogLine]:
    return [LogLine(0.0, "flood", step, "stdout", f"line {n}") for n in range(start, start + count)]


def texts(panel: LogPanel) -> list[str]:
    return list(panel.query_one("#log", Log).lines)


def title(panel: LogPanel) -> str:
    return str(panel.query_one("#log-title", Static).render())


@pytest.mark.asyncio
async def test_batches_under_the_frame_budget_show_every_line_in_order() -> None:
    app = PanelApp()
    async with app.run_test(size=(100, 30)) as pilot:
        panel = app.query_one(LogPanel)
        panel.step = ("flood", "spew")
        for start in range(0, 3 * FRAME_LINES, FRAME_LINES):
            panel.append(lines(start, FRAME_LINES))
            await pilot.pause()
        assert texts(panel) == [f"line {n}" for n in range(3 * FRAME_LINES)]
        assert panel.shown == 3 * FRAME_LINES and panel.skipped == 0


@pytest.mark.asyncio
async def test_a_flood_draws_the_newest_lines_after_a_marker_counting_the_rest() -> None:
    app = PanelApp()
    async with app.run_test(size=(100, 30)) as pilot:
        panel = app.query_one(LogPanel)
        panel.step = ("flood", "spew")
        panel.append(lines(0, FRAME_LINES + 1234))
        await pilot.pause()
        shown = texts(panel)
        marker = "⋯ 1,234 lines not drawn here (all are in the step's log file)"
        assert shown[0] == skipped_marker(1234) == marker
        assert shown[1:] == [f"line {n}" for n in range(1234, FRAME_LINES + 1234)]
        assert panel.skipped == 1234 and panel.shown == FRAME_LINES
        log = panel.query_one("#log", Log)
        assert log.scroll_y == log.max_scroll_y  # following: the tail is on screen


@pytest.mark.asyncio
async def test_the_marker_counts_only_lines_the_filter_would_show() -> None:
    app = PanelApp()
    async with app.run_test(size=(100, 30)) as pilot:
        panel = app.query_one(LogPanel)
        panel.step = ("flood", "spew")
        panel.filter_text = "7"
        batch = lines(0, 10 * FRAME_LINES)
        matching = [x.text for x in batch if "7" in x.text]
        panel.append(batch)
        await pilot.pause()
        skipped = len(matching) - FRAME_LINES
        assert texts(panel) == [skipped_marker(skipped), *matching[-FRAME_LINES:]]


@pytest.mark.asyncio
async def test_the_title_says_when_the_scrollback_dropped_its_oldest_lines() -> None:
    app = PanelApp()
    async with app.run_test(size=(100, 30)) as pilot:
        panel = app.query_one(LogPanel)
        panel.reset([])
        sent = 0
        while sent + FRAME_LINES <= MAX_LINES:
            panel.append(lines(sent, FRAME_LINES))
            sent += FRAME_LINES
        await pilot.pause()
        assert SCROLLBACK_NOTE not in title(panel)
        panel.append(lines(sent, FRAME_LINES))
        sent += FRAME_LINES
        await pilot.pause()
        assert title(panel) == f"log · whole run · {SCROLLBACK_NOTE}"
        assert texts(panel)[-1] == f"spew │ line {sent - 1}"
        assert len(texts(panel)) == MAX_LINES
        panel.reset([])  # a new scope starts a new scrollback
        await pilot.pause()
        assert title(panel) == "log · whole run"


def count_layouts(screen: Any) -> list[bool]:
    """Every screen layout from now on (each one repaints every widget on the screen)."""
    calls: list[bool] = []
    original = screen._refresh_layout

    def counted(*args: Any, **kwargs: Any) -> None:
        calls.append(True)
        original(*args, **kwargs)

    screen._refresh_layout = counted
    return calls


@pytest.mark.asyncio
async def test_a_growing_scrollback_repaints_the_log_without_laying_the_screen_out() -> None:
    """Each write grew the log's virtual size, a reactive that laid out (and so repainted)
    the whole screen: under a flood, every frame until the scrollback was full."""
    app = PanelApp()
    async with app.run_test(size=(100, 30)) as pilot:
        panel = app.query_one(LogPanel)
        panel.step = ("flood", "spew")
        log = panel.query_one("#log", Log)
        panel.append(lines(0, 100))  # more than a screen, before the first layout
        await pilot.pause()
        layouts = count_layouts(app.screen)
        sent = 100
        for _ in range(5):
            panel.append(lines(sent, FRAME_LINES))
            sent += FRAME_LINES
            await pilot.pause()
        assert layouts == []
        assert log.virtual_size.height == sent
        assert log.vertical_scrollbar.window_virtual_size == sent  # the thumb follows
        assert log.scroll_y == log.max_scroll_y  # still following the tail
        assert texts(panel)[-1] == f"line {sent - 1}"
        assert "line 2099" in "".join(s.text for s in log.render_lines(log.size.region)[-1:])
        panel.reset([])  # a new scope: the thumb goes back with the lines
        await pilot.pause()
        assert log.vertical_scrollbar.window_virtual_size == 0 and log.scroll_y == 0


@pytest.mark.asyncio
async def test_a_write_to_a_full_scrollback_leaves_the_scrollbar_alone() -> None:
    """Its size and thumb do not change, and redrawing it on every write cost a flood's
    frames more than drawing the new lines."""
    app = PanelApp()
    async with app.run_test(size=(100, 30)) as pilot:
        panel = app.query_one(LogPanel)
        panel.step = ("flood", "spew")
        log = panel.query_one("#log", Log)
        panel.append(lines(0, MAX_LINES), limit=MAX_LINES)
        await pilot.pause()
        bar = log.vertical_scrollbar
        assert bar.window_virtual_size == MAX_LINES
        for start in range(MAX_LINES, MAX_LINES + 3 * FRAME_LINES, FRAME_LINES):
            panel.append(lines(start, FRAME_LINES))
            assert not bar._repaint_required
            await pilot.pause()
        assert log.scroll_y == log.max_scroll_y
        assert texts(panel)[-1] == f"line {MAX_LINES + 3 * FRAME_LINES - 1}"


@pytest.mark.asyncio
async def test_the_scrollback_note_repaints_the_title_without_a_layout() -> None:
    app = PanelApp()
    async with app.run_test(size=(100, 30)) as pilot:
        panel = app.query_one(LogPanel)
        panel.reset([])
        panel.append(lines(0, MAX_LINES), limit=MAX_LINES)
        await pilot.pause()
        layouts = count_layouts(app.screen)
        panel.append(lines(MAX_LINES, 1))
        await pilot.pause()
        assert title(panel) == f"log · whole run · {SCROLLBACK_NOTE}"
        assert layouts == []


@pytest.mark.asyncio
async def test_a_scope_change_redraws_everything_kept_not_one_frame() -> None:
    app = PanelApp()
    async with app.run_test(size=(100, 30)) as pilot:
        panel = app.query_one(LogPanel)
        kept = lines(0, 3 * FRAME_LINES)
        panel.step = ("flood", "spew")
        panel.reset(kept)
        await pilot.pause()
        assert texts(panel) == [x.text for x in kept]


@pytest.mark.asyncio
async def test_writing_lines_starts_no_thread() -> None:
    """Textual's Log started a worker thread per write to measure every new line's width
    (for a horizontal scrollbar this pane hides), competing with the UI for the GIL."""
    app = PanelApp()
    async with app.run_test(size=(100, 30)) as pilot:
        panel = app.query_one(LogPanel)
        started: list[Any] = []
        app.workers.add_worker = lambda worker, **kw: started.append(worker)  # type: ignore[method-assign]
        for start in range(0, 5 * FRAME_LINES, FRAME_LINES):
            panel.append(lines(start, FRAME_LINES))
            await pilot.pause()
        assert started == []
        assert len(texts(panel)) == 5 * FRAME_LINES


FLOOD_RUN = "20270115-120000-flood"


def seed_flood(store_path: Path, wf: Path, outputs: int, per: int = 500) -> int:
    """A run whose one step printed ``outputs`` × ``per`` lines (as the writer journals
    them: up to 500 a ``step.output``); returns how many events the run has."""
    with Store(store_path) as store:
        journal = _Journal(store, FLOOD_RUN, T0, "alice", wf)
        journal.emit(StepStarted(attempt=1, uses="shell"), "build", "compile")
        for k in range(outputs):
            text = [f"line {k * per + n}" for n in range(per)]
            journal.emit(StepOutput(stream="stdout", lines=text), "build", "compile", dt=0.01)
        return journal.seq


@pytest.mark.asyncio
async def test_a_tail_behind_hands_over_budget_sized_slices_in_order(
    tmp_path: Path, project: Path
) -> None:
    total = seed_flood(tmp_path / "qd.db", project / ".quarterdeck/workflows/tiny.yaml", 20)
    tail = JournalTail(tmp_path / "qd.db", FLOOD_RUN).start()
    try:
        deadline = time.monotonic() + 30
        while not tail.behind():  # the tail read the run (one batch: < BATCH_EVENTS)
            assert time.monotonic() < deadline, "the tail never read the run"
            time.sleep(0.01)
        slices = []
        while tail.behind():
            slices.append(tail.drain(1200))
        assert [len(s) for s in slices] == [5, 3, 3, 3, 3, 3, 2]  # 1, 1, then 501 each
        assert all(sum(tail._cost(e) for e in s[:-1]) < 1200 for s in slices)
        assert [e.seq for s in slices for e in s] == list(range(1, total + 1))
        assert tail.drain(1200) == [] and not tail.behind()
    finally:
        tail.stop()
        tail.join()


async def _behind_the_backlog(app: Any, pilot: Any) -> DashboardScreen:
    """The attached dashboard, once it has folded the seeded flood's 20,000 lines."""
    await wait_until(pilot, lambda: isinstance(app.screen, DashboardScreen), what="dash")
    dash = app.screen
    assert isinstance(dash, DashboardScreen)
    await wait_until(pilot, lambda: dash.state.log_total == 20_000, what="the backlog")
    return dash


def _every_line_drawn_or_counted(panel: LogPanel) -> None:
    """Each of the flood's lines is on screen or counted in a marker, the last one printed
    is the last one shown, and the lines shown are in order, none twice."""
    assert panel.shown + panel.skipped == 20_000
    shown = texts(panel)
    assert shown[-1] == "compile │ line 19999"
    numbers = [int(t.rsplit(" ", 1)[1]) for t in shown if not t.startswith("⋯ ")]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)


@pytest.mark.asyncio
async def test_attaching_behind_a_flood_shows_the_tail_and_accounts_for_every_line(
    make_app: Any, project: Path
) -> None:
    """A viewer folds a backlog in slices; each frame draws the newest lines after a marker,
    so every line is drawn or counted in a marker, and the last line printed is on screen."""
    app = make_app(attach=FLOOD_RUN)
    seed_flood(project / "qd.db", project / ".quarterdeck/workflows/tiny.yaml", 40)
    async with app.run_test(size=(120, 40)) as pilot:
        dash = await _behind_the_backlog(app, pilot)
        await pilot.pause(0.2)
        panel = dash.query_one(LogPanel)
        assert any(t.startswith("⋯ ") for t in texts(panel))
        _every_line_drawn_or_counted(panel)


@pytest.mark.asyncio
async def test_held_lines_are_drawn_by_the_next_paint_and_never_twice() -> None:
    app = PanelApp()
    async with app.run_test(size=(100, 30)) as pilot:
        panel = app.query_one(LogPanel)
        panel.step = ("flood", "spew")
        panel.hold(lines(0, 3))
        panel.append(lines(3, 2))
        await pilot.pause()
        assert texts(panel) == [f"line {n}" for n in range(5)]
        panel.hold(lines(5, 3))  # then the scope changes: redrawn from the kept lines
        panel.reset(lines(0, 8))
        panel.append([])
        await pilot.pause()
        assert texts(panel) == [f"line {n}" for n in range(8)]


@pytest.mark.asyncio
async def test_a_viewer_catching_up_paints_less_often_than_it_folds_and_loses_no_line(
    make_app: Any, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slices fold every few ms while the viewer is behind; painting each one (the log,
    the tree, the panels) made the frames a key press waits behind. With the interval
    between paints made endless, it paints once behind and once caught up, and every
    line is still drawn or counted in a marker."""
    monkeypatch.setattr(dashboard, "PAINT_SECONDS", float("inf"), raising=False)
    paints: list[int] = []
    original = LogPanel.append

    def counted(self: LogPanel, lines: Any, limit: int = FRAME_LINES) -> None:
        if getattr(self, "holding", False) or lines:  # (the code before: no holding)
            paints.append(len(lines))
        original(self, lines, limit)

    monkeypatch.setattr(LogPanel, "append", counted)
    app = make_app(attach=FLOOD_RUN)
    seed_flood(project / "qd.db", project / ".quarterdeck/workflows/tiny.yaml", 40)
    async with app.run_test(size=(120, 40)) as pilot:
        dash = await _behind_the_backlog(app, pilot)
        panel = dash.query_one(LogPanel)
        await wait_until(
            pilot, lambda: not getattr(panel, "holding", False), what="the held lines drawn"
        )
        await pilot.pause(0.2)
        assert len(paints) <= 2  # was one per slice (6 here)
        _every_line_drawn_or_counted(panel)


class MetricsApp(App[None]):
    def compose(self) -> ComposeResult:
        yield _Panel(id="panel")


@pytest.mark.asyncio
async def test_a_ticking_panel_repaints_without_laying_the_screen_out_until_it_wraps() -> None:
    """A clock or a count changing in place, or gaining a digit that still fits, repaints
    the panel only; text that takes another number of lines lays out, so the panel grows
    and shrinks."""
    app = MetricsApp()
    async with app.run_test(size=(30, 10)) as pilot:
        panel = app.query_one(_Panel)
        panel.show("active 1s  steps 0/1")
        await pilot.pause()
        panel.show("active 2s  steps 0/1")
        assert not panel._layout_required  # Textual's flag: a reflow is pending
        await pilot.pause()
        assert "active 2s" in str(panel.render())
        assert panel.size.height == 1
        panel.show("active 12s  steps 0/1")  # a digit more, still one line
        assert not panel._layout_required
        await pilot.pause()
        assert "active 12s" in str(panel.render())
        panel.show("active 12s  steps 0/1 and a much longer line that wraps")
        assert panel._layout_required
        await pilot.pause()
        assert panel.size.height == 2
        panel.show("active 13s  steps 0/1")  # back to one line
        assert panel._layout_required
        await pilot.pause()
        assert panel.size.height == 1
