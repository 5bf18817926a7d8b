"""Keys like k9s and lazygit: j/k, `:` command mode, q backs out, one palette entry each."""

from __future__ import annotations

from typing import Any

import pytest
from textual.command import CommandPalette
from textual.widgets import OptionList

from quarterdeck.screens.confirm import ConfirmScreen
from quarterdeck.screens.home import HomeScreen
from quarterdeck.tui.commands import CockpitCommands
from tests.tui.conftest import wait_until


@pytest.mark.asyncio
async def test_j_and_k_move_in_lists(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        catalog = app.screen.query_one("#catalog", OptionList)
        await wait_until(pilot, lambda: catalog.option_count == 4, what="the catalog")
        catalog.focus()
        catalog.highlighted = 0
        await pilot.press("j", "j")
        assert catalog.highlighted == 2
        await pilot.press("k")
        assert catalog.highlighted == 1


@pytest.mark.asyncio
async def test_colon_opens_command_mode_with_one_entry_per_command(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, HomeScreen), what="home")
        names = [c.description for c, _ in CockpitCommands(app.screen)._entries()]
        assert names.count("Quit") == 1 and len(names) == len(set(names))
        assert {CockpitCommands} == app.COMMANDS  # none of Textual's built-ins
        await pilot.press("colon")
        await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette), what=":")
        await pilot.press(*"Quit")
        await wait_until(
            pilot,
            lambda: app.screen.query("CommandList").first().option_count == 1,
            what="one Quit",
        )


@pytest.mark.asyncio
async def test_q_backs_out_then_quits_from_home(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, HomeScreen), what="home")
        await pilot.press("h")  # history
        await wait_until(pilot, lambda: not isinstance(app.screen, HomeScreen), what="history")
        await pilot.press("q")
        await wait_until(pilot, lambda: isinstance(app.screen, HomeScreen), what="back home")
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("q")  # nothing runs here: quits at once
        await wait_until(pilot, lambda: not app.is_running, what="the app to exit")


@pytest.mark.asyncio
async def test_number_keys_jump_between_the_dashboard_panes(make_app: Any) -> None:
    from quarterdeck.screens.dashboard import DashboardScreen
    from tests.tui.test_flows import launch

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        launch(app, "chatty")
        await wait_until(pilot, lambda: isinstance(app.screen, DashboardScreen), what="dash")
        dash = app.screen
        await pilot.press("2")
        await pilot.pause()
        assert app.focused is dash.query_one("#log-panel").log_widget  # type: ignore[attr-defined]
        await pilot.press("1")
        await pilot.pause()
        assert app.focused is dash.query_one("#tree")
