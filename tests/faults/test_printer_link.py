"""A printer's link through a TCP fault proxy: latency with jitter, resets, a silent half-open
link and refused reconnects. The driver notices within the documented time, reconnects with
backoff once the fault clears, and many reconnect cycles leave no task or socket behind."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import os
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator

import pytest

from hub.model import Connection
from integrations.printers.base import PrinterDriver
from integrations.printers.registry import load_driver_class
from integrations.simulator import Fleet
from tests.faults.proxy import FaultProxy
from tests.helpers import wait_for
from tests.integrations.printers.conftest import SPEED, config_for, random_subnet

# Reconnect cycles per protocol, the 500: a leak of one task or socket per cycle shows
# as 500 of them. Without the flapping link's growing backoff (below) a cycle takes about 0.05 s,
# so the 500 take 25-29 s per protocol on the shared 2-core machine at a load of 12
# (PRINTFORGE_FAULT_CYCLES sets another count).
CYCLES = int(os.environ.get("PRINTFORGE_FAULT_CYCLES", "500"))
STALE_AFTER_S = 1.0
# Memory is compared between cycle MEMORY_WARMUP and the last one.
MEMORY_WARMUP = 20
# PRINTFORGE_FAULT_TRACEMALLOC=1 prints where memory grew between the two counts.
TRACE = bool(os.environ.get("PRINTFORGE_FAULT_TRACEMALLOC"))
# Measured (2 shared cores, 120 cycles with the flapping backoff): Moonraker +6 to +7 blocks
# and +2 gc objects a cycle, Bambu +3 blocks and +1.5 objects; tracemalloc puts it on the accepting side's socket
# transports (simulator and proxy) and the Moonraker simulator's per-client state. A leak of
# a task, a socket transport or a dict of a few entries per cycle breaks these bounds; one
# small object per cycle hides under that floor.
MAX_BLOCKS_PER_CYCLE = 16
MAX_OBJECTS_PER_CYCLE = 5


def _memory() -> tuple[int, int]:
    """Allocated memory blocks (every live object, containers or not) and gc-tracked objects,
    after a full collection. The log records pytest keeps (one warning per dropped link, each
    holding its exception and so the closed socket's frames) are dropped first: they are the
    test's, not the hub's."""
    for handler in logging.getLogger().handlers:
        reset = getattr(handler, "reset", None)
        if callable(reset):
            reset()
    gc.collect()
    return sys.getallocatedblocks(), len(gc.get_objects())


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture(params=["moonraker", "bambu"])
async def linked(request: pytest.FixtureRequest) -> AsyncIterator[tuple[PrinterDriver, FaultProxy]]:
    """A driver talking to a simulated printer through a fault proxy."""
    async with Fleet(speed=SPEED, subnet=random_subnet()) as fleet:
        printer = await fleet.add(request.param)
        proxy = await FaultProxy(printer.host, printer.port).start()
        # Every link counts as having stayed up (backoff_reset_after_s), so a reset cycle
        # reconnects after the initial backoff instead of the growing wait for a flapping link
        # (tested in tests/integrations/printers/test_connect_storm_sim.py): what these cycles
        # show is what a reconnect leaves behind, and the wait was most of each cycle.
        config = config_for(printer, stale_after_s=STALE_AFTER_S, backoff_reset_after_s=0.0)
        config = dataclasses.replace(config, host="127.0.0.1", port=proxy.port)
        driver = load_driver_class(printer.protocol)(config, lambda state: None)
        await driver.start()
        try:
            await _online(driver)
            yield driver, proxy
        finally:
            await driver.stop()
            await proxy.close()


async def _online(driver: PrinterDriver, timeout: float = 15) -> None:
    await wait_for(
        lambda: driver.link.connection == Connection.ONLINE, timeout=timeout, what="online"
    )


async def test_latency_and_jitter_keep_the_link_online(
    linked: tuple[PrinterDriver, FaultProxy],
) -> None:
    driver, proxy = linked
    proxy.latency_s, proxy.jitter_s = 0.05, 0.1
    seen = driver.link.last_seen or 0.0
    await wait_for(lambda: (driver.link.last_seen or 0) > seen + 0.5, timeout=10, what="reports")
    assert driver.link.connection == Connection.ONLINE


async def test_silent_link_is_detected_and_recovers(
    linked: tuple[PrinterDriver, FaultProxy],
) -> None:
    driver, proxy = linked
    proxy.silent = True
    started = time.monotonic()
    await wait_for(
        lambda: driver.link.connection != Connection.ONLINE, timeout=10, what="stale/offline"
    )
    # Documented: a link with no data for stale_after_s is stale (docs/drivers.md).
    assert time.monotonic() - started < STALE_AFTER_S + 2.5
    proxy.silent = False
    proxy.reset_all()
    await _online(driver)


async def test_refused_reconnects_back_off_then_recover(
    linked: tuple[PrinterDriver, FaultProxy],
) -> None:
    driver, proxy = linked
    await proxy.refuse()
    await wait_for(lambda: driver.link.connection != Connection.ONLINE, timeout=10, what="down")
    assert driver.link.last_error
    await proxy.resume()
    await _online(driver)


async def test_many_reset_cycles_leave_nothing_behind(
    linked: tuple[PrinterDriver, FaultProxy],
) -> None:
    driver, proxy = linked
    tasks_before, fds_before = len(asyncio.all_tasks()), _open_fds()
    memory_before = (0, 0)
    for cycle in range(CYCLES):
        if cycle == MEMORY_WARMUP:
            # Caches, pools and lazily built tables are full by now: count from here.
            memory_before = _memory()
            if TRACE:
                tracemalloc.start(8)
                snapshot = tracemalloc.take_snapshot()
        accepted = proxy.accepted
        proxy.reset_all()
        await wait_for(
            lambda a=accepted: proxy.accepted > a and driver.link.connection == Connection.ONLINE,
            timeout=15,
            what=f"reconnected (cycle {cycle})",
        )
    # Let the last cycle's closed sockets finish closing.
    await wait_for(lambda: proxy.open_links <= 2, timeout=5, what="old links closed")
    assert len(asyncio.all_tasks()) <= tasks_before + 2, "tasks grew with the cycles"
    assert _open_fds() <= fds_before + 4, "sockets grew with the cycles"
    blocks, objects = _memory()
    if TRACE:
        grown = tracemalloc.take_snapshot().compare_to(snapshot, "traceback")
        tracemalloc.stop()
        for stat in grown[:8]:
            print(stat, *stat.traceback.format()[-6:], sep="\n  ")
    measured = CYCLES - MEMORY_WARMUP
    per_cycle = ((blocks - memory_before[0]) / measured, (objects - memory_before[1]) / measured)
    print(
        f"\n{driver.protocol}: {measured} reset cycles after {MEMORY_WARMUP}: allocated blocks"
        f" {memory_before[0]} -> {blocks} ({per_cycle[0]:+.2f}/cycle), gc objects"
        f" {memory_before[1]} -> {objects} ({per_cycle[1]:+.2f}/cycle)"
    )
    assert per_cycle[0] < MAX_BLOCKS_PER_CYCLE, f"memory grew {per_cycle[0]:.2f} blocks/cycle"
    assert per_cycle[1] < MAX_OBJECTS_PER_CYCLE, f"gc objects grew {per_cycle[1]:.2f}/cycle"
