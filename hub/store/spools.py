"""Filament spools, their weight ledger and their tray assignments (explicit SQL, both engines).

`remaining_g` of a spool is kept equal to the sum of its ledger: every change of weight is a
ledger row written in the same transaction as the spool's running total, and a print deducts
at most once per spool (UNIQUE (print_id, spool_id)), so a replayed finish changes nothing.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from databases import Database

from hub.model import rfc3339
from hub.store.db import is_postgres
from hub.store.errors import is_unique_violation

# Densities (g/cm³) used when a spool does not say; the keys are the materials the hub knows.
DENSITIES: dict[str, float] = {
    "PLA": 1.24,
    "PLA-CF": 1.30,
    "PETG": 1.27,
    "PETG-CF": 1.30,
    "PET": 1.38,
    "ABS": 1.04,
    "ASA": 1.07,
    "TPU": 1.21,
    "PA": 1.14,
    "PA-CF": 1.20,
    "PC": 1.20,
    "PVA": 1.23,
    "HIPS": 1.04,
    "PP": 0.90,
}
MATERIALS: tuple[str, ...] = tuple(DENSITIES)

# Columns a create or a partial update may set directly.
EDITABLE = (
    "material",
    "color",
    "brand",
    "name",
    "diameter_mm",
    "density_g_cm3",
    "weight_total_g",
    "spool_weight_g",
    "price_per_kg",
    "location",
    "lot",
    "notes",
    "low_threshold_g",
    "archived",
)


@dataclass(frozen=True)
class Spool:
    """One spool of filament."""

    id: str
    material: str
    color: str
    brand: str | None
    name: str | None
    diameter_mm: float
    density_g_cm3: float
    weight_total_g: float
    remaining_g: float
    spool_weight_g: float | None
    price_per_kg: float | None
    location: str | None
    lot: str | None
    notes: str | None
    low_threshold_g: float
    low_alerted: bool
    archived: bool
    tray_uuid: str | None
    created_at: float
    updated_at: float
    assigned_printer: str | None = None
    assigned_tray: int | None = None

    def public(self) -> dict[str, Any]:
        """The JSON form the API returns."""
        return {
            "id": self.id,
            "material": self.material,
            "color": self.color,
            "brand": self.brand,
            "name": self.name,
            "diameter_mm": self.diameter_mm,
            "density_g_cm3": self.density_g_cm3,
            "weight_total_g": self.weight_total_g,
            "weight_remaining_g": round(self.remaining_g, 3),
            "used_g": round(max(0.0, self.weight_total_g - self.remaining_g), 3),
            "spool_weight_g": self.spool_weight_g,
            "price_per_kg": self.price_per_kg,
            "location": self.location,
            "lot": self.lot,
            "notes": self.notes,
            "low_threshold_g": self.low_threshold_g,
            "archived": self.archived,
            "assigned_to": None
            if self.assigned_printer is None
            else {"printer_id": self.assigned_printer, "tray": self.assigned_tray},
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        }

    def grams_per_mm(self) -> float:
        """Mass of one millimetre of this filament (its cross-section times its density)."""
        radius_cm = self.diameter_mm / 20.0
        return 3.141592653589793 * radius_cm * radius_cm * 0.1 * self.density_g_cm3


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _spool(row: Any) -> Spool:
    return Spool(
        id=row["id"],
        material=row["material"],
        color=row["color"],
        brand=row["brand"],
        name=row["name"],
        diameter_mm=float(row["diameter_mm"]),
        density_g_cm3=float(row["density_g_cm3"]),
        weight_total_g=float(row["weight_total_g"]),
        remaining_g=float(row["remaining_g"]),
        spool_weight_g=_float(row["spool_weight_g"]),
        price_per_kg=_float(row["price_per_kg"]),
        location=row["location"],
        lot=row["lot"],
        notes=row["notes"],
        low_threshold_g=float(row["low_threshold_g"]),
        low_alerted=bool(row["low_alerted"]),
        archived=bool(row["archived"]),
        tray_uuid=row["tray_uuid"],
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
        assigned_printer=row["a_printer"],
        assigned_tray=None if row["a_tray"] is None else int(row["a_tray"]),
    )


_SELECT = (
    "SELECT s.*, a.printer_id AS a_printer, a.tray AS a_tray FROM spools s"
    " LEFT JOIN tray_assignments a ON a.spool_id = s.id"
)


async def get(db: Database, spool_id: str) -> Spool | None:
    """One spool with its assignment, or None."""
    row = await db.fetch_one(f"{_SELECT} WHERE s.id = :id", {"id": spool_id})
    return None if row is None else _spool(row)


async def list_all(
    db: Database,
    *,
    material: str | None = None,
    archived: bool | None = None,
    assigned: bool | None = None,
) -> list[Spool]:
    """Spools, oldest first, optionally filtered."""
    where: list[str] = []
    params: dict[str, Any] = {}
    if material is not None:
        where.append("s.material = :m")
        params["m"] = material
    if archived is not None:
        where.append("s.archived = :ar")
        params["ar"] = 1 if archived else 0
    if assigned is not None:
        where.append("a.spool_id IS NOT NULL" if assigned else "a.spool_id IS NULL")
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows = await db.fetch_all(f"{_SELECT}{clause} ORDER BY s.created_at, s.id", params)
    return [_spool(r) for r in rows]


async def create(db: Database, data: dict[str, Any]) -> Spool:
    """Insert a spool and its opening ledger entry (its remaining weight)."""
    now = time.time()
    spool_id = str(uuid.uuid4())
    values = {k: data.get(k) for k in EDITABLE}
    values["archived"] = 1 if data.get("archived") else 0
    remaining = float(data.get("weight_remaining_g", data["weight_total_g"]))
    async with db.transaction():
        await db.execute(
            "INSERT INTO spools (id, material, color, brand, name, diameter_mm, density_g_cm3,"
            " weight_total_g, remaining_g, spool_weight_g, price_per_kg, location, lot, notes,"
            " low_threshold_g, low_alerted, archived, tray_uuid, created_at, updated_at)"
            " VALUES (:id, :material, :color, :brand, :name, :diameter_mm, :density_g_cm3,"
            " :weight_total_g, 0, :spool_weight_g, :price_per_kg, :location, :lot, :notes,"
            " :low_threshold_g, 0, :archived, NULL, :now, :now)",
            {**values, "id": spool_id, "now": now},
        )
        await _move(db, spool_id, "initial", remaining, now=now)
    found = await get(db, spool_id)
    assert found is not None
    return found


async def update(db: Database, spool_id: str, data: dict[str, Any]) -> None:
    """Set the given editable columns of a spool."""
    fields = {k: data[k] for k in EDITABLE if k in data}
    if "archived" in fields:
        fields["archived"] = 1 if fields["archived"] else 0
    sets = ", ".join(f"{k} = :{k}" for k in fields)
    await db.execute(
        f"UPDATE spools SET {sets}{', ' if sets else ''}updated_at = :now WHERE id = :id",
        {**fields, "now": time.time(), "id": spool_id},
    )


async def delete(db: Database, spool_id: str) -> None:
    """Remove a spool, its ledger and its assignment."""
    async with db.transaction():
        await db.execute("DELETE FROM tray_assignments WHERE spool_id = :id", {"id": spool_id})
        await db.execute("DELETE FROM spool_ledger WHERE spool_id = :id", {"id": spool_id})
        await db.execute("DELETE FROM spools WHERE id = :id", {"id": spool_id})


async def _move(
    db: Database,
    spool_id: str,
    kind: str,
    delta_g: float,
    *,
    print_id: str | None = None,
    printer_id: str | None = None,
    tray: int | None = None,
    note: str | None = None,
    now: float | None = None,
) -> None:
    now = time.time() if now is None else now
    await db.execute(
        "INSERT INTO spool_ledger (id, spool_id, kind, delta_g, print_id, printer_id, tray, note,"
        " created_at) VALUES (:id, :s, :k, :d, :p, :pr, :t, :n, :now)",
        {
            "id": str(uuid.uuid4()),
            "s": spool_id,
            "k": kind,
            "d": delta_g,
            "p": print_id,
            "pr": printer_id,
            "t": tray,
            "n": note,
            "now": now,
        },
    )
    await db.execute(
        "UPDATE spools SET remaining_g = remaining_g + :d, updated_at = :now WHERE id = :s",
        {"d": delta_g, "now": now, "s": spool_id},
    )


async def record(
    db: Database,
    spool_id: str,
    kind: str,
    delta_g: float,
    *,
    print_id: str | None = None,
    printer_id: str | None = None,
    tray: int | None = None,
    note: str | None = None,
) -> bool:
    """Write one ledger movement and move the spool's total with it, atomically.

    False (and nothing written) when this print already deducted from this spool."""
    if print_id is not None:
        seen = await db.fetch_val(
            "SELECT COUNT(*) FROM spool_ledger WHERE print_id = :p AND spool_id = :s",
            {"p": print_id, "s": spool_id},
        )
        if seen:
            return False
    try:
        async with db.transaction():
            await _move(
                db, spool_id, kind, delta_g, print_id=print_id, printer_id=printer_id,
                tray=tray, note=note,
            )  # fmt: skip
    except Exception as exc:
        # Two writers raced past the check above: the constraint kept the first one.
        if is_unique_violation(exc):
            return False
        raise
    return True


async def set_low_alerted(db: Database, spool_id: str, alerted: bool) -> None:
    """Remember whether the low-stock notification for the current crossing went out."""
    await db.execute(
        "UPDATE spools SET low_alerted = :a WHERE id = :id",
        {"a": 1 if alerted else 0, "id": spool_id},
    )


async def set_tray_uuid(db: Database, spool_id: str, tray_uuid: str | None) -> None:
    """Remember the Bambu tray UUID (RFID tag) seen with this spool."""
    await db.execute(
        "UPDATE spools SET tray_uuid = :u WHERE id = :id", {"u": tray_uuid, "id": spool_id}
    )


async def ledger(
    db: Database, spool_id: str, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int, float]:
    """A page of a spool's movements, oldest first, with their count and sum."""
    rows = await db.fetch_all(
        "SELECT * FROM spool_ledger WHERE spool_id = :s ORDER BY created_at, id"
        " LIMIT :limit OFFSET :offset",
        {"s": spool_id, "limit": limit, "offset": offset},
    )
    summary = await db.fetch_one(
        "SELECT COUNT(*) AS n, COALESCE(SUM(delta_g), 0) AS total FROM spool_ledger"
        " WHERE spool_id = :s",
        {"s": spool_id},
    )
    assert summary is not None
    items = [
        {
            "id": r["id"],
            "kind": r["kind"],
            "delta_g": round(float(r["delta_g"]), 3),
            "print_id": r["print_id"],
            "printer_id": r["printer_id"],
            "tray": r["tray"],
            "note": r["note"],
            "created_at": rfc3339(float(r["created_at"])),
        }
        for r in rows
    ]
    return items, int(summary["n"]), float(summary["total"])


