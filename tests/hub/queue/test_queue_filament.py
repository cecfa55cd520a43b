"""A Bambu print the queue started books each slot's grams on the tray the slot was mapped to."""

from __future__ import annotations

from typing import Any

import pytest

from hub.store import history as history_store
from tests.helpers import wait_for
from tests.hub.queue.conftest import Farm, FarmFactory, set_tray
from tests.slicer_files import bambu_3mf

WHITE_G, BLUE_G = 6.0, 14.0


async def test_queued_bambu_print_books_each_slot_on_its_tray(farm_factory: FarmFactory) -> None:
    farm: Farm = await farm_factory()
    x1c = await farm.fleet.add("bambu", model="X1C")
    for unit in x1c.printer.ams:  # only trays 0 and 2 hold what the file needs
        for index in range(len(unit.trays)):
            set_tray(x1c, unit.unit * 4 + index, "ABS", "000000")
    set_tray(x1c, 0, "PLA", "FFFFFF")
    set_tray(x1c, 2, "PETG", "1E90FF")
    printer_id = await farm.add(x1c, auto_clear_bed=True)
    await farm.spool(printer_id, 0, "PLA", "#FFFFFF", 800.0)
    await farm.spool(printer_id, 2, "PETG", "#1E90FF", 800.0)
    await farm.online(printer_id)
    project = await farm.upload(
        "duo.gcode.3mf",
        bambu_3mf(plates=((("PLA", "#FFFFFF", WHITE_G), ("PETG", "#1E90FF", BLUE_G)),),
                  prediction=60),
    )  # fmt: skip
    job = await farm.ok("POST", "/api/queue", {"file_id": project["id"]})

    async def booked() -> dict[str, Any] | None:
        items, _ = await history_store.page(
            farm.hub.db, history_store.Filters(printer_id=printer_id), limit=10
        )
        done = [i for i in items if i["filament"]["grams"] is not None]
        return done[0] if done else None

    record = await wait_for(booked, timeout=30, what="the queued print booked")
    assert (await farm.job(job["id"]))["runs"][0]["ams_mapping"] == [0, 2]
    assert record["outcome"] == "completed"
    per_tray = {t["tray"]: t["grams"] for t in record["filament"]["trays"]}
    assert per_tray == {0: pytest.approx(WHITE_G), 2: pytest.approx(BLUE_G)}
    # The simulator drew the whole file (it models one tray per print).
    (sim_print,) = [e for e in x1c.printer.log if "duo" in e.file]
    assert sim_print.outcome == "finished"
    spools = (await farm.ok("GET", "/api/filaments"))["items"]
    left = {s["assigned_to"]["tray"]: s["weight_remaining_g"] for s in spools}
    assert left == {0: pytest.approx(800.0 - WHITE_G), 2: pytest.approx(800.0 - BLUE_G)}
