"""Print history queries: filtered pages (offset or keyset), batched export, notes, per-tray use.

Every list is newest first with the id as tie-break (`started_at DESC, id DESC`); which index
serves each filter, and how the total is counted, is hub/store/history_query.py.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from databases import Database

from hub.model import rfc3339
from hub.store import history_query
from hub.store import print_materials as materials
from hub.store.db import is_postgres
from hub.store.history_query import RUNNING, Filters
from hub.store.prints import SQLITE_HAS_JSON_UPDATE

_JSON_IDS = {
    "postgresql": "SELECT json_array_elements_text(CAST(:ids AS json))",
    "sqlite": "SELECT value FROM json_each(:ids)",
}
OUTCOMES = ("completed", "failed", "cancelled", "unknown")
__all__ = ["OUTCOMES", "RUNNING", "Filters"]
EXPORT_BATCH = 500
_TRAY_FIELDS = ("tray", "spool_id", "material", "color", "grams", "mm", "cost")
# A page row's trays as one JSON array (a subquery on the row's print id); None: SQLite without
# JSON functions, whose rows are given their trays by trays_of.
_TRAYS_JSON = {
    "postgresql": "SELECT json_agg(json_build_object("
    + ", ".join(f"'{f}', t.{f}" for f in _TRAY_FIELDS)
    + ")) FROM print_filament t WHERE t.print_id = prints.id",
    "sqlite": "SELECT json_group_array(json_object("
    + ", ".join(f"'{f}', t.{f}" for f in _TRAY_FIELDS)
    + ")) FROM print_filament t WHERE t.print_id = prints.id"
    if SQLITE_HAS_JSON_UPDATE
    else None,
}


# A cursor is `<started_at>_<print id>`: the row the next page continues after. Any text
# matching the pattern is a cursor the list accepts (a stale one simply continues from there).
CURSOR_PATTERN = (
    "^[0-9]{1,16}\\.[0-9]{1,17}_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
)
_CURSOR = re.compile(CURSOR_PATTERN)


def encode_cursor(started_at: float, print_id: str) -> str:
    """The keyset cursor that continues after this row (the float written exactly)."""
    return f"{float(started_at)!r}_{print_id}"


def decode_cursor(cursor: str) -> tuple[float, str]:
    """(started_at, id) of a cursor; ValueError when it does not match CURSOR_PATTERN."""
    if not _CURSOR.match(cursor):
        raise ValueError("not a history cursor")
    started, _, print_id = cursor.partition("_")
    return float(started), print_id


async def page(
    db: Database,
    filters: Filters,
    *,
    limit: int,
    offset: int = 0,
    after: tuple[float, str] | None = None,
    count: bool = True,
) -> tuple[list[dict[str, Any]], int | None]:
    """A page of history records (public form) and the filtered total."""
    # PostgreSQL may keep a prepared statement's generic plan after five runs. The statements
    # here pass the matching names as ids (an array, or a bitmap that no plan can look into),
    # not as a LIKE subquery whose generic plan went wrong (file + outcome + since: 107 ms
    # generic, 47 ms custom), and measured interleaved at a million prints the generic plans
    # are now as fast as custom ones, which also cost planning and a transaction to set
    # plan_cache_mode (docs/performance.md): the default plan cache is kept.
    names = await history_query.match_names(db, filters)
    if names is not None and names.prints == 0:  # no name matches: nothing to walk
        return [], 0 if count else None
    postgres = is_postgres(db)
    query = filters.query(postgres, names)
    extra: list[str] = []
    params = {**query.params, "limit": limit, "offset": offset}
    if after is not None:
        extra.append(f"({query.at} < :k_at OR ({query.at} = :k_at AND {query.id} < :k_id))")
        params.update(k_at=after[0], k_id=after[1])
    counted = history_query.total_statement(postgres, filters, names) if count else None
    total = counted if isinstance(counted, int) else None
    column = ""
    joined = isinstance(counted, tuple) and _joins(params, counted[1])
    if isinstance(counted, tuple) and joined:
        # The total rides on the page's statement (a subquery run once): one round trip
        # fewer per request. An empty page carries no row, so it then asks on its own.
        column = f", ({counted[0]}) AS _total"
        params.update(counted[1])
    trays = _TRAYS_JSON["postgresql" if postgres else "sqlite"]
    if trays is not None:  # each row's trays in the same statement: one round trip fewer
        column += f", ({trays}) AS _trays"
    # The page's keys from the walk's index alone, then only those rows from the table.
    rows = await db.fetch_all(
        f"SELECT prints.*{column} FROM ({query.keys(extra)}) k JOIN prints ON prints.id = k.k_id"
        " ORDER BY k.k_at DESC, k.k_id DESC",
        params,
    )
    if isinstance(counted, tuple):
        if joined and rows:
            total = int(rows[0]["_total"] or 0)
        else:
            total = int(await db.fetch_val(*counted) or 0)
    return await _publics(db, rows, inline=trays is not None), total


def _joins(params: dict[str, Any], more: dict[str, Any]) -> bool:
    """Whether two statements' parameters can be one statement's (no name with two values)."""
    return all(params[k] == v for k, v in more.items() if k in params)


async def get(db: Database, print_id: str) -> dict[str, Any] | None:
    """One history record, or None."""
    row = await db.fetch_one("SELECT * FROM prints WHERE id = :id", {"id": print_id})
    if row is None:
        return None
    return (await _publics(db, [row]))[0]


async def set_notes(db: Database, print_id: str, notes: str | None) -> bool:
    """Change a record's notes; False when there is no such record."""
    found = await db.fetch_val("SELECT COUNT(*) FROM prints WHERE id = :id", {"id": print_id})
    if not found:
        return False
    await db.execute(
        "UPDATE prints SET notes = :n, updated_at = :now WHERE id = :id",
        {"n": notes, "now": time.time(), "id": print_id},
    )
    return True


