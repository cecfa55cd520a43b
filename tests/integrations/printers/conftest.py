"""Fixtures for driver tests: recorded payloads, a simulated fleet, drivers wired to it."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from hub.model import PrinterState
from integrations.printers.base import DriverConfig, DriverOptions, PrinterDriver
from integrations.printers.registry import load_driver_class
from integrations.simulator import Fleet, SimPrinter

FIXTURES = Path(__file__).parent / "fixtures"

# Production timings shrunk so link behaviour is observable in well under a second.
FAST = DriverOptions(
    connect_timeout_s=2.0,
    command_timeout_s=3.0,
    upload_timeout_s=10.0,
    backoff_initial_s=0.05,
    backoff_max_s=0.2,
    backoff_reset_after_s=0.5,
    poll_interval_s=0.1,
    pushall_min_interval_s=300.0,
)
# Simulated seconds per real second: a Bambu heat-up and preparation takes about 0.3 s.
SPEED = 240.0
SECRET_KEYS = {
    "bambu": "access_code",
    "moonraker": "api_key",
    "prusalink": "password",
    "octoprint": "api_key",
}


@pytest.fixture
def payload() -> Callable[[str], Any]:
    """Load `fixtures/<name>` as JSON (a fresh copy each call, so tests may mutate it)."""

    def load(name: str) -> Any:
        return json.loads((FIXTURES / name).read_text(encoding="utf-8"))

    return load


def random_subnet() -> str:
    """A loopback /24 of its own, so parallel test modules never share addresses."""
    return f"127.{random.randint(40, 250)}.{random.randint(0, 255)}.0"


@pytest.fixture
async def fleet() -> AsyncIterator[Fleet]:
    """A simulated fleet on a random loopback subnet, fast enough that heat-up takes moments."""
    async with Fleet(speed=SPEED, subnet=random_subnet()) as sim:
        yield sim


def config_for(
    printer: SimPrinter, printer_id: str = "p1", secret: str | None = None, **options: Any
) -> DriverConfig:
    """A driver configuration pointing at a simulated printer, with fast timings."""
    opts = FAST.with_overrides(options)
    if printer.protocol == "bambu":
        opts = opts.with_overrides({"ftps_port": printer.ftps_port})
    return DriverConfig(
        printer_id=printer_id,
        host=printer.host,
        port=printer.port,
        serial=printer.serial,
        model=printer.model_name,
        secrets={SECRET_KEYS[printer.protocol]: printer.secret if secret is None else secret},
        options=opts,
    )


class Recorder:
    """A driver with every state it published."""

    def __init__(self, driver: PrinterDriver, states: list[PrinterState]) -> None:
        self.driver = driver
        self.states = states


Connect = Callable[..., Awaitable[Recorder]]


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """Start a driver for a simulated printer; every driver is stopped at teardown."""
    started: list[PrinterDriver] = []

    async def start(printer: SimPrinter, **kwargs: Any) -> Recorder:
        states: list[PrinterState] = []
        cls = load_driver_class(printer.protocol)
        driver = cls(config_for(printer, **kwargs), states.append)
        started.append(driver)
        await driver.start()
        return Recorder(driver, states)

    yield start
    for driver in started:
        await driver.stop()
