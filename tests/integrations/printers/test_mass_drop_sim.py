"""Many printer links dropping at once (a broker or switch restart): one warning line per printer,
naming it and the reason, and no traceback from the drivers, paho or the event loop."""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter

import pytest

from hub.model import Connection
from integrations.printers.base import PrinterDriver
from integrations.printers.registry import load_driver_class
from integrations.simulator import Fleet, SimPrinter
from tests.helpers import wait_for
from tests.integrations.printers.conftest import config_for

PER_PROTOCOL = 30
_PRINTER = re.compile(r"\bprinter (\S+) ")
# The simulators' side of the links, not the hub's: their own loggers and their aiohttp servers
# (a simulated Moonraker answering on a socket its restart is closing logs a traceback there).
_SIMULATOR_LOGGERS = ("integrations.simulator", "aiohttp.server", "aiohttp.web", "aiohttp.access")


async def _fleet_online(fleet: Fleet) -> tuple[list[SimPrinter], list[PrinterDriver]]:
    printers = [await fleet.add(p) for p in ("bambu", "moonraker") for _ in range(PER_PROTOCOL)]
    drivers = []
    for index, printer in enumerate(printers):
        config = config_for(printer, printer_id=f"p{index}", backoff_initial_s=0.2)
        drivers.append(load_driver_class(printer.protocol)(config, lambda state: None))
    for driver in drivers:
        await driver.start()
    await _all_online(drivers)
    return printers, drivers


async def _all_online(drivers: list[PrinterDriver]) -> None:
    await wait_for(
        lambda: all(d.link.connection == Connection.ONLINE for d in drivers),
        timeout=60,
        what="every link online",
    )


def _link_warnings(caplog: pytest.LogCaptureFixture, drivers: list[PrinterDriver]) -> Counter[str]:
    """Warnings per printer; fails on a traceback or a warning that names no printer."""
    hub_records = [r for r in caplog.records if not r.name.startswith(_SIMULATOR_LOGGERS)]
    hub_text = "\n".join(caplog.handler.format(r) for r in hub_records)
    assert "Traceback" not in hub_text, hub_text[-3000:]
    ids = {d.printer_id for d in drivers}
    per_printer: Counter[str] = Counter()
    for record in hub_records:
        if record.levelno < logging.WARNING:
            continue
        message = record.getMessage()
        assert record.exc_info is None, message
        match = _PRINTER.search(message)
        assert match is not None and match.group(1) in ids, f"{record.name}: {message}"
        per_printer[match.group(1)] += 1
    return per_printer


@pytest.mark.parametrize("fault", ["drop", "restart"])
async def test_links_dropping_at_once_give_one_warning_each(
    fleet: Fleet, caplog: pytest.LogCaptureFixture, fault: str
) -> None:
    printers, drivers = await _fleet_online(fleet)
    try:
        caplog.clear()
        if fault == "drop":
            for printer in printers:  # all in the same loop turn
                printer.faults.drop_connection()
        else:
            await asyncio.gather(*(p.faults.restart(delay=0.5) for p in printers))
        await wait_for(
            lambda: len(_link_warnings(caplog, drivers)) == len(drivers),
            timeout=30,
            what="a warning for every printer",
        )
        await _all_online(drivers)
        per_printer = _link_warnings(caplog, drivers)
        assert set(per_printer) == {d.printer_id for d in drivers}
        assert max(per_printer.values()) == 1, per_printer.most_common(3)
    finally:
        await asyncio.gather(*(d.stop() for d in drivers))
