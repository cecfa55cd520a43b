"""Moonraker front end, checked with an aiohttp JSON-RPC client written from protocols.md."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from typing import Any

import aiohttp
import pytest

from integrations.simulator import Fleet, SimPrinter
from tests.helpers import wait_for

from .conftest import gcode

SUBSCRIBE = {
    "print_stats": None,
    "virtual_sdcard": None,
    "extruder": None,
    "heater_bed": None,
    "display_status": None,
    "webhooks": None,
}


class MoonrakerClient:
    """JSON-RPC over the websocket; keeps subscribed status merged from notifications."""

    def __init__(self, printer: SimPrinter, key: str | None = None) -> None:
        self.url = f"http://{printer.host}:{printer.port}"
        self.headers = {"X-Api-Key": printer.secret if key is None else key}
        self.status: dict[str, dict[str, Any]] = {}
        self.notifications: list[dict[str, Any]] = []
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self.closed = False

    async def __aenter__(self) -> MoonrakerClient:
        self.session = aiohttp.ClientSession(headers=self.headers)
        self.ws = await self.session.ws_connect(f"{self.url}/websocket")
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self.ws.close()
        await self.session.close()

    async def _read(self) -> None:
        async for msg in self.ws:
            data = json.loads(msg.data)
            if "id" in data and data["id"] in self._pending:
                self._pending.pop(data["id"]).set_result(data)
            elif data.get("method") == "notify_status_update":
                for name, fields in data["params"][0].items():
                    self.status.setdefault(name, {}).update(fields)
                self.notifications.append(data)
            else:
                self.notifications.append(data)
        self.closed = True

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send a request and return the whole response (result or error)."""
        req_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = future
        await self.ws.send_json(
            {"jsonrpc": "2.0", "method": method, "params": params, "id": req_id}
        )
        return await asyncio.wait_for(future, 5)

    async def subscribe(self) -> dict[str, Any]:
        reply = await self.call("printer.objects.subscribe", objects=SUBSCRIBE)
        self.status = reply["result"]["status"]
        return reply

    def state(self) -> str | None:
        return self.status.get("print_stats", {}).get("state")


async def ready_printer(fleet: Fleet) -> SimPrinter:
    p = await fleet.add("moonraker", port=0)
    await wait_for(lambda: p.frontend.klippy_state == "ready", what="klippy ready")  # type: ignore[attr-defined]
    return p


async def upload(p: SimPrinter, name: str, data: bytes, start: bool) -> tuple[int, dict[str, Any]]:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name)
    form.add_field("print", "true" if start else "false")
    async with aiohttp.ClientSession(headers={"X-Api-Key": p.secret}) as session:
        async with session.post(f"http://{p.host}:{p.port}/server/files/upload", data=form) as r:
            return r.status, await r.json()


async def test_server_info_identify_and_subscribe(fleet: Fleet):
    p = await ready_printer(fleet)
    async with MoonrakerClient(p) as client:
        info = (await client.call("server.info"))["result"]
        assert info["klippy_connected"] is True and info["klippy_state"] == "ready"
        assert info["moonraker_version"] and info["api_version"]
        ident = await client.call(
            "server.connection.identify", client_name="test", version="1", type="agent", url="x"
        )
        assert isinstance(ident["result"]["connection_id"], int)
        reply = await client.subscribe()
        status = reply["result"]["status"]
        assert set(status) == set(SUBSCRIBE)
        assert status["print_stats"]["state"] == "standby"
        assert {"temperature", "target", "power"} <= set(status["extruder"])
        assert status["webhooks"]["state"] == "ready"
        p.printer.gcode("M140 S60")
        await wait_for(lambda: client.notifications, what="a status notification")
        update = client.notifications[0]
        assert update["method"] == "notify_status_update"
        changes, eventtime = update["params"]
        assert changes == {"heater_bed": changes["heater_bed"]}  # only what changed
        assert isinstance(eventtime, float)
        query = await client.call("printer.objects.query", objects={"extruder": ["target"]})
        assert query["result"]["status"] == {"extruder": {"target": 0.0}}
        missing = await client.call("no.such.method")
        assert missing["error"]["code"] == -32601


async def test_upload_and_print_to_complete(fleet: Fleet):
    p = await ready_printer(fleet)
    async with MoonrakerClient(p) as client:
        await client.subscribe()
        status, body = await upload(p, "cube.gcode", gcode(time_s=300, layers=20, grams=3), True)
        assert status == 201
        assert body["print_started"] is True and body["item"]["path"] == "cube.gcode"
        await wait_for(lambda: client.state() == "printing", what="printing")
        await wait_for(lambda: client.state() == "complete", timeout=20, what="complete")
        stats = client.status["print_stats"]
        assert stats["filename"] == "cube.gcode"
        assert stats["info"] == {"total_layer": 20, "current_layer": 20}
        assert stats["filament_used"] > 900  # ~3 g of 1.75 mm PLA
        assert client.status["virtual_sdcard"]["progress"] == 1.0


async def test_pause_resume_cancel_and_errors(fleet: Fleet):
    p = await ready_printer(fleet)
    status, body = await upload(p, "long.gcode", gcode(time_s=36000), False)
    assert status == 201 and body["print_started"] is False
    async with MoonrakerClient(p) as client:
        await client.subscribe()
        assert "error" in await client.call("printer.print.pause")  # nothing to pause
        assert (await client.call("printer.print.start", filename="long.gcode"))["result"] == "ok"
        busy = await client.call("printer.print.start", filename="long.gcode")
        assert busy["error"]["code"] == 400
        assert (await client.call("printer.print.pause"))["result"] == "ok"
        await wait_for(lambda: client.state() == "paused", what="paused")
        assert (await client.call("printer.print.resume"))["result"] == "ok"
        await wait_for(lambda: client.state() == "printing", what="printing again")
        assert (await client.call("printer.gcode.script", script="M104 S230"))["result"] == "ok"
        await wait_for(lambda: client.status["extruder"]["target"] == 230, what="new target")
        assert (await client.call("printer.print.cancel"))["result"] == "ok"
        await wait_for(lambda: client.state() == "cancelled", what="cancelled")


