"""A fleet of simulated printers on loopback addresses, driven by one shared ticker."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import string
from types import TracebackType
from typing import Any

from integrations.simulator.bambu import BambuFrontEnd
from integrations.simulator.bambu_report import PROFILES
from integrations.simulator.clock import AcceleratedClock, Clock
from integrations.simulator.faults import Faults, FaultState
from integrations.simulator.frontend import FrontEnd, PrinterContext
from integrations.simulator.model import PrintLogEntry, PrintModel, SimFile
from integrations.simulator.moonraker import MoonrakerFrontEnd
from integrations.simulator.octoprint import OctoPrintFrontEnd
from integrations.simulator.prusalink import PrusaLinkFrontEnd
from integrations.simulator.tls import CertFactory

log = logging.getLogger(__name__)

FRONT_ENDS: dict[str, type[FrontEnd]] = {
    "bambu": BambuFrontEnd,
    "moonraker": MoonrakerFrontEnd,
    "prusalink": PrusaLinkFrontEnd,
    "octoprint": OctoPrintFrontEnd,
}
DEFAULT_MODEL = {
    "bambu": "X1C",
    "moonraker": "Voron 2.4",
    "prusalink": "MK4",
    "octoprint": "Ender-3 V2",
}
# Seconds of homing, leveling and purging after the heaters reach their targets.
PREPARE_S = {"bambu": 60.0, "moonraker": 20.0, "prusalink": 30.0, "octoprint": 10.0}
_SERIAL_PREFIX = {"moonraker": "KLP", "prusalink": "CZPX", "octoprint": "OCT"}


def _secret(protocol: str) -> str:
    if protocol == "bambu":
        return "".join(secrets.choice(string.digits) for _ in range(8))
    if protocol == "prusalink":
        alphabet = string.ascii_letters + string.digits
        return "".join(secrets.choice(alphabet) for _ in range(15))
    return secrets.token_hex(16).upper()


class SimPrinter:
    """One simulated printer: identity, print model, protocol front end and fault controls."""

    def __init__(self, ctx: PrinterContext, protocol: str, frontend: FrontEnd) -> None:
        self.ctx = ctx
        self.protocol = protocol
        self.frontend = frontend
        self.faults = Faults(ctx.faults, ctx.printer, frontend)

    @property
    def name(self) -> str:
        """Display name."""
        return self.ctx.name

    @property
    def host(self) -> str:
        """Loopback address it listens on."""
        return self.ctx.host

    @property
    def port(self) -> int:
        """Main protocol port (the bound one when asked for port 0)."""
        return self.ctx.port

    @property
    def serial(self) -> str:
        """Serial number (the Bambu certificate's CN)."""
        return self.ctx.serial

    @property
    def secret(self) -> str:
        """Access code, API key or password."""
        return self.ctx.secret

    @property
    def model_name(self) -> str:
        """Printer model, e.g. X1C."""
        return self.ctx.model_name

    @property
    def printer(self) -> PrintModel:
        """The print model behind every protocol view of this printer."""
        return self.ctx.printer

    @property
    def ftps_port(self) -> int | None:
        """Bambu's FTPS port (None for other protocols)."""
        return self.ctx.extra_port if self.protocol == "bambu" else None

    def describe(self) -> dict[str, Any]:
        """This printer as an entry of `printforge printers import`."""
        entry: dict[str, Any] = {
            "name": self.name,
            "protocol": self.protocol,
            "host": self.host,
            "port": self.port,
            "serial": self.serial,
            "model": self.model_name,
            self.frontend.secret_key: self.secret,
        }
        entry.update(self.frontend.describe())
        return entry

    def __repr__(self) -> str:
        return f"<SimPrinter {self.name} {self.protocol} {self.host}:{self.port}>"


# Slots per tick of the real-time ticker (printers tick in their own slot).
SPREAD_PARTS = 10


class Fleet:
    """Simulated printers, each on its own 127.x.y.z address, advanced by one ticker task."""

    def __init__(
        self,
        speed: float = 60.0,
        subnet: str = "127.0.0.0",
        *,
        clock: Clock | None = None,
        ticks_per_second: int = 10,
        run_ticker: bool = True,
    ) -> None:
        base = ipaddress.IPv4Address(subnet)
        if base not in ipaddress.IPv4Network("127.0.0.0/8"):
            raise ValueError(f"subnet {subnet} is not a loopback address (127.0.0.0/8)")
        self.speed = speed
        self.clock: Clock = clock or AcceleratedClock(speed)
        self.ticks_per_second = ticks_per_second
        self.printers: list[SimPrinter] = []
        self._base = int(base)
        self._next_offset = 2
        self._hosts: set[str] = set()
        self._counts: dict[str, int] = {}
        self._index = 0
        self._tick = 0
        self._run_ticker = run_ticker
        self._slots: list[list[SimPrinter]] = []
        self._slots_for = -1
        self._roster = 0  # moves whenever a printer is added or removed
        self._ticker: asyncio.Task[None] | None = None
        self._certs: CertFactory | None = None
        self._serial_tag = secrets.token_hex(2).upper()

    async def __aenter__(self) -> Fleet:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Make the fleet's TLS key and start the ticker."""
        if self._certs is None:
            self._certs = await asyncio.to_thread(CertFactory)
        if self._run_ticker and self._ticker is None:
            self._ticker = asyncio.create_task(self._run(), name="simulator-ticker")

    async def close(self) -> None:
        """Stop the ticker and every printer."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        for printer in list(self.printers):
            await self.remove(printer)
        if self._certs is not None:
            self._certs.close()
            self._certs = None

    def allocate_host(self) -> str:
        """The next free loopback address in the fleet's subnet."""
        while True:
            address = ipaddress.IPv4Address(self._base + self._next_offset)
            self._next_offset += 1
            last = int(address) & 0xFF
            if address not in ipaddress.IPv4Network("127.0.0.0/8"):
                raise RuntimeError("the subnet has no free loopback addresses left")
            if last in (0, 1, 255) or str(address) in self._hosts:
                continue
            return str(address)

    async def add(
        self,
        protocol: str,
        model: str | None = None,
        *,
        host: str | None = None,
        port: int | None = None,
        serial: str | None = None,
        secret: str | None = None,
        name: str | None = None,
        ams_units: int | None = None,
        ftps_port: int | None = None,
    ) -> SimPrinter:
        """Start a simulated printer speaking `protocol`; port=0 binds ephemeral ports."""
        if protocol not in FRONT_ENDS:
            raise ValueError(f"unknown protocol {protocol!r}; choose from {sorted(FRONT_ENDS)}")
        await self.start()
        assert self._certs is not None
        model_name = model or DEFAULT_MODEL[protocol]
        if protocol == "bambu":
            profile = PROFILES.get(model_name)
            if profile is None:
                raise ValueError(
                    f"unknown Bambu model {model_name!r}; choose from {sorted(PROFILES)}"
                )
            units = profile.ams_units if ams_units is None else ams_units
            prefix = profile.serial_prefix
        else:
            units = ams_units or 0
            prefix = _SERIAL_PREFIX[protocol]
        self._counts[protocol] = self._counts.get(protocol, 0) + 1
        count = self._counts[protocol]
        host = host or self.allocate_host()
        serial = serial or f"{prefix}{self._serial_tag}{self._index:05d}"[:15]
        ctx = PrinterContext(
            name=name or f"Sim {model_name} {count}",
            host=host,
            port=FRONT_ENDS[protocol].default_port if port is None else port,
            serial=serial,
            secret=_secret(protocol) if secret is None else secret,
            model_name=model_name,
            printer=PrintModel(
                self.clock, serial=serial, ams_units=units, prepare_s=PREPARE_S[protocol]
            ),
            faults=FaultState(),
            certs=self._certs,
            ticks_per_second=self.ticks_per_second,
            index=self._index,
            extra_port=ftps_port if ftps_port is not None else (0 if port == 0 else None),
        )
        frontend = FRONT_ENDS[protocol](ctx)
        await frontend.start()
        self._index += 1
        self._hosts.add(host)
        sim = SimPrinter(ctx, protocol, frontend)
        self.printers.append(sim)
        self._roster += 1
        return sim

    async def remove(self, printer: SimPrinter) -> None:
        """Stop a printer and forget it."""
        if printer in self.printers:
            self.printers.remove(printer)
            self._roster += 1
        self._hosts.discard(printer.host)
        await printer.frontend.stop()

    async def load_file(self, printer: SimPrinter, name: str, data: bytes) -> SimFile:
        """Put a file on a printer's storage as if it had been uploaded."""
        return printer.printer.add_file(name, data)

    def get(self, key: str) -> SimPrinter:
        """A printer by name, serial or host."""
        for printer in self.printers:
            if key in (printer.name, printer.serial, printer.host):
                return printer
        raise KeyError(f"no simulated printer named {key!r}")

    def print_log(self) -> list[tuple[SimPrinter, PrintLogEntry]]:
        """Every physical print of every printer, in start order per printer."""
        return [(sim, entry) for sim in self.printers for entry in sim.printer.log]

    def describe(self) -> list[dict[str, Any]]:
        """Every printer as an entry for `printforge printers import` (a JSON list)."""
        return [printer.describe() for printer in self.printers]

    def step(self) -> None:
        """Run one tick: advance every model, then let front ends push what is due."""
        self._tick += 1
        for sim in self.printers:
            self._step_one(sim)

    def _step_one(self, sim: SimPrinter) -> None:
        try:
            sim.printer.tick()
            if sim.frontend.running:
                sim.frontend.on_tick(self._tick)
        except Exception:
            log.exception("simulated printer %s failed a tick", sim.name)

    def _slot(self, part: int) -> list[SimPrinter]:
        """The printers ticking in one slot of a tick.

        Bambu front ends report on the ticks where (tick + index) % ticks_per_second == 0, so the
        slot comes from the index's next digit: the printers due on one tick are spread over all
        slots.
        """
        if self._slots_for != self._roster:
            self._slots_for = self._roster
            self._slots = [[] for _ in range(SPREAD_PARTS)]
            for sim in self.printers:
                self._slots[self.report_instant(sim)[1]].append(sim)
        return self._slots[part]

    def report_instant(self, sim: SimPrinter) -> tuple[int, int]:
        """When in each second `sim` reports as Bambu front ends do: (tick, slot within the tick)."""
        index = sim.ctx.index
        return (-index) % self.ticks_per_second, (index // self.ticks_per_second) % SPREAD_PARTS

    async def _run(self) -> None:
        # Each tick is cut into SPREAD_PARTS slots and every printer ticks in its own slot, so
        # a fleet's reports arrive spread over the second like a real farm's, not in bursts.
        loop = asyncio.get_running_loop()
        interval = 1.0 / self.ticks_per_second / SPREAD_PARTS
        deadline = loop.time()
        part = 0
        while True:
            if part == 0:
                self._tick += 1
            for sim in self._slot(part):
                self._step_one(sim)
            part = (part + 1) % SPREAD_PARTS
            deadline += interval
            delay = deadline - loop.time()
            if delay < 0:
                deadline = loop.time()  # overloaded: skip missed slots instead of bursting
                delay = 0
            await asyncio.sleep(delay)
