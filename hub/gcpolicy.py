"""Cyclic-GC policy for the long-running hub: long-lived objects kept out of the collector's way.

A farm's hub holds hundreds of thousands of long-lived objects (stream pipelines, driver
sessions, printer states). CPython's full collections walk all of them: 300-560 ms pauses with
500 printers, stalling every live message. Freezing what survived start-up moves those objects
out of the collector's way (reference counting still frees them).

Live state is replaced all the time (every report makes a new state, every status a new
message), and CPython counts the freeing of an old object against the young generation's
allocations: the young generation then fills with tens of thousands of live objects before
its threshold trips, and that "young" collection stalls the loop for 15-25 ms. So the policy
also freezes every `FREEZE_EVERY_S`, which is cheap (list splicing): the young generation stays
small. Cyclic garbage frozen meanwhile is reclaimed by a refresh (unfreeze, collect, freeze)
once the heap has grown by `REFRESH_GROWTH` or every `REFRESH_S`, whichever comes first; the
hot paths make next to no cycles, so that is rare. Growth is read from the allocator's block
count, not the frozen set's size: counting the frozen set walks every frozen object (45 ms of
stalled loop with 500 printers), the block count is a sum over the allocator's pools.

A refresh walks the whole heap, so it costs in proportion to the fleet (0.8 s at 300 printers,
3.8 s at 1,000 on a loaded 2-core machine). While printers are being added the heap grows
steadily, and a refresh at every quarter of growth came every check: each printer added made
the stalls longer. A refresh for growth therefore waits until the loop has run at least
`1 / REFRESH_SHARE` times as long as the last refresh took: refreshing never takes more than
that share of the loop, whatever the fleet's size, and adding a printer costs the same at any
size.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import time

log = logging.getLogger(__name__)

# Seconds after start for a full refresh, once the drivers are up. Later growth (printers that
# come online late) triggers its own refresh; a fixed second one would pause a loaded hub.
FREEZE_AFTER_S = (10.0,)
FREEZE_EVERY_S = 0.25  # keep the young generation small
CHECK_EVERY_S = 10.0  # how often the heap's size is checked
REFRESH_GROWTH = 0.25  # refresh once the heap grew by a quarter since the last one
REFRESH_S = 3600.0  # and at least this often
REFRESH_SHARE = 0.05  # a refresh for growth waits until the last one is this share of the time


def refresh_due(
    now: float, refreshed: float, took: float, grown: bool, refresh_s: float, share: float
) -> bool:
    """Is a refresh due: the hourly one, or one for growth once the last refresh (`took`
    seconds, ended at `refreshed`) is no more than `share` of the time since it began?"""
    if now - refreshed >= refresh_s:
        return True
    return grown and took <= share * (now - refreshed + took)


def refreeze() -> float:
    """Collect every generation (frozen objects included) and freeze what survives; returns
    the seconds it took."""
    started = time.perf_counter()
    gc.unfreeze()
    found = gc.collect()
    gc.freeze()
    took = time.perf_counter() - started
    log.info(
        "gc refresh: %d unreachable objects freed, %d kept frozen, %.0f ms",
        found,
        gc.get_freeze_count(),
        took * 1000,
    )
    return took


async def housekeeping(
    freeze_after: tuple[float, ...] = FREEZE_AFTER_S,
    refresh_s: float = REFRESH_S,
    every_s: float = FREEZE_EVERY_S,
    check_s: float = CHECK_EVERY_S,
    growth: float = REFRESH_GROWTH,
    share: float = REFRESH_SHARE,
) -> None:
    """Refresh at the given times after start, then freeze often and refresh when due."""
    started = time.monotonic()
    took = 0.0
    for at in freeze_after:
        while (wait := started + at - time.monotonic()) > 0:
            await asyncio.sleep(min(wait, every_s))
            gc.freeze()
        took = refreeze()
    baseline = sys.getallocatedblocks()
    refreshed = checked = time.monotonic()
    while True:
        await asyncio.sleep(every_s)
        gc.freeze()
        now = time.monotonic()
        if now - checked < check_s and now - refreshed < refresh_s:
            continue
        checked = now
        grown = sys.getallocatedblocks() > baseline * (1 + growth)
        if refresh_due(now, refreshed, took, grown, refresh_s, share):
            took = refreeze()
            baseline = sys.getallocatedblocks()
            refreshed = time.monotonic()
