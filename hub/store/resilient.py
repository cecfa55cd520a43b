"""A `databases.Database` for PostgreSQL that notices a silent link and whose long-lived tasks
recover from a lost connection."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncGenerator, Callable, Collection
from typing import Any, Literal

import asyncpg
import databases
from asyncpg.pool import PoolConnectionProxy
from databases.core import Connection, Transaction
from databases.interfaces import DatabaseBackend, Record
from sqlalchemy.sql import ClauseElement

from hub.store.errors import is_unavailable
from hub.store.watchdog import BUDGET_WALL_CAP, SILENT_S, Watchdog, within_loop_budget

Query = ClauseElement | str


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

    Every wait on the database is watched (`hub/store/watchdog.py`): when one lasts and a
    fresh connection gets no answer either, every pooled connection is terminated, so what
    waits on them fails at once as an outage instead of waiting for the kernel to give up.
    When the fresh connection is answered but the server has had the waiting connection's
    session idle for a while, that one connection's link is silent: it alone is terminated.
    """

    def __init__(self, url: str, *, timeout: float, **options: Any) -> None:
        options.setdefault("reset", _reset)
        super().__init__(url, timeout=timeout, **options)
        _quiet_pool_log()
        self.probe_timeout_s = timeout
        self.watchdog = Watchdog(self._answers, self._drop_pooled, pid_of=_server_pid, cut=_cut)

    def connection(self) -> Connection:
        """The task's connection; a new one if the one it holds is dead."""
        current: Connection | None = self._connection
        if current is not None and not current._transaction_stack and _is_dead(current):
            self._connection = None
        if self._global_connection is None and self._connection is None:
            self._connection = WatchedConnection(self, self._backend)
        return super().connection()

    def transaction(self, *, force_rollback: bool = False, **kwargs: Any) -> Transaction:
        """A transaction whose BEGIN, COMMIT and ROLLBACK are watched."""
        return WatchedTransaction(self.connection, force_rollback, self.watchdog, **kwargs)

    async def disconnect(self) -> None:
        """Stop a running probe, then close the pool."""
        await self.watchdog.close()
        await super().disconnect()

    async def _answers(self, pids: Collection[int]) -> set[int] | None:
        """Does the server answer a fresh connection within the connect timeout, counted in
        the event loop's free time (None if not)? Of `pids`, the sessions it has had idle, or idle in a transaction, for
        `SILENT_S` or more: nothing runs there for the client. An error from the server counts
        as an answer: it is there (and names no session)."""
        url = self.url
        opened: list[asyncpg.Connection] = []

        async def ask() -> set[int]:
            con = await asyncpg.connect(
                host=url.hostname, port=url.port, user=url.username,
                password=url.password, database=url.database,
                timeout=BUDGET_WALL_CAP * self.probe_timeout_s,
            )  # fmt: skip
            opened.append(con)
            if not pids:
                await con.fetchval("SELECT 1")
                return set()
            rows = await con.fetch(_IDLE_SESSIONS, list(pids), SILENT_S)
            return {row["pid"] for row in rows}

        try:
            # Timed in the loop's free time: a hub busy elsewhere is not a silent server.
            return await within_loop_budget(ask(), self.probe_timeout_s)
        except asyncpg.PostgresError:
            return set()
        except (OSError, TimeoutError, asyncpg.InterfaceError):
            return None
        finally:
            for con in opened:
                con.terminate()

    def _drop_pooled(self) -> None:
        """Terminate every connection the pool holds, in use or idle: the link they share
        does not answer. Statements waiting on them fail at once; the pool opens new ones."""
        pool = getattr(self._backend, "_pool", None)
        for holder in getattr(pool, "_holders", ()):
            holder.terminate()


# Connections whose session holds more than a transaction (a session advisory lock): only these
# get asyncpg's reset query (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL) when they go back
# to the pool. The hub keeps no other session state, and the query is a round trip on every
# release: one per statement made outside a held connection or transaction.
_KEEPS_STATE: weakref.WeakSet[asyncpg.Connection] = weakref.WeakSet()


def keeps_session_state(db: databases.Database) -> None:
    """The current task's connection now holds session state (see `_reset`)."""
    if isinstance(db, Database):
        inner = _raw(db.connection())
        if inner is not None:
            _KEEPS_STATE.add(inner)


async def _reset(con: asyncpg.Connection) -> None:
    """A connection going back to the pool (after asyncpg's own rollback of an open
    transaction): the full reset only for one marked by `keeps_session_state`."""
    if con in _KEEPS_STATE:
        _KEEPS_STATE.discard(con)
        query = con.get_reset_query()
        if query:
            await con.execute(query)


# Sessions of this user and database that the server has had waiting on the client for at
# least $2 seconds. Another user's sessions show no state (never matched); a pid behind a
# connection pooler names no session here (never matched either).
_IDLE_SESSIONS = """
SELECT pid FROM pg_stat_activity
WHERE pid = ANY($1::int[])
  AND datname = current_database() AND usename = current_user
  AND state IN ('idle', 'idle in transaction', 'idle in transaction (aborted)')
  AND clock_timestamp() - state_change >= make_interval(secs => $2)
"""


