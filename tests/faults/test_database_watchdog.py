"""The PostgreSQL watchdog: a slow statement on a living server is left alone; a statement on a
pooled connection whose link went silent fails at once as an outage, outside any request too."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from databases import Database

from hub.store import db as store
from hub.store import resilient
from hub.store.errors import is_unavailable
from tests.faults.proxy import FaultProxy

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
    # Long enough for several probes (each finds the server up), as an export batch or a
    # migration on a large table would.
    assert await database.fetch_val("SELECT 7 FROM pg_sleep(1.2)") == 7
    assert time.monotonic() - started >= 1.2
    assert dog.probes >= 1
    assert dog.downs == 0
    assert await database.fetch_val("SELECT 1") == 1


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
