"""Printers API against live drivers: commands, errors, and the manager following API changes."""

from __future__ import annotations

from tests.e2e.conftest import LiveHub
from tests.e2e.test_telemetry_ws import add_sim_printer, connect
from tests.helpers import wait_for


async def test_commands_round_trip_and_errors(live: LiveHub) -> None:
    sim = await live.fleet.add("bambu", model="X1C")
    printer_id = await add_sim_printer(live, sim)
    path = f"/api/printers/{printer_id}/command"
    for command, params in (
        ("light", {"on": False}),
        ("speed", {"level": 3}),
        ("gcode", {"line": "M117 hello"}),
        ("home", {}),
        ("set_temperature", {"heater": "bed", "target": 60}),
        ("ams_change", {"tray": 1}),
    ):
        status, body = await live.call("POST", path, {"command": command, "params": params})
        assert status == 200, (command, body)
        assert body["command"] == command
    await wait_for(lambda: live.hub.printer_status(printer_id)["light"] is False, what="light off")
    await wait_for(lambda: live.hub.printer_status(printer_id)["speed_level"] == 3, what="sport")

    # Not printing: pause is refused with the reason.
    status, body = await live.call("POST", path, {"command": "pause"})
    assert status == 409 and body["code"] == "conflict", body
    # A command the protocol cannot do names the command and the protocol.
    moon = await live.fleet.add("moonraker")
    status, body = await live.call(
        "POST",
        "/api/printers",
        {"name": "V", "protocol": "moonraker", "host": moon.host, "api_key": moon.secret},
    )
    assert status == 201
    status, body = await live.call(
        "POST",
        f"/api/printers/{body['id']}/command",
        {"command": "ams_change", "params": {"tray": 0}},
    )
    assert status == 400 and "ams_change" in body["detail"] and "moonraker" in body["detail"], body


async def test_offline_printer_refuses_commands(live: LiveHub) -> None:
    status, body = await live.call(
        "POST",
        "/api/printers",
        {"name": "Gone", "protocol": "octoprint", "host": "127.0.0.1", "port": 9, "api_key": "x"},
    )
    assert status == 201
    status, problem = await live.call(
        "POST", f"/api/printers/{body['id']}/command", {"command": "stop"}
    )
    assert status == 409 and "offline" in problem["detail"].lower(), problem


async def test_manager_follows_api_changes_without_restart(live: LiveHub) -> None:
    sim = await live.fleet.add("bambu", model="P1S")
    printer_id = await add_sim_printer(live, sim)
    client = await connect(live)

    def connection() -> str:
        return str(live.hub.printer_status(printer_id)["connection"])

    status, _ = await live.call("PUT", f"/api/printers/{printer_id}", {"enabled": False})
    assert status == 200
    await wait_for(lambda: connection() == "disabled", what="disabled")
    status, _ = await live.call("PUT", f"/api/printers/{printer_id}", {"enabled": True})
    await wait_for(lambda: connection() == "online", what="back online")
    status, _ = await live.call("PUT", f"/api/printers/{printer_id}", {"access_code": "00000000"})
    await wait_for(lambda: connection() == "auth_failed", what="wrong code → auth_failed")
    assert "access code" in str(live.hub.printer_status(printer_id)["last_error"])
    status, _ = await live.call("PUT", f"/api/printers/{printer_id}", {"access_code": sim.secret})
    await wait_for(lambda: connection() == "online", what="right code → online")

    # Connection messages are sent on changes only, not with every report.
    def changes() -> list[str]:
        return [
            p["connection"]
            for p in client.of("printer.connection", lambda p: p["printer_id"] == printer_id)
        ]

    await wait_for(lambda: changes() and changes()[-1] == "online", what="online message")
    before = len(changes())
    driver = live.hub.manager.driver(printer_id)
    assert driver is not None
    received = driver.messages_received
    await wait_for(lambda: driver.messages_received >= received + 3, what="several reports")
    assert len(changes()) == before, changes()
    assert {"disabled", "auth_failed", "online"} <= set(changes())

    status, _ = await live.call("DELETE", f"/api/printers/{printer_id}")
    assert status == 204
    await wait_for(lambda: not live.hub.manager.printer_ids(), what="driver stopped")
    await client.close()
