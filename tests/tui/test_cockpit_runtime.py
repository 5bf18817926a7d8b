"""The cockpit freezes startup's objects out of the GC while it runs, and thaws them on exit.

A full collection scanned every object startup made (modules, classes, styles, widgets):
under a 50,000 lines/s flood one stalled the UI 635-657 ms (benchmarks/tui_flood.py).
The freeze is process-wide: a process that runs several apps (tests, one after another)
must get collectable objects back when an app exits, or each app would stay in memory.
"""

from __future__ import annotations

import gc
from typing import Any

import pytest

from quarterdeck.screens.home import HomeScreen
from tests.tui.conftest import wait_until


@pytest.mark.asyncio
async def test_startup_objects_are_frozen_while_up_and_thawed_on_exit(make_app: Any) -> None:
    assert gc.get_freeze_count() == 0
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, HomeScreen), what="home")
        await wait_until(pilot, lambda: gc.get_freeze_count() > 0, what="the freeze")
    assert gc.get_freeze_count() == 0
