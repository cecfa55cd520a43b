"""The PostgreSQL watchdog: a slow statement on a living server is left alone; a statement on a
pooled connection whose link went silent fails at once as an outage, outside any request too,
whether the whole link to the server is silent or that one connection alone."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest
from databases import Database
from databases.core import Connection

from hub.store import db as store
from hub.store import resilient, watchdog
from hub.store.errors import is_unavailable
from tests.faults.proxy import FaultProxy
from tests.helpers import wait_for

# Generous for a loaded 2-core machine; a pooled connection on a silent link used to wait 8+ s.
ANSWER_BOUND_S = 3.0


@pytest.fixture
async def proxied(pg_url: str) -> AsyncIterator[tuple[FaultProxy, Database]]:
    """A fault proxy in front of the shared PostgreSQL server and a hub database through it."""
    proxy = await FaultProxy("127.0.0.1", 5432).start()
    database = await store.connect(pg_url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/"))
    try:
        yield proxy, database
    finally:
        proxy.silent = False
        proxy.reset_all()
        await database.disconnect()
        await proxy.close()


async def test_slow_statement_on_a_living_server_is_not_cut(
    proxied: tuple[FaultProxy, Database],
) -> None:
    _proxy, database = proxied
    assert isinstance(database, resilient.Database)
    dog = database.watchdog
    started = time.monotonic()
    # Long enough for several probes (each finds the server up, and past SILENT_S asks it
    # about this session: running), as an export batch or a migration on a large table would.
    assert await database.fetch_val("SELECT 7 FROM pg_sleep(2.0)") == 7
    assert time.monotonic() - started >= 2.0
    assert dog.probes >= 2
    assert dog.asked >= 1
    assert dog.downs == 0
    assert dog.cuts == 0
    assert await database.fetch_val("SELECT 1") == 1


async def test_a_probe_is_not_failed_by_an_event_loop_busy_elsewhere(
    proxied: tuple[FaultProxy, Database],
) -> None:
    _proxy, database = proxied
    assert isinstance(database, resilient.Database)
    loop = asyncio.get_running_loop()
    # The probe's connect is under way when the loop is held 1.5 s by other work (a long
    # callback, a process starved of CPU): longer than the 1 s budget, none of it the server's.
    probe = loop.create_task(database._answers([]))
    loop.call_soon(time.sleep, 1.5)
    assert await probe == set(), "a busy loop was taken for a server that does not answer"
    # The same probe against a server that does not answer still gives up.
    _proxy.silent = True
    assert await database._answers([]) is None


async def test_a_loop_budget_charges_free_time_only_and_ends_at_its_wall_cap() -> None:
    loop = asyncio.get_running_loop()
    # 0.3 s of work against a 0.2 s budget, with the loop held elsewhere for 0.5 s of it: done.
    work = loop.create_task(asyncio.sleep(0.3, "done"))
    await asyncio.sleep(0)  # the work is under way
    loop.call_soon(time.sleep, 0.5)
    assert await watchdog.within_loop_budget(work, 0.2) == "done"
    # Work that never ends: a TimeoutError, and the work is cancelled.
    never = loop.create_future()
    with pytest.raises(TimeoutError):
        await watchdog.within_loop_budget(never, 0.1)
    assert never.cancelled()

    # A loop held 0.2 s in every 0.25 s still ends the wait, by the wall cap at the latest.
    def hog() -> None:
        time.sleep(0.2)
        handles.append(loop.call_later(0.05, hog))

    handles = [loop.call_soon(hog)]
    started = loop.time()
    try:
        with pytest.raises(TimeoutError):
            await watchdog.within_loop_budget(loop.create_future(), 0.5)
    finally:
        handles[-1].cancel()
    assert loop.time() - started >= 0.5


async def test_pooled_connection_on_a_silent_link_fails_as_an_outage_then_recovers(
    proxied: tuple[FaultProxy, Database],
) -> None:
    proxy, database = proxied
    assert isinstance(database, resilient.Database)
    async with database.transaction():  # a writer's transaction, pooled connection warm
        await database.execute("CREATE TEMP TABLE t (x INT)")
    assert proxy.open_links > 0

    proxy.silent = True
    started = time.monotonic()
    with pytest.raises(Exception) as caught:
        async with asyncio.timeout(4 * ANSWER_BOUND_S):  # fail, not hang, when it waits
            await database.fetch_val("SELECT 1")
    took = time.monotonic() - started
    assert is_unavailable(caught.value), repr(caught.value)
    assert took < ANSWER_BOUND_S, f"a silent link took {took:.2f} s to be reported"
    assert database.watchdog.downs == 1

    # The link forwards again: the same task gets a working connection without help.
    proxy.silent = False
    assert await database.fetch_val("SELECT 1") == 1


def _client_port(connection: Connection) -> int:
    """The local port of the pooled PostgreSQL connection a `databases` connection holds."""
    raw = connection._connection._connection._con  # type: ignore[attr-defined]
    port: int = raw._transport.get_extra_info("sockname")[1]
    return port


@pytest.mark.parametrize("in_transaction", [False, True], ids=["statement", "transaction"])
async def test_one_silent_pooled_connection_is_cut_while_the_server_answers(
    proxied: tuple[FaultProxy, Database], in_transaction: bool
) -> None:
    proxy, database = proxied
    assert isinstance(database, resilient.Database)
    dog = database.watchdog
    started = 0.0
    with pytest.raises(Exception) as caught:
        async with asyncio.timeout(4 * ANSWER_BOUND_S):  # fail, not hang, when it waits
            async with database.connection() as held:
                async with contextlib.AsyncExitStack() as stack:
                    if in_transaction:
                        await stack.enter_async_context(database.transaction())
                    assert await database.fetch_val("SELECT 1") == 1
                    # That link alone goes half-open; new connections get through.
                    proxy.silence_link(_client_port(held))
                    started = time.monotonic()
                    await database.fetch_val("SELECT 2")
    took = time.monotonic() - started
    assert is_unavailable(caught.value), repr(caught.value)
    assert took < ANSWER_BOUND_S, f"a silent connection took {took:.2f} s to be reported"
    assert dog.cuts == 1
    assert dog.downs == 0  # the server answered: the pool's other connections were kept
    # The same task gets a working connection without help.
    assert await database.fetch_val("SELECT 3") == 3


async def test_a_wait_for_another_task_on_a_shared_connection_is_not_cut(
    proxied: tuple[FaultProxy, Database],
) -> None:
    _proxy, database = proxied
    assert isinstance(database, resilient.Database)
    dog = database.watchdog
    async with database.connection() as shared:
        rows = shared.iterate("SELECT x FROM generate_series(1, 2) AS x")
        # This task streams rows to a slow consumer: the server has the session idle in its
        # transaction, and the connection's turn is this task's until the rows are read.
        first = await anext(rows)
        waiting = asyncio.create_task(shared.fetch_val("SELECT 5"))
        # Past SILENT_S the other task's wait is seen by a probe (the third one starts only
        # after the second, which came a second after the first, is done).
        await wait_for(lambda: dog.probes >= 3, timeout=15, what="three probes")
        assert not waiting.done()
        assert dog.cuts == 0
        assert dog.asked == 0  # a wait for another task's turn is not the link's
        # (`databases` lets the waiting task in before the stream's transaction ends, which
        # asyncpg refuses: it is given up here, the point was that its wait was not cut.)
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        rest = [row async for row in rows]
    assert [r[0] for r in [first, *rest]] == [1, 2]
    assert dog.cuts == 0
    assert await database.fetch_val("SELECT 5") == 5
