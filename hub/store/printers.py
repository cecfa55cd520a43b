"""Printer records: explicit SQL over the `printers` table."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from databases import Database

from hub.model import rfc3339
from hub.protocols import SECRET_FIELDS
from hub.store.db import is_postgres

__all__ = ["SECRET_FIELDS", "PrinterRow"]


@dataclass(frozen=True)
class PrinterRow:
    """A configured printer as stored."""

    id: str
    name: str
    protocol: str
    host: str
    port: int
    serial: str | None
    model: str | None
    nozzle_diameter: float | None
    tags: list[str]
    enabled: bool
    secrets: dict[str, str] = field(repr=False)
    created_at: float
    updated_at: float
    # Queue settings: kept out of the dispatcher's way, trusted to clear its own bed.
    maintenance: bool = False
    auto_clear_bed: bool = False
    bed_clear: bool = False
    ftps_port: int | None = None

    def public(self) -> dict[str, Any]:
        """The JSON form the API returns: secrets are write-only and never included."""
        return {
            "id": self.id,
            "name": self.name,
            "protocol": self.protocol,
            "host": self.host,
            "port": self.port,
            "serial": self.serial,
            "model": self.model,
            "nozzle_diameter": self.nozzle_diameter,
            "tags": list(self.tags),
            "enabled": self.enabled,
            "has_secret": {k: True for k in SECRET_FIELDS if self.secrets.get(k)},
            "maintenance": self.maintenance,
            "auto_clear_bed": self.auto_clear_bed,
            "bed_clear": self.bed_clear,
            "ftps_port": self.ftps_port,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        }


def _row(row: Any) -> PrinterRow:
    return PrinterRow(
        id=row["id"],
        name=row["name"],
        protocol=row["protocol"],
        host=row["host"],
        port=int(row["port"]),
        serial=row["serial"],
        model=row["model"],
        nozzle_diameter=None if row["nozzle_diameter"] is None else float(row["nozzle_diameter"]),
        tags=json.loads(row["tags"]),
        enabled=bool(row["enabled"]),
        secrets=json.loads(row["secrets"]),
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
        maintenance=bool(row["maintenance"]),
        auto_clear_bed=bool(row["auto_clear_bed"]),
        bed_clear=bool(row["bed_clear"]),
        ftps_port=None if row["ftps_port"] is None else int(row["ftps_port"]),
    )


def _values(p: PrinterRow) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "protocol": p.protocol,
        "host": p.host,
        "port": p.port,
        "serial": p.serial,
        "model": p.model,
        "nozzle_diameter": p.nozzle_diameter,
        "tags": json.dumps(p.tags),
        "enabled": 1 if p.enabled else 0,
        "secrets": json.dumps(p.secrets),
        "created_at": p.created_at,
        "updated_at": p.updated_at,
        "maintenance": 1 if p.maintenance else 0,
        "auto_clear_bed": 1 if p.auto_clear_bed else 0,
        "bed_clear": 1 if p.bed_clear else 0,
        "ftps_port": p.ftps_port,
    }


async def conflict(
    db: Database, *, serial: str | None, host: str, port: int, exclude_id: str | None = None
) -> str | None:
    """Name the field that clashes with another printer ('serial' or 'host'), or None."""
    params = {"x": exclude_id or ""}
    if serial:
        row = await db.fetch_one(
            "SELECT id FROM printers WHERE serial = :s AND id <> :x", {**params, "s": serial}
        )
        if row is not None:
            return "serial"
    row = await db.fetch_one(
        "SELECT id FROM printers WHERE host = :h AND port = :p AND id <> :x",
        {**params, "h": host, "p": port},
    )
    return None if row is None else "host"


INSERT = (
    "INSERT INTO printers (id, name, protocol, host, port, serial, model, nozzle_diameter,"
    " tags, enabled, secrets, created_at, updated_at, maintenance, auto_clear_bed, bed_clear,"
    " ftps_port) VALUES (:id, :name, :protocol, :host, :port, :serial, :model,"
    " :nozzle_diameter, :tags, :enabled, :secrets, :created_at, :updated_at, :maintenance,"
    " :auto_clear_bed, :bed_clear, :ftps_port)"
)


def _new_row(data: dict[str, Any], now: float) -> PrinterRow:
    return PrinterRow(
        id=str(uuid.uuid4()),
        name=data["name"],
        protocol=data["protocol"],
        host=data["host"],
        port=int(data["port"]),
        serial=data.get("serial"),
        model=data.get("model"),
        nozzle_diameter=data.get("nozzle_diameter"),
        tags=list(data.get("tags", [])),
        enabled=bool(data.get("enabled", True)),
        secrets={k: data[k] for k in SECRET_FIELDS if data.get(k) is not None},
        created_at=now,
        updated_at=now,
        maintenance=bool(data.get("maintenance", False)),
        auto_clear_bed=bool(data.get("auto_clear_bed", False)),
        ftps_port=data.get("ftps_port"),
    )


class Duplicate(Exception):
    """Another printer already has this serial or host:port."""


async def create(db: Database, data: dict[str, Any]) -> PrinterRow:
    """Insert a printer from validated fields; Duplicate when its serial or host:port is taken
    (the unique constraints decide in the insert itself, so racing creates cannot both win)."""
    printer = _new_row(data, time.time())
    inserted = await db.fetch_one(INSERT + " ON CONFLICT DO NOTHING RETURNING id", _values(printer))
    if inserted is None:
        raise Duplicate(f"printer {printer.name!r} clashes on serial or host:port")
    return printer


async def fingerprint(db: Database) -> tuple[int, float]:
    """(row count, newest change) of the printers table: it moves whenever any process adds,
    changes or removes a printer, at the price of one aggregate query."""
    row = await db.fetch_one("SELECT COUNT(*) AS n, MAX(updated_at) AS t FROM printers")
    if row is None:
        return 0, 0.0
    return int(row["n"]), float(row["t"] or 0.0)


async def get(db: Database, printer_id: str) -> PrinterRow | None:
    """One printer by id."""
    row = await db.fetch_one("SELECT * FROM printers WHERE id = :id", {"id": printer_id})
    return None if row is None else _row(row)


async def list_all(db: Database) -> list[PrinterRow]:
    """Every printer, ordered by name."""
    rows = await db.fetch_all("SELECT * FROM printers ORDER BY name, id")
    return [_row(r) for r in rows]


async def replace(db: Database, current: PrinterRow, data: dict[str, Any]) -> PrinterRow:
    """Store new field values; secrets that `data` omits are kept."""
    secrets = dict(current.secrets)
    for key in SECRET_FIELDS:
        if key in data:
            if data[key] is None:
                secrets.pop(key, None)
            else:
                secrets[key] = data[key]
    printer = PrinterRow(
        id=current.id,
        name=data.get("name", current.name),
        protocol=data.get("protocol", current.protocol),
        host=data.get("host", current.host),
        port=int(data.get("port", current.port)),
        serial=data.get("serial", current.serial),
        model=data.get("model", current.model),
        nozzle_diameter=data.get("nozzle_diameter", current.nozzle_diameter),
        tags=list(data.get("tags", current.tags)),
        enabled=bool(data.get("enabled", current.enabled)),
        secrets=secrets,
        created_at=current.created_at,
        updated_at=time.time(),
        maintenance=bool(data.get("maintenance", current.maintenance)),
        auto_clear_bed=bool(data.get("auto_clear_bed", current.auto_clear_bed)),
        bed_clear=current.bed_clear,
        ftps_port=data.get("ftps_port", current.ftps_port),
    )
    await db.execute(
        "UPDATE printers SET name = :name, protocol = :protocol, host = :host, port = :port,"
        " serial = :serial, model = :model, nozzle_diameter = :nozzle_diameter, tags = :tags,"
        " enabled = :enabled, secrets = :secrets, created_at = :created_at,"
        " updated_at = :updated_at, maintenance = :maintenance, auto_clear_bed = :auto_clear_bed,"
        " bed_clear = :bed_clear, ftps_port = :ftps_port WHERE id = :id",
        _values(printer),
    )
    return printer


async def delete(db: Database, printer_id: str) -> bool:
    """Remove a printer; False when absent."""
    if await get(db, printer_id) is None:
        return False
    await db.execute("DELETE FROM printers WHERE id = :id", {"id": printer_id})
    return True


async def create_many(
    db: Database, entries: list[dict[str, Any]]
) -> tuple[list[PrinterRow], list[tuple[str, str]]]:
    """Insert validated printers in one transaction; entries clashing with a stored printer
    or an earlier entry (serial, host:port) are skipped and named with the reason."""
    serials = {r["serial"] for r in await db.fetch_all("SELECT serial FROM printers") if r[0]}
    endpoints = {
        (r["host"], int(r["port"])) for r in await db.fetch_all("SELECT host, port FROM printers")
    }
    added: list[PrinterRow] = []
    skipped: list[tuple[str, str]] = []
    now = time.time()
    for data in entries:
        serial = data.get("serial")
        endpoint = (data["host"], int(data["port"]))
        if serial and serial in serials:
            skipped.append((data["name"], f"another printer already has serial {serial}"))
            continue
        if endpoint in endpoints:
            skipped.append(
                (data["name"], f"another printer already uses {endpoint[0]}:{endpoint[1]}")
            )
            continue
        if serial:
            serials.add(serial)
        endpoints.add(endpoint)
        added.append(_new_row(data, now))
    if added:
        async with db.transaction():
            await db.execute_many(INSERT, [_values(p) for p in added])
    return added, skipped


async def set_beds_clear(db: Database, printer_ids: list[str], clear: bool) -> None:
    """`set_bed_clear` for many printers in one statement."""
    if not printer_ids:
        return
    ids = (
        "SELECT json_array_elements_text(CAST(:ids AS json))"
        if is_postgres(db)
        else "SELECT value FROM json_each(:ids)"
    )
    await db.execute(
        f"UPDATE printers SET bed_clear = :c WHERE id IN ({ids})",
        {"c": 1 if clear else 0, "ids": json.dumps(printer_ids)},
    )


async def set_bed_clear(db: Database, printer_id: str, clear: bool) -> None:
    """Record whether a printer's bed is confirmed clear (the dispatcher's gate)."""
    await db.execute(
        "UPDATE printers SET bed_clear = :c WHERE id = :id",
        {"c": 1 if clear else 0, "id": printer_id},
    )
