"""End to end: simulated printer → driver → streams → database and WebSocket clients."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from hub.model import parse_rfc3339
from hub.store import prints as prints_store
from integrations.simulator import SimPrinter
from integrations.simulator.cli import demo_gcode
from tests.e2e.conftest import LiveHub
from tests.helpers import wait_for


class WsClient:
    """Collects every message a WebSocket client receives."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.messages.append(json.loads(msg.data))

    def of(self, type_: str, pred: Callable[[dict[str, Any]], bool] = lambda p: True) -> list[Any]:
        """Payloads of one type matching a predicate."""
        return [m["payload"] for m in self.messages if m["type"] == type_ and pred(m["payload"])]

    async def close(self) -> None:
        await self.ws.close()
        await self.task


async def add_sim_printer(live: LiveHub, sim: SimPrinter) -> str:
    """Register a simulated Bambu printer with the hub; return its id."""
    status, body = await live.call(
        "POST",
        "/api/printers",
        {
            "name": sim.name,
            "protocol": "bambu",
            "host": sim.host,
            "serial": sim.serial,
            "access_code": sim.secret,
            "model": sim.model_name,
        },
    )
    assert status == 201, body
    printer_id: str = body["id"]
    await wait_for(
        lambda: live.hub.printer_status(printer_id)["connection"] == "online",
        what="printer online",
    )
    return printer_id


async def connect(live: LiveHub) -> WsClient:
    ws = await live.session.ws_connect(live.ws_url, headers=live.headers)
    return WsClient(ws)


async def test_a_print_flows_to_websocket_history_and_notifications(live: LiveHub) -> None:
    sim = await live.fleet.add("bambu", model="P1S")
    printer_id = await add_sim_printer(live, sim)
    client = await connect(live)
    await wait_for(lambda: client.of("printer.status", lambda p: p["printer_id"] == printer_id))

    # About 8 s at the fleet's speed with one report a second: several progress steps on a busy machine.
    # 120 g: less than the emptiest stock spool holds (350 g), so no run-out pauses the print.
    await live.fleet.load_file(sim, "cube.gcode", demo_gcode(240, 40, 120.0))
    sim.printer.start_print("cube.gcode")

    await wait_for(
        lambda: client.of("notification", lambda p: p["kind"] == "print_finished"),
        timeout=30,
        what="print_finished notification",
    )
    assert client.of("printer.status", lambda p: p["state"] == "printing")
    progress = [p["progress"] for p in client.of("print.progress")]
    assert len(progress) >= 5 and progress == sorted(progress), progress
    assert progress[-1] > progress[0]
    trays = client.of("ams.update")
    active = next(u["active_tray"] for u in trays if u["active_tray"] is not None)
    remains = [
        t["remain"]
        for update in trays
        for u in update["units"]
        for t in u["trays"]
        if t["slot"] == active and t["remain"] is not None
    ]
    assert remains and remains[-1] < remains[0], "the active tray drained"
    steps = client.of("print.lifecycle")
    assert [p["kind"] for p in steps] == ["started", "finished"], steps
    assert steps[-1]["progress"] == 100

    async def one_record() -> bool:
        page, total = await prints_store.list_page(
            live.hub.db, printer_id=printer_id, limit=10, offset=0
        )
        return total == 1 and page[0].outcome == "completed"

    await wait_for(one_record, what="exactly one finished print record")
    status, body = await live.call("GET", "/api/notifications?unread=true")
    assert status == 200
    assert {"print_started", "print_finished"} <= {n["kind"] for n in body["items"]}
    finished = next(n for n in body["items"] if n["kind"] == "print_finished")
    assert sim.name in finished["message"] and printer_id not in finished["message"]
    assert finished["data"]["printer_name"] == sim.name
    await client.close()


async def test_pause_resume_cancel_are_reflected(live: LiveHub) -> None:
    sim = await live.fleet.add("bambu", model="X1C")
    printer_id = await add_sim_printer(live, sim)
    client = await connect(live)
    await live.fleet.load_file(sim, "long.gcode", demo_gcode(3600, 200, 50.0))
    sim.printer.start_print("long.gcode")
    await wait_for(lambda: live.hub.printer_status(printer_id)["state"] == "printing", timeout=20)

    steps = (("pause", {"paused"}), ("resume", {"printing", "preparing"}), ("stop", {"cancelled"}))
    for command, states in steps:
        seen = len(client.messages)
        status, body = await live.call(
            "POST", f"/api/printers/{printer_id}/command", {"command": command}
        )
        assert status == 200, body
        # The step is visible to WebSocket clients before the next command goes out.
        await wait_for(
            lambda s=states, n=seen: any(
                m["type"] == "printer.status"
                and m["payload"]["printer_id"] == printer_id
                and m["payload"]["state"] in s
                for m in client.messages[n:]
            ),
            what=f"status {states} after {command}",
        )
    await wait_for(
        lambda: len(client.of("print.lifecycle")) >= 4,
        what="four lifecycle steps",
    )
    kinds = [p["kind"] for p in client.of("print.lifecycle")]
    assert kinds == ["started", "paused", "resumed", "cancelled"], kinds

    async def cancelled_record() -> bool:
        page, total = await prints_store.list_page(
            live.hub.db, printer_id=printer_id, limit=10, offset=0
        )
        return total == 1 and page[0].outcome == "cancelled"

    await wait_for(cancelled_record, what="one cancelled record")
    await client.close()


async def test_a_stalled_client_does_not_slow_a_healthy_one(live: LiveHub) -> None:
    sims = [await live.fleet.add("bambu", model="X1C") for _ in range(3)]
    ids = [await add_sim_printer(live, sim) for sim in sims]
    for sim in sims:
        await live.fleet.load_file(sim, "long.gcode", demo_gcode(3600, 200, 50.0))
        sim.printer.start_print("long.gcode")

    # The stalled client completes the handshake, then never reads a byte.
    host, port = live.base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port), limit=1024)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(__import__("socket").SOL_SOCKET, __import__("socket").SO_RCVBUF, 4096)
    writer.write(
        (
            f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {live.token}\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")
    reader._transport.pause_reading()  # type: ignore[attr-defined]

    healthy = await connect(live)
    await wait_for(lambda: len(live.hub.broadcaster.clients) == 2, what="both clients registered")
    # Let updates flow for a while: the healthy client keeps receiving fresh status.
    start = time.monotonic()
    published = live.hub.broadcaster.published
    await wait_for(
        lambda: live.hub.broadcaster.published >= published + 40,
        timeout=20,
        what="updates flowing past the stalled client",
    )
    recent = [
        m
        for m in healthy.messages
        if m["type"] == "printer.status" and parse_rfc3339(m["ts"]) > time.time() - 1.5
    ]
    assert recent, "the healthy client still receives current status"
    assert {p["printer_id"] for p in healthy.of("printer.status")} >= set(ids)
    lag = [time.time() - parse_rfc3339(m["ts"]) for m in healthy.messages[-5:]]
    assert max(lag) < 2.0, lag
    # The stalled client's server-side buffer stays bounded (latest-wins per printer and type).
    for client in live.hub.broadcaster.clients:
        assert client.pending() <= 4 * len(ids) + client.max_events
    assert time.monotonic() - start < 10
    writer.close()
    await healthy.close()
