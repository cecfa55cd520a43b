"""Filament API: spool CRUD and validation, ledger, tray assignment (by hand and automatic)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hub.events import AmsEvent, SpoolChanged
from hub.filament import trays_with_spools
from hub.model import AmsTray, AmsUnit
from hub.store import notifications as notes_store
from tests.api.conftest import Api, assert_problem
from tests.api.test_ws import add_disabled_printer, recv_type
from tests.helpers import wait_for


async def _spool(api: Api, **fields: Any) -> dict[str, Any]:
    body = {"material": "PLA", "color": "#ff0000", **fields}
    r = await api.client.post("/api/filaments", json=body, headers=api.auth("operator"))
    assert r.status_code == 201, await r.get_data(as_text=True)
    assert r.headers["Location"].endswith((await r.get_json())["id"])
    spool: dict[str, Any] = await r.get_json()
    return spool


async def test_create_defaults_validation_and_roles(api: Api) -> None:
    spool = await _spool(api, weight_total_g=750, price_per_kg=20)
    assert spool["color"] == "#FF0000" and spool["diameter_mm"] == 1.75
    assert spool["density_g_cm3"] == 1.24 and spool["weight_remaining_g"] == 750
    assert spool["used_g"] == 0 and spool["assigned_to"] is None and not spool["archived"]
    assert spool["created_at"].endswith("Z")
    petg = await _spool(api, material="PETG", color="#00FF00")
    assert petg["density_g_cm3"] == 1.27 and petg["weight_total_g"] == 1000

    for body, field in (
        ({"material": "PLA", "color": "red"}, "color"),
        ({"material": "WOOD", "color": "#000000"}, "material"),
        ({"material": "PLA", "color": "#000000", "weight_total_g": -1}, "weight_total_g"),
        ({"material": "PLA", "color": "#000000", "price_per_kg": -5}, "price_per_kg"),
        ({"color": "#000000"}, "material"),
    ):
        r = await api.client.post("/api/filaments", json=body, headers=api.auth("operator"))
        problem = await assert_problem(r, 400, "validation_error")
        assert problem["errors"][0]["field"] == field, problem
    listed = await (await api.client.get("/api/filaments", headers=api.auth("viewer"))).get_json()
    assert listed["total"] == 2  # the refused bodies changed nothing
    # An overfilled spool (more on it than its label says) is taken as weighed: nothing used.
    full = await _spool(api, weight_total_g=1000, weight_remaining_g=1040)
    assert (full["weight_remaining_g"], full["used_g"]) == (1040, 0)
    r = await api.client.get(f"/api/filaments/{full['id']}/ledger", headers=api.auth("viewer"))
    assert (await r.get_json())["sum_g"] == 1040

    r = await api.client.post(
        "/api/filaments", json={"material": "PLA", "color": "#000000"}, headers=api.auth("viewer")
    )
    await assert_problem(r, 403)
    r = await api.client.get("/api/filaments/nope", headers=api.auth("viewer"))
    await assert_problem(r, 404)
    r = await api.client.get("/api/filaments?material=PETG", headers=api.auth("viewer"))
    assert [s["id"] for s in (await r.get_json())["items"]] == [petg["id"]]


async def test_weighing_correction_ledger_and_low_once(api: Api) -> None:
    spool = await _spool(api, weight_total_g=1000, low_threshold_g=150)
    url = f"/api/filaments/{spool['id']}"
    op = api.auth("operator")
    r = await api.client.put(url, json={"measured_gross_g": 900}, headers=op)
    assert (await assert_problem(r, 400))["errors"][0]["field"] == "measured_gross_g"
    r = await api.client.put(url, json={"spool_weight_g": 250, "measured_gross_g": 900}, headers=op)
    assert r.status_code == 200 and (await r.get_json())["weight_remaining_g"] == 650
    r = await api.client.put(
        url, json={"weight_remaining_g": 120, "location": "shelf 2"}, headers=op
    )
    body = await r.get_json()
    assert (body["weight_remaining_g"], body["used_g"], body["location"]) == (120, 880, "shelf 2")
    await api.client.put(url, json={"weight_remaining_g": 100}, headers=op)  # still below
    ledger = await (await api.client.get(f"{url}/ledger", headers=api.auth("viewer"))).get_json()
    assert [e["kind"] for e in ledger["items"]] == [
        "initial",
        "weighing",
        "correction",
        "correction",
    ]
    assert [e["delta_g"] for e in ledger["items"]] == [1000, -350, -530, -20]
    assert ledger["sum_g"] == 100 and ledger["total"] == 4
    notes, _ = await notes_store.list_page(api.hub.db, unread_only=False, limit=10, offset=0)
    low = [n for n in notes if n.kind == "filament.low"]
    assert len(low) == 1 and low[0].data["spool_id"] == spool["id"]
    # Back above the threshold re-arms it; the next crossing raises a second one.
    await api.client.put(url, json={"weight_remaining_g": 500}, headers=op)
    await api.client.put(url, json={"weight_remaining_g": 50}, headers=op)
    notes, _ = await notes_store.list_page(api.hub.db, unread_only=False, limit=10, offset=0)
    assert len([n for n in notes if n.kind == "filament.low"]) == 2


async def test_tray_assignment_move_free_and_delete(api: Api) -> None:
    printer = await add_disabled_printer(api, "p1", "10.9.0.1")
    other = await add_disabled_printer(api, "p2", "10.9.0.2")
    a, b = await _spool(api), await _spool(api, material="PETG", color="#0000FF")
    changes: list[SpoolChanged] = []
    api.hub.bus.subscribe(SpoolChanged, changes.append, name="test", inline=True)
    op = api.auth("operator")
    r = await api.client.put(
        f"/api/printers/{printer}/trays/2", json={"spool_id": a["id"]}, headers=op
    )
    assert (await r.get_json())["spool"]["assigned_to"] == {"printer_id": printer, "tray": 2}
    r = await api.client.put(
        f"/api/printers/{printer}/trays/x", json={"spool_id": a["id"]}, headers=op
    )
    assert (await assert_problem(r, 400))["errors"][0]["field"] == "tray"
    r = await api.client.put("/api/printers/nope/trays/1", json={"spool_id": a["id"]}, headers=op)
    await assert_problem(r, 404)
    # On the spool: moving it to another printer's tray moves the assignment.
    r = await api.client.put(
        f"/api/filaments/{a['id']}", json={"assigned_to": {"printer_id": other, "tray": 254}},
        headers=op,
    )  # fmt: skip
    assert (await r.get_json())["assigned_to"] == {"printer_id": other, "tray": 254}
    assert await trays_with_spools(api.hub.db, printer) == []
    await api.client.put(f"/api/printers/{printer}/trays/0", json={"spool_id": b["id"]}, headers=op)
    trays = await trays_with_spools(api.hub.db, printer)
    assert [(t.tray, t.spool_id, t.material, t.color, t.remaining_g) for t in trays] == [
        (0, b["id"], "PETG", "#0000FF", 1000.0)
    ]
    r = await api.client.get(f"/api/printers/{printer}/trays", headers=api.auth("viewer"))
    assert (await r.get_json())["items"][0]["spool_id"] == b["id"]

    r = await api.client.delete(f"/api/filaments/{a['id']}", headers=op)
    problem = await assert_problem(r, 409)
    assert other in problem["detail"] and "254" in problem["detail"]
    r = await api.client.delete(f"/api/filaments/{a['id']}?force=true", headers=op)
    assert r.status_code == 204
    assert (await api.client.get(f"/api/filaments/{a['id']}", headers=op)).status_code == 404
    reasons = [(c.spool_id, c.reason) for c in changes]
    assert reasons == [
        (a["id"], "assigned"), (a["id"], "assigned"), (b["id"], "assigned"), (a["id"], "deleted")
    ]  # fmt: skip

    # Archived spools cannot be put on a tray by hand.
    await api.client.put(f"/api/filaments/{b['id']}", json={"archived": True}, headers=op)
    r = await api.client.put(
        f"/api/printers/{other}/trays/1", json={"spool_id": b["id"]}, headers=op
    )
    assert (await assert_problem(r, 400))["errors"][0]["field"] == "spool_id"


async def test_automatic_match_by_uuid_then_material_and_colour(api: Api) -> None:
    printer = await add_disabled_printer(api, "p1", "10.9.1.1")
    red = await _spool(api, color="#FF0000")
    await _spool(api, color="#FF0000", archived=True)  # never matched
    white_1 = await _spool(api, color="#FFFFFF")
    white_2 = await _spool(api, color="#FFFFFF")  # two white ones: ambiguous, left alone
    uuid = "A1B2C3D4E5F60718293A4B5C6D7E8F90"

    def ams(*trays: AmsTray) -> AmsEvent:
        return AmsEvent(printer, (AmsUnit(0, trays=trays),), None)

    async def on(tray: int) -> str | None:
        found = {t.tray: t.spool_id for t in await trays_with_spools(api.hub.db, printer)}
        return found.get(tray)

    api.hub.bus.publish(
        ams(AmsTray(0, "PLA", "FF0000FF", uuid=uuid), AmsTray(1, "PLA", "FFFFFFFF"))
    )
    await wait_for(lambda: on(0), what="red spool matched")
    assert await on(0) == red["id"] and await on(1) is None
    # The tray reports empty: freed. Back in another slot with its tag: found by UUID.
    api.hub.bus.publish(ams(AmsTray(0, empty=True), AmsTray(1, "PLA", "FFFFFFFF")))
    await wait_for(lambda: api.hub.bus.drain(5.0))
    assert await on(0) is None
    api.hub.bus.publish(ams(AmsTray(0, empty=True), AmsTray(3, "PLA", "00FF00FF", uuid=uuid)))
    await wait_for(lambda: on(3), what="spool found by its tag")
    assert await on(3) == red["id"]
    # By hand, then the tray keeps reporting the same: the assignment stands.
    op = api.auth("operator")
    await api.client.put(
        f"/api/printers/{printer}/trays/1", json={"spool_id": white_1["id"]}, headers=op
    )
    api.hub.bus.publish(ams(AmsTray(1, "PLA", "FFFFFFFF"), AmsTray(2, "PLA", "FFFFFFFE")))
    await wait_for(lambda: api.hub.bus.drain(5.0))
    # Now only one white spool is free: tray 2 gets it.
    assert await on(1) == white_1["id"] and await on(2) == white_2["id"]


async def test_automatic_match_never_takes_a_spool_placed_by_hand_meanwhile(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    bambu = await add_disabled_printer(api, "b", "10.9.3.1")
    voron = await add_disabled_printer(api, "v", "10.9.3.2")
    red = await _spool(api, color="#FF0000")
    db = api.hub.db
    real_fetch_all = db.fetch_all

    async def fetch_all(query: Any, values: Any = None) -> Any:
        rows = await real_fetch_all(query, values)
        if "a.spool_id IS NULL" in str(query) and rows:
            # The matcher has chosen the only free red spool; a person puts it on the
            # Voron's spool holder before the matcher writes.
            monkeypatch.setattr(db, "fetch_all", real_fetch_all)
            await api.hub.filament.assign(voron, 254, red["id"])
        return rows

    monkeypatch.setattr(db, "fetch_all", fetch_all)
    api.hub.bus.publish(
        AmsEvent(bambu, (AmsUnit(0, trays=(AmsTray(0, "PLA", "FF0000FF"),)),), None)
    )
    await wait_for(lambda: api.hub.bus.drain(5.0))
    assert db.fetch_all == real_fetch_all, "the matcher never looked for a free spool"
    held = {(t.tray, t.spool_id) for t in await trays_with_spools(db, voron)}
    assert (254, red["id"]) in held
    assert all(t.spool_id is None for t in await trays_with_spools(db, bambu))


async def test_ws_filament_update_follows_the_printer_filter(api: Api) -> None:
    watched = await add_disabled_printer(api, "w", "10.9.2.1")
    other = await add_disabled_printer(api, "o", "10.9.2.2")
    spool = await _spool(api)
    op = api.auth("operator")
    async with api.client.websocket("/ws", headers=api.auth("viewer")) as conn:
        await conn.send(json.dumps(
            {"type": "subscribe", "types": ["filament.update"], "printers": [watched]}
        ))  # fmt: skip
        await recv_type(conn, "subscribed")
        # On another printer's tray: filtered out. On the watched printer's: sent.
        await api.client.put(f"/api/printers/{other}/trays/0", json={"spool_id": spool["id"]},
                             headers=op)  # fmt: skip
        await api.client.put(f"/api/printers/{watched}/trays/3", json={"spool_id": spool["id"]},
                             headers=op)  # fmt: skip
        message = await recv_type(conn, "filament.update")
        payload = message["payload"]
        assert (payload["reason"], payload["printer_id"], payload["tray"]) == (
            "assigned", watched, 3)  # fmt: skip
        assert payload["spool"]["id"] == spool["id"] and message["ts"].endswith("Z")
        await api.client.put(f"/api/filaments/{spool['id']}", json={"weight_remaining_g": 400},
                             headers=op)  # fmt: skip
        message = await recv_type(conn, "filament.update")
        assert message["payload"]["reason"] == "corrected"
        assert message["payload"]["spool"]["weight_remaining_g"] == 400
