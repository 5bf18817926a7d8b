"""Snapshots of the cockpit at 80×24 and 160×48: fixed journal, clock, ids; no blink.

Regenerate with ``pytest tests/tui/test_snapshots.py --snapshot-update`` and look at the
SVGs before committing them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable

from quarterdeck.core.journal.store import Store
from quarterdeck.screens.approval import ApprovalScreen
from quarterdeck.screens.dashboard import DashboardScreen
from quarterdeck.screens.history import HistoryScreen
from quarterdeck.tui.app import QuarterdeckApp
from quarterdeck.workflows.catalog import CatalogEntry
from tests.tui.conftest import TINY, wait_until
from tests.tui.seed import NOW, RUN_FAIL, RUN_GATE, RUN_LIVE, seed

SIZES = [(80, 24), (160, 48)]


@pytest.fixture
def snap_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., QuarterdeckApp]:
    monkeypatch.setenv("HOME", str(tmp_path))  # headers show the store as ~/qd.db anywhere
    wf = tmp_path / "tiny.yaml"
    wf.write_text(TINY)
    store = tmp_path / "qd.db"
    seed(store, wf)
    entries = [
        CatalogEntry(
            "tiny", wf, "project", "Tiny release", "A small release with an approval gate"
        ),
        CatalogEntry(
            "broken",
            tmp_path / "broken.yaml",
            "user",
            "",
            "",
            "broken.yaml:3:1: unknown field 'stagez'",
        ),
    ]

    def make(**kwargs: Any) -> QuarterdeckApp:
        app = QuarterdeckApp(
            store_path=store,
            actor="alice",
            now=lambda: NOW,
            catalog=lambda: entries,
            blink=False,
            **kwargs,
        )
        app.animation_level = "none"
        return app

    return make


def settled(check: Callable[[QuarterdeckApp], bool]) -> Callable[[Pilot[Any]], Any]:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, QuarterdeckApp)
        await wait_until(pilot, lambda: check(app), what="the snapshot's data")
        await app.workers.wait_for_complete()
        await pilot.pause()
        # a DataTable sizes its columns for the rows just added when the app next goes idle
        # (Textual's own flag; there is no public one): on a busy machine a screenshot taken
        # before that shows the columns still as wide as their headers
        await wait_until(
            pilot,
            lambda: not any(t._require_update_dimensions for t in app.screen.query(DataTable)),
            what="the tables' column widths",
        )
        await pilot.pause()

    return run_before


def _dash(app: QuarterdeckApp, run_id: str) -> DashboardScreen | None:
    """The run's dashboard once it has folded the whole seeded journal."""
    with Store(app.store_path) as store:
        seq = store.last_seq(run_id)
    for screen in app.screen_stack:
        if (
            isinstance(screen, DashboardScreen)
            and screen.run_id == run_id
            and screen.state.last_seq >= seq
            and screen.workflow is not None
        ):
            return screen
    return None


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_home(snap_compare: Any, snap_app: Any, size: tuple[int, int]) -> None:
    def ready(app: QuarterdeckApp) -> bool:
        home = app.screen
        return bool(getattr(home, "rows", None)) and "tiny" in getattr(home, "_details", {})

    assert snap_compare(snap_app(), terminal_size=size, run_before=settled(ready))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_running_dashboard(snap_compare: Any, snap_app: Any, size: tuple[int, int]) -> None:
    assert snap_compare(
        snap_app(attach=RUN_LIVE),
        terminal_size=size,
        run_before=settled(lambda app: _dash(app, RUN_LIVE) is not None),
    )


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_approval_modal(snap_compare: Any, snap_app: Any, size: tuple[int, int]) -> None:
    def ready(app: QuarterdeckApp) -> bool:
        return _dash(app, RUN_GATE) is not None and isinstance(app.screen, ApprovalScreen)

    assert snap_compare(snap_app(attach=RUN_GATE), terminal_size=size, run_before=settled(ready))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_failed_run(snap_compare: Any, snap_app: Any, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, QuarterdeckApp)
        await wait_until(pilot, lambda: _dash(app, RUN_FAIL) is not None, what="the run")
        await pilot.press("e")
        await app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(snap_app(attach=RUN_FAIL), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_history(snap_compare: Any, snap_app: Any, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        await wait_until(pilot, lambda: bool(getattr(app.screen, "rows", None)), what="home")
        await pilot.press("h")
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, HistoryScreen) and len(app.screen.rows) == 4,
            what="the history",
        )
        await app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(snap_app(), terminal_size=size, run_before=run_before)
