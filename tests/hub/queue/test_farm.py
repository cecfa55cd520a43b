"""A mixed farm of all four protocols working through a mixed queue; concurrent dispatch calls."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from tests.helpers import wait_for
from tests.hub.queue.conftest import Farm, FarmFactory, set_tray
from tests.slicer_files import bambu_3mf, prusaslicer_gcode

# Bambu trays per printer: slot -> (material, colour).
BAMBU_TRAYS = [
    {0: ("PLA", "FFFFFF"), 1: ("PETG", "1E90FF"), 2: ("PLA", "000000"), 3: ("PLA", "FFFFFF")},
    {0: ("PLA", "FFFFFF"), 1: ("ABS", "000000"), 2: ("PLA", "FFFFFF"), 3: ("PLA", "FFFFFF")},
    {0: ("PETG", "1E90FF"), 1: ("PLA", "FFFFFF"), 2: ("PLA", "FFFFFF"), 3: ("PLA", "FFFFFF")},
    {0: ("PLA", "FFFFFF"), 1: ("PLA", "FFFFFF"), 2: ("PLA", "FFFFFF"), 3: ("PLA", "FFFFFF")},
]
# Single-extruder printers and the spool put on each.
SPOOLS = {
    "moonraker": ("PLA", "#FF0000"),
    "prusalink": ("PETG", "#00FF00"),
    "octoprint": ("PLA", "#FF0000"),
}


async def _farm(farm: Farm) -> dict[str, str]:
    """4 Bambu (2 X1C, P1S, X1C), 2 Moonraker, PrusaLink, OctoPrint; printer id -> protocol."""
    protocols: dict[str, str] = {}
    for trays, model in zip(BAMBU_TRAYS, ("X1C", "X1C", "P1S", "X1C"), strict=True):
        sim = await farm.fleet.add("bambu", model=model, ams_units=1)
        for slot, (material, colour) in trays.items():
            set_tray(sim, slot, material, colour)
        protocols[await farm.add(sim, auto_clear_bed=True)] = "bambu"
    for protocol in ("moonraker", "moonraker", "prusalink", "octoprint"):
        sim = await farm.fleet.add(protocol)
        printer_id = await farm.add(sim, auto_clear_bed=True)
        material, colour = SPOOLS[protocol]
        await farm.spool(printer_id, 254, material, colour, 900.0)
        protocols[printer_id] = protocol
    await farm.online(*protocols)
    return protocols


def _tray_of(sim: Any, slot: int) -> tuple[str, str]:
    tray = sim.printer.tray(slot)
    return tray.material, f"#{tray.color[:6]}"


# One engine: what differs between SQLite and PostgreSQL is the claim, which the concurrent
# dispatch test below and tests/hub/store/test_queue_claim.py prove on both.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_twenty_mixed_jobs_on_eight_printers_print_each_copy_once(
    farm_factory: FarmFactory,
) -> None:
    farm = await farm_factory()
    protocols = await _farm(farm)
    files = {
        "white": bambu_3mf(plates=((("PLA", "#FFFFFF", 4.0),),), prediction=60),
        "blue": bambu_3mf(plates=((("PETG", "#1E90FF", 4.0),),), prediction=60),
        "black-abs": bambu_3mf(plates=((("ABS", "#000000", 4.0),),), prediction=60),
        "two": bambu_3mf(plates=((("PLA", "#FFFFFF", 3.0), ("PETG", "#1E90FF", 2.0)),), prediction=60),
        "red": prusaslicer_gcode(materials=("PLA",), colours=("#FF0000",), grams=(3.0,), model="", time_text="1m 0s"),
        "green": prusaslicer_gcode(materials=("PETG",), colours=("#00FF00",), grams=(3.0,), model="", time_text="1m 0s"),
    }  # fmt: skip
    ids = {}
    for name, data in files.items():
        suffix = ".gcode" if name in ("red", "green") else ".gcode.3mf"
        ids[name] = (await farm.upload(name + suffix, data))["id"]
    plan = (
        ["white"] * 5 + ["blue"] * 3 + ["black-abs"] * 2 + ["two"] * 2 + ["red"] * 5 + ["green"] * 3
    )
    jobs = []
    for i, name in enumerate(plan):
        copies = 2 if i % 5 == 0 else 1
        body = {"file_id": ids[name], "copies": copies, "priority": i % 3}
        jobs.append((name, await farm.ok("POST", "/api/queue", body)))
    assert len(jobs) == 20

    async def all_done() -> bool:
        listing = await farm.ok("GET", "/api/queue?state=done&per_page=100")
        return bool(listing["total"] == 20)

    await wait_for(all_done, timeout=60, interval=0.2, what="all 20 jobs done")
    printed = Counter(e.file for p in farm.sims.values() for e in p.printer.log)
    assert all(count == 1 for count in printed.values()), printed  # no run printed twice
    for name, job in jobs:
        detail = await farm.job(job["id"])
        finished = [r for r in detail["runs"] if r["state"] == "finished"]
        assert len(finished) == job["copies"] == detail["copies_done"]
        for run in finished:
            assert printed[run["filename"]] == 1
            protocol = protocols[run["printer_id"]]
            sim = farm.sims[run["printer_id"]]
            if name in ("red", "green"):
                assert protocol != "bambu"
                wanted_spool = {"red": ("PLA", "#FF0000"), "green": ("PETG", "#00FF00")}[name]
                assert SPOOLS[protocol] == wanted_spool
            else:
                assert protocol == "bambu"
                wanted = [(m["material"], m["color"]) for m in detail["materials"]]
                assert [_tray_of(sim, t) for t in run["ams_mapping"]] == wanted
    assert sum(printed.values()) == sum(job["copies"] for _, job in jobs)
    # The spools on the single-extruder printers were debited once per print they fed.
    spool_prints = {
        p
        for _, job in jobs
        for p in (await farm.job(job["id"]))["prints"]
        if any(protocols[r["printer_id"]] != "bambu" for r in (await farm.job(job["id"]))["runs"])
    }

    assert len(spool_prints) >= 8  # every red and green job printed on a spool printer

    async def debited() -> bool:
        rows = await farm.hub.db.fetch_all(
            "SELECT print_id, COUNT(*) AS n FROM spool_ledger WHERE kind = 'print'"
            " GROUP BY print_id"
        )
        counts = {r["print_id"]: int(r["n"]) for r in rows}
        return all(counts.get(p) == 1 for p in spool_prints)

    await wait_for(debited, timeout=10, what="one spool deduction per print")


async def test_twenty_concurrent_dispatch_calls_start_each_job_once(
    farm_factory: FarmFactory,
) -> None:
    farm = await farm_factory(PRINTFORGE_QUEUE_AUTO_DISPATCH="false")
    printers = []
    for _ in range(3):
        sim = await farm.fleet.add("bambu", model="X1C")
        for slot in range(4):
            set_tray(sim, slot, "PLA", "FFFFFF")
        printers.append(await farm.add(sim, auto_clear_bed=True))
    await farm.online(*printers)
    file = await farm.upload(
        "w.gcode.3mf", bambu_3mf(plates=((("PLA", "#FFFFFF", 4.0),),), prediction=600)
    )
    for _ in range(5):
        await farm.ok("POST", "/api/queue", {"file_id": file["id"]})
    answers = await asyncio.gather(*(farm.ok("POST", "/api/queue/dispatch") for _ in range(20)))
    dispatched = [d for a in answers for d in a["dispatched"]]
    assert len(dispatched) == 3
    assert len({d["job_id"] for d in dispatched}) == 3
    assert sorted(d["printer_id"] for d in dispatched) == sorted(printers)
    listing = await farm.ok("GET", "/api/queue")
    states = Counter(j["state"] for j in listing["items"])
    assert states["queued"] == 2 and states["dispatching"] + states["printing"] == 3
