"""Composition root: builds the hub's components and starts and stops them in one explicit order."""

from __future__ import annotations

import logging
import time
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from databases import Database

from config.loader import Settings
from hub.auth import AuthService
from hub.broadcast import Broadcaster, Message
from hub.bus import EventBus
from hub.consumption import Consumption
from hub.context import Context
from hub.emit import Emitter
from hub.filament import FilamentService
from hub.files import FileLibrary
from hub.handoff import ReportHandoff
from hub.model import PrinterState
from hub.outbox import Outbox
from hub.printer_manager import PrinterManager
from hub.printers import PrinterService, PrinterTable, link_dict, status_payload, to_record
from hub.queue.dispatcher import Dispatcher
from hub.queue.service import QueueService
from hub.shutdown import STOP_LIMIT_S, Budget
from hub.store import db as store
from hub.store import printers as printers_store
from hub.store.health import DatabaseCheck
from hub.store.printers import PrinterRow
from hub.telemetry import Telemetry
from integrations import loader
from integrations.loader import Catalog
from integrations.printers.base import (
    DriverOptions,
    LinkInfo,
)
from integrations.printers.registry import (
    DriverRegistry,
    default_registry,
)

if TYPE_CHECKING:
    from hub.demo import Demo

# Re-exported: the printer helpers lived here first and are imported from here elsewhere.
__all__ = ["Hub", "PrinterTable", "link_dict", "package_version", "status_payload", "to_record"]

log = logging.getLogger(__name__)


def package_version() -> str:
    """The installed version of 3DPrintForge."""
    try:
        return version("printforge")
    except PackageNotFoundError:
        return "0.0.0"


