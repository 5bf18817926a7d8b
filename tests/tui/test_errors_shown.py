"""Errors where people look: a failed step's log shows its error in full (wrapped to the
pane), and the header keeps the run id whole, eliding the title and error in the middle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Log, Static

from quarterdeck.screens.dashboard import DashboardScreen
from quarterdeck.tui.launch import load, load_context
from quarterdeck.tui.widgets.status import elide_middle
from tests.tui.conftest import wait_until

pytestmark = pytest.mark.asyncio

LOUD = """\
name: loud
title: A release workflow whose title is much longer than any header has room for
stages:
  - id: check
    steps:
      - id: probe
        uses: http.request
        with: {url: "http://127.0.0.1:9/a-long-path/that-keeps-going/and-going/to-the-end", timeout: 1s}
"""


def dashboard(app: Any) -> DashboardScreen:
    screen = app.screen
    assert isinstance(screen, DashboardScreen)
    return screen


@pytest.mark.parametrize("size", [(80, 24), (200, 60)], ids=["80x24", "200x60"])
async def test_a_failed_step_shows_its_full_error_in_its_log(
    make_app: Any, project: Path, size: tuple[int, int]
) -> None:
    (project / ".quarterdeck" / "workflows" / "loud.yaml").write_text(LOUD)
    app = make_app()
    async with app.run_test(size=size) as pilot:
        run_id = app.launch(load("loud", load_context()), {})
        await wait_until(pilot, lambda: isinstance(app.screen, DashboardScreen), what="dash")
        await wait_until(pilot, lambda: dashboard(app).state.status == "failed", what="fail")
        await pilot.pause(0.3)
        error = dashboard(app).state.step("probe").error
        assert error and len(error) > 60
        lines = dashboard(app).query_one("#log", Log).lines
        assert "probe │ ✗" in "\n".join(lines)
        # the whole error is in the log, however long (wrapped, not cut)
        assert "".join(error.split()) in "".join("".join(lines).split()), (error, lines)
        room = dashboard(app).query_one("#log", Log).content_size.width
        error_lines = [line for line in lines if "✗" in line or line.startswith("  ")]
        assert all(len(line) <= room for line in error_lines), (room, error_lines)
        bar = str(dashboard(app).query_one("#run-bar", Static).render())
        assert run_id in bar
        assert "A release workflow whose title is much longer" not in bar  # title elided


async def test_elide_middle_keeps_both_ends() -> None:
    assert elide_middle("short", 10) == "short"
    cut = elide_middle("deploy failed: host web3 refused the key", 21)
    assert len(cut) == 21 and cut.startswith("deploy fai") and cut.endswith("the key")
