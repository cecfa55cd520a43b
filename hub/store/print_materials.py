"""The materials each print drew, kept in step for the history's material filter and totals.

`print_materials` has one row per print and material with the print's printer, outcome
('running' while open), start and file name id, so a material filter walks one index newest first;
`print_material_counts` counts them per printer, outcome and material, so the filtered total
without a time or file filter is a sum of a few rows; `print_file_material_counts` (migration
0021) the same per file name id, for a total with a file filter and no time range. Both move only here: when a print's trays
are written (`sync`, in the caller's transaction, after `lock`) and when it closes (`close`, in
prints.finish's transaction). Each takes the print's row lock first, so on PostgreSQL a close
and a tray write of the same print run one after the other and neither loses the other's move.
"""

from __future__ import annotations

from typing import Any

from databases import Database

RUNNING = "running"


async def lock(db: Database, print_id: str) -> Any:
    """Take the print's row lock (a no-op update) and return its printer, outcome, start and
    file name id; None when there is no such print. Call first in the transaction."""
    return await db.fetch_one(
        "UPDATE prints SET updated_at = updated_at WHERE id = :p"
        " RETURNING printer_id, outcome, started_at, file_id",
        {"p": print_id},
    )


async def _count(
    db: Database, printer_id: str, outcome: str, material: str, file_id: Any, delta: int
) -> None:
    await db.execute(
        "INSERT INTO print_material_counts (printer_id, outcome, material, n)"
        " VALUES (:p, :o, :m, :d) ON CONFLICT (material, printer_id, outcome)"
        " DO UPDATE SET n = print_material_counts.n + excluded.n",
        {"p": printer_id, "o": outcome, "m": material, "d": delta},
    )
    if file_id is None:  # no record is without a name id since migration 0019
        return
    await db.execute(
        "INSERT INTO print_file_material_counts (material, file_id, printer_id, outcome, n)"
        " VALUES (:m, :f, :p, :o, :d) ON CONFLICT (material, file_id, printer_id, outcome)"
        " DO UPDATE SET n = print_file_material_counts.n + excluded.n",
        {"m": material, "f": int(file_id), "p": printer_id, "o": outcome, "d": delta},
    )


async def sync(db: Database, print_id: str, locked: Any) -> None:
    """Make the print's materials those of its `print_filament` rows (call after `lock`, in the
    same transaction, with what it returned)."""
    if locked is None:
        return
    rows = await db.fetch_all(
        "SELECT DISTINCT material FROM print_filament WHERE print_id = :p AND material IS NOT NULL",
        {"p": print_id},
    )
    want = {r["material"] for r in rows}
    have_rows = await db.fetch_all(
        "SELECT material FROM print_materials WHERE print_id = :p", {"p": print_id}
    )
    have = {r["material"] for r in have_rows}
    printer_id, outcome = locked["printer_id"], locked["outcome"] or RUNNING
    for material in sorted(want - have):
        await db.execute(
            "INSERT INTO print_materials (print_id, material, printer_id, outcome, started_at,"
            " file_id) VALUES (:p, :m, :printer, :o, :at, :f)",
            {"p": print_id, "m": material, "printer": printer_id, "o": outcome,
             "at": float(locked["started_at"]), "f": locked["file_id"]},
        )  # fmt: skip
        await _count(db, printer_id, outcome, material, locked["file_id"], 1)
    for material in sorted(have - want):
        await db.execute(
            "DELETE FROM print_materials WHERE print_id = :p AND material = :m",
            {"p": print_id, "m": material},
        )
        await _count(db, printer_id, outcome, material, locked["file_id"], -1)


async def close(db: Database, print_id: str, printer_id: str, outcome: str, file_id: Any) -> None:
    """Move a print's materials from 'running' to its outcome (in the closing transaction,
    after the update of `prints` that took the row lock)."""
    rows = await db.fetch_all(
        "UPDATE print_materials SET outcome = :o WHERE print_id = :p AND outcome = :running"
        " RETURNING material",
        {"o": outcome, "p": print_id, "running": RUNNING},
    )
    for r in rows:
        await _count(db, printer_id, RUNNING, r["material"], file_id, -1)
        await _count(db, printer_id, outcome, r["material"], file_id, 1)
