"""Keys that cannot apply on Home and History say why (a toast), as on the dashboard and
the war room: a key that does nothing silently looks broken."""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import DataTable, OptionList

from quarterdeck.screens.history import HistoryScreen
from quarterdeck.screens.home import HomeScreen
from tests.tui.conftest import wait_until


def toasts(app: Any) -> list[str]:
    return [f"{n.title}: {n.message}" for n in app._notifications]


@pytest.mark.asyncio
async def test_enter_on_home_without_runs_says_there_are_none(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, HomeScreen), what="home")
        app.screen.query_one("#recent", DataTable).focus()
        await pilot.pause()
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: "Open: unavailable: there are no runs yet" in toasts(app),
            timeout=5.0,
            what=f"a toast saying why (got {toasts(app)})",
        )


@pytest.mark.asyncio
async def test_enter_on_an_empty_catalog_says_so(make_app: Any) -> None:
    app = make_app(catalog=lambda: [])
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, HomeScreen), what="home")
        app.screen.query_one("#catalog", OptionList).focus()
        await pilot.pause()
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: "Open: unavailable: there are no workflows in the catalog" in toasts(app),
            timeout=5.0,
            what=f"a toast saying why (got {toasts(app)})",
        )


@pytest.mark.asyncio
async def test_enter_on_an_empty_history_says_no_run_matches(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, HomeScreen), what="home")
        await pilot.press("h")
        await wait_until(pilot, lambda: isinstance(app.screen, HistoryScreen), what="history")
        app.screen.query_one("#history", DataTable).focus()
        await pilot.pause()
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: "Open: unavailable: no run matches the filters" in toasts(app),
            timeout=5.0,
            what=f"a toast saying why (got {toasts(app)})",
        )
