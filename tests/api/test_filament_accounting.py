"""Filament statistics against hand-computed values; booking, low stock and run-out from bus events."""

from __future__ import annotations

import time
from typing import Any

import pytest

from hub.events import PrintRecorded
from hub.model import Job, PrinterState, PrintState, rfc3339
from hub.store import notifications as notes_store
from hub.store import prints as prints_store
from hub.store import spools as spools_store
from streams.events import LifecycleEvent, LifecycleKind, ProgressEvent
from tests.api.conftest import Api, assert_problem
from tests.api.test_ws import add_disabled_printer
from tests.helpers import wait_for


async def _spool(api: Api, **fields: Any) -> dict[str, Any]:
    r = await api.client.post("/api/filaments", json=fields, headers=api.auth("operator"))
    assert r.status_code == 201, await r.get_data(as_text=True)
    body: dict[str, Any] = await r.get_json()
    return body


async def test_filament_stats_by_hand(api: Api) -> None:
    red = await _spool(api, material="PLA", color="#FF0000", price_per_kg=20, weight_total_g=1000)
    white = await _spool(api, material="PETG", color="#FFFFFF", price_per_kg=30,
                         weight_total_g=500, low_threshold_g=450)  # fmt: skip
    await _spool(api, material="PLA", color="#000000", archived=True)  # not in inventory
    db = api.hub.db
    for print_id, spool, printer, grams in (("a", red, "p1", 100.0), ("b", red, "p2", 50.0),
                                            ("c", white, "p1", 60.0)):  # fmt: skip
        assert await spools_store.record(db, spool["id"], "print", -grams, print_id=print_id,
                                         printer_id=printer, tray=0)  # fmt: skip
    # The same print again: refused, nothing booked.
    assert not await spools_store.record(db, red["id"], "print", -100.0, print_id="a")
    now = time.time()
    r = await api.client.get(
        f"/api/filaments/stats?since={rfc3339(now - 3600)}&until={rfc3339(now + 60)}",
        headers=api.auth("viewer"),
    )
    s = await r.get_json()
    assert s["consumption"]["by_material"] == [
        {"material": "PETG", "grams": 60.0, "cost": 1.8},
        {"material": "PLA", "grams": 150.0, "cost": 3.0},
    ]
    assert s["consumption"]["by_printer"] == [
        {"printer_id": "p1", "grams": 160.0, "cost": 3.8},
        {"printer_id": "p2", "grams": 50.0, "cost": 1.0},
    ]
    assert {c["spool_id"]: c["grams"] for c in s["consumption"]["by_spool"]} == {
        red["id"]: 150.0, white["id"]: 60.0}  # fmt: skip
    pla = next(i for i in s["inventory"] if i["material"] == "PLA")
    assert (pla["spools"], pla["grams"], pla["value"]) == (1, 850.0, 17.0)
    assert pla["grams_per_day"] == pytest.approx(150 / 30, abs=1e-3)
    assert pla["days_left"] == pytest.approx(850 / (150 / 30), abs=0.1)
    assert [low["spool_id"] for low in s["low"]] == [white["id"]]  # 440 g < 450 g
    r = await api.client.get("/api/filaments/stats?since=soon", headers=api.auth("viewer"))
    assert (await assert_problem(r, 400))["errors"][0]["field"] == "since"


async def test_booking_runout_and_low_from_bus_events(api: Api) -> None:
    printer = await add_disabled_printer(api, "m", "10.9.3.1")
    spool = await _spool(api, material="PLA", color="#00FF00", weight_total_g=60,
                         low_threshold_g=30, price_per_kg=10)  # fmt: skip
    await api.client.put(f"/api/printers/{printer}/trays/254", json={"spool_id": spool["id"]},
                         headers=api.auth("operator"))  # fmt: skip
    db, bus = api.hub.db, api.hub.bus
    job = Job("gear.gcode", 0.0, started_at=time.time(), filament_g=80.0)
    assert await prints_store.start(db, job_key="k1", printer_id=printer, file=job.file,
                                    started_at=job.started_at or 0.0, progress=0.0,
                                    total_layers=None)  # fmt: skip
    record = await prints_store.by_key(db, "k1")
    assert record is not None

    def recorded(kind: LifecycleKind, progress: float) -> PrintRecorded:
        step = LifecycleEvent(printer, kind, job, "k1", time.time(), progress)
        return PrintRecorded(printer, record.id, "k1", step)

    bus.publish(PrinterState(printer, True, PrintState.PRINTING, job=job))
    bus.publish(recorded(LifecycleKind.STARTED, 0.0))
    # 80 g at 80 % = 64 g needed by now, 60 g on the spool: it runs out (once).
    for progress in (50, 80, 81):
        bus.publish(ProgressEvent(printer, job.file, progress, None, None, None, "k1"))
        assert await bus.drain(5.0)

    async def kinds() -> list[str]:
        notes, _ = await notes_store.list_page(db, unread_only=False, limit=20, offset=0)
        return sorted(n.kind for n in notes)

    assert await kinds() == ["filament.runout"]
    # Cancelled at 50 %: 40 g booked, once, however often the step is replayed.
    await prints_store.finish(db, "k1", "cancelled", time.time(), 50.0)
    for _ in range(2):
        bus.publish(recorded(LifecycleKind.CANCELLED, 50.0))
    assert await bus.drain(5.0)
    after = await (await api.client.get(f"/api/filaments/{spool['id']}",
                                        headers=api.auth("viewer"))).get_json()  # fmt: skip
    assert after["weight_remaining_g"] == 20.0
    r = await api.client.get(f"/api/history/{record.id}", headers=api.auth("viewer"))
    booked = await r.get_json()
    assert (booked["filament"]["grams"], booked["cost"]) == (40.0, 0.4)
    assert booked["printer"]["name"] == "m"
    await wait_for(lambda: _has(kinds, "filament.low"), what="filament.low")
    assert await kinds() == ["filament.low", "filament.runout"]


async def _has(kinds: Any, kind: str) -> bool:
    return kind in await kinds()
