"""The event bus: typed routing, isolation of failing and slow handlers, latest-wins buffers."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import pytest

from hub.bus import EventBus
from hub.events import PrinterRemoved, ProgressEvent
from tests.helpers import wait_for


@dataclass(frozen=True)
class Ping:
    """A toy event of the test's own."""

    n: int


def progress(printer_id: str, percent: int) -> ProgressEvent:
    return ProgressEvent(printer_id, "a.gcode", percent, None, None, None, f"{printer_id}/k")


async def test_events_reach_only_subscribers_of_their_type_in_order() -> None:
    bus = EventBus()
    pings: list[int] = []
    removed: list[str] = []
    bus.subscribe(Ping, lambda e: pings.append(e.n), name="pings")
    bus.subscribe(PrinterRemoved, lambda e: removed.append(e.printer_id), name="removed")
    for n in range(5):
        bus.publish(Ping(n))
    bus.publish(PrinterRemoved("p1", "P1"))
    assert await bus.drain(5)
    assert pings == [0, 1, 2, 3, 4]
    assert removed == ["p1"]
    await bus.close()


async def test_a_failing_handler_is_logged_and_others_still_get_the_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus()
    got: list[int] = []

    def broken(event: Ping) -> None:
        raise RuntimeError("boom")

    bus.subscribe(Ping, broken, name="broken")
    bus.subscribe(Ping, broken, name="broken-inline", inline=True)
    bus.subscribe(Ping, lambda e: got.append(e.n), name="fine")
    with caplog.at_level(logging.ERROR):
        bus.publish(Ping(1))
        bus.publish(Ping(2))
        assert await bus.drain(5)
    assert got == [1, 2]
    assert "bus handler broken failed" in caplog.text
    assert "bus handler broken-inline failed" in caplog.text
    await bus.close()


async def test_a_slow_handler_delays_neither_the_publisher_nor_other_subscribers() -> None:
    bus = EventBus()
    release = asyncio.Event()
    fast: list[int] = []
    slow: list[int] = []

    async def stuck(event: Ping) -> None:
        await release.wait()
        slow.append(event.n)

    bus.subscribe(Ping, stuck, name="slow")
    bus.subscribe(Ping, lambda e: fast.append(e.n), name="fast")
    for n in range(100):
        bus.publish(Ping(n))  # returns at once although "slow" has not taken one yet
    await wait_for(lambda: len(fast) == 100, what="the fast subscriber's events")
    assert slow == []
    release.set()
    assert await bus.drain(5)
    assert slow == list(range(100))
    await bus.close()


async def test_coalescing_events_are_latest_wins_per_printer_in_a_busy_buffer() -> None:
    bus = EventBus()
    release = asyncio.Event()
    seen: list[tuple[str, int]] = []

    async def handler(event: ProgressEvent) -> None:
        await release.wait()
        seen.append((event.printer_id, event.progress))

    bus.subscribe(ProgressEvent, handler, name="progress")
    for percent in range(10):
        bus.publish(progress("a", percent))
        bus.publish(progress("b", percent * 2))
    release.set()
    assert await bus.drain(5)
    # The handler took the first one of "a" straight away; what waited behind it collapsed
    # to the newest per printer.
    assert seen[-2:] == [("a", 9), ("b", 18)] or seen[-2:] == [("b", 18), ("a", 9)]
    assert len(seen) <= 3
    await bus.close()


async def test_ordered_events_past_the_bound_are_shed_oldest_first_and_counted() -> None:
    bus = EventBus()
    release = asyncio.Event()
    seen: list[int] = []

    async def handler(event: Ping) -> None:
        await release.wait()
        seen.append(event.n)

    bus.subscribe(Ping, handler, name="bounded", max_pending=10)
    bus.publish(Ping(-1))
    await wait_for(lambda: bus.stats()["bounded"]["pending"] == 0, what="first event taken")
    for n in range(50):
        bus.publish(Ping(n))
    assert bus.stats()["bounded"] == {
        "delivered": 0,
        "pending": 10,
        "dropped": 40,
        "coalesced": 0,
    }
    release.set()
    assert await bus.drain(5)
    assert seen == [-1, *range(40, 50)]
    await bus.close()


async def test_unsubscribe_stops_delivery() -> None:
    bus = EventBus()
    got: list[int] = []
    stop = bus.subscribe(Ping, lambda e: got.append(e.n), name="once")
    bus.publish(Ping(1))
    assert await bus.drain(5)
    stop()
    bus.publish(Ping(2))
    assert await bus.drain(5)
    assert got == [1]
    assert "once" not in bus.stats()
    await bus.close()