async def test_api_key_required(fleet: Fleet):
    p = await ready_printer(fleet)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://{p.host}:{p.port}/server/info") as r:
            assert r.status == 401
        async with session.get(
            f"http://{p.host}:{p.port}/server/info", headers={"X-Api-Key": p.secret}
        ) as r:
            assert r.status == 200 and (await r.json())["result"]["klippy_state"] == "ready"
    # As the real Moonraker: the socket opens with a wrong key, every call on it is refused.
    async with MoonrakerClient(p, key="wrong") as client:
        reply = await client.call("server.info")
        assert reply["error"] == {"code": -32602, "message": "Unauthorized"}
        assert (await client.call("printer.objects.subscribe", objects=SUBSCRIBE))["error"]
    p.faults.refuse_auth(True)
    async with MoonrakerClient(p) as client:
        assert (await client.call("server.info"))["error"]["message"] == "Unauthorized"


async def test_job_history_lists_and_announces_every_print(fleet: Fleet):
    p = await ready_printer(fleet)
    await fleet.load_file(p, "cube.gcode", gcode(time_s=30))
    async with MoonrakerClient(p) as client:
        for _ in range(2):  # the same file twice: two jobs
            await wait_for(lambda: not p.printer.active, what="idle")
            p.printer.start_print("cube.gcode")
            await wait_for(lambda: p.printer.state.value == "finished", what="finished")
        await wait_for(lambda: len(history_changes(client)) == 4, what="four history changes")
        changes = history_changes(client)
        assert [c["action"] for c in changes] == ["added", "finished", "added", "finished"]
        first, second = changes[1]["job"], changes[3]["job"]
        assert first["job_id"] != second["job_id"]
        assert first["status"] == second["status"] == "completed"
        listed = (await client.call("server.history.list", limit=10))["result"]
        assert [j["job_id"] for j in listed["jobs"]] == [second["job_id"], first["job_id"]]
        since = (await client.call("server.history.list", since=first["start_time"]))["result"]
        assert [j["job_id"] for j in since["jobs"]] == [second["job_id"]]
        one = await client.call("server.history.get_job", uid=first["job_id"])
        assert one["result"]["job"]["filename"] == "cube.gcode"
    assert [e.outcome for e in p.printer.log] == ["finished", "finished"]


def history_changes(client: MoonrakerClient) -> list[dict[str, Any]]:
    """The `notify_history_changed` payloads the client received so far."""
    return [
        n["params"][0] for n in client.notifications if n.get("method") == "notify_history_changed"
    ]


async def test_history_marks_a_print_lost_to_a_power_cycle_interrupted(fleet: Fleet):
    p = await ready_printer(fleet)
    await fleet.load_file(p, "long.gcode", gcode(time_s=36000))
    p.printer.start_print("long.gcode")
    await p.faults.restart(delay=0.05)
    assert p.frontend.history[-1]["status"] == "interrupted"  # type: ignore[attr-defined]
    assert p.printer.log[-1].outcome == "interrupted"


async def test_klippy_notifications_and_restart(fleet: Fleet):
    p = await ready_printer(fleet)
    await fleet.load_file(p, "long.gcode", gcode(time_s=36000))
    p.printer.start_print("long.gcode")
    async with MoonrakerClient(p) as client:
        await client.subscribe()
        p.frontend.set_klippy_state("shutdown")  # type: ignore[attr-defined]
        await wait_for(
            lambda: any(n.get("method") == "notify_klippy_shutdown" for n in client.notifications),
            what="notify_klippy_shutdown",
        )
        await wait_for(lambda: client.state() == "error", what="print error on shutdown")
        assert (await client.call("printer.print.start", filename="long.gcode"))["error"]
        p.frontend.set_klippy_state("disconnected")  # type: ignore[attr-defined]
        await wait_for(
            lambda: any(
                n.get("method") == "notify_klippy_disconnected" for n in client.notifications
            ),
            what="notify_klippy_disconnected",
        )
        info = (await client.call("server.info"))["result"]
        assert info["klippy_connected"] is False
    await p.faults.restart(delay=0.1)
    async with MoonrakerClient(p) as client:
        await wait_for(
            lambda: any(n.get("method") == "notify_klippy_ready" for n in client.notifications),
            what="notify_klippy_ready after the restart",
        )
        await client.subscribe()
        assert client.state() == "standby"


async def test_faults_drop_silent_slow_fail(fleet: Fleet):
    p = await ready_printer(fleet)
    await fleet.load_file(p, "long.gcode", gcode(time_s=36000))
    async with MoonrakerClient(p) as client:
        await client.subscribe()
        p.faults.go_silent(True)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.call("server.info"), 0.5)
        p.faults.go_silent(False)
        p.faults.slow(0.3)
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert "result" in await client.call("server.info")
        assert loop.time() - started >= 0.3
        p.faults.slow(0)
        p.printer.start_print("long.gcode")
        await wait_for(lambda: client.state() == "printing", what="printing")
        p.faults.fail_print()
        await wait_for(lambda: client.state() == "error", what="error")
        p.faults.drop_connection()
        await wait_for(lambda: client.closed, what="websocket closed by the drop")
