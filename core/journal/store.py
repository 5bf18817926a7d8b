"""The journal: runs, their events and the signals sent to them, in SQLite (WAL).

Every event is committed before the runner acts on it. Signals (approve, reject,
pause, unpause, cancel, skip-gate, retry) are rows any process may write; the runner
polls and consumes them. ``synchronous=NORMAL`` in WAL mode survives a killed process
(the durability the runner promises); a power cut may lose the last few events.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import math
import os
import sqlite3
import time
import urllib.parse
import weakref
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from quarterdeck.core.errors import InvalidInput
from quarterdeck.core.journal import schema
from quarterdeck.core.journal.definition_data import encode as definition_json
from quarterdeck.core.journal.events import Event
from quarterdeck.core.journal.statuses import RUN_ACTIVE, RUN_DONE, RunStatus
from quarterdeck.core.journal.store_errors import GuardedConnection, StoreError
from quarterdeck.core.lean import lean


def _hostname() -> str:
    """This host's name, as run claims record it (``socket`` loads only when needed:
    ``runs`` and ``show`` never claim a run)."""
    import socket

    return socket.gethostname()


SIGNAL_KINDS = frozenset(
    {
        "approve",
        "reject",
        "pause",
        "unpause",
        "cancel",
        "skip-gate",
        "retry",
        "note",
        "rollback",
        "incident",
    }  # incident rows are written consumed (quarterdeck.core.incidents.record.record)
)
HEARTBEAT_STALE_SECONDS = 30.0
LEASE_SECONDS = HEARTBEAT_STALE_SECONDS  # a runner renews it every few seconds


class ClaimLost(Exception):
    """This runner no longer owns the run: it must stop acting at once."""


def _claim_refusal(
    run_id: str,
    owner: str,
    status: str,
    pid: int | None,
    host: str,
    heartbeat: float | None,
    current: str | None,
    lease_until: float | None,
) -> str | None:
    """Why ``owner`` may not take ``run_id`` over, or None when it may."""
    if status in RUN_DONE:
        return f"run {run_id} is {status}; there is nothing to resume"
    if current == owner or status not in RUN_ACTIVE:
        return None  # ended (interrupted, failed, rejected): its runner is done with it
    if host == _hostname() and pid is not None:
        alive = pid == os.getpid() or _pid_alive(pid)  # a runner in this very process lives
    else:
        until = lease_until or ((heartbeat or 0.0) + HEARTBEAT_STALE_SECONDS)
        alive = time.time() < until
    if not alive:
        return None
    return f"run {run_id} is already being run by pid {pid} on {host} ({status}); not resuming it"


# -- tamper evidence (schema) ---------------------------------------------------------------
# Each event row carries ``hash`` = sha256(previous event's hash + the row's journaled
# bytes), chained per run from GENESIS: editing, inserting or deleting an event in the
# middle breaks every later link (``quarterdeck verify``, core/journal/integrity.py).
GENESIS = "0" * 64
# built once (``json.dumps`` with options builds an encoder per call); the same bytes as
# ``json.dumps(x, separators=(",", ":"), ensure_ascii=False)`` and, for the stored data,
# ``json.dumps(x, default=str, separators=(",", ":"))``
_CANONICAL = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_DATA_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"))
_C_ENCODER = json.encoder.c_make_encoder  # type: ignore[attr-defined]
_ASCII = json.encoder.encode_basestring_ascii


def _data_json(value: Any) -> str:
    """``_DATA_ENCODER.encode(value)``, as one call into the C encoder: what ``encode``
    does for a container, without its two Python-level calls (three per event, on every
    step's path). A fresh cycle check per call, as ``encode`` makes."""
    if _C_ENCODER is None or isinstance(value, str):
        return _DATA_ENCODER.encode(value)
    return "".join(_C_ENCODER({}, str, _ASCII, None, ":", ",", False, False, True)(value, 0))


_STR = json.encoder.encode_basestring  # the string encoder of ``ensure_ascii=False``


def _canonical(row: Sequence[Any]) -> str:
    """``_CANONICAL(list(row))``, spelled out for the row the writer makes (strings, an
    int ``seq``, a finite float ``ts``): the same encoder per string, ``repr`` per number,
    as ``json`` does. Any other row goes through ``json`` itself."""
    run_id, seq, ts, type_, stage, step, data = row
    if (
        isinstance(run_id, str)  # a str subclass (the event type's StrEnum) encodes as
        and type(seq) is int  # its text in json too; a bool is an int json spells `true`
        and type(ts) is float
        and math.isfinite(ts)
        and isinstance(type_, str)
        and (stage is None or isinstance(stage, str))
        and (step is None or isinstance(step, str))
        and isinstance(data, str)
    ):
        where = (
            f"{'null' if stage is None else _STR(stage)},{'null' if step is None else _STR(step)}"
        )
        return f"[{_STR(run_id)},{seq!r},{ts!r},{_STR(type_)},{where},{_STR(data)}]"
    return _CANONICAL(list(row))


# the C scanner behind ``json.loads`` (its decoder's, for ``json.loads``'s own options)
_SCAN: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _load_data(text: Any) -> Any:
    """``json.loads(text)`` of a row's data, as one call into the C scanner for the
    compact JSON the writer stores (``json.loads`` adds a few Python-level calls per row,
    most of what reading a large run's events costs); anything else, ``json.loads``."""
    try:
        value, end = _SCAN(text, 0)
    except (StopIteration, TypeError, ValueError):
        return json.loads(text)  # its own result or error, e.g. for leading whitespace
    return value if end == len(text) else json.loads(text)


def event_hash(prev: str, row: Sequence[Any]) -> str:
    """The link for one journaled row ``(run_id, seq, ts, type, stage, step, data)``;
    ``data`` is the exact JSON text stored, so anyone can recompute it from the row
    (``json.dumps(list(row), separators=(",", ":"), ensure_ascii=False)``)."""
    canonical = _canonical(row) if len(row) == 7 else _CANONICAL(list(row))
    return hashlib.sha256(f"{prev}\n{canonical}".encode()).hexdigest()


def definition_digest(text: str) -> str:
    """The hash kept with a run of the definition it was validated with at its start."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@lean(frozen=True)
class RunRow:
    id: str
    workflow: str
    title: str
    workflow_path: str
    definition: str
    workdir: str
    status: RunStatus
    started_at: float
    finished_at: float | None
    inputs: dict[str, Any]
    started_by: str
    pid: int | None
    host: str
    heartbeat: float | None

    def summary(self) -> dict[str, Any]:
        """The ``runs --json`` shape (contract)."""
        return {
            "id": self.id,
            "workflow": self.workflow,
            "status": self.status,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "started_by": self.started_by,
        }


@lean(frozen=True)
class Signal:
    id: int
    run_id: str
    kind: str
    target: str | None
    actor: str
    reason: str
    data: dict[str, Any]
    created_at: float


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


def _identity(path: Path) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_dev, info.st_ino


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child still "exists" to kill(); it is dead for our purposes
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(") ", 1)[1].split(" ", 1)[0] != "Z"
    except (OSError, IndexError):
        return True


# Stores still open when the process exits are closed by an exit handler: closing the last
# connection checkpoints the WAL into the database file, so a store copied after a command
# (a backup, a bug report) is whole. The console script leaves with os._exit after running
# exit handlers, which would otherwise skip the connections' finalizers.
_open_stores: weakref.WeakSet[Store] = weakref.WeakSet()


def _close_open_stores() -> None:
    for store in list(_open_stores):
        try:
            store.close()
        except (sqlite3.Error, StoreError):  # another thread's connection: its owner closes it
            pass


atexit.register(_close_open_stores)


class Store:
    """One connection to the journal. Not thread-safe: open one per thread."""

    def __init__(self, path: Path | str, *, readonly: bool = False) -> None:
        """Open (and create or migrate) the store; ``readonly`` never writes a byte.

        A read-only store is opened with ``mode=ro`` (``immutable=1`` when even the WAL
        index cannot be read that way, as on a read-only copy); a missing one reads as
        empty instead of being created.
        """
        self.path = Path(path)
        self.readonly = readonly
        self._identity: tuple[int, int] | None = None
        memory = str(path) == ":memory:"
        if readonly and not memory:
            self.conn = self._open_readonly()
            return
        if not memory:
            try:
                if not self.path.parent.exists():
                    self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                if not self.path.exists():  # 0600; SQLite gives its -wal/-shm the same mode
                    os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
            except OSError as exc:
                raise InvalidInput(
                    f"cannot create the store directory {self.path.parent}: {exc.strerror}",
                    hint="set QUARTERDECK_HOME or pass --store to a writable place",
                ) from None
        try:
            raw = sqlite3.connect(str(path), timeout=10.0, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError.of(self.path, exc) from exc
        self.conn = GuardedConnection(raw, self.path)
        if not memory:
            _open_stores.add(self)
        try:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA busy_timeout=10000")
            schema.migrate(self.conn, self.path)
        except BaseException:
            raw.close()
            raise
        if not memory:
            self._identity = _identity(self.path)

    def _open_readonly(self) -> GuardedConnection:
        if not self.path.exists():  # nothing journaled yet: an empty store, made in memory
            return self._open_readonly_empty()
        quoted = urllib.parse.quote(str(self.path.resolve()))
        last: StoreError | None = None
        for flags in ("mode=ro", "mode=ro&immutable=1"):
            try:
                raw = sqlite3.connect(f"file:{quoted}?{flags}", uri=True, isolation_level=None)
            except sqlite3.Error as exc:
                last = StoreError.of(self.path, exc)
                continue
            conn = GuardedConnection(raw, self.path)
            try:
                conn.execute("PRAGMA busy_timeout=10000")
                schema.refuse_newer(self.path, schema.version(conn))
                tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            except StoreError as exc:
                raw.close()
                if exc.kind.startswith(("SQLITE_CANTOPEN", "SQLITE_READONLY")):
                    last = exc  # the WAL index cannot be shared read-only: read as immutable
                    continue
                raise
            if "runs" not in tables:
                raw.close()
                if tables:
                    raise StoreError(
                        f"the store {self.path} is not a Quarterdeck store (it has no runs table)",
                        hint="is --store / $QUARTERDECK_HOME pointing at the right file?",
                        path=self.path,
                        kind="SQLITE_NOTADB",
                    )
                return self._open_readonly_empty()
            return conn
        assert last is not None
        raise last

    def _open_readonly_empty(self) -> GuardedConnection:
        conn = GuardedConnection(sqlite3.connect(":memory:", isolation_level=None), self.path)
        schema.migrate(conn, self.path)
        return conn

    def check_file(self) -> None:
        """Raise if the store's file was deleted or replaced since it was opened.

        SQLite keeps writing to the file it opened, so a journal deleted or swapped under a
        running run would otherwise "succeed" into a file nobody can read.
        """
        if self._identity is None:
            return
        try:
            now = _identity(self.path)
        except FileNotFoundError:
            what = "was deleted"
        else:
            if now == self._identity:
                return
            what = "was replaced by another file"
        raise StoreError(
            f"the store {self.path} {what} while this process was writing to it",
            hint="restore the file, then `quarterdeck resume` the run; check what removed it "
            "(a cleanup job, a sync tool)",
            path=self.path,
            kind="replaced",
        )

    def check_against(self, other: Store) -> None:
        """Check commits against the file ``other`` opened: a second connection of the
        same writer then also stops on a journal replaced before it was opened itself."""
        if other._identity is not None:
            self._identity = other._identity

    def set_durability(self, durability: str) -> None:
        """``full`` fsyncs every commit (survives a power cut); ``normal`` is the default
        (WAL + ``synchronous=NORMAL``: survives a killed process, not a power cut)."""
        level = "FULL" if durability == "full" else "NORMAL"
        self.conn.execute(f"PRAGMA synchronous={level}")

    def set_auto_checkpoint(self, pages: int) -> None:
        """Copy the WAL back into the file when a commit leaves it over ``pages`` pages (0:
        never from this connection; someone else checkpoints, see :meth:`checkpoint`)."""
        self.conn.execute(f"PRAGMA wal_autocheckpoint={int(pages)}")

    def checkpoint(self) -> None:
        """Copy what the WAL holds back into the file, as far as readers allow, without
        waiting for anyone (PASSIVE): the WAL stops growing and is reused from its start."""
        self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def set_busy_timeout(self, ms: int) -> None:
        """How long a statement waits for another process's write lock (the writer thread
        waits briefly per attempt and retries the whole batch itself)."""
        self.conn.execute(f"PRAGMA busy_timeout={int(ms)}")

    def close(self) -> None:
        _open_stores.discard(self)
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # runs -----------------------------------------------------------------------------

    def create_run(
        self,
        run_id: str,
        *,
        workflow: str,
        title: str,
        workflow_path: str,
        definition: str,
        workdir: str,
        inputs: dict[str, Any],
        started_by: str,
        started_at: float,
        owner: str | None = None,
        definition_data: Any = None,
    ) -> None:
        """``definition_data``: the validated definition's data and positions (``(data,
        SourceMap.values)``), kept as JSON so that a resume does not parse the text again
        (:mod:`.definition_data`)."""
        digest = definition_digest(definition)
        compact = None if definition_data is None else definition_json(digest, *definition_data)
        self.conn.execute(
            "INSERT INTO runs (id, workflow, title, workflow_path, definition, workdir, status,"
            " started_at, inputs, started_by, pid, host, heartbeat, owner, lease_until,"
            " definition_sha256, definition_data)"
            " VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                workflow,
                title,
                workflow_path,
                definition,
                workdir,
                started_at,
                json.dumps(inputs, default=str),
                started_by,
                os.getpid(),
                _hostname(),
                time.time(),
                owner,
                time.time() + LEASE_SECONDS,
                digest,
                compact,
            ),
        )

    def definition_kept(self, run_id: str) -> tuple[str | None, str | None]:
        """The hash of the definition the run started with and its data as kept (schema v7;
        :func:`.definition_data.decode` reads it); Nones where an older store has neither."""
        columns = {c[1] for c in self.conn.execute("PRAGMA table_info(runs)")}
        if "definition_sha256" not in columns:
            return None, None
        data = "definition_data" if "definition_data" in columns else "NULL"
        row = self.conn.execute(
            f"SELECT definition_sha256, {data} FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        return (None, None) if row is None else (row[0], row[1])

    # claims (issue 12: one runner per run) ----------------------------------------------

    def claim_run(self, run_id: str, owner: str) -> None:
        """Make ``owner`` the one runner of ``run_id``: a compare-and-swap in one transaction.

        Refused (:class:`InvalidInput`, exit 2) while another owner lives: on this host
        its pid is alive, on another its lease has not expired. A finished run has nothing
        to resume. ``BEGIN IMMEDIATE`` takes the write lock before reading, so two
        resumers are serialized and the second sees the first's claim.
        """
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            row = self.conn.execute(
                "SELECT status, pid, host, heartbeat, owner, lease_until FROM runs WHERE id = ?",
                (run_id,),
            ).fetchone()
            if row is None:
                raise InvalidInput(f"no run {run_id!r} in {self.path}")
            why = _claim_refusal(run_id, owner, *row)
            if why is not None:
                raise InvalidInput(
                    why, hint=f"watch it with `quarterdeck attach {run_id}`, or stop it first"
                )
            now = time.time()
            self.conn.execute(
                "UPDATE runs SET pid = ?, host = ?, heartbeat = ?, owner = ?, lease_until = ?,"
                " status = 'running', finished_at = NULL WHERE id = ?",
                (os.getpid(), _hostname(), now, owner, now + LEASE_SECONDS, run_id),
            )
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def commit_batch(
        self,
        run_id: str,
        owner: str | None,
        events: Sequence[Event],
        ops: Sequence[Callable[[Store], object]] = (),
    ) -> None:
        """Commit events and the row updates that go with them, fenced by the claim.

        One ``BEGIN IMMEDIATE`` transaction: when ``owner`` no longer holds the run (another
        runner took it over) nothing is written and :class:`ClaimLost` is raised.
        """
        self.check_file()
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            # the owner and the chain's head in one statement, inside the transaction: the
            # head read is the last written
            found = self.conn.execute(
                "SELECT owner, (SELECT hash FROM events WHERE run_id = ?1"
                " ORDER BY seq DESC LIMIT 1) FROM runs WHERE id = ?1",
                (run_id,),
            ).fetchone()
            current, head = found if found is not None else (None, None)
            if owner is not None and current is not None and current != owner:
                raise ClaimLost(f"run {run_id} was taken over by another runner ({current})")
            if events:
                heads = {run_id: head or GENESIS} if found is not None else {}
                self.conn.executemany(
                    "INSERT INTO events (run_id, seq, ts, type, stage, step, data, hash)"
                    " VALUES (?,?,?,?,?,?,?,?)",
                    self._chained(events, heads),
                )
            for op in ops:
                op(self)
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    def owner_of(self, run_id: str) -> str | None:
        row = self.conn.execute("SELECT owner FROM runs WHERE id = ?", (run_id,)).fetchone()
        return None if row is None else row[0]

    def heartbeat(self, run_id: str, owner: str | None = None) -> bool:
        """Renew the lease; False when ``owner`` no longer holds the run (taken over)."""
        now = time.time()
        if owner is None:
            self.conn.execute("UPDATE runs SET heartbeat = ? WHERE id = ?", (now, run_id))
            return True
        cur = self.conn.execute(
            "UPDATE runs SET heartbeat = ?, lease_until = ? WHERE id = ? AND owner = ?",
            (now, now + LEASE_SECONDS, run_id, owner),
        )
        return cur.rowcount == 1

    def set_status(self, run_id: str, status: RunStatus, finished_at: float | None = None) -> None:
        self.conn.execute(
            "UPDATE runs SET status = ?, finished_at = ? WHERE id = ?",
            (status, finished_at, run_id),
        )

    def _row(self, row: Sequence[Any]) -> RunRow:
        return RunRow(
            id=row[0],
            workflow=row[1],
            title=row[2],
            workflow_path=row[3],
            definition=row[4],
            workdir=row[5],
            status=RunStatus(row[6]),
            started_at=row[7],
            finished_at=row[8],
            inputs=json.loads(row[9]),
            started_by=row[10],
            pid=row[11],
            host=row[12],
            heartbeat=row[13],
        )

    _RUN_COLS = (
        "id, workflow, title, workflow_path, definition, workdir, status, started_at,"
        " finished_at, inputs, started_by, pid, host, heartbeat"
    )

    def get_run(self, run_ref: str) -> RunRow:
        """A run by id or unique id prefix; :class:`InvalidInput` when there is none."""
        rows = self.conn.execute(
            f"SELECT {self._RUN_COLS} FROM runs WHERE id = ?", (run_ref,)
        ).fetchall()
        if not rows:
            rows = self.conn.execute(
                f"SELECT {self._RUN_COLS} FROM runs WHERE id LIKE ? ORDER BY started_at DESC",
                (run_ref.replace("%", "").replace("_", r"\_") + "%",),
            ).fetchall()
        if not rows:
            raise InvalidInput(
                f"no run {run_ref!r} in {self.path}", hint="`quarterdeck runs` lists the runs"
            )
        if len(rows) > 1:
            ids = ", ".join(r[0] for r in rows[:5])
            raise InvalidInput(f"{run_ref!r} matches several runs ({ids}); give more of the id")
        return self._reconcile(self._row(rows[0]))

    def list_runs(
        self, limit: int = 50, workflow: str | None = None, status: str | None = None
    ) -> list[RunRow]:
        sql = f"SELECT {self._RUN_COLS} FROM runs"
        where: list[str] = []
        args: list[Any] = []
        if workflow:
            where.append("workflow = ?")
            args.append(workflow)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at DESC, id DESC LIMIT ?"
        args.append(limit if status is None else limit * 10)
        rows = [self._reconcile(self._row(r)) for r in self.conn.execute(sql, args)]
        if status:
            rows = [r for r in rows if r.status == status][:limit]
        return rows

    def _reconcile(self, run: RunRow) -> RunRow:
        """A run whose executing process is gone is ``interrupted`` (and resumable)."""
        if run.status not in RUN_ACTIVE:
            return run
        dead = False
        if run.host == _hostname() and run.pid is not None:
            dead = run.pid != os.getpid() and not _pid_alive(run.pid)
        elif run.heartbeat is not None:
            dead = time.time() - run.heartbeat > HEARTBEAT_STALE_SECONDS
        if not dead:
            return run
        if not self.readonly:  # reading never writes; the next writer records it
            self.conn.execute(
                "UPDATE runs SET status = 'interrupted' WHERE id = ? AND status = ?",
                (run.id, run.status),
            )
        return RunRow(**{**run.__dict__, "status": RunStatus.INTERRUPTED})

    def workflow_names(self) -> list[str]:
        """Every workflow that has a run, sorted (the history's filter)."""
        rows = self.conn.execute("SELECT DISTINCT workflow FROM runs").fetchall()
        return sorted(r[0] for r in rows)

    def is_live(self, run_id: str) -> bool:
        return self.get_run(run_id).status in RUN_ACTIVE

    # events ---------------------------------------------------------------------------

    def _head(self, run_id: str) -> str:
        """The hash of the run's last event, read each time: another process (a resume, a
        second viewer's writer) may have appended since."""
        row = self.conn.execute(
            "SELECT hash FROM events WHERE run_id = ? ORDER BY seq DESC LIMIT 1", (run_id,)
        ).fetchone()
        return (row[0] if row else None) or GENESIS

    def _chained(
        self, events: Iterable[Event], heads: dict[str, str] | None = None
    ) -> list[tuple[Any, ...]]:
        """Rows with their hash links (chained within the batch too), from each run's head
        (given in ``heads`` when already read in this transaction)."""
        heads = {} if heads is None else heads
        rows: list[tuple[Any, ...]] = []
        for e in events:
            row = (e.run_id, e.seq, e.ts, e.type, e.stage, e.step, _data_json(e.data))
            link = event_hash(heads.get(e.run_id) or self._head(e.run_id), row)
            heads[e.run_id] = link
            rows.append((*row, link))
        return rows

    def append(self, event: Event) -> None:
        """Commit one event (its ``seq`` and ``ts`` already set)."""
        self.check_file()
        rows = self._chained([event])
        self.conn.execute(
            "INSERT INTO events (run_id, seq, ts, type, stage, step, data, hash)"
            " VALUES (?,?,?,?,?,?,?,?)",
            rows[0],
        )

    def append_many(self, events: Iterable[Event]) -> None:
        """Commit several events in one transaction."""
        rows = self._chained(events)
        if not rows:
            return
        self.check_file()
        self.conn.execute("BEGIN")
        try:
            self.conn.executemany(
                "INSERT INTO events (run_id, seq, ts, type, stage, step, data, hash)"
                " VALUES (?,?,?,?,?,?,?,?)",
                rows,
            )
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def raw_events(self, run_id: str) -> list[tuple[Any, ...]]:
        """The journaled rows as stored ``(run_id, seq, ts, type, stage, step, data, hash)``,
        for checking the chain (core/journal/integrity.py)."""
        return self.conn.execute(
            "SELECT run_id, seq, ts, type, stage, step, data, hash FROM events"
            " WHERE run_id = ? ORDER BY seq",
            (run_id,),
        ).fetchall()

    def last_seq(self, run_id: str) -> int:
        row = self.conn.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM events WHERE run_id = ?", (run_id,)
        ).fetchone()
        return int(row[0])

    def events(self, run_id: str, after: int = 0, limit: int | None = None) -> list[Event]:
        sql = (
            "SELECT run_id, seq, ts, type, stage, step, data FROM events"
            " WHERE run_id = ? AND seq > ? ORDER BY seq"
        )
        args: list[Any] = [run_id, after]
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return self.events_of(self.conn.execute(sql, args))

    @staticmethod
    def events_of(rows: Iterable[Sequence[Any]]) -> list[Event]:
        """The events of rows read as ``events`` or ``raw_events`` reads them (so ``show``
        reads a run's rows once, to check their chain and to fold them)."""
        load = _load_data
        # positional (type, run_id, stage, step, data, ts, seq): ~20% quicker than keywords
        return [Event(r[3], r[0], r[4], r[5], load(r[6]), r[2], r[1]) for r in rows]

    # signals --------------------------------------------------------------------------

    def send_signal(
        self,
        run_id: str,
        kind: str,
        *,
        actor: str,
        target: str | None = None,
        reason: str = "",
        data: dict[str, Any] | None = None,
    ) -> int:
        if kind not in SIGNAL_KINDS:
            raise InvalidInput(f"unknown signal {kind!r}; one of {', '.join(sorted(SIGNAL_KINDS))}")
        cur = self.conn.execute(
            "INSERT INTO signals (run_id, kind, target, actor, reason, data, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (run_id, kind, target, actor, reason, json.dumps(data or {}), time.time()),
        )
        return int(cur.lastrowid or 0)

    def pending_signals(self, run_id: str, after_id: int = 0) -> list[Signal]:
        rows = self.conn.execute(
            "SELECT id, run_id, kind, target, actor, reason, data, created_at FROM signals"
            " WHERE run_id = ? AND id > ? AND consumed_at IS NULL ORDER BY id",
            (run_id, after_id),
        ).fetchall()
        return [Signal(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[7]) for r in rows]

    def consume_signal(self, signal_id: int, outcome: str) -> None:
        self.conn.execute(
            "UPDATE signals SET consumed_at = ?, outcome = ? WHERE id = ?",
            (time.time(), outcome, signal_id),
        )

    def signal_outcome(self, signal_id: int) -> str | None:
        row = self.conn.execute("SELECT outcome FROM signals WHERE id = ?", (signal_id,)).fetchone()
        return None if row is None else row[0]
