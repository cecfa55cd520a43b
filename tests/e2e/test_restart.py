"""A hub restart mid-print: the print keeps its one history record, on both database engines.

The fleet keeps running across the restart; only the hub (server, drivers, pipelines, writers)
stops and a new one starts on the same database, as after an upgrade or a crash-free reboot.
The simulated clock is geared down while the hub is away, so a slow restart on a busy machine
cannot let the print end before the new hub has seen it running.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.model import PrintState
from hub.runtime import Hub
from hub.store import notifications as notes_store
from hub.store import prints as prints_store
from hub.store.prints import PrintRecord
from integrations.simulator import Fleet, SimPrinter
from integrations.simulator.cli import demo_gcode
from tests.api.conftest import ADMIN_PASSWORD, make_settings, reset_database
from tests.e2e.conftest import start_server
from tests.helpers import wait_for
from tests.integrations.printers.conftest import FAST, random_subnet


@dataclass
class Served:
    """One hub generation: the hub, its server task and a WebSocket client's messages."""

    hub: Hub
    task: asyncio.Task[None]
    stop: asyncio.Event
    base: str
    token: str
    session: aiohttp.ClientSession
    messages: list[dict[str, Any]] = field(default_factory=list)
    ws: aiohttp.ClientWebSocketResponse | None = None
    reader: asyncio.Task[None] | None = None

    def lifecycle(self) -> list[str]:
        """Lifecycle steps this generation's WebSocket client saw."""
        return [m["payload"]["kind"] for m in self.messages if m["type"] == "print.lifecycle"]

    async def watch(self) -> None:
        """Connect a WebSocket client that keeps every message."""
        self.ws = await self.session.ws_connect(
            self.base.replace("http", "ws") + "/ws",
            headers={"Authorization": f"Bearer {self.token}"},
        )

        async def read() -> None:
            assert self.ws is not None
            async for msg in self.ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self.messages.append(json.loads(msg.data))

        self.reader = asyncio.create_task(read())

    async def shutdown(self) -> None:
        """Stop the server, which stops the hub (drivers, pipelines, writers, database).

        The WebSocket client stays connected, as a dashboard would during a restart.
        """
        self.stop.set()
        await asyncio.wait_for(self.task, 15)
        if self.reader is not None:
            await asyncio.wait_for(self.reader, 5)  # the server ended the socket
        await self.session.close()
        leftover = [t for t in asyncio.all_tasks() if t.get_name().startswith("ws-")]
        assert not leftover, leftover


async def serve(db_url: str, tmp_path: Path) -> Served:
    """Start a hub and its server on the database; log in as admin."""
    hub = Hub(make_settings(db_url, tmp_path), driver_options=FAST)
    task, stop, port = await start_server(hub)
    base = f"http://127.0.0.1:{port}"
    session = aiohttp.ClientSession()
    async with session.post(
        base + "/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
    ) as r:
        token = (await r.json())["token"]
    return Served(hub, task, stop, base, token, session)


