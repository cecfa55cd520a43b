"""Writes that depend on what is stored are decided by one statement: racing writers agree."""

from __future__ import annotations

import asyncio

import pytest
from databases import Database

from hub.store import kv, notifications, prints
from hub.store import printers as printers_store
from hub.store import users as users_store

RACERS = 6


async def test_a_print_is_opened_once_by_racing_writers(db: Database) -> None:
    args = {"job_key": "race", "printer_id": "p1", "file": "a.gcode", "started_at": 1.0}
    opened = await asyncio.gather(
        *(prints.start(db, **args, progress=0.0, total_layers=None) for _ in range(RACERS))
    )
    assert sorted(opened) == [False] * (RACERS - 1) + [True]
    assert await db.fetch_val("SELECT COUNT(*) FROM prints WHERE job_key = 'race'") == 1


async def test_racing_settings_writers_all_read_the_first_value(db: Database) -> None:
    values = await asyncio.gather(*(kv.get_or_create(db, "k", f"v{i}") for i in range(RACERS)))
    assert len(set(values)) == 1 and values[0] == await kv.get(db, "k")


async def test_duplicates_are_refused_by_the_insert(db: Database) -> None:
    results = await asyncio.gather(
        *(users_store.create(db, "same", "hash", "viewer") for _ in range(RACERS)),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, users_store.Duplicate) for r in results if isinstance(r, Exception))
    data = {"name": "a", "protocol": "bambu", "host": "h", "port": 8883, "serial": "S1"}
    await printers_store.create(db, data)
    with pytest.raises(printers_store.Duplicate):
        await printers_store.create(db, {**data, "host": "other"})  # same serial
    with pytest.raises(printers_store.Duplicate):
        await printers_store.create(db, {**data, "serial": "S2"})  # same host:port
    assert len(await printers_store.list_all(db)) == 1


async def test_marking_read_counts_only_what_this_call_changed(db: Database) -> None:
    for i in range(3):
        await notifications.add(db, printer_id=None, kind="k", severity="info", title=f"t{i}",
                                message="m", data={}, created_at=float(i))  # fmt: skip
    marked = await asyncio.gather(*(notifications.mark_all_read(db) for _ in range(RACERS)))
    assert sum(marked) == 3
    (first, *_), _ = await notifications.list_page(db, unread_only=False, limit=1, offset=0)
    read_at = first.read_at
    again = await notifications.mark_read(db, first.id)
    assert again is not None and again.read_at == read_at  # the first read time is kept
    assert await notifications.mark_read(db, "no-such-id") is None


async def test_racing_assignments_of_one_spool_leave_it_on_exactly_one_tray(db: Database) -> None:
    from hub.store import spools

    data = {"material": "PLA", "color": "#FFFFFF", "diameter_mm": 1.75, "density_g_cm3": 1.24}
    spool = await spools.create(db, {**data, "weight_total_g": 1000.0, "low_threshold_g": 100.0})
    await asyncio.gather(*(spools.assign(db, "p1", tray, spool.id) for tray in range(RACERS)))
    held = await spools.assignments(db)
    assert list(held.values()) == [spool.id]
    assert next(iter(held))[0] == "p1"


async def test_racing_spools_for_one_tray_leave_exactly_one_on_it(db: Database) -> None:
    from hub.store import spools

    data = {"material": "PLA", "color": "#FFFFFF", "diameter_mm": 1.75, "density_g_cm3": 1.24}
    made = [
        await spools.create(db, {**data, "weight_total_g": 1000.0, "low_threshold_g": 100.0})
        for _ in range(RACERS)
    ]
    await asyncio.gather(*(spools.assign(db, "p1", 0, spool.id) for spool in made))
    held = await spools.assignments(db)
    assert list(held) == [("p1", 0)]
    assert held[("p1", 0)] in {spool.id for spool in made}


async def test_a_match_only_if_free_never_moves_a_placed_spool(db: Database) -> None:
    from hub.store import spools

    data = {"material": "PLA", "color": "#FFFFFF", "diameter_mm": 1.75, "density_g_cm3": 1.24}
    spool = await spools.create(db, {**data, "weight_total_g": 1000.0, "low_threshold_g": 100.0})
    other = await spools.create(db, {**data, "weight_total_g": 1000.0, "low_threshold_g": 100.0})
    assert await spools.assign(db, "p1", 254, spool.id)
    # The spool is on another tray, or the tray holds another spool: nothing moves.
    assert not await spools.assign(db, "p2", 0, spool.id, only_if_free=True)
    assert not await spools.assign(db, "p1", 254, other.id, only_if_free=True)
    assert await spools.assignments(db) == {("p1", 254): spool.id}
    # Racing matches of one free spool: exactly one places it, the others report not placed.
    placed = await asyncio.gather(
        *(spools.assign(db, "p3", tray, other.id, only_if_free=True) for tray in range(RACERS))
    )
    assert sum(placed) == 1
    held = await spools.assignments(db)
    assert held[("p1", 254)] == spool.id and list(held.values()).count(other.id) == 1
