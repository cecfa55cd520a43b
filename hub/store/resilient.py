"""A `databases.Database` whose long-lived tasks recover from a lost PostgreSQL connection."""

from __future__ import annotations

import contextlib
from typing import Any

import databases
from asyncpg.pool import PoolConnectionProxy
from databases.core import Connection


class Database(databases.Database):
    """`databases.Database`, except that a task whose connection died is given a fresh one.

    `databases` keeps one connection per task. When the link to PostgreSQL drops while a
    transaction begins, commits or rolls back, it leaves that task holding the dead connection
    (its use count is never brought back to zero), and every later statement of the task fails
    with "connection has been released back to the pool". Short tasks (API requests) end and
    take the dead connection with them; long-lived ones (the history and notification writers,
    the bus consumers, the progress flusher) would fail for good after one outage. Here a task's
    connection is dropped as soon as it is known dead outside a transaction, so the next
    statement takes a live one from the pool.
    """

    def connection(self) -> Connection:
        """The task's connection; a new one if the one it holds is dead."""
        current: Connection | None = self._connection
        if current is not None and not current._transaction_stack and _is_dead(current):
            self._connection = None
        return super().connection()


def _is_dead(connection: Connection) -> bool:
    """Does this `databases` connection hold a pooled asyncpg connection that is gone?"""
    raw: Any = getattr(connection._connection, "_connection", None)
    if not isinstance(raw, PoolConnectionProxy):
        return False  # not acquired, or SQLite (no pool, no link to lose)
    inner = raw._con  # None once the pool took the connection back
    if inner is None:
        return True
    if not inner.is_closed():
        return False
    # Closed but still checked out: terminating it hands its slot back to the pool.
    with contextlib.suppress(Exception):
        inner.terminate()
    return True
