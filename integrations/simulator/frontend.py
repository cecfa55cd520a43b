"""What every protocol front end shares: its printer's identity, model, faults and lifecycle."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar

from integrations.simulator.faults import FaultState
from integrations.simulator.model import PrintModel
from integrations.simulator.tls import CertFactory


@dataclass(slots=True)
class PrinterContext:
    """Identity and shared state handed to a front end."""

    name: str
    host: str
    port: int
    serial: str
    secret: str
    model_name: str
    printer: PrintModel
    faults: FaultState
    certs: CertFactory
    ticks_per_second: int
    index: int  # position in the fleet, used to spread periodic work across ticks
    extra_port: int | None = None  # Bambu: the FTPS port


class FrontEnd(abc.ABC):
    """A printer protocol served on the printer's own loopback address."""

    protocol: ClassVar[str]
    default_port: ClassVar[int]
    secret_key: ClassVar[str]  # how the protocol names its secret in describe()

    def __init__(self, ctx: PrinterContext) -> None:
        self.ctx = ctx
        self.running = False

    @abc.abstractmethod
    async def start(self) -> None:
        """Open the listeners (binding ephemeral ports when asked for port 0)."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Close listeners and connections."""

    @abc.abstractmethod
    def drop_connections(self) -> None:
        """Close every client connection; listeners stay open."""

    @abc.abstractmethod
    def on_tick(self, tick: int) -> None:
        """Called by the fleet ticker after the model advanced; push reports when due."""

    def describe(self) -> dict[str, Any]:
        """Protocol-specific extras for Fleet.describe()."""
        return {}
