"""A PostgreSQL outage while a printer prints: `/ws` keeps streaming the print, and what the
streams write (the print's history row, its notifications) lands exactly once when the database
is back, also when the link died with a commit on the wire (done, but never acknowledged)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from databases import Database

from hub import retry as writer_retry
from hub.model import PrintState
from hub.runtime import Hub
from hub.store import db as store
from integrations.simulator import Fleet
from integrations.simulator.cli import demo_gcode
from tests.api.conftest import ADMIN_PASSWORD, make_settings, reset_database
from tests.e2e.conftest import start_server
from tests.e2e.records import printer_entry
from tests.e2e.test_restart import Gearbox
from tests.faults.proxy import FaultProxy
from tests.helpers import wait_for
from tests.integrations.printers.conftest import FAST, random_subnet

# Simulated seconds per real second: the print (5 simulated minutes) runs for seconds, and
# rushes to its end once the outage has been watched for a while.
SPEED, RUSH = 60.0, 600.0
# The writers' retry schedule, shortened so that the test does not wait out the production
# one (0.5 s doubling to 10 s: docs/reliability.md); the code path is the same.
FAST_RETRY_S = (0.1, 0.2, 0.5)


class WsClient:
    """Keeps every message one WebSocket client receives."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.messages.append(json.loads(msg.data))

    def of(self, type_: str, since: int = 0) -> list[dict[str, Any]]:
        """Payloads of one type received after the first `since` messages."""
        return [m["payload"] for m in self.messages[since:] if m["type"] == type_]

    async def close(self) -> None:
        """Close the socket and wait for the reader."""
        await self.ws.close()
        await self.task


@pytest.fixture
async def direct(pg_url: str) -> AsyncIterator[Database]:
    """The test's own connection to the database, around the proxy: what was really written."""
    await reset_database(pg_url)
    database = await store.connect(pg_url)
    try:
        yield database
    finally:
        await database.disconnect()


async def _cut(proxy: FaultProxy, mode: str) -> None:
    if mode == "refused":
        await proxy.refuse()  # open links reset, new ones refused
    elif mode == "silent":
        proxy.silent = True  # links held open, nothing answered (half-open)
    else:
        # Every transaction that commits from now on is done on the server, but the link dies
        # with the COMMIT on the wire: the hub never learns that it went through.
        proxy.lose_replies_after = b"COMMIT"


async def _restore(proxy: FaultProxy, mode: str) -> None:
    if mode == "refused":
        await proxy.resume()
        return
    proxy.silent = False
    proxy.lose_replies_after = None
    # The links that were cut are gone for good (as after a restart of the server or a switch).
    proxy.reset_all()


async def _rows(db: Database, printer_id: str) -> list[Any]:
    return list(
        await db.fetch_all(
            "SELECT job_key, outcome, progress FROM prints WHERE printer_id = :p",
            {"p": printer_id},
        )
    )


async def _note_kinds(db: Database, printer_id: str) -> list[str]:
    rows = await db.fetch_all(
        "SELECT kind FROM notifications WHERE printer_id = :p ORDER BY created_at",
        {"p": printer_id},
    )
    return [r["kind"] for r in rows]


async def _outbox_events(db: Database) -> list[str]:
    rows = await db.fetch_all("SELECT event_id FROM outbox")
    return [r["event_id"] for r in rows]


