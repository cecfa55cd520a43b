"""Composition root: owns the database, auth, printer records and the live printer side."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from databases import Database

from config.loader import Settings
from hub.auth import AuthService
from hub.broadcast import Broadcaster, Message, encode
from hub.bus import EventBus
from hub.consumption import Consumption
from hub.context import Context
from hub.errors import Conflict, Invalid, NotFound, Timeout
from hub.events import PrinterConfigured, PrinterRemoved
from hub.filament import FilamentService
from hub.files import FileLibrary
from hub.model import PrinterState, rfc3339
from hub.outbox import Outbox
from hub.printer_manager import PrinterManager, PrinterRecord
from hub.protocols import check_required_fields
from hub.queue.dispatcher import Dispatcher
from hub.queue.service import QueueService
from hub.store import db as store
from hub.store import printers as printers_store
from hub.store.errors import is_unique_violation
from hub.store.printers import PrinterRow
from hub.telemetry import Telemetry
from integrations import loader
from integrations.loader import Catalog
from integrations.printers.base import (
    CommandRejected,
    CommandTimeout,
    CommandUnsupported,
    DriverOptions,
    InvalidParams,
    LinkInfo,
)
from integrations.printers.registry import (
    DriverManifest,
    DriverRegistry,
    DriverUnavailable,
    default_registry,
)

log = logging.getLogger(__name__)


# Versions of the printers table: every change anywhere takes the next number, so a version
# seen once never comes back, not even from a table that replaced another.
_table_versions = itertools.count(1)


class PrinterTable(dict[str, PrinterRow]):
    """The configured printers by id; `version` changes with every change to the table."""

    def __init__(self, rows: Iterable[tuple[str, PrinterRow]] = ()) -> None:
        super().__init__(rows)
        self.version = next(_table_versions)

    def _changed(self) -> None:
        self.version = next(_table_versions)

    def __setitem__(self, key: str, value: PrinterRow) -> None:
        """Add or replace a printer."""
        super().__setitem__(key, value)
        self._changed()

    def __delitem__(self, key: str) -> None:
        """Remove a printer."""
        super().__delitem__(key)
        self._changed()

    def pop(self, key: str, *default: Any) -> Any:
        """Remove a printer and return it (or the default)."""
        try:
            return super().pop(key, *default)
        finally:
            self._changed()

    def popitem(self) -> tuple[str, PrinterRow]:
        """Remove the last printer added."""
        try:
            return super().popitem()
        finally:
            self._changed()

    def clear(self) -> None:
        """Remove every printer."""
        super().clear()
        self._changed()

    def setdefault(self, key: str, default: PrinterRow) -> PrinterRow:
        """The printer under `key`, stored first when absent."""
        try:
            return super().setdefault(key, default)
        finally:
            self._changed()

    def update(self, *args: Any, **kwargs: PrinterRow) -> None:
        """Add or replace several printers."""
        super().update(*args, **kwargs)
        self._changed()

    def __ior__(self, other: Any) -> PrinterTable:  # type: ignore[override,misc]
        """Add or replace several printers."""
        super().__ior__(other)
        self._changed()
        return self


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
    ) -> None:
        self.settings = settings
        self.driver_options = driver_options
        # Every plug-in the hub may use: printer drivers by protocol, integrations started below.
        self.catalog = plugins or Catalog()
        self.drivers = default_registry() if plugins is None else DriverRegistry(catalog=plugins)
        self.integrations = loader.Running()
        self._context: Context | None = None
        self.started_at = time.time()
        self._db: Database | None = None
        self._auth: AuthService | None = None
        self._printers = PrinterTable()
        self.generated_admin_password: str | None = None
        self.broadcaster = Broadcaster()
        self.bus = EventBus()
        self._manager: PrinterManager | None = None
        self._telemetry: Telemetry | None = None
        self._filament: FilamentService | None = None
        self._consumption: Consumption | None = None
        self._links: dict[str, LinkInfo] = {}
        self._outbox: Outbox | None = None
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
        """Every driver report: into telemetry$, plus a connection message when the link changed."""
        if self._telemetry is not None:
            self._telemetry.feed(state)
        if self._manager is None:
            return
        try:
            link = self._manager.link(state.printer_id)
        except KeyError:
            return
        # last_seen moves with every report: only a change of connection or error is news.
        seen = self._links.get(state.printer_id)
        if seen is None or (seen.connection, seen.last_error) != (link.connection, link.last_error):
            self._links[state.printer_id] = link
            self.broadcaster.publish(
                "printer.connection",
                {"printer_id": state.printer_id, **link_dict(link)},
                state.printer_id,
            )

    @property
    def outbox(self) -> Outbox:
        """The delivery outbox of webhooks and notification channels (after start)."""
        if self._outbox is None:
            raise RuntimeError("hub not started")
        return self._outbox

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
        self._filament = FilamentService(
            self._db, self.bus, self.broadcaster, name_of=self._printer_name
        )
        self._filament.start()
        self._consumption = Consumption(
            self._db, self.bus, self._filament, has_trays=self._has_trays
        )
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
        self._manager = PrinterManager(
            self._on_state, self.driver_options, load_driver=self.drivers.load_driver_class
        )
        self._queue = QueueService(self)
        await self._queue.start()
        self._dispatcher = Dispatcher(self, self._queue)
        await self._dispatcher.start()
        if drivers:
            await self.start_drivers()
        self._outbox = Outbox(self._db, self.settings.outbox, self.bus)
        self._context = Context(self.settings, self._db, self.bus, self.broadcaster, self)
        self.integrations = await loader.start(
            self.catalog.manifests(), self._context, self.settings
        )
        # Senders are registered now: resume deliveries left pending by the last run.
        await self._outbox.start()

    async def start_drivers(self) -> None:
        """Start a driver for every configured printer (after start)."""
        for row in list(self.printers.values()):
            await self.manager.apply(to_record(row))

    async def stop(self) -> None:
        """Stop integrations and drivers, let the writers finish, then close the database."""
        if self._outbox is not None:
            # Deliveries in flight finish (briefly); what is pending stays in the outbox, and
            # the plug-ins' last events are still written to it as they stop.
            await self._outbox.stop()
        await self.integrations.stop()
        self._outbox = None
        self._context = None
        if self._dispatcher is not None:
            await self._dispatcher.stop()
            self._dispatcher = None
        if self._manager is not None:
            await self._manager.stop_all()
            self._manager = None
        if self._telemetry is not None:
            await self._telemetry.stop()
            self._telemetry = None
        if self._filament is not None:
            await self.bus.drain(10.0)
            if self._consumption is not None:
                self._consumption.stop()
                self._consumption = None
            self._filament.stop()
            self._filament = None
        await self.bus.close()
        if self._db is not None:
            await self._db.disconnect()
            self._db = None

    async def db_ok(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            await self.db.fetch_val("SELECT 1")
            return True
        except Exception:
            return False

    # Printers ---------------------------------------------------------------

    def printer(self, printer_id: str) -> PrinterRow:
        """One configured printer, or NotFound."""
        found = self.printers.get(printer_id)
        if found is None:
            raise NotFound(f"no printer with id {printer_id}")
        return found

    async def _check_unique(self, data: dict[str, Any], exclude: str | None = None) -> None:
        clash = await printers_store.conflict(
            self.db,
            serial=data.get("serial"),
            host=data["host"],
            port=data["port"],
            exclude_id=exclude,
        )
        if clash == "serial":
            raise Conflict(f"another printer already has serial {data['serial']}", field="serial")
        if clash == "host":
            raise Conflict(
                f"another printer already uses {data['host']}:{data['port']}", field="host"
            )

    async def add_printer(self, data: dict[str, Any]) -> PrinterRow:
        """Store a new printer (protocol default port when omitted)."""
        data = dict(data)
        data.setdefault("port", self._driver(data["protocol"]).default_port)
        check_required_fields(self.drivers, data["protocol"], data)
        await self._check_unique(data)
        try:
            row = await printers_store.create(self.db, data)
        except Exception as exc:
            # Two creates raced past the check above: the database's constraint decided.
            if is_unique_violation(exc):
                raise Conflict("another printer already has this serial or host:port") from None
            raise
        self.printers[row.id] = row
        await self.manager.apply(to_record(row))
        self.bus.publish(PrinterConfigured(row.id, row.name, row.protocol, row.model or "", True))
        return row

    async def update_printer(self, printer_id: str, data: dict[str, Any]) -> PrinterRow:
        """Change a printer's fields; omitted secrets are kept."""
        current = self.printer(printer_id)
        protocol = data.get("protocol", current.protocol)
        after = {"serial": current.serial, "model": current.model, **current.secrets, **data}
        check_required_fields(self.drivers, protocol, after)
        merged = {
            "serial": current.serial,
            "host": current.host,
            "port": current.port,
            **{k: v for k, v in data.items() if k in {"serial", "host", "port"}},
        }
        if "protocol" in data and "port" not in data and data["protocol"] != current.protocol:
            merged["port"] = self._driver(protocol).default_port
            data = {**data, "port": merged["port"]}
        await self._check_unique(merged, exclude=printer_id)
        row = await printers_store.replace(self.db, current, data)
        self.printers[row.id] = row
        await self.manager.apply(to_record(row))
        self.bus.publish(PrinterConfigured(row.id, row.name, row.protocol, row.model or "", False))
        return row

    async def delete_printer(self, printer_id: str) -> None:
        """Remove a printer."""
        self.printer(printer_id)
        await printers_store.delete(self.db, printer_id)
        await self.forget_printer(printer_id)

    async def forget_printer(self, printer_id: str) -> None:
        """Drop a printer no longer stored: its driver, live state and table entry."""
        row = self.printers.pop(printer_id, None)
        self._links.pop(printer_id, None)
        self.broadcaster.forget(printer_id)
        await self.manager.remove(printer_id)
        if row is not None:
            self.bus.publish(PrinterRemoved(printer_id, row.name))

    def _driver(self, protocol: str) -> DriverManifest:
        try:
            return self.drivers.manifest(protocol)
        except DriverUnavailable as exc:
            raise Invalid(str(exc), field="protocol", rule="enum") from None

    def _has_trays(self, printer_id: str) -> bool:
        row = self.printers.get(printer_id)
        return row is not None and row.protocol == "bambu"

    def _printer_name(self, printer_id: str) -> str:
        row = self.printers.get(printer_id)
        return row.name if row is not None else printer_id

    def _link(self, printer_id: str) -> LinkInfo | None:
        try:
            return self.manager.link(printer_id)
        except KeyError:
            return None

    def _status_payload(self, state: PrinterState) -> dict[str, Any]:
        return status_payload(state, self._link(state.printer_id))

    def live(self, printer_id: str) -> tuple[PrinterState, LinkInfo | None]:
        """One printer's current state snapshot and link facts (NotFound when not configured).

        A snapshot is never changed once published (a change publishes a new one), so callers
        may key caches of what they derive from it on its identity plus the link facts."""
        self.printer(printer_id)
        state = self.manager.state(printer_id)
        return state, self._link(state.printer_id)

    def printer_status(self, printer_id: str) -> dict[str, Any]:
        """Live state plus connection facts for one printer."""
        return status_payload(*self.live(printer_id))

    def status_message(self, printer_id: str) -> Message:
        """A `printer.status` WebSocket message with the printer's current state."""
        payload = self.printer_status(printer_id)
        now = time.time()
        return Message("printer.status", printer_id, encode("printer.status", payload, now), now)

    async def command(self, printer_id: str, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """Send a command to a printer and wait for its acknowledgement."""
        row = self.printer(printer_id)
        try:
            reply = await self.manager.command(printer_id, name, params)
        except CommandUnsupported as exc:
            raise Invalid(str(exc), field="command") from None
        except CommandRejected as exc:
            raise Conflict(f"printer {row.name}: {exc}") from None
        except CommandTimeout as exc:
            raise Timeout(f"printer {row.name}: {exc}") from None
        except InvalidParams as exc:
            raise Invalid(str(exc), field="params") from None
        return {"command": name, "result": "ok", "detail": reply}


def status_payload(state: PrinterState, link: LinkInfo | None) -> dict[str, Any]:
    """A printer's status as the API and `printer.status` messages show it."""
    payload = state.to_dict()
    payload["updated_at"] = rfc3339(state.updated_at)
    if state.job is not None:
        payload["job"]["started_at"] = rfc3339(state.job.started_at)
    if link is not None:
        payload.update(link_dict(link))
    return payload


def link_dict(link: LinkInfo) -> dict[str, Any]:
    """Connection facts as the API shows them."""
    return {
        "connection": link.connection.value,
        "last_seen": rfc3339(link.last_seen),
        "last_error": link.last_error,
    }


def to_record(row: PrinterRow) -> PrinterRecord:
    """A stored printer as the printer manager takes it."""
    return PrinterRecord(
        id=row.id,
        name=row.name,
        protocol=row.protocol,
        host=row.host,
        port=row.port,
        serial=row.serial or "",
        model=row.model or "",
        enabled=row.enabled,
        secrets=dict(row.secrets),
        options={"ftps_port": row.ftps_port} if row.ftps_port else {},
    )
