"""The health probe: a slow database does not hold health requests while a recent answer stands."""

from __future__ import annotations

import asyncio

from hub.store.health import DatabaseCheck


async def test_a_slow_probe_does_not_hold_requests_while_a_recent_answer_stands() -> None:
    release = asyncio.Event()
    calls: list[int] = []

    async def query() -> None:
        calls.append(1)
        if len(calls) > 1:
            await release.wait()  # the database is slow from the second probe on

    check = DatabaseCheck(query, fresh_s=0.0, stale_s=60.0)
    assert await asyncio.wait_for(check.ok(), 10)
    # Each of these starts or finds the slow probe, and answers from the first one at once.
    for _ in range(5):
        assert await asyncio.wait_for(check.ok(), 10)
    assert len(calls) == 2, "one probe at a time"
    release.set()


async def test_without_a_recent_answer_requests_wait_for_the_probe() -> None:
    release = asyncio.Event()

    async def query() -> None:
        await release.wait()
        raise ConnectionError("database went away")

    check = DatabaseCheck(query, fresh_s=0.0, stale_s=0.0)
    waiting = [asyncio.ensure_future(check.ok()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiting)
    release.set()
    assert await asyncio.wait_for(asyncio.gather(*waiting), 10) == [False] * 3
