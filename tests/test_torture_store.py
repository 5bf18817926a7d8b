"""A quick pass of ``benchmarks/torture_store.py`` (one trial per scenario); the script
itself runs many trials and prints the figures."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent


def _torture() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "torture_store", REPO / "benchmarks" / "torture_store.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["torture_store"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "scenario", ["double-sighup", "double-sigterm", "kill-runner", "read-only", "damaged"]
)
def test_quick_torture(scenario: str) -> None:
    tally = _torture().run_scenario(scenario, trials=1, orphan_wait=0.5)
    assert tally.trials == 1
    assert (tally.tracebacks, tally.orphans, tally.wrong_exits, tally.stuck) == (0, 0, 0, 0), (
        tally.notes
    )


@pytest.mark.parametrize("scenario", ["journal-deleted", "journal-replaced"])
def test_quick_torture_journal_gone(scenario: str) -> None:
    """The run stops, exit 2, with a message naming the store and no traceback."""
    tally = _torture().run_scenario(scenario, trials=1)
    assert (tally.tracebacks, tally.wrong_exits, tally.stuck) == (0, 0, 0), tally.notes
