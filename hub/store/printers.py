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


async def create(db: Database, data: dict[str, Any]) -> PrinterRow:
    """Insert a printer from validated fields."""
    now = time.time()
    printer = PrinterRow(
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
    )
    await db.execute(
        "INSERT INTO printers (id, name, protocol, host, port, serial, model, nozzle_diameter,"
        " tags, enabled, secrets, created_at, updated_at) VALUES (:id, :name, :protocol, :host,"
        " :port, :serial, :model, :nozzle_diameter, :tags, :enabled, :secrets, :created_at,"
        " :updated_at)",
        _values(printer),
    )
    return printer


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
    )
    await db.execute(
        "UPDATE printers SET name = :name, protocol = :protocol, host = :host, port = :port,"
        " serial = :serial, model = :model, nozzle_diameter = :nozzle_diameter, tags = :tags,"
        " enabled = :enabled, secrets = :secrets, created_at = :created_at,"
        " updated_at = :updated_at WHERE id = :id",
        _values(printer),
    )
    return printer


async def delete(db: Database, printer_id: str) -> bool:
    """Remove a printer; False when absent."""
    if await get(db, printer_id) is None:
        return False
    await db.execute("DELETE FROM printers WHERE id = :id", {"id": printer_id})
    return True
