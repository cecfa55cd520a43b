"""The hub's GC policy: start-up survivors frozen, frozen cycles reclaimed by the refresh."""

from __future__ import annotations

import asyncio
import gc
import itertools
import sys
import time
import weakref
from collections.abc import Iterator

import pytest

from hub import gcpolicy
from tests.helpers import wait_for


class Node:
    """A cycle-forming object that can be watched with a weak reference."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


async def test_survivors_are_frozen_and_a_frozen_cycle_is_reclaimed_by_the_refresh() -> None:
    node = Node()
    alive = weakref.ref(node)
    task = asyncio.create_task(gcpolicy.housekeeping(freeze_after=(0.0,), refresh_s=0.2))
    try:
        await wait_for(lambda: gc.get_freeze_count() > 0, timeout=5, what="first freeze")
        del node  # now cyclic garbage inside the frozen generation
        gc.collect()
        assert alive() is not None  # a full collection does not look at frozen objects
        await wait_for(lambda: alive() is None, timeout=5, what="the refresh reclaiming it")
        assert gc.get_freeze_count() > 0  # frozen again after the refresh
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _in_a_generation(obj: object) -> bool:
    return any(o is obj for gen in range(3) for o in gc.get_objects(gen))


async def test_new_objects_are_frozen_often_so_young_collections_stay_small() -> None:
    task = asyncio.create_task(
        gcpolicy.housekeeping(freeze_after=(0.0,), refresh_s=3600.0, every_s=0.01)
    )
    try:
        await wait_for(lambda: gc.get_freeze_count() > 0, timeout=5, what="first freeze")
        young: list[int] = []
        assert _in_a_generation(young)
        # In the frozen set soon, out of every collection.
        await wait_for(lambda: not _in_a_generation(young), timeout=5, what="young frozen")
        assert gc.get_count()[0] < 700
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_grown_heap_is_refreshed_before_the_hour() -> None:
    task = asyncio.create_task(
        gcpolicy.housekeeping(
            freeze_after=(0.0,), refresh_s=3600.0, every_s=0.01, check_s=0.02, growth=0.25,
            share=1.0,
        )
    )  # fmt: skip
    try:
        await wait_for(lambda: gc.get_freeze_count() > 0, timeout=5, what="first freeze")
        node = Node()
        alive = weakref.ref(node)
        del node  # cyclic garbage, frozen at the next tick
        await asyncio.sleep(0.1)
        assert alive() is not None  # not grown enough yet: no refresh
        # The heap half as big again.
        grown: list[list[int]] = [[] for _ in range(sys.getallocatedblocks() // 2)]
        await wait_for(lambda: alive() is None, timeout=5, what="the refresh after growth")
        assert len(grown) > 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_a_refresh_for_growth_waits_until_the_last_one_is_a_small_share_of_the_time() -> None:
    # The last refresh took 1 s and ended at t=100: with a 5 % share, the next one for growth
    # is due once 19 s have passed (1 s of 20), not at the next check.
    def due(now: float, *, grown: bool = True) -> bool:
        return gcpolicy.refresh_due(now, 100.0, 1.0, grown, 3600.0, 0.05)

    assert not due(101.0)
    assert not due(118.5)
    assert due(119.0)
    assert not due(500.0, grown=False)  # no growth: only the hourly one
    assert due(3700.0, grown=False)
    # A cheap refresh (10 ms) of a small heap is due again within a fraction of a second.
    assert gcpolicy.refresh_due(100.2, 100.0, 0.01, True, 3600.0, 0.05)


async def test_a_slow_refresh_holds_off_the_next_one_for_growth(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slow = 0.1  # as if the first refresh had stalled the loop this long
    calls: list[float] = []

    def refreeze() -> float:
        calls.append(time.monotonic())
        gc.freeze()
        return slow

    monkeypatch.setattr(gcpolicy, "refreeze", refreeze)
    task = asyncio.create_task(
        gcpolicy.housekeeping(
            freeze_after=(0.0,), refresh_s=3600.0, every_s=0.01, check_s=0.02, growth=-1.0,
            share=0.1,
        )
    )  # fmt: skip
    try:
        await wait_for(lambda: len(calls) >= 3, timeout=20, what="three refreshes")
        # The heap always counts as grown (growth=-1): each refresh came only once the one before it
        # was at most a tenth of the time, 0.1 s of at least 1 s.
        gaps = [b - a for a, b in itertools.pairwise(calls)]
        assert all(gap >= 10 * slow - slow - 0.05 for gap in gaps), gaps
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
