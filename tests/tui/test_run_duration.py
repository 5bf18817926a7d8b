"""One run duration everywhere: Home, ``runs --json`` and ``show --json`` agree, for a run
with a retried step and a pause: its active time (``RunState.active_time`` says what it
measures), so the 7 s pause is not counted.

The journal is written to a real store with fixed times; as in a real run, the row's start
and end are recorded a few milliseconds apart from the journal's run.started/run.finished,
which is how the views used to disagree (each read its own pair of times).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable

from quarterdeck.core.durations import format_duration
from quarterdeck.core.journal.events import Event
from quarterdeck.core.journal.statuses import RunStatus
from quarterdeck.core.journal.store import Store
from quarterdeck.screens.home import HomeScreen
from tests.helpers import cli
from tests.tui.conftest import wait_until

T0 = 1_700_000_000.0
RUN = "20231114-221320-0002"


def seed(db: Path) -> None:
    with Store(db) as store:
        store.create_run(
            RUN,
            workflow="flaky",
            title="Flaky",
            workflow_path="",
            definition="name: flaky\nstages: []\n",
            workdir=str(db.parent),
            inputs={},
            started_by="alice",
            started_at=T0,
        )
        journal = [
            (0.004, "run.started", None, None, {"workflow": "flaky", "started_by": "alice"}),
            (0.010, "stage.started", "check", None, {}),
            (0.020, "step.started", "check", "probe", {"attempt": 1, "uses": "shell"}),
            (0.520, "step.retrying", "check", "probe", {"attempt": 1, "error": "no marker"}),
            (2.520, "step.started", "check", "probe", {"attempt": 2, "uses": "shell"}),
            (2.600, "run.paused", None, None, {"by": "alice"}),
            (9.600, "run.unpaused", None, None, {"by": "alice"}),
            (9.900, "step.finished", "check", "probe", {"status": "succeeded", "attempt": 2}),
            (9.910, "stage.finished", "check", None, {"status": "succeeded"}),
            (9.917, "run.finished", None, None, {"status": "succeeded"}),
        ]
        for seq, (at, type_, stage, step, data) in enumerate(journal, 1):
            store.append(Event(type_, RUN, stage, step, data, T0 + at, seq))
        store.set_status(RUN, RunStatus.SUCCEEDED, finished_at=T0 + 9.921)


@pytest.mark.asyncio
async def test_home_runs_and_show_agree_on_a_runs_duration(project: Path, make_app: Any) -> None:
    db = project / "qd.db"
    seed(db)

    runs = cli("runs", "--json", "--store", str(db))
    assert runs.returncode == 0, runs.stderr
    (listed,) = json.loads(runs.stdout)
    shown = cli("show", RUN, "--json", "--store", str(db))
    assert shown.returncode == 0, shown.stderr
    active = 9.921 - 7.0  # the pause (2.600 → 9.600) is left out; the retry's gap is not
    assert listed["duration"] == json.loads(shown.stdout)["duration"] == pytest.approx(active)

    app = make_app(store_path=db, now=lambda: T0 + 3600)
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, HomeScreen), what="home")
        table = app.screen.query_one("#recent", DataTable)
        await wait_until(pilot, lambda: table.row_count == 1, what="the run on Home")
        took = str(table.get_row_at(0)[4])
    assert took == format_duration(active)

    text = cli("show", RUN, "--store", str(db))
    assert f"({format_duration(active)})" in text.stdout
