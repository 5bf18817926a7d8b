"""The key footer rebuilds (a screen layout: every widget repainted) only when the keys it
shows changed: Textual's rebuilt on every request, and a burst of requests rebuilt it each
time. Its keys are drawn with the screen's first layout, and a key turning available or
greyed out is redrawn in place."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

from quarterdeck.screens.dashboard import DashboardScreen
from quarterdeck.tui.widgets.footer import KeysFooter
from tests.tui.conftest import wait_until
from tests.tui.seed import NOW, RUN_OK, seed
from tests.tui.test_log_flood import count_layouts


@pytest.mark.asyncio
async def test_the_dashboard_footer_is_not_rebuilt_when_its_keys_did_not_change(
    make_app: Any, project: Path
) -> None:
    seed(project / "qd.db", project / ".quarterdeck/workflows/tiny.yaml")
    app = make_app(attach=RUN_OK, now=lambda: NOW)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, DashboardScreen), what="dash")
        dash = app.screen
        assert isinstance(dash, DashboardScreen)
        await wait_until(
            pilot,
            lambda: dash.workflow is not None and dash.state.status == "succeeded",
            what="the run and its definition",
        )
        footer = dash.query_one(Footer)
        await wait_until(pilot, lambda: bool(footer.query(FooterKey)), what="the keys")
        await pilot.pause()
        keys = list(footer.query(FooterKey))
        layouts = count_layouts(dash)
        dash.refresh_bindings()  # as Textual does on focus changes, and a tick on a change
        dash.refresh_bindings()
        await pilot.pause()
        await pilot.pause()
        assert list(footer.query(FooterKey)) == keys  # the same widgets: not rebuilt
        assert layouts == []


class KeysApp(App[None]):
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("p", "pause", "Pause"),
        Binding("x", "other", "Other"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.pausable = True
        self.rebuilt = 0

    def compose(self) -> ComposeResult:
        yield KeysFooter()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "pause":
            return True if self.pausable else None  # None: shown greyed out
        return True

    def action_pause(self) -> None: ...

    def action_other(self) -> None: ...


def count_rebuilds() -> tuple[list[bool], Any]:
    """Count Footer rebuilds (every key removed and mounted again); call the second item
    to stop counting."""
    original = Footer.recompose
    built: list[bool] = []

    async def counted(self: Footer) -> None:
        built.append(True)
        await original(self)

    Footer.recompose = counted  # type: ignore[method-assign]

    def stop() -> None:
        Footer.recompose = original  # type: ignore[method-assign]

    return built, stop


@pytest.mark.asyncio
async def test_a_burst_of_requests_greying_a_key_redraws_it_in_place() -> None:
    app = KeysApp()
    async with app.run_test(size=(80, 10)) as pilot:
        footer = app.query_one(KeysFooter)
        await wait_until(pilot, lambda: bool(footer.query(FooterKey)), what="the keys")
        before = {k.action: k for k in footer.query(FooterKey)}
        assert not before["pause"].has_class("-disabled")
        built, stop = count_rebuilds()
        try:
            app.pausable = False
            for _ in range(3):
                app.screen.refresh_bindings()
            await pilot.pause()
            await pilot.pause()
            after = {k.action: k for k in footer.query(FooterKey)}
            assert after == before  # the same widgets
            assert after["pause"].has_class("-disabled")  # the change is drawn
            assert after["pause"]._disabled  # and a click on it rings the bell
            app.pausable = True
            app.screen.refresh_bindings()
            await pilot.pause()
            await pilot.pause()
        finally:
            stop()
        assert not before["pause"].has_class("-disabled") and not before["pause"]._disabled
        assert built == []  # never rebuilt: no screen layout
        assert footer._flags is not None


class SituationalApp(KeysApp):
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "pause":
            return self.pausable  # False: the key leaves the footer (None would grey it)
        return True


@pytest.mark.asyncio
async def test_a_key_leaving_the_footer_rebuilds_it_once() -> None:
    app = SituationalApp()
    async with app.run_test(size=(80, 10)) as pilot:
        footer = app.query_one(KeysFooter)
        await wait_until(pilot, lambda: bool(footer.query(FooterKey)), what="the keys")
        built, stop = count_rebuilds()
        try:
            app.pausable = False
            for _ in range(3):
                app.screen.refresh_bindings()
            await pilot.pause()
            await pilot.pause()
        finally:
            stop()
        assert [k.action for k in footer.query(FooterKey)] == ["other", "command_palette"]
        assert built == [True]  # once for the burst


@pytest.mark.asyncio
async def test_the_keys_are_drawn_with_the_screens_first_layout() -> None:
    """Textual's Footer composed empty and built its keys after the first refresh: one more
    mount and screen layout, which the first key on a just-opened dashboard waited for."""
    built, stop = count_rebuilds()
    try:
        app = KeysApp()
        async with app.run_test(size=(80, 10)) as pilot:
            footer = app.query_one(KeysFooter)
            assert [k.action for k in footer.query(FooterKey)] == [
                "pause",
                "other",
                "command_palette",
            ]
            await pilot.pause()
            await pilot.pause()
            assert [k.action for k in footer.query(FooterKey)] == [
                "pause",
                "other",
                "command_palette",
            ]
    finally:
        stop()
    assert built == []
