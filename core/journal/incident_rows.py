"""Incident rows: people's incident actions, kept as signals written already consumed.

The incidents package decides what an action means and whether it is allowed
(:mod:`quarterdeck.core.incidents.record`); this module is the SQL for those rows.
"""

from __future__ import annotations

import json
from typing import Any

from quarterdeck.core.journal.store import Signal, Store

INCIDENT_KIND = "incident"


def incident_signals(store: Store, run_id: str, after: int = 0) -> list[Signal]:
    """Every incident row of a run (all are consumed), oldest first."""
    rows = store.conn.execute(
        "SELECT id, run_id, kind, target, actor, reason, data, created_at FROM signals"
        " WHERE run_id = ? AND kind = ? AND id > ? ORDER BY id",
        (run_id, INCIDENT_KIND, after),
    ).fetchall()
    return [Signal(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[7]) for r in rows]


def insert_incident_row(
    store: Store,
    run_id: str,
    action: str,
    *,
    actor: str,
    text: str,
    payload: dict[str, Any],
    ts: float,
    outcome: str,
) -> int:
    """Insert one incident row, consumed at once with ``outcome``; returns its id."""
    cur = store.conn.execute(
        "INSERT INTO signals (run_id, kind, target, actor, reason, data, created_at,"
        " consumed_at, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            run_id,
            INCIDENT_KIND,
            action,
            actor,
            text,
            json.dumps(payload, default=str),
            ts,
            ts,
            outcome,
        ),
    )
    return int(cur.lastrowid or 0)


def incident_runs(store: Store) -> list[tuple[str, int]]:
    """Each run with incident rows and its newest row's id (what changed since last read)."""
    rows = store.conn.execute(
        "SELECT run_id, MAX(id) FROM signals WHERE kind = ? GROUP BY run_id",
        (INCIDENT_KIND,),
    ).fetchall()
    return [(str(r[0]), int(r[1])) for r in rows]
