"""The store's schema and its migrations, numbered by ``PRAGMA user_version``.

``MIGRATIONS[i]`` takes a store from version ``i`` to ``i + 1``; a store is at version
``len(MIGRATIONS)`` once opened for writing. Every migration is idempotent (``IF NOT
EXISTS``, or a check before ``ALTER TABLE``), because stores made before versioning have
``user_version`` 0 and some or all of the tables already.

To change the schema, append a function to ``MIGRATIONS`` — never edit one that has
shipped (see docs/architecture.md, "How to add … a schema change"). A store whose version
is newer than this Quarterdeck knows is refused: an older program must not write rows a
newer one cannot read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from quarterdeck.core.journal.store_errors import GuardedConnection, StoreError

RUNS_EVENTS_SIGNALS = (
    """CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    workflow TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    workflow_path TEXT NOT NULL DEFAULT '',
    definition TEXT NOT NULL DEFAULT '',
    workdir TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    inputs TEXT NOT NULL DEFAULT '{}',
    started_by TEXT NOT NULL DEFAULT '',
    pid INTEGER,
    host TEXT NOT NULL DEFAULT '',
    heartbeat REAL
)""",
    "CREATE INDEX IF NOT EXISTS runs_started ON runs(started_at)",
    """CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts REAL NOT NULL,
    type TEXT NOT NULL,
    stage TEXT,
    step TEXT,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS signals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    target TEXT,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    data TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    consumed_at REAL,
    outcome TEXT
)""",
    "CREATE INDEX IF NOT EXISTS signals_run ON signals(run_id, id)",
)

ALERT_GROUPS = (
    """CREATE TABLE IF NOT EXISTS alert_groups (
    group_key TEXT PRIMARY KEY,
    run_id TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    notifications INTEGER NOT NULL DEFAULT 1
)""",
)

SNAPSHOTS = (
    """CREATE TABLE IF NOT EXISTS snapshots (
    run_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    head TEXT NOT NULL,
    format INTEGER NOT NULL,
    data TEXT NOT NULL,
    digest TEXT NOT NULL
)""",
)

Migration = Callable[[GuardedConnection], None]


def _statements(statements: Sequence[str]) -> Migration:
    def migrate(conn: GuardedConnection) -> None:
        for sql in statements:
            conn.execute(sql)

    return migrate


def _add_column(table: str, column: str, decl: str) -> Migration:
    """``ALTER TABLE … ADD COLUMN`` unless the column is there (SQLite has no IF NOT EXISTS
    for columns, and a store may have it from a build made before versions)."""

    def migrate(conn: GuardedConnection) -> None:
        columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in columns:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")

    return migrate


MIGRATIONS: list[Migration] = [
    _statements(RUNS_EVENTS_SIGNALS),  # v1: runs, events, signals (the store before versions)
    _statements(ALERT_GROUPS),  # v2: the Alertmanager intake's alert groups
    _add_column("events", "hash", "TEXT"),  # v3: events hash-chained (tamper evidence)
    _add_column("runs", "owner", "TEXT"),  # v4: the claim (one runner per run) ...
    _add_column("runs", "lease_until", "REAL"),  # v5: ... and its lease
    _add_column("runs", "definition_sha256", "TEXT"),  # v6: the validated definition's hash
    # v7: that definition's data as JSON, so a resume need not parse the YAML again
    # (core/journal/definition_data.py)
    _add_column("runs", "definition_data", "TEXT"),
    # v8: a stopped run's folded state, so resume and show fold only the events after it
    # (core/journal/snapshot.py)
    _statements(SNAPSHOTS),
]


def latest() -> int:
    return len(MIGRATIONS)


def version(conn: GuardedConnection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def refuse_newer(path: Path, found: int) -> None:
    if found > latest():
        raise StoreError(
            f"the store {path} has schema version {found}, newer than this Quarterdeck "
            f"knows (up to {latest()})",
            hint="a newer Quarterdeck wrote it: upgrade Quarterdeck, or pass --store to use "
            "another store",
            path=path,
            kind="newer-schema",
        )


def migrate(conn: GuardedConnection, path: Path) -> int:
    """Bring the store to the latest version in one write transaction; returns it.

    ``BEGIN IMMEDIATE`` takes the write lock before the version is read again, so two
    processes opening an old store at once migrate it once.
    """
    found = version(conn)
    refuse_newer(path, found)
    if found == latest():
        return found
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = version(conn)
        refuse_newer(path, found)
        for number in range(found, latest()):
            MIGRATIONS[number](conn)
            conn.execute(f"PRAGMA user_version = {number + 1}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return latest()
