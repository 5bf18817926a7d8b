"""Home, under a run's screen, draws nothing until it is shown again.

Textual lays out and draws the screen just under the current one as well, so home's first
data (read in a thread), arriving right after ``attach`` or ``run`` opened a run's
dashboard, cost that run's first keys whole layouts of a screen nobody could see.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, OptionList

from quarterdeck.screens.dashboard import DashboardScreen
from quarterdeck.screens.home import HomeScreen
from tests.tui.conftest import project_catalog, wait_until
from tests.tui.seed import NOW, RUN_OK, seed


@pytest.mark.asyncio
async def test_home_data_arriving_under_a_run_waits_until_home_is_shown(
    make_app: Any, project: Path
) -> None:
    seed(project / "qd.db", project / ".quarterdeck/workflows/tiny.yaml")
    release = threading.Event()
    catalog = project_catalog(project)

    def held_catalog() -> Any:  # home's read, held until the dashboard is up
        release.wait(30)
        return catalog()

    app = make_app(attach=RUN_OK, now=lambda: NOW, catalog=held_catalog)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, DashboardScreen), what="dash")
        home = next(s for s in app.screen_stack if isinstance(s, HomeScreen))
        release.set()
        await wait_until(
            pilot,
            lambda: not any(w.group == "home-load" and not w.is_finished for w in app.workers),
            what="home's read, under the dashboard",
        )
        await pilot.pause()
        await pilot.pause()
        # nothing drawn (each update laid the unseen screen out)
        assert home.query_one("#recent", DataTable).row_count == 0
        assert home.query_one("#catalog", OptionList).option_count == 0
        app.pop_screen()
        await wait_until(
            pilot,
            lambda: (
                home.query_one("#catalog", OptionList).option_count > 0
                and home.query_one("#recent", DataTable).row_count > 0
            ),
            what="home's data, once shown",
        )
        assert [e.name for e in home.entries] == ["chatty", "flaky", "gated", "tiny"]
        assert RUN_OK in [r.id for r in home.rows]
