"""Bambu prints booked from their 3MF's slice info, fetched from the printer over FTPS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hub.store import history as history_store
from integrations.simulator import Fleet
from integrations.simulator.cli import demo_gcode, demo_project
from tests.e2e.test_filament_restart import call, register
from tests.e2e.test_restart import (
    CRAWL_SPEED,
    FAST_SPEED,
    Served,
    fleet,  # noqa: F401  (the fixture)
    gearbox,
    serve,
)
from tests.helpers import wait_for

GRAMS = 12.5


async def records(served: Served, printer_id: str, count: int) -> list[dict[str, Any]]:
    """The printer's first `count` prints once all are booked, oldest first."""

    async def booked() -> list[dict[str, Any]] | None:
        items, _ = await history_store.page(
            served.hub.db, history_store.Filters(printer_id=printer_id), limit=10
        )
        done = [i for i in items if i["filament"]["grams"] is not None]
        return done if len(done) >= count else None

    found = await wait_for(booked, timeout=20, what=f"{count} prints booked")
    return sorted(found, key=lambda i: i["started_at"])


def booked_as_drawn(
    record: dict[str, Any], printer: Any, before: list[float], tray0_share: tuple[float, float]
) -> dict[int, float]:
    """Check a two-tray record against the simulator's own account of what each tray gave
    (tray 0 gave a share of the print within `tray0_share`); return the grams booked per tray."""
    drawn = [b - printer.tray(t).grams for t, b in zip((0, 1), before, strict=True)]
    low, high = tray0_share
    assert low * GRAMS < drawn[0] < high * GRAMS and sum(drawn) == pytest.approx(GRAMS, rel=0.01)
    booked: dict[int, float] = {t["tray"]: t["grams"] for t in record["filament"]["trays"]}
    assert booked[0] == pytest.approx(drawn[0], abs=GRAMS * 0.03)
    assert booked[1] == pytest.approx(drawn[1], abs=GRAMS * 0.03)
    return booked


async def test_bambu_prints_book_the_files_grams_once(
    db_url: str,
    tmp_path: Path,
    fleet: Fleet,  # noqa: F811
) -> None:
    sim = await fleet.add("bambu", model="P1S")
    printer = sim.printer
    served = await serve(db_url, tmp_path)
    printer_id = await register(served, sim)
    spool = await call(served, "POST", "/api/filaments", {"material": "PETG", "color": "#123456"})
    tray = printer.active_slot
    await call(served, "PUT", f"/api/printers/{printer_id}/trays/{tray}", {"spool_id": spool["id"]})
    await served.watch()
    await fleet.load_file(sim, "part.3mf", demo_project(150, 30, GRAMS))

    # A finished print: the whole file, as the simulator drew it from the tray.
    job = printer.start_print("part.3mf")
    await wait_for(lambda: served.lifecycle().count("finished") == 1, timeout=15, what="finished")
    (first,) = await records(served, printer_id, 1)
    assert job.grams_used == pytest.approx(GRAMS, rel=0.01)
    assert first["outcome"] == "completed"
    assert first["filament"]["grams"] == pytest.approx(GRAMS, rel=0.001)

    # A cancelled one: the share of the file its progress reached.
    job = printer.start_print("part.3mf")
    await wait_for(lambda: job.percent >= 40, timeout=15, what="part of the print")
    gearbox(fleet).shift(CRAWL_SPEED)
    await wait_for(
        lambda: served.hub.printer_status(printer_id)["job"]["progress"] == job.percent,
        what="the hub at the printer's progress",
    )
    printer.cancel()
    gearbox(fleet).shift(FAST_SPEED)
    _, second = await records(served, printer_id, 2)
    assert second["outcome"] == "cancelled"
    # The simulator's own account: what it drew from the tray until the cancel.
    assert second["filament"]["grams"] == pytest.approx(job.grams_used, abs=GRAMS * 0.02)
    assert 0.4 * GRAMS <= second["filament"]["grams"] < GRAMS

    after = await call(served, "GET", f"/api/filaments/{spool['id']}")
    total = first["filament"]["grams"] + second["filament"]["grams"]
    assert after["weight_remaining_g"] == pytest.approx(1000.0 - total, abs=0.01)
    ledger = await call(served, "GET", f"/api/filaments/{spool['id']}/ledger")
    assert sorted(e["kind"] for e in ledger["items"]) == ["initial", "print", "print"]

    # A file the hub cannot read as a project: nothing booked, and the record says why.
    await fleet.load_file(sim, "plain.gcode", demo_gcode(60, 10, GRAMS))
    printer.clear_job()
    printer.start_print("plain.gcode")
    *_, third = await records(served, printer_id, 3)
    assert third["filament"]["grams"] == 0
    assert any(e["code"] == "filament_unknown" for e in third["errors"]), third["errors"]
    assert (await call(served, "GET", f"/api/filaments/{spool['id']}"))["weight_remaining_g"] == (
        pytest.approx(1000.0 - total, abs=0.01)
    )
    await served.shutdown()


