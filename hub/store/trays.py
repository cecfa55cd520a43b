"""Tray assignments: which spool sits on which printer tray (explicit SQL, both engines)."""

from __future__ import annotations

import time

from databases import Database

from hub.store.db import is_postgres
from hub.store.errors import is_unique_violation


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


async def assign(
    db: Database, printer_id: str, tray: int, spool_id: str, *, only_if_free: bool = False
) -> bool:
    """Put a spool on a tray: it leaves any other tray, and the tray's former spool comes off.

    With `only_if_free` the spool goes on only if, at the moment of writing, neither it nor
    the tray is assigned (an automatic match never takes a spool a person has just placed);
    returns whether it went on."""
    # Assignments of one spool queue on its row (PostgreSQL; SQLite writers are serial).
    # Two spools put on one tray at once can still both find the tray free and collide on
    # its unique key: the loser runs again and then sees the winner's row.
    lock = "SELECT id FROM spools WHERE id = :s FOR UPDATE" if is_postgres(db) else None
    for attempt in range(_ASSIGN_ATTEMPTS):
        try:
            async with db.transaction():
                if lock is not None:
                    await db.execute(lock, {"s": spool_id})
                if only_if_free:
                    return await _assign_if_free(db, printer_id, tray, spool_id)
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
            return True
        except Exception as exc:
            if not is_unique_violation(exc) or attempt == _ASSIGN_ATTEMPTS - 1:
                raise
    return False  # not reached: the last attempt returns or raises


async def _assign_if_free(db: Database, printer_id: str, tray: int, spool_id: str) -> bool:
    """Insert the assignment only while spool and tray are both free (their unique keys)."""
    await db.execute(
        "INSERT INTO tray_assignments (printer_id, tray, spool_id, assigned_at)"
        " VALUES (:p, :t, :s, :now) ON CONFLICT DO NOTHING",
        {"p": printer_id, "t": tray, "s": spool_id, "now": time.time()},
    )
    placed = await db.fetch_val(
        "SELECT COUNT(*) FROM tray_assignments WHERE spool_id = :s AND printer_id = :p"
        " AND tray = :t",
        {"p": printer_id, "t": tray, "s": spool_id},
    )
    return bool(placed)


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