class _OwnedLock(asyncio.Lock):
    """A `databases` connection's query lock that knows which task holds it."""

    def __init__(self) -> None:
        super().__init__()
        self.owner: asyncio.Task[Any] | None = None

    async def acquire(self) -> Literal[True]:
        """Take the lock and note the task that holds it."""
        await super().acquire()
        self.owner = asyncio.current_task()
        return True

    def release(self) -> None:
        """Let the lock go."""
        self.owner = None
        super().release()


def _connection_of(link: Any) -> Any:
    """The `databases` connection behind a watched connection or transaction."""
    return getattr(link, "_connection", None) if isinstance(link, Transaction) else link


def _raw(link: Any) -> asyncpg.Connection | None:
    """The asyncpg connection a watched `databases` connection or transaction holds."""
    link = _connection_of(link)
    proxy: Any = getattr(getattr(link, "_connection", None), "_connection", None)
    if not isinstance(proxy, PoolConnectionProxy):
        return None
    inner: asyncpg.Connection | None = proxy._con
    return None if inner is None or inner.is_closed() else inner


def _server_pid(link: Any, task: asyncio.Task[Any] | None) -> int | None:
    """The server pid of the session behind a watched connection (None if it holds none, or
    if another task has its turn on it: `task` then waits for that task, not for the link, as
    when a connection shared by tasks streams rows to a slow consumer)."""
    lock = getattr(_connection_of(link), "_query_lock", None)
    if isinstance(lock, _OwnedLock) and lock.owner not in (None, task):
        return None
    inner = _raw(link)
    return None if inner is None else inner.get_server_pid()


def _cut(link: Any) -> None:
    """Terminate the connection behind a watched link: what waits on it fails at once."""
    inner = _raw(link)
    if inner is not None:
        inner.terminate()


class WatchedConnection(Connection):
    """`databases`' connection with each wait (acquire, statement, release) watched."""

    def __init__(self, database: Database, backend: DatabaseBackend) -> None:
        super().__init__(database, backend)
        self._watchdog = database.watchdog
        self._query_lock = _OwnedLock()

    async def __aenter__(self) -> Connection:
        with self._watchdog.watch():
            return await super().__aenter__()

    async def __aexit__(self, *exc: Any) -> None:
        with self._watchdog.watch(self):
            await super().__aexit__(*exc)

    async def fetch_all(self, query: Query, values: dict[str, Any] | None = None) -> list[Record]:
        """Watched `fetch_all`."""
        with self._watchdog.watch(self):
            return await super().fetch_all(query, values)

    async def fetch_one(self, query: Query, values: dict[str, Any] | None = None) -> Record | None:
        """Watched `fetch_one`."""
        with self._watchdog.watch(self):
            return await super().fetch_one(query, values)

    async def fetch_val(
        self, query: Query, values: dict[str, Any] | None = None, column: Any = 0
    ) -> Any:
        """Watched `fetch_val`."""
        with self._watchdog.watch(self):
            return await super().fetch_val(query, values, column)

    async def execute(self, query: Query, values: dict[str, Any] | None = None) -> Any:
        """Watched `execute`."""
        with self._watchdog.watch(self):
            return await super().execute(query, values)

    async def execute_many(self, query: Query, values: list[Any]) -> None:
        """Watched `execute_many`."""
        with self._watchdog.watch(self):
            await super().execute_many(query, values)

    async def iterate(
        self, query: Query, values: dict[str, Any] | None = None
    ) -> AsyncGenerator[Any, None]:
        """Watched `iterate`: each fetch of the next row is one wait."""
        rows = super().iterate(query, values)
        try:
            while True:
                with self._watchdog.watch(self):
                    try:
                        row = await anext(rows)
                    except StopAsyncIteration:
                        return
                yield row
        finally:
            with self._watchdog.watch(self):
                await rows.aclose()

    def transaction(self, *, force_rollback: bool = False, **kwargs: Any) -> Transaction:
        """A transaction on this connection whose BEGIN, COMMIT and ROLLBACK are watched."""
        return WatchedTransaction(lambda: self, force_rollback, self._watchdog, **kwargs)


class WatchedTransaction(Transaction):
    """`databases`' transaction with BEGIN, COMMIT and ROLLBACK watched."""

    def __init__(
        self,
        connection_callable: Callable[[], Connection],
        force_rollback: bool,
        watchdog: Watchdog,
        **kwargs: Any,
    ) -> None:
        super().__init__(connection_callable, force_rollback, **kwargs)
        self._watchdog = watchdog

    async def start(self) -> Transaction:
        """Watched BEGIN (and the acquire before it)."""
        with self._watchdog.watch(self):
            return await super().start()

    async def commit(self) -> None:
        """Watched COMMIT (and the release after it)."""
        with self._watchdog.watch(self):
            await super().commit()

    async def rollback(self) -> None:
        """Watched ROLLBACK (and the release after it)."""
        with self._watchdog.watch(self):
            await super().rollback()


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


class _OutageOneLine(logging.Filter):
    """asyncpg's pool logs each failed try to restore its minimum size with a traceback; an
    unreachable server is an outage, not a bug: one line with the error is enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Fold an outage's traceback into the message; keep any other record as it is."""
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and is_unavailable(error):
            record.msg = f"{record.getMessage()} ({type(error).__name__}: {error})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


_POOL_FILTER = _OutageOneLine()


def _quiet_pool_log() -> None:
    """Install the one-line filter on asyncpg's pool logger (once)."""
    logging.getLogger("asyncpg.pool").addFilter(_POOL_FILTER)
