"""A fleet connecting at once takes turns at the hub's connect gate, and a link that drops
right after connecting (flapping) waits longer before each reconnect, against the simulator."""

from __future__ import annotations

import asyncio
import dataclasses
import time

from hub.model import Connection
from hub.printer_manager import PrinterManager, PrinterRecord
from integrations.printers.registry import load_driver_class
from integrations.simulator import Fleet, SimPrinter
from tests.faults.proxy import FaultProxy
from tests.helpers import wait_for
from tests.integrations.printers.conftest import FAST, config_for

PRINTERS = 12
LIMIT = 4
# Each answer of the simulated brokers (CONNACK, SUBACK) comes this late: a connect takes a
# while, so connects without a bound would overlap many at a time.
ANSWER_DELAY_S = 0.15


def _handshaking(printers: list[SimPrinter]) -> int:
    """Clients the simulated brokers hold that have not subscribed yet (connects in progress,
    from the TLS handshake's end until the SUBSCRIBE is in)."""
    total = 0
    for printer in printers:
        server = printer.frontend.mqtt  # type: ignore[attr-defined]
        if server is not None:
            total += len(server._tasks) - server.subscribers
    return total


async def test_connects_in_progress_never_exceed_the_hub_wide_bound(fleet: Fleet) -> None:
    printers = [await fleet.add("bambu") for _ in range(PRINTERS)]
    for printer in printers:
        printer.faults.slow(ANSWER_DELAY_S)
    manager = PrinterManager(lambda state: None, FAST, max_connecting=LIMIT)
    seen: list[int] = []
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            seen.append(_handshaking(printers))
            await asyncio.sleep(0.005)

    sampler = asyncio.create_task(sample())
    try:
        for index, printer in enumerate(printers):
            config = config_for(printer)
            await manager.apply(
                PrinterRecord(
                    id=f"p{index}", name=f"p{index}", protocol="bambu", host=printer.host,
                    port=printer.port, serial=printer.serial, model=printer.model_name,
                    secrets=dict(config.secrets), options={"ftps_port": printer.ftps_port},
                )
            )  # fmt: skip
        await wait_for(
            lambda: all(
                manager.link(f"p{i}").connection is Connection.ONLINE for i in range(PRINTERS)
            ),
            timeout=60,
            what="the whole fleet online",
        )
    finally:
        stop.set()
        await sampler
        await manager.stop_all()
    assert max(seen) <= LIMIT, f"{max(seen)} connects in progress at once, bound {LIMIT}"
    assert max(seen) >= 2  # connects did overlap: the bound, not the sampling, kept it there
    assert manager.connect_gate.peak == LIMIT
    assert manager.connect_gate.in_progress == 0


async def test_a_flapping_link_waits_longer_before_each_reconnect(fleet: Fleet) -> None:
    printer = await fleet.add("bambu")
    proxy = await FaultProxy(printer.host, printer.port).start()
    # Every drop below comes well within backoff_reset_after_s of the link coming up.
    config = config_for(
        printer, backoff_initial_s=0.2, backoff_max_s=0.8, backoff_reset_after_s=30.0
    )
    config = dataclasses.replace(config, host="127.0.0.1", port=proxy.port)
    driver = load_driver_class("bambu")(config, lambda state: None)
    await driver.start()
    gaps: list[float] = []
    try:
        for flap in range(5):
            await wait_for(
                lambda: driver.link.connection is Connection.ONLINE,
                timeout=20,
                what=f"online (flap {flap})",
            )
            accepted = proxy.accepted
            dropped_at = time.monotonic()
            proxy.reset_all()
            await wait_for(
                lambda a=accepted: proxy.accepted > a, timeout=20, what=f"reconnect {flap}"
            )
            gaps.append(time.monotonic() - dropped_at)
    finally:
        await driver.stop()
        await proxy.close()
    # The cap doubles from 0.2 s to 0.8 s; after a flap the delay is at least half of it.
    floors = [0.1, 0.2, 0.4, 0.4, 0.4]
    late = [(round(g, 3), f) for g, f in zip(gaps, floors, strict=True) if g < f - 0.01]
    assert not late, f"reconnected sooner than the flap backoff allows: {late} (gaps {gaps})"
