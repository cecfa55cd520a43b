"""SQLite connections kept open between statements instead of one thread and file per statement."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiosqlite
from databases import Database
from databases.backends.sqlite import SQLitePool

#: Idle connections kept open; more released at once are closed as before.
KEEP_IDLE = 8


class ReusingPool(SQLitePool):
    """`databases`' SQLite "pool" opens a connection, with its own thread, for every statement a
    task runs without holding one (every API request's reads, every health probe) and closes it
    after: two extra trips through the event loop and a thread start per statement, which an
    overloaded loop turns into seconds. This one hands a released connection to the next
    statement; one released inside a transaction (a task cut short) is closed, never reused."""

    def __init__(self, pool: SQLitePool, keep: int = KEEP_IDLE) -> None:
        self._database = pool._database
        self._memref = pool._memref
        self._options = pool._options
        self._idle: list[aiosqlite.Connection] = []
        self._keep = keep
        self.opened = 0

    async def acquire(self) -> aiosqlite.Connection:
        """An idle connection, or a new one."""
        while self._idle:
            connection = self._idle.pop()
            if connection._connection is not None:  # still open
                return connection
        self.opened += 1
        return await super().acquire()

    async def release(self, connection: aiosqlite.Connection) -> None:
        """Keep the connection for the next statement, or close it."""
        reusable = connection._connection is not None and not connection.in_transaction
        if reusable and len(self._idle) < self._keep:
            self._idle.append(connection)
            return
        await super().release(connection)

    async def close(self) -> None:
        """Close every idle connection (their threads end)."""
        idle, self._idle = self._idle, []
        for connection in idle:
            with contextlib.suppress(Exception):
                await super().release(connection)


class SQLiteDatabase(Database):
    """A SQLite `databases.Database` whose statements reuse connections (see ReusingPool)."""

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self.pool: ReusingPool | None = None

    def reuse_connections(self) -> None:
        """From now on, released connections are kept for later statements."""
        if self.pool is None and not _in_memory(self._backend._pool._database):
            self.pool = ReusingPool(self._backend._pool)
            self._backend._pool = self.pool

    async def disconnect(self) -> None:
        """Disconnect, then close the kept connections."""
        await super().disconnect()
        if self.pool is not None:
            await asyncio.shield(self.pool.close())


def _in_memory(database: str) -> bool:
    """An in-memory database lives and dies with its connection: those are never reused."""
    return database in ("", ":memory:") or "mode=memory" in database
