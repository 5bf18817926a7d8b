"""Numbers that can be true: a step's time is the sum of its attempts (not the back-off
between them), the run's row ends when its journal does, the token rate is a windowed
count that cannot exceed what was used, and a count matches the list beside it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.app import App, ComposeResult

from quarterdeck.core.journal.events import EventType
from quarterdeck.core.journal.parts import Switch
from quarterdeck.core.journal.state import RunState, fold
from quarterdeck.core.journal.statuses import StepStatus
from quarterdeck.tui.widgets.panels import PersonaPanel, token_rates, tokens_last
from tests.helpers import run_workflow

RETRIED = """\
name: retried
stages:
  - id: s
    steps:
      - id: flaky
        uses: shell
        retry: {max_attempts: 2, backoff: constant, initial_delay: 1s}
        with: {run: "test -f marker || (touch marker; exit 1)", shell: true}
"""


def test_a_retried_step_counts_its_attempts_not_the_back_off(tmp_path: Path) -> None:
    ran = run_workflow(tmp_path, RETRIED)
    assert ran.state.status == "succeeded"
    state = fold(ran.state.id, ran.store.events(ran.state.id))
    step = state.step("flaky")
    assert step is not None and step.attempts == 2
    assert step.finished_at is not None and step.started_at is not None
    assert step.finished_at - step.started_at >= 1.0  # the back-off is in the wall time
    assert step.duration is not None and step.duration < 1.0  # but not in the step's time


def test_the_row_ends_when_the_journal_does(tmp_path: Path) -> None:
    ran = run_workflow(tmp_path, RETRIED)
    row = ran.store.get_run(ran.state.id)
    finished = [e for e in ran.store.events(row.id) if e.type == EventType.RUN_FINISHED]
    assert row.finished_at == finished[-1].ts
    assert fold(row.id, ran.store.events(row.id)).finished_at == row.finished_at


def test_the_token_rate_never_exceeds_the_tokens_used() -> None:
    series = [(100.0, 100), (100.5, 121)]  # 221 tokens within a 1.3 s run
    assert tokens_last(series, 101.3) == 221
    rates = token_rates(series, 100.0, 101.3)
    assert max(rates) <= 221 and sum(rates) == 221
    # a slice that is past keeps its height as the run goes on (no "peak" drifting down)
    later = token_rates(series, 100.0, 131.3)
    assert sum(later) == 221 and max(later) == max(rates)
    assert tokens_last(series, 200.0) == 0  # nothing in the last minute


@pytest.mark.asyncio
async def test_the_switch_count_matches_the_list() -> None:
    class Host(App[None]):
        def compose(self) -> ComposeResult:
            yield PersonaPanel(id="persona")

    state = RunState("r")
    hops = ["backend-engineer", "devops-engineer", "testing-specialist", "devops-engineer"]
    before = None
    for to in hops:
        state.switches.append(Switch(from_=before, to=to, stage=None, held_seconds=None, ts=0.0))
        before = to
    state.persona = hops[-1]
    app = Host()
    async with app.run_test() as pilot:
        panel = app.query_one(PersonaPanel)
        panel.render_state(state)
        await pilot.pause()
        text = str(panel._last)
        assert "switches (4, last 3):" in text
        assert text.count("→") == 3


def _error_rate(state: RunState, value: float) -> None:
    from quarterdeck.core.journal.parts import StageState, StepState

    stage = StageState("triage")
    stage.steps["error_rate"] = StepState(
        "error_rate",
        "triage",
        uses="prometheus.query",
        status=StepStatus.SUCCEEDED,  # the query ran fine, whatever the service is doing
        outputs={
            "value": value,
            "series": [{"metric": {}, "values": [[0, value]]}],
            "passed": True,
        },
        started_at=1.0,
        finished_at=2.0,
    )
    state.stages["triage"] = stage


@pytest.mark.parametrize(
    ("params", "verdict"),
    [
        ({}, "neutral"),  # no threshold: no green tick on the incident's own bad signal
        ({"threshold": 0.05}, "failing"),  # 0.25 is not <= 0.05, though the step succeeded
        ({"threshold": 0.5}, "passing"),
        ({"threshold": 0.1, "comparison": ">="}, "passing"),
    ],
)
def test_health_colours_by_threshold_not_by_step_status(
    params: dict[str, float], verdict: str
) -> None:
    from quarterdeck.tui.widgets.warroom import health_series

    state = RunState("r")
    _error_rate(state, 0.25)
    (series,) = health_series(state, {"error_rate": params})
    assert series.status == verdict
    if "threshold" in params:
        assert f"{params['threshold']:g}" in series.text  # the threshold is shown
    assert "at 00:00:02" in series.text  # a reading, with the time it was taken


def test_a_running_health_check_updates_its_panel_poll_by_poll(tmp_path: Path) -> None:
    """The war room's health row follows a health watch while it runs (from its live
    lines), not only once the step has finished."""
    from quarterdeck.core.journal.statuses import StepStatus
    from quarterdeck.tui.widgets.warroom import health_series
    from tests.helpers import make_runner
    from tests.servers import HTTPService

    with HTTPService() as svc:
        wf = f"""\
name: watch
stages:
  - id: s
    steps:
      - id: watch
        uses: http.health_check
        with: {{url: "{svc.url}/health", window: 2.0, interval: 0.25}}
"""
        runner = make_runner(tmp_path, wf)
        seen: list[tuple[str, int]] = []

        def look(_event: object) -> None:
            step = runner.state.step("watch")
            if step is not None and step.status == StepStatus.RUNNING:
                (series,) = health_series(runner.state, {"watch": {}})
                seen.append((series.status, len(series.values)))

        runner.subscribers.append(look)
        state = asyncio.run(runner.run())
    assert state.status == "succeeded"
    counts = sorted({n for status, n in seen if status == "running"})
    assert len(counts) >= 3 and counts[-1] >= 4, seen  # it grew while the step ran
