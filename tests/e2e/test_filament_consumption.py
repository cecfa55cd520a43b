"""Simulated farm printing with assigned spools: one record per print, grams booked exactly once.

Moonraker (its extruded-length counter), PrusaLink (the file's grams) and OctoPrint (the file's
length) print finished, cancelled and failed jobs; a Bambu printer's AMS tray is matched to its
spool automatically. The spools' remaining weight drops by the grams each record states, and
every spool's ledger sums to its remaining weight.
"""

from __future__ import annotations

from typing import Any

import pytest

from hub.events import PrintRecorded
from hub.model import Job
from hub.store import history as history_store
from hub.store import prints as prints_store
from integrations.simulator import SimPrinter
from integrations.simulator.cli import demo_gcode
from streams.events import LifecycleEvent, LifecycleKind
from tests.e2e.conftest import LiveHub
from tests.helpers import wait_for

GRAMS = 12.0  # the file's estimate
SECONDS = 90  # simulated: 1.5 s of wall time at 60x


async def register(live: LiveHub, sim: SimPrinter) -> str:
    """Add a simulated printer through the API and wait until it is online."""
    entry = sim.describe()
    body = {k: v for k, v in entry.items() if v is not None and k in (
        "name", "protocol", "host", "port", "serial", "model", "access_code", "api_key",
        "password")}  # fmt: skip
    if sim.protocol == "prusalink":
        body["username"] = "maker"
    status, created = await live.call("POST", "/api/printers", body)
    assert status == 201, created
    printer_id: str = created["id"]
    await wait_for(
        lambda: live.hub.printer_status(printer_id)["connection"] == "online",
        what=f"{sim.protocol} online",
    )
    return printer_id


async def spool_on(live: LiveHub, printer_id: str, tray: int, **fields: Any) -> str:
    """Create a PLA spool and put it on a tray."""
    body = {"material": "PLA", "color": "#112233", "price_per_kg": 25.0, **fields}
    status, spool = await live.call("POST", "/api/filaments", body)
    assert status == 201, spool
    status, _ = await live.call(
        "PUT", f"/api/printers/{printer_id}/trays/{tray}", {"spool_id": spool["id"]}
    )
    assert status == 200
    spool_id: str = spool["id"]
    return spool_id


async def accounted(live: LiveHub, printer_id: str, count: int) -> list[dict[str, Any]] | None:
    """The printer's records once `count` of them are closed and booked."""
    items, _ = await history_store.page(
        live.hub.db, history_store.Filters(printer_id=printer_id), limit=50
    )
    done = [i for i in items if i["outcome"] is not None and i["filament"]["grams"] is not None]
    return done if len(done) == count and len(items) == count else None


async def spool(live: LiveHub, spool_id: str) -> dict[str, Any]:
    status, body = await live.call("GET", f"/api/filaments/{spool_id}")
    assert status == 200
    return body  # type: ignore[no-any-return]


async def ledger_sum(live: LiveHub, spool_id: str) -> tuple[float, list[dict[str, Any]]]:
    status, body = await live.call("GET", f"/api/filaments/{spool_id}/ledger?per_page=500")
    assert status == 200
    return body["sum_g"], body["items"]


async def print_once(live: LiveHub, sim: SimPrinter, name: str) -> None:
    await live.fleet.load_file(sim, name, demo_gcode(SECONDS, 30, GRAMS))
    if sim.printer.state.value in ("finished", "failed", "cancelled"):
        sim.printer.clear_job()
    sim.printer.start_print(name)


async def test_farm_books_each_print_once_on_its_spool(live: LiveHub) -> None:
    fleet = live.fleet
    sims = {p: await fleet.add(p) for p in ("moonraker", "prusalink", "octoprint")}
    ids = {name: await register(live, sim) for name, sim in sims.items()}
    spools = {name: await spool_on(live, ids[name], 254) for name in sims}

    # One finished print each, all at once.
    for name, sim in sims.items():
        await print_once(live, sim, f"{name}-a.gcode")
    for name in sims:
        await wait_for(lambda n=name: accounted(live, ids[n], 1), timeout=20, what=f"{name} booked")

    # Then a cancelled print (PrusaLink) and a failed one (Moonraker), each stopped mid-way.
    await print_once(live, sims["prusalink"], "prusalink-b.gcode")
    await print_once(live, sims["moonraker"], "moonraker-b.gcode")
    for name in ("prusalink", "moonraker"):
        await wait_for(
            lambda n=name: sims[n].printer.job is not None and sims[n].printer.job.progress > 0.3,
            timeout=20, what=f"{name} a third done",
        )  # fmt: skip
    sims["prusalink"].printer.cancel()
    sims["moonraker"].printer.fail(message="nozzle clog")
    for name in ("prusalink", "moonraker"):
        await wait_for(lambda n=name: accounted(live, ids[n], 2), timeout=20, what=f"{name} booked")

    for name in sims:
        records = await accounted(live, ids[name], 2 if name != "octoprint" else 1)
        assert records is not None
        total = 0.0
        for record in records:
            grams = record["filament"]["grams"]
            (tray,) = record["filament"]["trays"]
            assert (tray["tray"], tray["spool_id"], tray["material"]) == (254, spools[name], "PLA")
            assert record["printer"]["name"] == sims[name].name
            if record["outcome"] == "completed":
                # The counter (Moonraker) and the length (OctoPrint) convert back within 1 %.
                assert grams == pytest.approx(GRAMS, rel=0.01), (name, record)
            else:
                assert record["outcome"] == {"prusalink": "cancelled", "moonraker": "failed"}[name]
                expected = GRAMS * record["progress"] / 100.0
                assert grams == pytest.approx(expected, rel=0.02), (name, record)
                assert 0 < grams < GRAMS * 0.9
            assert record["cost"] == pytest.approx(grams * 25.0 / 1000.0, abs=1e-3)
            total += grams
        remaining = (await spool(live, spools[name]))["weight_remaining_g"]
        assert remaining == pytest.approx(1000.0 - total, abs=0.01)
        sum_g, entries = await ledger_sum(live, spools[name])
        assert sum_g == pytest.approx(remaining, abs=0.001)
        assert [e["kind"] for e in entries].count("print") == len(records)

    # A replayed terminal step (as after a reconnect or restart) books nothing more.
    print_id = (await accounted(live, ids["octoprint"], 1) or [{}])[0]["id"]
    record = await prints_store.by_key(live.hub.db, (await _key(live, print_id)))
    assert record is not None
    before = (await spool(live, spools["octoprint"]))["weight_remaining_g"]
    replay = LifecycleEvent(ids["octoprint"], LifecycleKind.FINISHED,
                            Job(record.file, 100.0, filament_used_mm=99999.0),
                            record.job_key, record.ended_at or 0.0, 100.0)  # fmt: skip
    live.hub.bus.publish(PrintRecorded(ids["octoprint"], print_id, record.job_key, replay))
    assert await live.hub.bus.drain(10.0)
    assert (await spool(live, spools["octoprint"]))["weight_remaining_g"] == before
    sum_g, _ = await ledger_sum(live, spools["octoprint"])
    assert sum_g == pytest.approx(before, abs=0.001)


async def _key(live: LiveHub, print_id: str) -> str:
    found = await history_store.get(live.hub.db, print_id)
    assert found is not None
    key: str = found["job_key"]
    return key
