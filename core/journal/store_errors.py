"""Store failures as messages for people: which store, what went wrong, what to check.

Every SQL statement the journal runs goes through :class:`GuardedConnection`, so a
damaged page, a read-only mount, a full disk or a lock held too long reaches the CLI as a
:class:`StoreError` (exit 2, or 130 for a run that stays resumable) naming the store,
never as a traceback. :class:`StoreError` is also a ``sqlite3.OperationalError`` carrying
the original ``sqlite_errorname``, so code that retries on a busy store still sees one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from quarterdeck.core.errors import ExitCode, QuarterdeckError

# sqlite error name prefix -> (what happened, what to check); the first match wins
_KINDS: tuple[tuple[str, str, str], ...] = (
    (
        "SQLITE_CORRUPT",
        "is damaged ({cause})",
        "check it with `sqlite3 {path} 'PRAGMA integrity_check'`; restore it from a backup "
        "or pass --store to use another",
    ),
    (
        "SQLITE_NOTADB",
        "is not a Quarterdeck store, or its first page is damaged ({cause})",
        "is --store / $QUARTERDECK_HOME pointing at the right file? restore it from a backup "
        "or pass --store to use another",
    ),
    (
        "SQLITE_READONLY",
        "is read-only ({cause})",
        "check the permissions of the file and its folder and whether the disk is mounted "
        "read-only; `runs` and `show` still read it",
    ),
    (
        "SQLITE_FULL",
        "cannot grow: the disk is full ({cause})",
        "free space on the disk holding it (`df {folder}`)",
    ),
    (
        "SQLITE_BUSY",
        "is locked by another process ({cause})",
        "another process has held its write lock for over 10 s: look for a stuck "
        "quarterdeck or sqlite3 process using it (`fuser {path}`)",
    ),
    (
        "SQLITE_LOCKED",
        "is locked ({cause})",
        "look for a stuck quarterdeck or sqlite3 process using it (`fuser {path}`)",
    ),
    (
        "SQLITE_CANTOPEN",
        "cannot be opened ({cause})",
        "check that {folder} exists and is readable and writable, or pass --store",
    ),
    (
        "SQLITE_IOERR",
        "failed with an I/O error ({cause})",
        "check the disk and its mount (`dmesg`); the file may have been removed or the "
        "disk detached",
    ),
)


class StoreError(QuarterdeckError, sqlite3.OperationalError):
    """The journal could not be read or written; names the store and what to check."""

    exit_code = ExitCode.INVALID

    def __init__(
        self, message: str, *, hint: str | None = None, path: Path | str = "", kind: str = ""
    ) -> None:
        super().__init__(message, hint=hint)
        self.path = str(path)
        self.kind = kind  # the sqlite error name (SQLITE_FULL, …) or a word of ours
        self.sqlite_errorname = kind
        self.sqlite_errorcode = 0

    @classmethod
    def of(cls, path: Path | str, exc: sqlite3.Error) -> StoreError:
        """A person's message for ``exc`` met on the store at ``path``."""
        if isinstance(exc, StoreError):
            return exc
        name = str(getattr(exc, "sqlite_errorname", "") or "")
        cause = str(exc) or name or type(exc).__name__
        folder = str(Path(path).parent)
        for prefix, what, hint in _KINDS:
            if name.startswith(prefix) or (not name and prefix == _guess(cause)):
                fmt = {"cause": cause, "path": path, "folder": folder}
                error = cls(
                    f"the store {path} {what.format(**fmt)}",
                    hint=hint.format(**fmt),
                    path=path,
                    kind=name or prefix,
                )
                error.sqlite_errorcode = int(getattr(exc, "sqlite_errorcode", 0) or 0)
                return error
        return cls(
            f"the store {path} failed: {cause}",
            hint="pass --store to use another store; run with --verbose for details",
            path=path,
            kind=name,
        )


def _guess(message: str) -> str:
    """The error name for a message (sqlite3 raises some errors without one)."""
    text = message.lower()
    for needle, name in (
        ("malformed", "SQLITE_CORRUPT"),
        ("not a database", "SQLITE_NOTADB"),
        ("readonly", "SQLITE_READONLY"),
        ("read-only", "SQLITE_READONLY"),
        ("disk is full", "SQLITE_FULL"),
        ("is locked", "SQLITE_BUSY"),
        ("unable to open", "SQLITE_CANTOPEN"),
        ("disk i/o", "SQLITE_IOERR"),
    ):
        if needle in text:
            return name
    return ""


class GuardedCursor:
    """A cursor whose reads map sqlite errors (a damaged page shows up mid-iteration)."""

    def __init__(self, cursor: sqlite3.Cursor, path: Path) -> None:
        self._cursor = cursor
        self._path = path

    def fetchone(self) -> Any:
        try:
            return self._cursor.fetchone()
        except sqlite3.Error as exc:
            raise StoreError.of(self._path, exc) from exc

    def fetchall(self) -> list[Any]:
        try:
            return self._cursor.fetchall()
        except sqlite3.Error as exc:
            raise StoreError.of(self._path, exc) from exc

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class GuardedConnection:
    """The store's connection: every statement's sqlite error becomes a StoreError."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.raw = conn
        self.path = path

    def execute(self, sql: str, args: Any = ()) -> GuardedCursor:
        try:
            return GuardedCursor(self.raw.execute(sql, args), self.path)
        except sqlite3.Error as exc:
            raise StoreError.of(self.path, exc) from exc

    def executemany(self, sql: str, rows: Any) -> GuardedCursor:
        try:
            return GuardedCursor(self.raw.executemany(sql, rows), self.path)
        except sqlite3.Error as exc:
            raise StoreError.of(self.path, exc) from exc

    def executescript(self, sql: str) -> None:
        try:
            self.raw.executescript(sql)
        except sqlite3.Error as exc:
            raise StoreError.of(self.path, exc) from exc

    @property
    def in_transaction(self) -> bool:
        return self.raw.in_transaction

    def close(self) -> None:
        self.raw.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)