async def test_a_print_fed_by_two_trays_books_each_what_the_printer_drew_from_it(
    db_url: str,
    tmp_path: Path,
    fleet: Fleet,  # noqa: F811
) -> None:
    """No queue mapping: the AMS's tray changes during the print tell each tray's share."""
    sim = await fleet.add("bambu", model="X1C")
    printer = sim.printer
    served = await serve(db_url, tmp_path)
    printer_id = await register(served, sim)
    spools = []
    for tray, color in ((0, "#112233"), (1, "#445566")):
        spool = await call(served, "POST", "/api/filaments", {"material": "PLA", "color": color})
        await call(served, "PUT", f"/api/printers/{printer_id}/trays/{tray}",
                   {"spool_id": spool["id"]})  # fmt: skip
        spools.append(spool)
    await served.watch()
    await fleet.load_file(sim, "two.3mf", demo_project(150, 30, GRAMS))
    before = [printer.tray(t).grams for t in (0, 1)]  # type: ignore[union-attr]
    job = printer.start_print("two.3mf", slot=0)
    await wait_for(lambda: job.percent >= 30, timeout=15, what="part of the print")
    gearbox(fleet).shift(CRAWL_SPEED)
    await wait_for(
        lambda: served.hub.printer_status(printer_id)["job"]["progress"] == job.percent,
        what="the hub at the printer's progress",
    )
    printer.change_tray(1)  # as a filament change in the file would
    count = "SELECT COUNT(*) FROM print_filament WHERE tray = 1"
    await wait_for(lambda: served.hub.db.fetch_val(count), what="the hub saw tray 1 feeding")
    gearbox(fleet).shift(FAST_SPEED)
    (record,) = await records(served, printer_id, 1)
    booked = booked_as_drawn(record, printer, before, tray0_share=(0.25, 0.6))
    for spool, tray in zip(spools, (0, 1), strict=True):
        after = await call(served, "GET", f"/api/filaments/{spool['id']}")
        assert after["weight_remaining_g"] == pytest.approx(1000.0 - booked[tray], abs=0.01)
    await served.shutdown()


async def test_the_tray_changes_of_a_print_survive_a_hub_restart(
    db_url: str,
    tmp_path: Path,
    fleet: Fleet,  # noqa: F811
) -> None:
    """Tray 0 feeds the start, tray 1 the middle, the hub restarts, tray 0 feeds the end: each
    tray is booked what the printer drew from it, not an even split."""
    sim = await fleet.add("bambu", model="X1C")
    printer = sim.printer
    first = await serve(db_url, tmp_path)
    printer_id = await register(first, sim)
    for tray, color in ((0, "#112233"), (1, "#445566")):
        spool = await call(first, "POST", "/api/filaments", {"material": "PLA", "color": color})
        await call(first, "PUT", f"/api/printers/{printer_id}/trays/{tray}",
                   {"spool_id": spool["id"]})  # fmt: skip
    await first.watch()
    await fleet.load_file(sim, "three.3mf", demo_project(150, 30, GRAMS))
    before = [printer.tray(t).grams for t in (0, 1)]  # type: ignore[union-attr]
    job = printer.start_print("three.3mf", slot=0)

    async def feeds_stored(served: Served, count: int) -> bool:
        value = await served.hub.db.fetch_val("SELECT tray_feed FROM prints")
        return value is not None and len(json.loads(value)) == count

    async def change_at(served: Served, percent: int, tray: int, feeds: int) -> None:
        """At `percent`, the printer moves to `tray`; wait until the hub has stored the change."""
        await wait_for(lambda: job.percent >= percent, timeout=15, what=f"{percent} % printed")
        gearbox(fleet).shift(CRAWL_SPEED)
        await wait_for(
            lambda: served.hub.printer_status(printer_id)["job"]["progress"] == job.percent,
            what="the hub at the printer's progress",
        )
        printer.change_tray(tray)  # as a filament change in the file would
        await wait_for(lambda: feeds_stored(served, feeds), what=f"the hub saw tray {tray} feeding")

    await change_at(first, 15, 1, 2)
    gearbox(fleet).shift(FAST_SPEED)
    await wait_for(lambda: job.percent >= 45, timeout=15, what="45 % printed")
    gearbox(fleet).shift(CRAWL_SPEED)
    await first.shutdown()

    second = await serve(db_url, tmp_path)
    await second.watch()
    await change_at(second, 0, 0, 3)
    gearbox(fleet).shift(FAST_SPEED)
    (record,) = await records(second, printer_id, 1)
    booked_as_drawn(record, printer, before, tray0_share=(0.55, 0.8))
    await second.shutdown()
