"""Write transactions on the store that check before they write.

``BEGIN IMMEDIATE`` takes the write lock first, so what a transaction reads (an
incident's state, an alert group's owner) cannot change before it writes.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

from quarterdeck.core.journal.store import Store

BEGIN_ATTEMPTS = 50
BEGIN_PAUSE = 0.05


@contextmanager
def immediate(store: Store) -> Iterator[None]:
    """One ``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on any error).

    A store busy beyond its busy timeout is tried a little longer before the error
    (a :class:`~quarterdeck.core.journal.store_errors.StoreError` naming the store) is
    raised.
    """
    conn = store.conn
    for attempt in range(BEGIN_ATTEMPTS):
        try:
            conn.execute("BEGIN IMMEDIATE")
            break
        except sqlite3.OperationalError:
            if attempt == BEGIN_ATTEMPTS - 1:
                raise
            time.sleep(BEGIN_PAUSE)
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
