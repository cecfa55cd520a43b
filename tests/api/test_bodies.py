"""Cached listing and status bodies: identical to building them per request, never stale."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from hub.model import AmsTray, AmsUnit, Connection, Job, PrinterState, PrintState, Temperatures
from hub.printer_manager import PrinterManager
from integrations.printers.base import LinkInfo
from tests.api.conftest import Api, assert_problem

DISABLED = {"name": "Mini", "protocol": "moonraker", "host": "127.0.0.2", "enabled": False}


async def _add(api: Api, **fields: Any) -> dict[str, Any]:
    r = await api.client.post(
        "/api/printers", headers=api.auth("admin"), json={**DISABLED, **fields}
    )
    assert r.status_code == 201, await r.get_data(as_text=True)
    printer: dict[str, Any] = await r.get_json()
    return printer


async def _names(api: Api) -> list[str]:
    r = await api.client.get("/api/printers", headers=api.auth("viewer"))
    assert r.status_code == 200
    body = await r.get_json()
    assert body["total"] == len(body["items"])
    return [p["name"] for p in body["items"]]


async def _status(api: Api, printer_id: str) -> dict[str, Any]:
    r = await api.client.get(f"/api/printers/{printer_id}/status", headers=api.auth("viewer"))
    assert r.status_code == 200
    status: dict[str, Any] = await r.get_json()
    return status


def _entry(manager: PrinterManager, printer_id: str) -> Any:
    return manager._entries[printer_id]


async def test_bodies_are_what_the_json_provider_makes(api: Api) -> None:
    a = await _add(api, name="B", host="127.0.0.2", tags=["x"])
    await _add(api, name="A", host="127.0.0.3", api_key="secret-key")
    listing = await api.client.get("/api/printers", headers=api.auth("viewer"))
    rows = sorted(api.hub.printers.values(), key=lambda p: (p.name, p.id))
    expected = api.app.json.response({"items": [p.public() for p in rows], "total": 2})
    assert await listing.get_data() == await expected.get_data()
    assert listing.headers["Content-Type"] == expected.headers["Content-Type"]
    assert listing.headers["Content-Length"] == expected.headers["Content-Length"]
    assert b"secret-key" not in await listing.get_data()

    status = await api.client.get(f"/api/printers/{a['id']}/status", headers=api.auth("viewer"))
    expected = api.app.json.response(api.hub.printer_status(a["id"]))
    assert await status.get_data() == await expected.get_data()
    assert status.headers["Content-Type"] == expected.headers["Content-Type"]
    # Second answer from the cache: same bytes.
    again = await api.client.get(f"/api/printers/{a['id']}/status", headers=api.auth("viewer"))
    assert await again.get_data() == await status.get_data()


async def test_listing_follows_every_change_through_the_api(api: Api) -> None:
    assert await _names(api) == []
    a = await _add(api, name="Beta", host="127.0.0.2")
    assert await _names(api) == ["Beta"]
    b = await _add(api, name="Alpha", host="127.0.0.3")
    assert await _names(api) == ["Alpha", "Beta"]
    r = await api.client.put(
        f"/api/printers/{a['id']}", headers=api.auth("admin"), json={"name": "Aardvark"}
    )
    assert r.status_code == 200
    assert await _names(api) == ["Aardvark", "Alpha"]
    r = await api.client.delete(f"/api/printers/{b['id']}", headers=api.auth("admin"))
    assert r.status_code == 204
    assert await _names(api) == ["Aardvark"]


async def test_listing_follows_changes_through_the_hub(api: Api) -> None:
    row = await api.hub.add_printer({**DISABLED, "name": "One"})
    assert await _names(api) == ["One"]
    await api.hub.update_printer(row.id, {"name": "Uno"})
    assert await _names(api) == ["Uno"]
    # Direct changes to the table count too, as does replacing the table.
    api.hub.printers[row.id] = replace(api.hub.printers[row.id], name="Eins")
    assert await _names(api) == ["Eins"]
    api.hub.printers = {row.id: replace(api.hub.printers[row.id], name="Un")}
    assert await _names(api) == ["Un"]
    await api.hub.delete_printer(row.id)
    assert await _names(api) == []


async def test_status_follows_each_new_state_and_link_change(api: Api) -> None:
    printer = await _add(api)
    pid = printer["id"]
    first = await _status(api, pid)
    assert first["state"] == "offline" and first["connection"] == "disabled"

    entry = _entry(api.hub.manager, pid)
    state = PrinterState(
        printer_id=pid,
        online=True,
        state=PrintState.PRINTING,
        job=Job("benchy.gcode", progress=42.0, remaining_s=600),
        temps=Temperatures(nozzle=219.5, nozzle_target=220.0),
        fans={"part": 100},
        ams=(AmsUnit(0, 30, 25.0, (AmsTray(0, "PLA", "FF0000FF", 80),)),),
        updated_at=1000.0,
    )
    entry.idle_state = state
    status = await _status(api, pid)
    assert status["state"] == "printing"
    assert status["job"]["progress"] == 42.0
    assert status["ams"][0]["trays"][0]["material"] == "PLA"
    assert status == json.loads(json.dumps(api.hub.printer_status(pid)))

    entry.idle_state = replace(state, job=replace(state.job, progress=43.0), updated_at=1001.0)
    assert (await _status(api, pid))["job"]["progress"] == 43.0

    # The same state object with new link facts (last_seen moves with every report).
    entry.idle_link = LinkInfo(Connection.ONLINE, 1234.5, None)
    status = await _status(api, pid)
    assert (status["connection"], status["last_seen"]) == ("online", "1970-01-01T00:20:34.500Z")
    entry.idle_link = LinkInfo(Connection.ONLINE, 1235.5, None)
    assert (await _status(api, pid))["last_seen"] == "1970-01-01T00:20:35.500Z"
    entry.idle_link = LinkInfo(Connection.STALE, 1235.5, "no data for 30 s")
    status = await _status(api, pid)
    assert (status["connection"], status["last_error"]) == ("stale", "no data for 30 s")
    assert status == json.loads(json.dumps(api.hub.printer_status(pid)))


async def test_status_of_a_deleted_printer_is_404_after_being_cached(api: Api) -> None:
    printer = await _add(api)
    await _status(api, printer["id"])
    r = await api.client.delete(f"/api/printers/{printer['id']}", headers=api.auth("admin"))
    assert r.status_code == 204
    r = await api.client.get(f"/api/printers/{printer['id']}/status", headers=api.auth("viewer"))
    await assert_problem(r, 404, "not_found")


async def test_cached_reads_still_check_the_caller(api: Api) -> None:
    printer = await _add(api)
    for path in ("/api/printers", f"/api/printers/{printer['id']}/status"):
        assert (await api.client.get(path, headers=api.auth("viewer"))).status_code == 200
        await assert_problem(await api.client.get(path), 401, "unauthorized")
        headers = api.fresh_auth("viewer")
        assert (await api.client.get(path, headers=headers)).status_code == 200
        assert (await api.client.post("/api/auth/logout", headers=headers)).status_code == 204
        await assert_problem(await api.client.get(path, headers=headers), 401, "unauthorized")
