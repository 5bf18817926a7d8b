"""A quick subset of ``benchmarks/torture.py``: a few trials of each fault scenario.

The full figures come from ``benchmarks/torture.py --trials 200``; here every scenario runs
once or twice (real processes, real stores) and every broken promise fails the test.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.helpers import REPO


def _torture() -> ModuleType:
    spec = importlib.util.spec_from_file_location("torture", REPO / "benchmarks" / "torture.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["torture"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("scenario", "trials"),
    [("kill", 2), ("waiting", 5), ("resumers", 1), ("lock", 1), ("disk-full", 1)],
)
def test_no_promise_breaks(scenario: str, trials: int, tmp_path: Path) -> None:
    torture = _torture()
    tally = torture.run([scenario], trials, trials, seed=7)[scenario]
    if tally.skipped:
        pytest.skip(tally.skipped)  # printed: disk-full needs root for its tmpfs
    assert tally.trials == trials
    broken = {
        "re-run": tally.rerun,
        "gaps": tally.gaps,
        "double": tally.double,
        "bad end": tally.bad_end,
        "stuck": tally.stuck,
        "tracebacks": tally.tracebacks,
    }
    assert broken == dict.fromkeys(broken, 0), tally
    assert tally.ok == trials, tally.notes
