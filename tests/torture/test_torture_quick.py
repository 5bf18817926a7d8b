"""A quick subset of ``benchmarks/torture.py``: a few trials of each fault scenario.

The full figures come from ``benchmarks/torture.py --trials 200``; here every scenario (and
every kind of wait) runs once or twice at the quick pace (a 12-step workflow, 1-2 s waits),
real processes on real stores, and every broken promise fails the test. The trials are
independent (own directory, store and processes) and mostly wait on their processes, so
they run side by side, once per module; each scenario's test then judges its own tally.
"""

from __future__ import annotations

import importlib.util
import random
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.helpers import REPO

TRIALS = {"kill": 2, "waiting": 5, "resumers": 1, "lock": 1, "disk-full": 1}  # waiting: 5 kinds
PARALLEL = 4


def _torture() -> ModuleType:
    spec = importlib.util.spec_from_file_location("torture", REPO / "benchmarks" / "torture.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["torture"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tallies() -> dict[str, Any]:
    """Every trial of every scenario, side by side; one tally per scenario."""
    torture = _torture()
    torture.PACE = torture.QUICK
    jobs = [(name, n) for name, count in TRIALS.items() for n in range(count)]

    def trial(job: tuple[str, int]) -> tuple[str, Any]:
        name, n = job
        tally = torture.Tally()
        with tempfile.TemporaryDirectory(prefix=f"qd-torture-{name}-") as root:
            torture.SCENARIOS[name](Path(root), n, random.Random(7 + n), tally)
        return name, tally

    out: dict[str, Any] = {name: torture.Tally() for name in TRIALS}
    with ThreadPoolExecutor(PARALLEL) as pool:
        for name, tally in pool.map(trial, jobs):
            total = out[name]
            for counter in ("trials", "ok", "rerun", "gaps", "double", "bad_end", "stuck"):
                setattr(total, counter, getattr(total, counter) + getattr(tally, counter))
            total.tracebacks += tally.tracebacks
            total.skipped = total.skipped or tally.skipped
            total.notes += tally.notes
    return out


@pytest.mark.parametrize("scenario", list(TRIALS))
def test_no_promise_breaks(scenario: str, tallies: dict[str, Any]) -> None:
    tally = tallies[scenario]
    if tally.skipped:
        pytest.skip(tally.skipped)  # printed: disk-full needs root for its tmpfs
    trials = TRIALS[scenario]
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