class Hub:
    """The running hub: started once, shared by the API and the CLI."""

    def __init__(
        self,
        settings: Settings,
        driver_options: DriverOptions | None = None,
        *,
        plugins: Catalog | None = None,
        simulator: bool = False,
    ) -> None:
        self.settings = settings
        # Run the embedded simulated fleet of `[simulator]` (the serving composition root asks
        # for it when the settings enable it; tools and tests that build a Hub do not).
        self.simulator = simulator
        self._demo: Demo | None = None
        self.driver_options = driver_options
        # Every plug-in the hub may use: printer drivers by protocol, integrations started below.
        self.catalog = plugins or Catalog()
        self.drivers = default_registry() if plugins is None else DriverRegistry(catalog=plugins)
        self.integrations = loader.Running()
        self._context: Context | None = None
        self.started_at = time.time()
        self._db: Database | None = None
        self._db_check = DatabaseCheck(self._select_one)
        self._auth: AuthService | None = None
        self._printers = PrinterTable()
        self.printer_service = PrinterService(self)
        self.generated_admin_password: str | None = None
        self.broadcaster = Broadcaster()
        self.bus = EventBus()
        self._manager: PrinterManager | None = None
        self._telemetry: Telemetry | None = None
        # Drivers' reports wait here (bounded, latest wins per printer) for telemetry.
        self.handoff = ReportHandoff(self._on_state)
        self._filament: FilamentService | None = None
        self._consumption: Consumption | None = None
        self._outbox: Outbox | None = None
        self._emitter: Emitter | None = None
        self._files: FileLibrary | None = None
        self._queue: QueueService | None = None
        self._dispatcher: Dispatcher | None = None

    @property
    def printers(self) -> PrinterTable:
        """The configured printers by id (kept in step with the database by this hub)."""
        return self._printers

    @printers.setter
    def printers(self, rows: dict[str, PrinterRow]) -> None:
        self._printers = PrinterTable(rows.items())

    @property
    def db(self) -> Database:
        """The connected database (after start)."""
        if self._db is None:
            raise RuntimeError("hub not started")
        return self._db

    @property
    def files(self) -> FileLibrary:
        """The print file library (after start)."""
        if self._files is None:
            raise RuntimeError("hub not started")
        return self._files

    @property
    def queue(self) -> QueueService:
        """The print queue's jobs (after start)."""
        if self._queue is None:
            raise RuntimeError("hub not started")
        return self._queue

    @property
    def dispatcher(self) -> Dispatcher:
        """The print queue's dispatcher (after start)."""
        if self._dispatcher is None:
            raise RuntimeError("hub not started")
        return self._dispatcher

    async def delete_file(self, file_id: str) -> None:
        """Remove a print file unless a job that is not finished still uses it."""
        row = await self.files.get(file_id)
        in_use = await self.db.fetch_val(
            "SELECT COUNT(*) FROM queue_jobs WHERE file_id = :f"
            " AND state NOT IN ('done', 'failed', 'cancelled')",
            {"f": file_id},
        )
        await self.files.delete(row, int(in_use or 0))

    @property
    def manager(self) -> PrinterManager:
        """The live printer side (after start)."""
        if self._manager is None:
            raise RuntimeError("hub not started")
        return self._manager

    @property
    def context(self) -> Context:
        """Settings, database, bus and services for components and plug-ins (after start)."""
        if self._context is None:
            raise RuntimeError("hub not started")
        return self._context

    @property
    def telemetry(self) -> Telemetry:
        """The telemetry pipelines and their writers (after start)."""
        if self._telemetry is None:
            raise RuntimeError("hub not started")
        return self._telemetry

    def _on_state(self, state: PrinterState) -> None:
        """Every driver report (carrying its link facts): into telemetry$, and into the
        `printer.connection` stream derived from it."""
        if self._telemetry is not None:
            self._telemetry.feed(state)
        self.printer_service.announce_link(state)

    @property
    def outbox(self) -> Outbox:
        """The delivery outbox of webhooks and notification channels (after start)."""
        if self._outbox is None:
            raise RuntimeError("hub not started")
        return self._outbox

    @property
    def emitter(self) -> Emitter:
        """Changes whose events commit with them, outbox rows included (after start)."""
        if self._emitter is None:
            raise RuntimeError("hub not started")
        return self._emitter

    @property
    def filament(self) -> FilamentService:
        """Spools, tray assignments and their events (after start)."""
        if self._filament is None:
            raise RuntimeError("hub not started")
        return self._filament

    @property
    def auth(self) -> AuthService:
        """The auth service (after start)."""
        if self._auth is None:
            raise RuntimeError("hub not started")
        return self._auth

    async def start(self, *, drivers: bool = True) -> None:
        """Connect and migrate the database, load secrets, users and printers; with `drivers`
        False the printers' drivers wait for start_drivers()."""
        self._db = await store.connect(self.settings.database_url)
        await store.migrate(self._db)
        self._auth = AuthService(self._db, self.settings.auth)
        await self._auth.start()
        self.generated_admin_password = await self._auth.ensure_admin(
            self.settings.auth.admin_password
        )
        if self.generated_admin_password:
            print(
                f"Created admin account '{self.settings.auth.admin_username}' with password "
                f"{self.generated_admin_password} (shown once; change it with "
                "`printforge user passwd`)",
                flush=True,
            )
        self.printers = {p.id: p for p in await printers_store.list_all(self._db)}
        self._emitter = Emitter(self._db, self.bus)
        self._filament = FilamentService(
            self._db, self.bus, self.broadcaster, name_of=self._printer_name,
            emitter=self._emitter,
        )  # fmt: skip
        self._filament.start()
        self._consumption = Consumption(
            self._db, self.bus, self._filament, has_trays=self._has_trays,
            read_file=self._read_printer_file,
        )  # fmt: skip
        await self._consumption.start()
        self._files = FileLibrary(self._db, self.settings.data_dir, self.settings.files.max_bytes)
        self._telemetry = Telemetry(
            self._db,
            self.broadcaster,
            self._status_payload,
            name_of=self._printer_name,
            bus=self.bus,
        )
        await self._telemetry.start()
        self.handoff.start()
        self._manager = PrinterManager(
            self.handoff.offer,
            self.driver_options,
            load_driver=self.drivers.load_driver_class,
            max_connecting=self.settings.printers.max_concurrent_connects,
        )
        self._queue = QueueService(self)
        await self._queue.start()
        self._dispatcher = Dispatcher(self, self._queue)
        await self._dispatcher.start()
        if self.simulator:
            # The simulated printers listen before any driver dials them: no refused first tries.
            from hub.demo import Demo

            self._demo = Demo(self, self.settings.simulator)
            await self._demo.start()
        self._outbox = Outbox(self._db, self.settings.outbox, self.bus, emitter=self._emitter)
        self._context = Context(self.settings, self._db, self.bus, self.broadcaster, self)
        self.integrations = await loader.start(
            self.catalog.manifests(), self._context, self.settings
        )
        # Senders are registered now: resume deliveries left pending by the last run.
        await self._outbox.start()
        # The plug-ins' planners are registered too: notifications, print steps and the
        # queue's, filament's and printers' events commit with their outbox rows from here on.
        self._telemetry.outbox_hook = self._outbox.write_rows
        self._emitter.hook = self._outbox.write_rows
        # Printers connect last: what they report at once (a print that ended while the hub was
        # away) already commits with its outbox rows.
        if drivers:
            await self.start_drivers()

    async def start_drivers(self) -> None:
        """Start a driver for every configured printer (after start)."""
        for row in list(self.printers.values()):
            await self.manager.apply(to_record(row))

    async def stop(self, within: float = STOP_LIMIT_S) -> None:
        """Stop integrations and drivers, let the writers finish, then close the database, all
        within `within` seconds (a step that overruns its share is cut short and logged)."""
        budget = Budget(within)
        self.handoff.pause()  # reports wait (bounded) while everything else stops
        if self._telemetry is not None:
            # The plug-ins stop below: their bus subscriptions write what is left.
            self._telemetry.outbox_hook = None
        if self._emitter is not None:
            self._emitter.hook = None
        if self._outbox is not None:
            # Deliveries in flight finish (briefly); what is pending stays in the outbox, and
            # the plug-ins' last events are still written to it as they stop.
            await budget.step("outbox", self._outbox.stop(budget.left(0.3)), 0.5)
        await budget.step("plug-ins", self.integrations.stop(budget.left(0.3)), 0.6)
        self._outbox = None
        self._context = None
        if self._dispatcher is not None:
            await budget.step("queue dispatcher", self._dispatcher.stop(), 0.5)
            self._dispatcher = None
        if self._manager is not None:
            await budget.step("printer drivers", self._manager.stop_all())
            self._manager = None
        if self._demo is not None:
            # After the drivers, so they do not report the simulated printers going away.
            await budget.step("simulator", self._demo.stop())
            self._demo = None
        await self.handoff.stop(budget.left(0.3))
        if self._telemetry is not None:
            await budget.step("telemetry", self._telemetry.stop(budget.left() * 0.6))
            self._telemetry = None
        if self._filament is not None:
            await self.bus.drain(budget.left())
            if self._consumption is not None:
                self._consumption.stop()
                self._consumption = None
            self._filament.stop()
            self._filament = None
        await budget.step("event bus", self.bus.close(), 0.5)
        if self._db is not None:
            await budget.step("database", self._db.disconnect(), 1.0)
            self._db = None

    async def db_ok(self) -> bool:
        """True when the database answers a trivial query (one at a time, see DatabaseCheck)."""
        return await self._db_check.ok()

    async def _select_one(self) -> None:
        await self.db.fetch_val("SELECT 1")

    # Printers: the printers service (hub/printers.py) -----------------------------

    def printer(self, printer_id: str) -> PrinterRow:
        """One configured printer, or NotFound."""
        return self.printer_service.get(printer_id)

    async def add_printer(self, data: dict[str, Any]) -> PrinterRow:
        """Store a new printer and start its driver (see PrinterService.add)."""
        return await self.printer_service.add(data)

    async def update_printer(self, printer_id: str, data: dict[str, Any]) -> PrinterRow:
        """Change a printer's fields (see PrinterService.update)."""
        return await self.printer_service.update(printer_id, data)

    async def delete_printer(self, printer_id: str) -> None:
        """Remove a printer."""
        await self.printer_service.delete(printer_id)

    async def forget_printer(self, printer_id: str) -> None:
        """Drop a printer no longer stored: its driver, live state and table entry."""
        await self.printer_service.forget(printer_id)

    def live(self, printer_id: str) -> tuple[PrinterState, LinkInfo | None]:
        """One printer's current state snapshot and link facts (see PrinterService.live)."""
        return self.printer_service.live(printer_id)

    def printer_status(self, printer_id: str) -> dict[str, Any]:
        """Live state plus connection facts for one printer."""
        return status_payload(*self.live(printer_id))

    def status_message(self, printer_id: str) -> Message:
        """A `printer.status` WebSocket message with the printer's current state."""
        return self.printer_service.status_message(printer_id)

    async def command(self, printer_id: str, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """Send a command to a printer and wait for its acknowledgement."""
        return await self.printer_service.command(printer_id, name, params)

    async def _read_printer_file(
        self, printer_id: str, path: str, within_s: float, limit: int
    ) -> bytes:
        driver = self.manager.driver(printer_id)
        if driver is None:
            raise ConnectionError(f"printer {printer_id} has no running driver")
        return await driver.read_file(path, within_s, limit)

    def _has_trays(self, printer_id: str) -> bool:
        row = self.printers.get(printer_id)
        # Filament trays (an AMS) come with the protocol's `ams_change` command (its manifest).
        return row is not None and "ams_change" in self.drivers.manifest(row.protocol).capabilities

    def _printer_name(self, printer_id: str) -> str:
        row = self.printers.get(printer_id)
        return row.name if row is not None else printer_id

    def _status_payload(self, state: PrinterState) -> dict[str, Any]:
        return status_payload(state, self.printer_service.link(state.printer_id))
