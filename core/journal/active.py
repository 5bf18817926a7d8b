"""Run durations for listings (Home, History, ``runs``) without folding whole journals.

A run's duration is its active time (:meth:`RunState.active_time`): only the events that
move a run in or out of standing still (paused, waiting on an approval, interrupted) are
read, in one query for all the listed runs, so a listing stays cheap and agrees with
``show``, which folds the whole journal.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from quarterdeck.core.journal.events import Event, EventType
from quarterdeck.core.journal.state import RunState

_HOLDING = (
    EventType.RUN_STARTED,
    EventType.RUN_RESUMED,
    EventType.RUN_PAUSED,
    EventType.RUN_UNPAUSED,
    EventType.RUN_FINISHED,
    EventType.RUN_INTERRUPTED,
    EventType.APPROVAL_REQUESTED,
    EventType.APPROVAL_DECIDED,
)


def run_durations(store: Any, rows: Iterable[Any], now: float) -> dict[str, float]:
    """Each row's active time, by run id: the row's start and end (or ``now``) less the
    time its journal says the run stood still."""
    rows = list(rows)
    if not rows:
        return {}
    states = {row.id: RunState(row.id) for row in rows}
    ids = ",".join("?" * len(states))
    kinds = ",".join("?" * len(_HOLDING))
    cursor = store.conn.execute(
        "SELECT run_id, seq, ts, type, stage, step, data FROM events"
        f" WHERE run_id IN ({ids}) AND type IN ({kinds}) ORDER BY run_id, seq",
        [*states, *(str(k) for k in _HOLDING)],
    )
    for r in cursor:
        states[r[0]].apply(Event(r[3], r[0], r[4], r[5], json.loads(r[6]), r[2], r[1]))
    return {
        row.id: states[row.id].active_time(row.started_at, row.finished_at, now) for row in rows
    }
