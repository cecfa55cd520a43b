"""Fixtures for simulator tests: a random loopback subnet per module and a fast fleet."""

from __future__ import annotations

import random
import ssl
from collections.abc import AsyncIterator

import pytest

from integrations.simulator import Fleet


def gcode(time_s: int = 120, layers: int = 10, grams: float = 5.0) -> bytes:
    """A tiny G-code file whose PrusaSlicer-style header gives time, layers and grams."""
    hours, rest = divmod(time_s, 3600)
    minutes, seconds = divmod(rest, 60)
    return (
        f"; generated for tests\nM104 S215\nM140 S60\nG28\n; total layer number: {layers}\n"
        f"G1 X10 Y10 F3000\n; filament used [g] = {grams}\n"
        f"; estimated printing time (normal mode) = {hours}h {minutes}m {seconds}s\n"
    ).encode()


@pytest.fixture(scope="module")
def subnet() -> str:
    """A random 127.A.B.0 so parallel test runs on this machine never share addresses."""
    return f"127.{random.randint(16, 250)}.{random.randint(0, 255)}.0"


@pytest.fixture
async def fleet(subnet: str) -> AsyncIterator[Fleet]:
    """A fleet at speed 600 (a 10-minute print takes one second)."""
    async with Fleet(speed=600.0, subnet=subnet) as running:
        yield running


@pytest.fixture
def tls_client() -> ssl.SSLContext:
    """A client TLS context that skips verification, as most printer clients do."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
