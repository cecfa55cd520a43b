"""Filament across a hub restart mid-print, and a Bambu AMS tray matched to its spool."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hub.filament import trays_with_spools
from hub.model import PrintState
from hub.store import history as history_store
from integrations.simulator import Fleet, SimPrinter
from integrations.simulator.cli import demo_gcode
from tests.e2e.test_restart import (
    CRAWL_SPEED,
    FAST_SPEED,
    Served,
    fleet,  # noqa: F401  (the fixture)
    gearbox,
    serve,
)
from tests.helpers import wait_for

GRAMS = 15.0


async def register(served: Served, sim: SimPrinter) -> str:
    """Add a simulated printer through the API and wait until it is online."""
    entry = sim.describe()
    keys = ("name", "protocol", "host", "port", "serial", "model", "access_code", "api_key",
            "password")  # fmt: skip
    body = {k: v for k, v in entry.items() if v is not None and k in keys}
    if sim.protocol == "prusalink":
        body["username"] = "maker"
    async with served.session.post(
        served.base + "/api/printers", json=body,
        headers={"Authorization": f"Bearer {served.token}"},
    ) as r:  # fmt: skip
        created = await r.json()
        assert r.status == 201, created
    printer_id: str = created["id"]
    await wait_for(
        lambda: served.hub.printer_status(printer_id)["connection"] == "online",
        what="printer online",
    )
    return printer_id


async def call(served: Served, method: str, path: str, json: Any = None) -> Any:
    async with served.session.request(
        method, served.base + path, json=json,
        headers={"Authorization": f"Bearer {served.token}"},
    ) as r:  # fmt: skip
        assert r.status < 300, await r.text()
        return await r.json()


async def test_restart_mid_print_books_the_print_once(
    db_url: str,
    tmp_path: Path,
    fleet: Fleet,  # noqa: F811
) -> None:
    # PrusaLink names its jobs by id, so the print keeps its identity across the restart.
    sim = await fleet.add("prusalink")
    first = await serve(db_url, tmp_path)
    printer_id = await register(first, sim)
    spool = await call(first, "POST", "/api/filaments", {"material": "PLA", "color": "#00AA00"})
    await call(first, "PUT", f"/api/printers/{printer_id}/trays/254", {"spool_id": spool["id"]})
    await first.watch()
    await fleet.load_file(sim, "part.gcode", demo_gcode(150, 30, GRAMS))
    sim.printer.start_print("part.gcode")
    await wait_for(lambda: "started" in first.lifecycle(), what="the started step")
    await wait_for(
        lambda: sim.printer.job is not None and sim.printer.job.progress > 0.1,
        timeout=20, what="some printing before the restart",
    )  # fmt: skip
    gearbox(fleet).shift(CRAWL_SPEED)
    await first.shutdown()
    assert sim.printer.state in (PrintState.PREPARING, PrintState.PRINTING)

    second = await serve(db_url, tmp_path)
    await second.watch()
    await wait_for(
        lambda: second.hub.printer_status(printer_id)["state"] == "printing",
        what="printing after the restart",
    )
    gearbox(fleet).shift(FAST_SPEED)

    async def booked() -> list[dict[str, Any]] | None:
        items, _ = await history_store.page(
            second.hub.db, history_store.Filters(printer_id=printer_id), limit=10
        )
        done = [i for i in items if i["filament"]["grams"] is not None]
        return items if done else None

    (record,) = await wait_for(booked, timeout=30, what="the print booked")
    assert record["outcome"] == "completed"
    assert record["filament"]["grams"] == pytest.approx(GRAMS, rel=0.01)
    after = await call(second, "GET", f"/api/filaments/{spool['id']}")
    assert after["weight_remaining_g"] == pytest.approx(1000.0 - record["filament"]["grams"])
    ledger = await call(second, "GET", f"/api/filaments/{spool['id']}/ledger")
    assert [e["kind"] for e in ledger["items"]] == ["initial", "print"]
    assert ledger["sum_g"] == pytest.approx(after["weight_remaining_g"], abs=0.001)
    await second.shutdown()


async def test_bambu_tray_is_matched_to_its_spool(
    db_url: str,
    tmp_path: Path,
    fleet: Fleet,  # noqa: F811
) -> None:
    sim = await fleet.add("bambu", model="P1S")
    tray = sim.printer.ams[0].trays[1]
    # A colour no stock tray has: else another tray with the same filament may take the spool.
    tray.material, tray.color = "PETG", "123457FF"
    served = await serve(db_url, tmp_path)
    spool = await call(
        served, "POST", "/api/filaments",
        {"material": tray.material, "color": "#" + tray.color[:6]},
    )  # fmt: skip
    printer_id = await register(served, sim)

    async def on_tray() -> dict[int, str] | None:
        found = {t.tray: t.spool_id for t in await trays_with_spools(served.hub.db, printer_id)}
        return found or None

    assert await wait_for(on_tray, what="the tray matched") == {1: spool["id"]}
    # The spool learnt the tray's tag: when the printer reports the tray empty, it is freed.
    sim.printer.ams[0].trays[1].empty = True

    async def freed() -> bool:
        return not await trays_with_spools(served.hub.db, printer_id)

    await wait_for(freed, what="the empty tray freed")
    await served.shutdown()


async def test_printer_disconnect_mid_print_books_once(
    db_url: str,
    tmp_path: Path,
    fleet: Fleet,  # noqa: F811
) -> None:
    sim = await fleet.add("prusalink")
    served = await serve(db_url, tmp_path)
    printer_id = await register(served, sim)
    spool = await call(served, "POST", "/api/filaments", {"material": "PETG", "color": "#0000FF"})
    await call(served, "PUT", f"/api/printers/{printer_id}/trays/254", {"spool_id": spool["id"]})
    await served.watch()
    await fleet.load_file(sim, "lid.gcode", demo_gcode(150, 30, GRAMS))
    sim.printer.start_print("lid.gcode")
    await wait_for(lambda: "started" in served.lifecycle(), what="the started step")
    gearbox(fleet).shift(CRAWL_SPEED)
    sim.faults.go_silent(True)
    await wait_for(
        lambda: served.hub.printer_status(printer_id)["connection"] != "online",
        timeout=20, what="the hub losing the printer",
    )  # fmt: skip
    sim.faults.go_silent(False)
    gearbox(fleet).shift(FAST_SPEED)

    async def booked() -> list[dict[str, Any]] | None:
        items, _ = await history_store.page(
            served.hub.db, history_store.Filters(printer_id=printer_id), limit=10
        )
        return items if any(i["filament"]["grams"] is not None for i in items) else None

    (record,) = await wait_for(booked, timeout=30, what="the print booked")
    assert record["outcome"] == "completed"
    assert record["filament"]["grams"] == pytest.approx(GRAMS)
    ledger = await call(served, "GET", f"/api/filaments/{spool['id']}/ledger")
    assert [e["kind"] for e in ledger["items"]] == ["initial", "print"]
    assert ledger["sum_g"] == pytest.approx(1000.0 - GRAMS)
    await served.shutdown()