# Tray assignments -----------------------------------------------------------------------------


async def assignments(db: Database, printer_id: str | None = None) -> dict[tuple[str, int], str]:
    """(printer, tray) → spool id, for one printer or all."""
    if printer_id is None:
        rows = await db.fetch_all("SELECT printer_id, tray, spool_id FROM tray_assignments")
    else:
        rows = await db.fetch_all(
            "SELECT printer_id, tray, spool_id FROM tray_assignments WHERE printer_id = :p",
            {"p": printer_id},
        )
    return {(r["printer_id"], int(r["tray"])): r["spool_id"] for r in rows}


_ASSIGN_ATTEMPTS = 10


async def assign(db: Database, printer_id: str, tray: int, spool_id: str) -> None:
    """Put a spool on a tray: it leaves any other tray, and the tray's former spool comes off."""
    # Assignments of one spool queue on its row (PostgreSQL; SQLite writers are serial).
    # Two spools put on one tray at once can still both find the tray free and collide on
    # its unique key: the loser runs again and then sees the winner's row.
    lock = "SELECT id FROM spools WHERE id = :s FOR UPDATE" if is_postgres(db) else None
    for attempt in range(_ASSIGN_ATTEMPTS):
        try:
            async with db.transaction():
                if lock is not None:
                    await db.execute(lock, {"s": spool_id})
                await db.execute(
                    "DELETE FROM tray_assignments WHERE spool_id = :s", {"s": spool_id}
                )
                await db.execute(
                    "DELETE FROM tray_assignments WHERE printer_id = :p AND tray = :t",
                    {"p": printer_id, "t": tray},
                )
                await db.execute(
                    "INSERT INTO tray_assignments (printer_id, tray, spool_id, assigned_at)"
                    " VALUES (:p, :t, :s, :now)",
                    {"p": printer_id, "t": tray, "s": spool_id, "now": time.time()},
                )
            return
        except Exception as exc:
            if not is_unique_violation(exc) or attempt == _ASSIGN_ATTEMPTS - 1:
                raise


async def unassign_tray(db: Database, printer_id: str, tray: int) -> str | None:
    """Free a tray; return the spool that was on it."""
    spool_id = await db.fetch_val(
        "SELECT spool_id FROM tray_assignments WHERE printer_id = :p AND tray = :t",
        {"p": printer_id, "t": tray},
    )
    if spool_id is not None:
        await db.execute(
            "DELETE FROM tray_assignments WHERE printer_id = :p AND tray = :t",
            {"p": printer_id, "t": tray},
        )
    return None if spool_id is None else str(spool_id)


async def unassign_spool(db: Database, spool_id: str) -> None:
    """Take a spool off whatever tray it is on."""
    await db.execute("DELETE FROM tray_assignments WHERE spool_id = :s", {"s": spool_id})
