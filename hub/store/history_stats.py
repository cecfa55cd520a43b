"""Print statistics over a window: outcomes, success rate, hours, filament and cost, per day."""

from __future__ import annotations

import time
from typing import Any

from databases import Database

from hub.store.db import is_postgres
from hub.store.history import OUTCOMES
from hub.store.history_query import RUNNING, Filters

DAY_S = 86400


def _r(value: Any, digits: int = 3) -> float:
    return round(float(value or 0.0), digits)


async def history_stats(db: Database, filters: Filters) -> dict[str, Any]:
    """Counts by outcome, success rate (completed / ended), print hours, filament grams and cost
    by material, colour and printer, and a per-UTC-day series, for prints started in the
    filters' [since, until)."""
    assert filters.since is not None and filters.until is not None
    conds, params = filters.where(is_postgres(db))
    where = " WHERE " + " AND ".join(conds)
    hours = "SUM(CASE WHEN ended_at IS NULL THEN 0 ELSE ended_at - started_at END) / 3600.0"
    rows = await db.fetch_all(
        f"SELECT outcome, COUNT(*) AS n, {hours} AS h FROM prints{where} GROUP BY outcome", params
    )
    by_outcome = {o: 0 for o in (*OUTCOMES, RUNNING)}
    total_hours = 0.0
    for r in rows:
        by_outcome[r["outcome"] or "running"] = by_outcome.get(r["outcome"] or "running", 0) + int(
            r["n"]
        )
        total_hours += float(r["h"] or 0.0)
    ended = sum(n for o, n in by_outcome.items() if o != "running")

    used_from = f"FROM print_filament pf JOIN prints ON prints.id = pf.print_id{where}"

    async def filament_by(column: str, alias: str) -> list[dict[str, Any]]:
        found = await db.fetch_all(
            f"SELECT {column} AS k, SUM(pf.grams) AS g, SUM(COALESCE(pf.cost, 0)) AS c"
            f" {used_from} GROUP BY {column} ORDER BY {column}",
            params,
        )
        return [{alias: r["k"], "grams": _r(r["g"]), "cost": _r(r["c"], 2)} for r in found]

    totals = await db.fetch_one(
        f"SELECT SUM(pf.grams) AS g, SUM(COALESCE(pf.cost, 0)) AS c {used_from}", params
    )
    day = "FLOOR(started_at / 86400)" if is_postgres(db) else "CAST(started_at / 86400 AS INTEGER)"
    series_rows = await db.fetch_all(
        f"SELECT {day} AS d, outcome, COUNT(*) AS n, {hours} AS h FROM prints{where}"
        f" GROUP BY {day}, outcome",
        params,
    )
    grams_rows = await db.fetch_all(
        f"SELECT {day} AS d, pf.material AS m, SUM(pf.grams) AS g {used_from}"
        f" GROUP BY {day}, pf.material",
        params,
    )
    first = int(filters.since // DAY_S)
    last = int((filters.until - 1e-6) // DAY_S)
    series: dict[int, dict[str, Any]] = {
        d: {
            "date": time.strftime("%Y-%m-%d", time.gmtime(d * DAY_S)),
            "prints": 0,
            **{o: 0 for o in OUTCOMES},
            "hours": 0.0,
            "grams": 0.0,
            "grams_by_material": {},
        }
        for d in range(first, last + 1)
    }
    for r in series_rows:
        entry = series.get(int(r["d"]))
        if entry is None:
            continue
        entry["prints"] += int(r["n"])
        if r["outcome"] in entry:
            entry[r["outcome"]] += int(r["n"])
        entry["hours"] = _r(entry["hours"] + float(r["h"] or 0.0), 4)
    for r in grams_rows:
        entry = series.get(int(r["d"]))
        if entry is not None:
            entry["grams"] = _r(entry["grams"] + float(r["g"] or 0.0))
            entry["grams_by_material"][r["m"] or "unknown"] = _r(r["g"])
    return {
        "since": filters.since,
        "until": filters.until,
        "prints": sum(by_outcome.values()),
        "by_outcome": by_outcome,
        "success_rate": None if ended == 0 else round(by_outcome["completed"] / ended, 4),
        "print_hours": _r(total_hours, 4),
        "filament": {
            "grams": _r(totals["g"] if totals else 0),
            "cost": _r(totals["c"] if totals else 0, 2),
            "by_material": await filament_by("pf.material", "material"),
            "by_color": await filament_by("pf.color", "color"),
            "by_printer": await filament_by("prints.printer_id", "printer_id"),
        },
        "per_day": [series[d] for d in sorted(series)],
    }
