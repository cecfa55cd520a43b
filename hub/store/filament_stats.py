"""Filament statistics from the spool ledger: consumption, inventory, low stock, days left."""

from __future__ import annotations

import time
from typing import Any

from databases import Database

DAY_S = 86400.0
RATE_WINDOW_DAYS = 30


def _r(value: Any, digits: int = 3) -> float:
    return round(float(value or 0.0), digits)


async def filament_stats(db: Database, since: float, until: float) -> dict[str, Any]:
    """Consumption by material, colour, spool and printer in [since, until); inventory totals by
    material; spools below their threshold; days of stock left at the last 30 days' rate."""
    window = {"a": since, "b": until}
    used = (
        "FROM spool_ledger l JOIN spools s ON s.id = l.spool_id"
        " WHERE l.kind = 'print' AND l.created_at >= :a AND l.created_at < :b"
    )
    grams = "-SUM(l.delta_g)"
    cost = "-SUM(l.delta_g * COALESCE(s.price_per_kg, 0)) / 1000.0"

    async def by(column: str, alias: str) -> list[dict[str, Any]]:
        rows = await db.fetch_all(
            f"SELECT {column} AS k, {grams} AS g, {cost} AS c {used} GROUP BY {column}"
            f" ORDER BY {column}",
            window,
        )
        return [{alias: r["k"], "grams": _r(r["g"]), "cost": _r(r["c"], 2)} for r in rows]

    inventory_rows = await db.fetch_all(
        "SELECT material, COUNT(*) AS n, SUM(remaining_g) AS g,"
        " SUM(remaining_g * COALESCE(price_per_kg, 0)) / 1000.0 AS v"
        " FROM spools WHERE archived = 0 GROUP BY material ORDER BY material"
    )
    now = time.time()
    recent = await db.fetch_all(
        "SELECT s.material AS m, -SUM(l.delta_g) AS g FROM spool_ledger l"
        " JOIN spools s ON s.id = l.spool_id WHERE l.kind = 'print' AND l.created_at >= :a"
        " GROUP BY s.material",
        {"a": now - RATE_WINDOW_DAYS * DAY_S},
    )
    daily = {r["m"]: float(r["g"] or 0.0) / RATE_WINDOW_DAYS for r in recent}
    inventory = []
    for r in inventory_rows:
        rate = daily.get(r["material"], 0.0)
        inventory.append(
            {
                "material": r["material"],
                "spools": int(r["n"]),
                "grams": _r(r["g"]),
                "value": _r(r["v"], 2),
                "grams_per_day": _r(rate),
                "days_left": None if rate <= 0 else _r(float(r["g"] or 0.0) / rate, 1),
            }
        )
    low_rows = await db.fetch_all(
        "SELECT id, material, color, name, remaining_g, low_threshold_g FROM spools"
        " WHERE archived = 0 AND remaining_g < low_threshold_g ORDER BY remaining_g, id"
    )
    return {
        "consumption": {
            "by_material": await by("s.material", "material"),
            "by_color": await by("s.color", "color"),
            "by_spool": await by("l.spool_id", "spool_id"),
            "by_printer": await by("l.printer_id", "printer_id"),
        },
        "inventory": inventory,
        "low": [
            {
                "spool_id": r["id"],
                "material": r["material"],
                "color": r["color"],
                "name": r["name"],
                "remaining_g": _r(r["remaining_g"]),
                "low_threshold_g": _r(r["low_threshold_g"]),
            }
            for r in low_rows
        ],
    }