@pytest.mark.parametrize("mode", ["refused", "silent", "commit_reply_lost"])
async def test_ws_streams_through_a_database_outage_and_writes_land_once(
    mode: str,
    pg_url: str,
    proxy: FaultProxy,
    direct: Database,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(writer_retry, "RETRY_S", FAST_RETRY_S)
    url = pg_url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/")
    clock = Gearbox(SPEED)
    async with Fleet(subnet=random_subnet(), clock=clock) as fleet:
        sim = await fleet.add("bambu", port=0)
        await fleet.load_file(sim, "part.gcode", demo_gcode(300, 30, 5.0))
        hub = Hub(make_settings(url, tmp_path), driver_options=FAST)
        task, stop, port = await start_server(hub)
        try:
            async with aiohttp.ClientSession() as session:
                async with session.post(
                    f"http://127.0.0.1:{port}/api/auth/login",
                    json={"username": "admin", "password": ADMIN_PASSWORD},
                ) as r:
                    headers = {"Authorization": f"Bearer {(await r.json())['token']}"}
                printer_id = (await hub.add_printer(printer_entry(sim))).id
                ws = WsClient(
                    await session.ws_connect(f"ws://127.0.0.1:{port}/ws", headers=headers)
                )
                await wait_for(
                    lambda: hub.printer_status(printer_id)["connection"] == "online",
                    timeout=15,
                    what="printer online",
                )
                sim.printer.start_print("part.gcode")

                async def row_open() -> bool:
                    rows = await _rows(direct, printer_id)
                    return len(rows) == 1 and rows[0]["outcome"] is None

                await wait_for(row_open, timeout=15, interval=0.1, what="the print's open row")
                await wait_for(lambda: ws.of("print.progress"), timeout=15, what="progress on /ws")

                # The database goes away mid-print.
                caplog.clear()
                caplog.set_level(logging.WARNING)
                await _cut(proxy, mode)
                since = len(ws.messages)

                def streaming() -> bool:
                    progress = {p["progress"] for p in ws.of("print.progress", since)}
                    return len(progress) >= 2 and bool(ws.of("printer.status", since))

                await wait_for(streaming, timeout=20, what="/ws streaming during the outage")
                # The print ends while the database is still away; /ws tells it all the same.
                clock.shift(RUSH)
                await wait_for(
                    lambda: sim.printer.state is PrintState.FINISHED, timeout=15, what="finished"
                )
                ended = await wait_for(
                    lambda: [p for p in ws.of("print.lifecycle") if p["kind"] == "finished"],
                    timeout=10,
                    what="print.lifecycle finished on /ws",
                )
                assert [p["progress"] for p in ended] == [100]
                if mode == "commit_reply_lost":
                    # The end was committed, but the hub was never told so.
                    await wait_for(lambda: proxy.replies_lost >= 1, timeout=10, what="a commit cut")
                else:
                    # The end is not in the database yet: the writes wait for it.
                    rows = await _rows(direct, printer_id)
                    assert [r["outcome"] for r in rows] == [None], rows
                    assert "print_finished" not in await _note_kinds(direct, printer_id)

                await _restore(proxy, mode)

                async def closed() -> bool:
                    rows = await _rows(direct, printer_id)
                    return len(rows) == 1 and rows[0]["outcome"] == "completed"

                await wait_for(closed, timeout=20, interval=0.1, what="the print's row closed")
                assert await hub.bus.drain(20.0), hub.bus.stats()

                rows = await _rows(direct, printer_id)
                assert [(r["outcome"], r["progress"]) for r in rows] == [("completed", 100.0)]
                kinds = await _note_kinds(direct, printer_id)
                assert sorted(kinds) == ["print_finished", "print_started"], kinds
                events = await _outbox_events(direct)
                assert len(events) == len(set(events)), events
                # /ws told each notification once as well.
                told = [n["kind"] for n in ws.of("notification")]
                assert sorted(told) == ["print_finished", "print_started"], told
                # And the API shows the one record.
                async with session.get(
                    f"http://127.0.0.1:{port}/api/history", headers=headers
                ) as r:
                    assert r.status == 200
                    items = (await r.json())["items"]
                assert [(i["outcome"], i["progress"]) for i in items] == [("completed", 100.0)]
                await ws.close()
        finally:
            stop.set()
            await asyncio.wait_for(task, 15)
    tracebacks = [r for r in caplog.records if r.exc_info and r.levelno >= logging.ERROR]
    assert not tracebacks, [r.getMessage() for r in tracebacks]