async def export_rows(db: Database, filters: Filters) -> AsyncIterator[dict[str, Any]]:
    """Every matching record, newest first, read in keyset batches so memory stays flat."""
    after: tuple[float, str] | None = None
    while True:
        batch, _ = await page(db, filters, limit=EXPORT_BATCH, after=after, count=False)
        for item in batch:
            yield item
        if len(batch) < EXPORT_BATCH:
            return
        last = batch[-1]
        after = (last["_started_at"], last["id"])


async def trays_of(db: Database, print_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Per print, the trays it drew filament from (tray order)."""
    if not print_ids:
        return {}
    if is_postgres(db) or SQLITE_HAS_JSON_UPDATE:
        # The ids as one JSON parameter: a bind parameter per id would leave reference cycles
        # per row (SQLAlchemy's BindParameter) for the collector, which the hub's GC policy
        # keeps frozen: an export of a million rows would grow the heap by hundreds of MB.
        ids = _JSON_IDS["postgresql" if is_postgres(db) else "sqlite"]
        rows = await db.fetch_all(
            f"SELECT * FROM print_filament WHERE print_id IN ({ids}) ORDER BY print_id, tray",
            {"ids": json.dumps(print_ids)},
        )
    else:
        names = {f"p{i}": pid for i, pid in enumerate(print_ids)}
        rows = await db.fetch_all(
            "SELECT * FROM print_filament WHERE print_id IN ("
            + ", ".join(f":{k}" for k in names)
            + ") ORDER BY print_id, tray",
            names,
        )
    found: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        found.setdefault(r["print_id"], []).append(_tray(r))
    return found


def _tray(r: Any) -> dict[str, Any]:
    return {
        "tray": int(r["tray"]),
        "spool_id": r["spool_id"],
        "material": r["material"],
        "color": r["color"],
        "grams": round(float(r["grams"]), 3),
        "mm": round(float(r["mm"]), 1),
        "cost": None if r["cost"] is None else round(float(r["cost"]), 4),
    }


def _trays(text: str | None) -> list[dict[str, Any]]:
    """A row's `_trays` column (NULL when it has none), in tray order."""
    return sorted((_tray(t) for t in json.loads(text or "[]")), key=lambda t: t["tray"])


def _num(value: Any, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


async def _publics(db: Database, rows: list[Any], inline: bool = False) -> list[dict[str, Any]]:
    """The public form of rows of `prints`; `inline`: each row carries its trays (`_trays`,
    a JSON array of _TRAYS_JSON) instead of a lookup here."""
    if inline:
        trays = {r["id"]: _trays(r["_trays"]) for r in rows}
    else:
        trays = await trays_of(db, [r["id"] for r in rows])
    out = []
    for r in rows:
        started, ended = float(r["started_at"]), r["ended_at"]
        ended = None if ended is None else float(ended)
        out.append(
            {
                "id": r["id"],
                "job_key": r["job_key"],
                "printer": {"id": r["printer_id"], "name": r["printer_name"]},
                "file": r["file"],
                "queue_job_id": r["queue_job_id"],
                "started_by": r["started_by"],
                "started_at": rfc3339(started),
                "ended_at": rfc3339(ended),
                "duration_s": None if ended is None else round(ended - started, 3),
                "state": r["state"],
                "outcome": r["outcome"],
                "progress": float(r["progress"]),
                "layer": r["layer"],
                "total_layers": r["total_layers"],
                "errors": json.loads(r["errors"]) if r["errors"] else [],
                "filament": {
                    "grams": _num(r["filament_g"], 3),
                    "mm": _num(r["filament_mm"], 1),
                    "trays": trays.get(r["id"], []),
                },
                "cost": _num(r["cost"], 4),
                "notes": r["notes"],
                "_started_at": started,  # the keyset position; dropped before answering
            }
        )
    return out


# Writing the filament side of a record (hub/consumption.py) ----------------------------------


async def note_tray(
    db: Database, print_id: str, tray: int, spool_id: str | None, material: str | None,
    color: str | None,
) -> None:  # fmt: skip
    """Remember that a print drew from a tray (nothing yet counted); once per tray."""
    async with db.transaction():
        locked = await materials.lock(db, print_id)
        inserted = await db.fetch_one(
            "INSERT INTO print_filament (print_id, tray, spool_id, material, color, grams, mm,"
            " cost) VALUES (:p, :t, :s, :m, :c, 0, 0, NULL)"
            " ON CONFLICT (print_id, tray) DO NOTHING RETURNING tray",
            {"p": print_id, "t": tray, "s": spool_id, "m": material, "c": color},
        )
        if inserted is not None and material is not None:
            await materials.sync(db, print_id, locked)


async def noted_trays(db: Database, print_id: str) -> list[dict[str, Any]]:
    """The trays a print is known to have drawn from, with the spool seen there."""
    rows = await db.fetch_all(
        "SELECT tray, spool_id, material, color FROM print_filament WHERE print_id = :p"
        " ORDER BY tray",
        {"p": print_id},
    )
    return [
        {"tray": int(r["tray"]), "spool_id": r["spool_id"], "material": r["material"],
         "color": r["color"]}
        for r in rows
    ]  # fmt: skip


async def save_tray_feed(db: Database, print_id: str, feed: list[tuple[int, float]]) -> None:
    """Keep the trays that have fed a running print so far (tray, progress % it began at)."""
    await db.execute(
        "UPDATE prints SET tray_feed = :f WHERE id = :p",
        {"f": json.dumps([[tray, start] for tray, start in feed]), "p": print_id},
    )


async def tray_feeds(db: Database, print_ids: list[str]) -> dict[str, list[tuple[int, float]]]:
    """The stored tray feed of each of the prints that has one (see `save_tray_feed`)."""
    found: dict[str, list[tuple[int, float]]] = {}
    for at in range(0, len(print_ids), 500):
        chunk = print_ids[at : at + 500]
        marks = ", ".join(f":p{i}" for i in range(len(chunk)))
        rows = await db.fetch_all(
            f"SELECT id, tray_feed FROM prints WHERE id IN ({marks}) AND tray_feed IS NOT NULL",
            {f"p{i}": p for i, p in enumerate(chunk)},
        )
        for row in rows:
            found[row["id"]] = [(int(t), float(s)) for t, s in json.loads(row["tray_feed"])]
    return found


async def write_usage(
    db: Database,
    print_id: str,
    trays: list[dict[str, Any]],
    *,
    layer: int | None,
    errors: list[dict[str, str]],
) -> None:
    """Store what a print used per tray, its totals and cost, its last layer and errors."""
    async with db.transaction():
        locked = await materials.lock(db, print_id)
        await db.execute("DELETE FROM print_filament WHERE print_id = :p", {"p": print_id})
        for t in trays:
            await db.execute(
                "INSERT INTO print_filament (print_id, tray, spool_id, material, color, grams,"
                " mm, cost) VALUES (:p, :t, :s, :m, :c, :g, :mm, :cost)",
                {
                    "p": print_id, "t": t["tray"], "s": t["spool_id"], "m": t["material"],
                    "c": t["color"], "g": t["grams"], "mm": t["mm"], "cost": t["cost"],
                },
            )  # fmt: skip
        costs = [t["cost"] for t in trays if t["cost"] is not None]
        await db.execute(
            "UPDATE prints SET filament_g = :g, filament_mm = :mm, cost = :cost,"
            " layer = COALESCE(:layer, layer), errors = :errors WHERE id = :p",
            {
                "g": sum(t["grams"] for t in trays),
                "mm": sum(t["mm"] for t in trays),
                "cost": sum(costs) if costs else None,
                "layer": layer,
                "errors": json.dumps(errors) if errors else None,
                "p": print_id,
            },
        )
        await materials.sync(db, print_id, locked)


async def accounted(db: Database, print_id: str) -> bool:
    """True once a print's filament has been written (its ledger deductions are done)."""
    value = await db.fetch_val("SELECT filament_g FROM prints WHERE id = :p", {"p": print_id})
    return value is not None


async def set_printer_name(db: Database, print_id: str, name: str) -> None:
    """Keep the printer's name as it was when the print ran."""
    await db.execute(
        "UPDATE prints SET printer_name = :n WHERE id = :p AND printer_name IS NULL",
        {"n": name, "p": print_id},
    )
