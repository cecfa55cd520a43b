"""The live printer side of the hub: one driver per configured printer, isolated from the rest."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from hub.model import Connection, PrinterState, offline_state
from integrations.printers.base import (
    CommandRejected,
    DriverConfig,
    DriverOptions,
    LinkInfo,
    PrinterDriver,
    PrintOptions,
)
from integrations.printers.connect_gate import DEFAULT_LIMIT as DEFAULT_CONNECT_LIMIT
from integrations.printers.connect_gate import ConnectGate
from integrations.printers.registry import DriverUnavailable, load_driver_class

log = logging.getLogger(__name__)

DriverLoader = Callable[[str], type[PrinterDriver]]


class PrinterNotFound(KeyError):
    """No printer with that id is managed."""

    def __str__(self) -> str:
        return f"no printer with id {self.args[0]}"


def with_link(state: PrinterState, link: LinkInfo) -> PrinterState:
    """`state` carrying the link's connection facts (the same object when it already does, as
    a report over a healthy link does: nothing is copied on the hot path)."""
    if state.connection is link.connection and state.last_error == link.last_error:
        return state
    return replace(state, connection=link.connection, last_error=link.last_error)


@dataclass(frozen=True)
class PrinterRecord:
    """What the manager needs of a configured printer (the store's rows convert to this)."""

    id: str
    name: str
    protocol: str
    host: str
    port: int | None = None
    serial: str = ""
    model: str = ""
    enabled: bool = True
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    options: dict[str, Any] = field(default_factory=dict)

    def link_settings(self) -> tuple[Any, ...]:
        """Everything that, when changed, needs a new connection (all but the name)."""
        return (
            self.protocol, self.host, self.port, self.serial, self.model, self.enabled,
            sorted(self.secrets.items()), sorted(self.options.items(), key=lambda kv: kv[0]),
        )  # fmt: skip


@dataclass
class _Entry:
    record: PrinterRecord
    driver: PrinterDriver | None = None
    # Used while there is no driver (disabled, or it could not be started).
    idle_state: PrinterState | None = None
    idle_link: LinkInfo = field(default_factory=lambda: LinkInfo(Connection.OFFLINE))


# Beyond the drivers' own stop bound, what a stop of the whole fleet may take.
STOP_ALL_SLACK_S = 1.5


class PrinterManager:
    """Starts, restarts and stops drivers as printer records change; routes commands."""

    def __init__(
        self,
        on_state: Callable[[PrinterState], None],
        driver_options: DriverOptions | Mapping[str, Any] | None = None,
        *,
        load_driver: DriverLoader = load_driver_class,
        max_connecting: int = DEFAULT_CONNECT_LIMIT,
    ) -> None:
        self._on_state = on_state
        # Shared by every driver: at most `max_connecting` links connecting at once.
        self.connect_gate = ConnectGate(max_connecting)
        if isinstance(driver_options, DriverOptions):
            self._options = driver_options
        else:
            self._options = DriverOptions().with_overrides(driver_options or {})
        self._load_driver = load_driver
        self._entries: dict[str, _Entry] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    # --- lifecycle ---------------------------------------------------------------------

    async def apply(self, record: PrinterRecord) -> None:
        """Start the printer's driver, restart it if its connection settings changed, or stop it."""
        async with self._locks.setdefault(record.id, asyncio.Lock()):
            entry = self._entries.get(record.id)
            if entry is not None and entry.record.link_settings() == record.link_settings():
                entry.record = record  # a rename needs no reconnect
                return
            fresh = _Entry(record)
            self._entries[record.id] = fresh  # before stopping: the old driver goes quiet
            if entry is not None and entry.driver is not None:
                await self._stop_driver(entry.driver)
            if not record.enabled:
                self._set_idle(fresh, LinkInfo(Connection.DISABLED))
                return
            fresh.driver = await self._start_driver(record, fresh)

    async def remove(self, printer_id: str) -> None:
        """Stop and forget a printer."""
        async with self._locks.setdefault(printer_id, asyncio.Lock()):
            entry = self._entries.pop(printer_id, None)
            if entry is not None and entry.driver is not None:
                await self._stop_driver(entry.driver)
        self._locks.pop(printer_id, None)

    async def stop_all(self) -> None:
        """Stop every driver at once (at shutdown); returns within a few seconds whatever they do."""
        entries, self._entries = self._entries, {}
        stops = {
            asyncio.create_task(self._stop_driver(e.driver), name=f"stop-driver:{e.record.id}")
            for e in entries.values()
            if e.driver is not None
        }
        if not stops:
            return
        # Each driver's stop is bounded by its own stop_within_s; this is the backstop for
        # a fleet so large that the stops themselves queue for the CPU.
        _, late = await asyncio.wait(stops, timeout=self._options.stop_within_s + STOP_ALL_SLACK_S)
        if late:
            for task in late:
                task.cancel()
            log.warning(
                "%d printer drivers had not stopped in time; shutting down anyway", len(late)
            )

    async def _start_driver(self, record: PrinterRecord, entry: _Entry) -> PrinterDriver | None:
        try:
            cls = self._load_driver(record.protocol)
            config = DriverConfig(
                printer_id=record.id,
                host=record.host,
                port=record.port or None,
                serial=record.serial,
                model=record.model,
                secrets=dict(record.secrets),
                options=self._options.with_overrides(record.options),
                connect_gate=self.connect_gate,
            )
            driver = cls(config, self._forwarder(entry))
            entry.driver = driver
            await driver.start()
            return driver
        except Exception as exc:  # one broken driver must never take the others down
            if isinstance(exc, DriverUnavailable):  # already explained by the registry
                log.error("printer %s: %s", record.id, exc)
            else:
                log.exception("printer %s (%s): driver failed to start", record.id, record.protocol)
            entry.driver = None
            self._set_idle(entry, LinkInfo(Connection.OFFLINE, None, f"driver failed: {exc}"))
            return None

    async def _stop_driver(self, driver: PrinterDriver) -> None:
        try:
            await driver.stop()
        except Exception:
            log.exception("printer %s: driver failed to stop cleanly", driver.printer_id)

    def _forwarder(self, entry: _Entry) -> Callable[[PrinterState], None]:
        def forward(state: PrinterState) -> None:
            """Pass a driver's state on while that driver is still the printer's current one."""
            # A replaced or removed driver's last words are not news.
            if self._entries.get(state.printer_id) is entry and entry.driver is not None:
                self._emit(with_link(state, entry.driver.link))

        return forward

    def _set_idle(self, entry: _Entry, link: LinkInfo) -> None:
        entry.idle_state = with_link(offline_state(entry.record.id), link)
        entry.idle_link = link
        self._emit(entry.idle_state)

    def _emit(self, state: PrinterState) -> None:
        try:
            self._on_state(state)
        except Exception:
            log.exception("printer state listener failed for %s", state.printer_id)

    # --- queries -----------------------------------------------------------------------

    def _entry(self, printer_id: str) -> _Entry:
        entry = self._entries.get(printer_id)
        if entry is None:
            raise PrinterNotFound(printer_id)
        return entry

    def printer_ids(self) -> list[str]:
        """Ids of the managed printers."""
        return list(self._entries)

    def record(self, printer_id: str) -> PrinterRecord:
        """The record a printer was last applied with."""
        return self._entry(printer_id).record

    def state(self, printer_id: str) -> PrinterState:
        """The printer's latest normalized state."""
        entry = self._entry(printer_id)
        if entry.driver is not None:
            return entry.driver.state
        return entry.idle_state or offline_state(printer_id)

    def link(self, printer_id: str) -> LinkInfo:
        """The hub's connection to the printer."""
        entry = self._entry(printer_id)
        return entry.driver.link if entry.driver is not None else entry.idle_link

    def driver(self, printer_id: str) -> PrinterDriver | None:
        """The running driver, or None when disabled or failed to start."""
        return self._entry(printer_id).driver

    # --- actions -----------------------------------------------------------------------

    def _running_driver(self, printer_id: str, action: str) -> PrinterDriver:
        entry = self._entry(printer_id)
        if entry.driver is None:
            why = entry.idle_link.last_error or f"it is {entry.idle_link.connection.value}"
            raise CommandRejected(f"cannot {action} printer {printer_id}: {why}")
        return entry.driver

    async def command(self, printer_id: str, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """Run a command on a printer; raises the driver's CommandError subclasses."""
        return await self._running_driver(printer_id, name).command(name, params)

    async def start_print(
        self,
        printer_id: str,
        filename: str,
        data: bytes,
        options: PrintOptions | None = None,
    ) -> None:
        """Upload a file to a printer and start it."""
        driver = self._running_driver(printer_id, "start a print on")
        await driver.start_print(filename, data, options or PrintOptions())
