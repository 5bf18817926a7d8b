"""Alert groups: which run handles each Alertmanager group (the intake's table).

The table is created by the store's migrations (:mod:`quarterdeck.core.journal.schema`,
v2); :mod:`quarterdeck.core.incidents.intake` decides what a notification means.
"""

from __future__ import annotations

from quarterdeck.core.journal.store import Store


def group(store: Store, key: str) -> tuple[str, str] | None:
    """The group's run id and status (``firing``/``resolved``), or None if never seen."""
    row = store.conn.execute(
        "SELECT run_id, status FROM alert_groups WHERE group_key = ?", (key,)
    ).fetchone()
    return None if row is None else (str(row[0] or ""), str(row[1]))


def mark(store: Store, key: str, status: str, now: float) -> None:
    """Count one more notification of the group, now ``status``."""
    store.conn.execute(
        "UPDATE alert_groups SET status = ?, updated_at = ?,"
        " notifications = notifications + 1 WHERE group_key = ?",
        (status, now, key),
    )


def claim(store: Store, key: str, run_id: str, now: float) -> None:
    """Make ``run_id`` the group's run (inside the caller's write transaction)."""
    store.conn.execute(
        "INSERT INTO alert_groups (group_key, run_id, status, created_at, updated_at)"
        " VALUES (?, ?, 'firing', ?, ?) ON CONFLICT(group_key) DO UPDATE SET"
        " run_id = excluded.run_id, status = 'firing', updated_at = excluded.updated_at,"
        " notifications = notifications + 1",
        (key, run_id, now, now),
    )


def release(store: Store, key: str, run_id: str) -> None:
    """Forget a claim whose run could not start, so the next notification tries again."""
    store.conn.execute("DELETE FROM alert_groups WHERE group_key = ? AND run_id = ?", (key, run_id))