class Gearbox:
    """A simulated clock whose speed can change while it runs (it never goes back)."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self._sim = 0.0
        self._wall = time.monotonic()

    def now(self) -> float:
        """Simulated seconds since the clock was made."""
        return self._sim + (time.monotonic() - self._wall) * self.speed

    def shift(self, speed: float) -> None:
        """Run at `speed` from now on."""
        self._sim = self.now()
        self._wall = time.monotonic()
        self.speed = speed


FAST_SPEED, CRAWL_SPEED = 60.0, 1.0


@pytest.fixture
async def fleet(db_url: str) -> AsyncIterator[Fleet]:
    """A fleet at 60x (on a gearbox clock) on its own subnet, and a clean database."""
    await reset_database(db_url)
    async with Fleet(subnet=random_subnet(), clock=Gearbox(FAST_SPEED)) as sim:
        yield sim


def gearbox(fleet: Fleet) -> Gearbox:
    assert isinstance(fleet.clock, Gearbox)
    return fleet.clock


async def add_printer(served: Served, sim: SimPrinter) -> str:
    """Register the simulated printer and wait until the hub is connected to it."""
    async with served.session.post(
        served.base + "/api/printers",
        json={
            "name": sim.name,
            "protocol": "bambu",
            "host": sim.host,
            "serial": sim.serial,
            "access_code": sim.secret,
            "model": sim.model_name,
        },
        headers={"Authorization": f"Bearer {served.token}"},
    ) as r:
        body = await r.json()
        assert r.status == 201, body
    printer_id: str = body["id"]
    await wait_for(
        lambda: served.hub.printer_status(printer_id)["connection"] == "online",
        what="printer online",
    )
    return printer_id


async def records(hub: Hub, printer_id: str) -> list[PrintRecord]:
    page, _ = await prints_store.list_page(hub.db, printer_id=printer_id, limit=10, offset=0)
    return page


async def note_kinds(hub: Hub) -> list[str]:
    notes, _ = await notes_store.list_page(hub.db, unread_only=False, limit=100, offset=0)
    return sorted(n.kind for n in notes)


async def start_and_wait_for_record(
    served: Served, fleet: Fleet, sim: SimPrinter, printer_id: str, seconds: int
) -> PrintRecord:
    """Start a print of `seconds` simulated seconds; return its open record once stored."""
    await served.watch()
    await fleet.load_file(sim, "part.gcode", demo_gcode(seconds, 30, 20.0))
    sim.printer.start_print("part.gcode")
    await wait_for(lambda: "started" in served.lifecycle(), what="the started step")

    async def open_record() -> PrintRecord | None:
        found = await prints_store.open_prints(served.hub.db)
        return found[0] if len(found) == 1 else None

    record = await wait_for(open_record, what="one open print record")
    assert record.printer_id == printer_id and record.file.startswith("part")
    return record


async def test_a_print_continues_under_the_same_record_after_a_restart(
    db_url: str, tmp_path: Path, fleet: Fleet
) -> None:
    sim = await fleet.add("bambu", model="P1S")
    first = await serve(db_url, tmp_path)
    printer_id = await add_printer(first, sim)
    record = await start_and_wait_for_record(first, fleet, sim, printer_id, seconds=240)
    gearbox(fleet).shift(CRAWL_SPEED)
    await first.shutdown()
    assert sim.printer.state in (PrintState.PREPARING, PrintState.PRINTING)

    second = await serve(db_url, tmp_path)
    await second.watch()
    # The new hub finds the printer still at it, under the record it inherited.
    await wait_for(
        lambda: second.hub.printer_status(printer_id)["state"] in ("preparing", "printing"),
        what="the printer printing after the restart",
    )
    gearbox(fleet).shift(FAST_SPEED)
    await wait_for(lambda: "finished" in second.lifecycle(), timeout=20, what="the finished step")
    assert second.lifecycle() == ["finished"], "no second `started` after the restart"

    async def closed() -> list[PrintRecord] | None:
        found = await records(second.hub, printer_id)
        return found if found and found[0].outcome is not None else None

    (final,) = await wait_for(closed, what="the record closed")
    assert final.id == record.id and final.job_key == record.job_key
    assert final.outcome == "completed" and final.progress == 100
    assert final.started_at == record.started_at
    await wait_for(
        lambda: note_kinds(second.hub),
        what="notifications stored",
    )
    assert (await note_kinds(second.hub)).count("print_started") == 1
    await second.shutdown()


async def test_a_print_that_finished_while_the_hub_was_down_is_closed_on_restart(
    db_url: str, tmp_path: Path, fleet: Fleet
) -> None:
    sim = await fleet.add("bambu", model="P1S")
    first = await serve(db_url, tmp_path)
    printer_id = await add_printer(first, sim)
    record = await start_and_wait_for_record(first, fleet, sim, printer_id, seconds=120)
    gearbox(fleet).shift(CRAWL_SPEED)
    await first.shutdown()
    assert sim.printer.state in (PrintState.PREPARING, PrintState.PRINTING)
    gearbox(fleet).shift(4 * FAST_SPEED)
    await wait_for(
        lambda: sim.printer.state is PrintState.FINISHED,
        timeout=15,
        what="the print finishing while the hub is down",
    )

    second = await serve(db_url, tmp_path)
    await second.watch()

    async def closed() -> list[PrintRecord] | None:
        found = await records(second.hub, printer_id)
        return found if found and found[0].outcome is not None else None

    (final,) = await wait_for(closed, what="the seeded record closed")
    assert final.id == record.id and final.outcome == "completed"
    assert final.progress == 100 and final.ended_at is not None
    assert "started" not in second.lifecycle()
    kinds = await wait_for(
        lambda: _finished_note(second.hub),
        what="print_finished notification",
    )
    assert kinds.count("print_started") == 1 and kinds.count("print_finished") == 1, kinds
    await second.shutdown()


async def _finished_note(hub: Hub) -> list[str] | None:
    kinds = await note_kinds(hub)
    return kinds if "print_finished" in kinds else None
