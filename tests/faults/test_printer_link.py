"""A printer's link through a TCP fault proxy: latency with jitter, resets, a silent half-open
link and refused reconnects. The driver notices within the documented time, reconnects with
backoff once the fault clears, and many reconnect cycles leave no task or socket behind."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import AsyncIterator

import pytest

from hub.model import Connection
from integrations.printers.base import PrinterDriver
from integrations.printers.registry import load_driver_class
from integrations.simulator import Fleet
from tests.faults.proxy import FaultProxy
from tests.helpers import wait_for
from tests.integrations.printers.conftest import SPEED, config_for, random_subnet

# Reconnect cycles per protocol: a leak of one task or socket per cycle shows as 120 of them,
# and the cycles take about 15 s per protocol, inside the fault suite's minute. The issue's
# 500 is a soak: PRINTFORGE_FAULT_CYCLES=500.
CYCLES = int(os.environ.get("PRINTFORGE_FAULT_CYCLES", "120"))
STALE_AFTER_S = 1.0


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture(params=["moonraker", "bambu"])
async def linked(request: pytest.FixtureRequest) -> AsyncIterator[tuple[PrinterDriver, FaultProxy]]:
    """A driver talking to a simulated printer through a fault proxy."""
    async with Fleet(speed=SPEED, subnet=random_subnet()) as fleet:
        printer = await fleet.add(request.param)
        proxy = await FaultProxy(printer.host, printer.port).start()
        config = config_for(printer, stale_after_s=STALE_AFTER_S)
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
    for cycle in range(CYCLES):
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
