"""A driver's stop is bounded: a link task that lost or ignores its cancellation still lets go.

The printers are simulated; what misbehaves is the link task, the way a library can make it
(Python 3.11's `asyncio.wait_for`, used by aiomqtt for every acknowledgement, loses a
cancellation that arrives with the acknowledgement).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from hub.model import Connection
from hub.printer_manager import STOP_ALL_SLACK_S, PrinterManager, PrinterRecord
from integrations.printers.bambu.driver import BambuDriver
from integrations.printers.base import PrinterDriver, raise_if_cancelled
from integrations.printers.moonraker.driver import MoonrakerDriver
from integrations.printers.registry import load_driver_class
from integrations.simulator import Fleet, SimPrinter
from tests.helpers import wait_for
from tests.integrations.printers.conftest import config_for

STOP_WITHIN_S = 2.0
# What a stop may take beyond its bound on this shared 2-core machine.
SLACK_S = 3.0


async def test_wait_for_loses_a_cancellation_and_raise_if_cancelled_finds_it() -> None:
    """The state the Bambu link was found in: cancelled, yet running on after an ack."""
    acknowledged = asyncio.get_running_loop().create_future()
    reached: list[str] = []

    async def session() -> None:
        await asyncio.wait_for(acknowledged, 10)  # as aiomqtt waits for a PUBACK
        reached.append("after the acknowledgement")
        raise_if_cancelled()
        reached.append("consuming reports")

    task = asyncio.create_task(session())
    await asyncio.sleep(0)  # the task now waits inside wait_for
    acknowledged.set_result(None)
    task.cancel()  # in the same loop turn as the acknowledgement
    await asyncio.wait({task}, timeout=5)
    assert task.cancelled()
    assert "consuming reports" not in reached


class _Stuck:
    """Mix-in: once connected, the session parks and swallows `swallow` cancellations."""

    swallow = 10**9
    released = False
    session: asyncio.Task[Any] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.parked = asyncio.Event()

    async def _park(self) -> None:
        """Wait; a cancellation returns as if what was awaited had arrived, `swallow` times."""
        self.session = asyncio.current_task()
        self.parked.set()
        lost = 0
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                lost += 1
                if self.released or lost > self.swallow:
                    raise
                if self.swallow < 10:
                    return  # as asyncio.wait_for on Python 3.11 returns the acknowledgement


class StuckBambu(_Stuck, BambuDriver):
    """A Bambu link whose session, subscribed and online, parks before reading reports."""

    async def _after_connect(self, tasks: set[asyncio.Task[None]]) -> None:
        await super()._after_connect(tasks)
        await self._park()


class StuckMoonraker(_Stuck, MoonrakerDriver):
    """A Moonraker link whose session, its WebSocket open, parks while reading the history."""

    async def _sync_history(self) -> None:
        await super()._sync_history()
        await self._park()


DRIVERS: dict[str, type[PrinterDriver]] = {"bambu": StuckBambu, "moonraker": StuckMoonraker}


async def _stuck_driver(fleet: Fleet, protocol: str, swallow: int) -> tuple[Any, SimPrinter]:
    printer = await fleet.add(protocol)
    config = config_for(printer, stop_within_s=STOP_WITHIN_S)
    driver: Any = DRIVERS[protocol](config, lambda state: None)
    driver.swallow = swallow
    await driver.start()
    await asyncio.wait_for(driver.parked.wait(), 20)
    assert _clients(printer) == 1
    return driver, printer


async def _release(driver: Any) -> None:
    """Let a left-behind session end, so the test leaves no task running."""
    driver.released = True
    session = driver.session
    if session is not None and not session.done():
        session.cancel()
        await asyncio.wait({session}, timeout=10)
        assert session.done()


@pytest.mark.parametrize("protocol", ["bambu", "moonraker"])
async def test_a_link_that_lost_its_cancellation_stops_without_a_warning(
    fleet: Fleet, protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    driver, printer = await _stuck_driver(fleet, protocol, swallow=1)
    try:
        async with asyncio.timeout(STOP_WITHIN_S + SLACK_S):
            await driver.stop()
        assert driver.session.done()
        assert driver.link.connection == Connection.DISABLED
        if protocol == "bambu":
            # The driver noticed the lost cancellation itself: one cancel was enough.
            assert driver.session.cancelling() == 1
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
        await wait_for(lambda: _clients(printer) == 0, timeout=10, what="link closed")
    finally:
        await _release(driver)


@pytest.mark.parametrize("protocol", ["bambu", "moonraker"])
async def test_a_link_that_ignores_cancellation_is_abandoned_within_the_bound(
    fleet: Fleet, protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    driver, printer = await _stuck_driver(fleet, protocol, swallow=10**9)
    printer_id = driver.printer_id
    try:
        with caplog.at_level(logging.WARNING):
            async with asyncio.timeout(STOP_WITHIN_S + SLACK_S):
                await driver.stop()
        assert driver.link.connection == Connection.DISABLED
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
        assert printer_id in warnings[0].getMessage()
        assert "did not end" in warnings[0].getMessage()
        assert not driver.session.done()  # left behind, as the warning says
        # Its sockets were closed directly: the simulated printer sees no client any more.
        await wait_for(lambda: _clients(printer) == 0, timeout=10, what="link socket closed")
    finally:
        await _release(driver)


def _clients(printer: SimPrinter) -> int:
    """Client connections the simulated printer holds."""
    frontend: Any = printer.frontend
    if printer.protocol == "bambu":
        return len(frontend.mqtt.sessions)
    return len(frontend.clients)


async def test_stop_all_with_many_drivers_some_stuck_returns_within_its_bound(
    fleet: Fleet, caplog: pytest.LogCaptureFixture
) -> None:
    """At shutdown every driver stops at once: 200 reconnecting and 4 stuck ones, in seconds."""
    stuck: list[Any] = []

    def load(protocol: str) -> type[PrinterDriver]:
        name = protocol.removeprefix("stuck-")
        cls = DRIVERS[name] if protocol.startswith("stuck-") else load_driver_class(name)

        class Tracked(cls):  # type: ignore[valid-type,misc]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                if isinstance(self, _Stuck):
                    stuck.append(self)

        return Tracked

    manager = PrinterManager(lambda state: None, {"stop_within_s": STOP_WITHIN_S}, load_driver=load)
    try:
        for index in range(4):
            printer = await fleet.add("bambu" if index % 2 else "moonraker")
            config = config_for(printer)
            await manager.apply(
                PrinterRecord(
                    id=f"stuck-{index}", name=printer.name, protocol=f"stuck-{printer.protocol}",
                    host=printer.host, port=printer.port, serial=printer.serial,
                    model=printer.model_name, secrets=dict(config.secrets),
                    options={"ftps_port": printer.ftps_port} if printer.ftps_port else {},
                )
            )  # fmt: skip
        # Nothing listens on port 9 of loopback: these reconnect with backoff until stopped.
        for index in range(200):
            protocol = "bambu" if index % 2 else "moonraker"
            await manager.apply(
                PrinterRecord(
                    id=f"down-{index}", name=f"down {index}", protocol=protocol,
                    host="127.0.0.1", port=9, serial=f"SN{index}",
                    secrets={"access_code": "12345678", "api_key": "k"},
                    options={"backoff_initial_s": 1.0, "backoff_max_s": 5.0},
                )
            )  # fmt: skip
        await wait_for(
            lambda: len(stuck) == 4 and all(d.parked.is_set() for d in stuck),
            timeout=30,
            what="the stuck drivers connected",
        )
        with caplog.at_level(logging.WARNING):
            async with asyncio.timeout(STOP_WITHIN_S + STOP_ALL_SLACK_S + SLACK_S):
                await manager.stop_all()
        assert manager.printer_ids() == []
        abandoned = [r.getMessage() for r in caplog.records if "did not end" in r.getMessage()]
        assert sorted(m.split()[1] for m in abandoned) == [f"stuck-{i}" for i in range(4)]
    finally:
        for driver in stuck:
            await _release(driver)
