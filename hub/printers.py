"""The printers service: configured printers (add, change, remove) and their live status and
commands, with the rules that hold for every caller (API, CLI, plug-ins, the simulator)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from hub.broadcast import Message, encode
from hub.emit import Batch
from hub.errors import Conflict, Invalid, NotFound, Timeout
from hub.events import PrinterConfigured, PrinterRemoved
from hub.model import Connection, PrinterState, rfc3339
from hub.printer_manager import PrinterRecord
from hub.protocols import check_required_fields
from hub.store import printers as printers_store
from hub.store.errors import is_unique_violation
from hub.store.printers import PrinterRow
from integrations.printers.base import (
    CommandRejected,
    CommandTimeout,
    CommandUnsupported,
    InvalidParams,
    LinkInfo,
)
from integrations.printers.registry import DriverManifest, DriverUnavailable

if TYPE_CHECKING:
    from hub.runtime import Hub


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


class PrinterService:
    """Printer records and live printers of one hub (reached as `hub.printer_service`)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        # The connection facts last announced per printer (`printer.connection` messages).
        self.links: dict[str, tuple[Connection, str | None]] = {}

    def get(self, printer_id: str) -> PrinterRow:
        """One configured printer, or NotFound."""
        found = self.hub.printers.get(printer_id)
        if found is None:
            raise NotFound(f"no printer with id {printer_id}")
        return found

    def _driver(self, protocol: str) -> DriverManifest:
        try:
            return self.hub.drivers.manifest(protocol)
        except DriverUnavailable as exc:
            raise Invalid(str(exc), field="protocol", rule="enum") from None

    async def _clash(self, data: dict[str, Any], exclude: str | None = None) -> Conflict:
        """The Conflict naming the field the database refused (after the write failed)."""
        clash = await printers_store.conflict(
            self.hub.db,
            serial=data.get("serial"),
            host=data["host"],
            port=data["port"],
            exclude_id=exclude,
        )
        if clash == "serial":
            return Conflict(f"another printer already has serial {data['serial']}", field="serial")
        if clash == "host":
            return Conflict(
                f"another printer already uses {data['host']}:{data['port']}", field="host"
            )
        return Conflict("another printer already has this serial or host:port")

    async def add(self, data: dict[str, Any]) -> PrinterRow:
        """Store a new printer (protocol default port when omitted) and start its driver."""
        data = dict(data)
        data.setdefault("port", self._driver(data["protocol"]).default_port)
        check_required_fields(self.hub.drivers, data["protocol"], data)
        # The database's unique constraints decide, in the insert itself: no check-then-act.
        try:
            async with self.hub.emitter.batch() as change:
                row = await printers_store.create(self.hub.db, data)
                await self._announce(change, row, created=True)
        except printers_store.Duplicate:
            raise await self._clash(data) from None
        await self.hub.manager.apply(to_record(row))
        return row

    async def update(self, printer_id: str, data: dict[str, Any]) -> PrinterRow:
        """Change a printer's fields; omitted secrets are kept; the driver restarts if needed."""
        current = self.get(printer_id)
        protocol = data.get("protocol", current.protocol)
        after = {"serial": current.serial, "model": current.model, **current.secrets, **data}
        check_required_fields(self.hub.drivers, protocol, after)
        if "protocol" in data and "port" not in data and data["protocol"] != current.protocol:
            data = {**data, "port": self._driver(protocol).default_port}
        try:
            async with self.hub.emitter.batch() as change:
                row = await printers_store.replace(self.hub.db, current, data)
                await self._announce(change, row, created=False)
        except Exception as exc:
            if not is_unique_violation(exc):
                raise
            merged = {"serial": current.serial, "host": current.host, "port": current.port}
            merged.update({k: v for k, v in data.items() if k in merged})
            raise await self._clash(merged, exclude=printer_id) from None
        await self.hub.manager.apply(to_record(row))
        return row

    async def _announce(self, change: Batch, row: PrinterRow, *, created: bool) -> None:
        """`PrinterConfigured` written with the change; after its commit the hub's table
        takes the row and the bus hears of it."""

        def take() -> None:
            self.hub.printers[row.id] = row

        change.then(take)
        await change.emit(
            PrinterConfigured(row.id, row.name, row.protocol, row.model or "", created)
        )

    async def delete(self, printer_id: str) -> None:
        """Remove a printer and stop its driver (`PrinterRemoved` commits with the delete)."""
        row = self.get(printer_id)
        async with self.hub.emitter.batch() as change:
            if await printers_store.delete(self.hub.db, printer_id):
                await change.emit(PrinterRemoved(printer_id, row.name))
        await self.forget(printer_id, announce=False)

    async def forget(self, printer_id: str, *, announce: bool = True) -> None:
        """Drop a printer no longer stored: its driver, live state and table entry; with
        `announce`, publish `PrinterRemoved` (a removal another process made)."""
        row = self.hub.printers.pop(printer_id, None)
        self.links.pop(printer_id, None)
        self.hub.broadcaster.forget(printer_id)
        await self.hub.manager.remove(printer_id)
        if row is not None and announce:
            async with self.hub.emitter.batch() as change:
                await change.emit(PrinterRemoved(printer_id, row.name))

    def announce_link(self, state: PrinterState) -> None:
        """`printer.connection`, derived from the state stream: sent when a report's connection
        facts differ from the last ones announced for its printer."""
        facts = (state.connection, state.last_error)
        printer_id = state.printer_id
        if self.links.get(printer_id) == facts or printer_id not in self.hub.printers:
            return
        self.links[printer_id] = facts
        link = self.link(printer_id)  # only for when data last arrived: it moves on every message
        payload = {
            "printer_id": printer_id,
            "connection": state.connection.value,
            "last_seen": rfc3339(link.last_seen if link is not None else None),
            "last_error": state.last_error,
        }
        self.hub.broadcaster.publish("printer.connection", payload, printer_id)

    def link(self, printer_id: str) -> LinkInfo | None:
        """The printer's connection facts, None when it has no live side."""
        try:
            return self.hub.manager.link(printer_id)
        except (KeyError, RuntimeError):
            return None

    def live(self, printer_id: str) -> tuple[PrinterState, LinkInfo | None]:
        """One printer's current state snapshot and link facts (NotFound when not configured).

        A snapshot is never changed once published (a change publishes a new one), so callers
        may key caches of what they derive from it on its identity plus the link facts."""
        self.get(printer_id)
        state = self.hub.manager.state(printer_id)
        return state, self.link(state.printer_id)

    def status_message(self, printer_id: str) -> Message:
        """A `printer.status` WebSocket message with the printer's current state."""
        payload = status_payload(*self.live(printer_id))
        now = time.time()
        return Message("printer.status", printer_id, encode("printer.status", payload, now), now)

    async def command(self, printer_id: str, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """Send a command to a printer and wait for its acknowledgement."""
        row = self.get(printer_id)
        try:
            reply = await self.hub.manager.command(printer_id, name, params)
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
