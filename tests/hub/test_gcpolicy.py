"""The hub's GC policy: start-up survivors frozen, frozen cycles reclaimed by the refresh."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from hub import gcpolicy


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
        await asyncio.sleep(0.05)
        assert gc.get_freeze_count() > 0
        del node  # now cyclic garbage inside the frozen generation
        gc.collect()
        assert alive() is not None  # a full collection does not look at frozen objects
        for _ in range(100):
            await asyncio.sleep(0.02)
            if alive() is None:
                break
        assert alive() is None
        assert gc.get_freeze_count() > 0  # frozen again after the refresh
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
