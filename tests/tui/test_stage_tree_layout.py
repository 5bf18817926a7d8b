"""The stage tree repaints itself without laying the screen out unless its lines changed.

Textual's Tree asked for a screen layout (a repaint of every widget) on every focus change,
resize and added node; a just-opened dashboard queued several, and the first key pressed
waited behind them (benchmarks/tui_flood.py)."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult
from textual.widgets import Input

from quarterdeck.core.journal.parts import StageState, StepState
from quarterdeck.core.journal.state import RunState
from quarterdeck.tui.widgets.stage_tree import StageTree
from tests.tui.test_log_flood import count_layouts


def state(steps: list[str]) -> RunState:
    run = RunState("r")
    run.stages["build"] = StageState("build", steps={s: StepState(s, "build") for s in steps})
    return run


class TreeApp(App[None]):
    def compose(self) -> ComposeResult:
        yield StageTree(lambda: 0.0, id="tree")
        yield Input(id="other")


@pytest.mark.asyncio
async def test_focus_and_relabels_repaint_the_tree_and_only_new_lines_lay_out() -> None:
    app = TreeApp()
    async with app.run_test(size=(80, 20)) as pilot:
        tree = app.query_one(StageTree)
        tree.sync(state(["a", "b"]), 0)
        tree.focus()
        await pilot.pause()
        app.query_one("#other", Input).focus()  # settles the width its new labels take
        await pilot.pause()
        tree.focus()
        await pilot.pause()
        await pilot.pause()
        layouts = count_layouts(app.screen)
        app.query_one("#other", Input).focus()  # a style update of the tree, twice
        await pilot.pause()
        tree.focus()
        await pilot.pause()
        tree.sync(state(["a", "b"]), 1)  # same lines
        await pilot.pause()
        await pilot.pause()
        assert layouts == []
        assert tree.has_focus and tree.last_line == 3
        tree.sync(state(["a", "b", "c"]), 2)  # a new line: the virtual size grows
        await pilot.pause()
        await pilot.pause()
        assert tree.last_line == 4 and tree.virtual_size.height == 5
        node = tree.get_node_at_line(4)
        assert node is not None and node.data == ("step", "build", "c")
        assert layouts  # the scrollable size changed: laid out, as it must be
