"""`kill -9` of a real `printforge serve` process while the queue is dispatching to two printers.

The hub is a child process (tests/e2e/test_kill_serve.py: Serve) on each engine, SQLite and
PostgreSQL (the suite's `db` fixture: a clean, migrated database); the simulated printers run
here. Both jobs are `dispatching` in the database at the kill, in two different ways:
- the first printer answers slowly, so its upload is still on the way (the printer never gets the
  start): the next hub finds it idle and puts the job back with the reason, then sends it again;
- the second printer begins the print and then goes quiet (its firmware hangs; no report says it
  is printing): the next hub, hearing from it again, finds it printing that run and follows it.
Either way the printer's own log has each run at most once, and each print one history record.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from databases import Database

from hub.store import printers as printers_store
from integrations.simulator import Fleet, SimPrinter
from integrations.simulator.model import PrintLogEntry, SimJob
from tests.e2e.records import printer_entry
from tests.e2e.test_kill_serve import Serve
from tests.helpers import wait_for
from tests.hub.queue.conftest import set_tray
from tests.integrations.printers.conftest import random_subnet
from tests.slicer_files import bambu_3mf

SPEED = 60.0  # simulated seconds per real second
START_TIMEOUT_S = 15  # far above the seconds between the claim and the kill


@pytest.fixture
async def hub(tmp_path: Path, db_url: str, db: Database) -> AsyncIterator[Serve]:
    """The hub's configuration on the test's database; whatever process is left is ended at
    teardown (before the database fixture lets go of the database)."""
    served = Serve(tmp_path, db_url)
    try:
        yield served
    finally:
        await served.reap()


async def _api(serve: Serve, http: aiohttp.ClientSession, method: str, path: str, **kw: Any) -> Any:
    headers = {"Authorization": f"Bearer {serve.token}"}
    async with http.request(method, serve.base + path, headers=headers, **kw) as r:
        body = await r.json(content_type=None)
        assert r.status < 300, (method, path, r.status, body)
        return body


async def _job(db: Database, job_id: str) -> Any:
    return await db.fetch_one("SELECT * FROM queue_jobs WHERE id = :j", {"j": job_id})


async def _runs(db: Database, job_id: str) -> list[Any]:
    return list(
        await db.fetch_all(
            "SELECT * FROM queue_runs WHERE job_id = :j ORDER BY created_at", {"j": job_id}
        )
    )


async def _online(serve: Serve, http: aiohttp.ClientSession, ids: list[str]) -> bool:
    for printer_id in ids:
        with contextlib.suppress(aiohttp.ClientError, ValueError):
            status = await serve.status(http, printer_id)
            if status.get("connection") == "online" and status.get("state") != "offline":
                continue
        return False
    return True


def _hang_after_start(sim: SimPrinter) -> None:
    """The printer's firmware hangs right after it begins a print (reports stop)."""

    def on_job(what: str, job: SimJob, entry: PrintLogEntry) -> None:
        if what == "started":
            sim.faults.freeze(True)

    sim.printer.job_listeners.append(on_job)


async def test_kill_9_mid_dispatch_reconciles_each_job_with_its_printer(
    hub: Serve, db: Database
) -> None:
    serve = hub
    with serve.config.open("a", encoding="utf-8") as config:
        config.write(f"[queue]\nstart_timeout_s = {START_TIMEOUT_S}\n")
    async with (
        Fleet(speed=SPEED, subnet=random_subnet()) as fleet,
        aiohttp.ClientSession() as http,
    ):
        slow = await fleet.add("bambu", model="X1C")
        hung = await fleet.add("bambu", model="X1C")
        ids = {}
        for sim in (slow, hung):
            for slot in range(4):
                set_tray(sim, slot, "PLA", "FFFFFF")
            entry = {**printer_entry(sim), "ftps_port": sim.ftps_port, "auto_clear_bed": True}
            ids[sim.serial] = (await printers_store.create(db, entry)).id
        await serve.start(http)
        await wait_for(lambda: _online(serve, http, list(ids.values())), timeout=30, what="online")
        short = bambu_3mf(plates=((("PLA", "#FFFFFF", 5.0),),), prediction=60)
        long = bambu_3mf(plates=((("PLA", "#FFFFFF", 5.0),),), prediction=6000)
        files = [
            await _api(serve, http, "POST", f"/api/files?filename={name}", data=data)
            for name, data in (("short.gcode.3mf", short), ("long.gcode.3mf", long))
        ]
        slow.faults.slow(5.0)
        _hang_after_start(hung)
        sent = await _api(serve, http, "POST", "/api/queue", json={
            "file_id": files[0]["id"], "target": {"printer_id": ids[slow.serial]},
        })  # fmt: skip
        begun = await _api(serve, http, "POST", "/api/queue", json={
            "file_id": files[1]["id"], "target": {"printer_id": ids[hung.serial]},
        })  # fmt: skip

        async def both_dispatching() -> bool:
            states = [(await _job(db, j["id"]))["state"] for j in (sent, begun)]
            return states == ["dispatching", "dispatching"] and len(hung.printer.log) == 1

        await wait_for(both_dispatching, timeout=20, what="both jobs dispatching")
        serve.kill()
        await serve.reap()
        assert slow.printer.log == []  # the upload never finished: nothing started
        slow.faults.slow(0)
        hung.faults.freeze(False)
        await serve.start(http)

        async def settled() -> bool:
            a, b = await _job(db, sent["id"]), await _job(db, begun["id"])
            return a["state"] == "done" and b["state"] == "printing"

        await wait_for(settled, timeout=40, interval=0.1, what="jobs reconciled")

        async def linked() -> list[Any]:
            rows = await db.fetch_all("SELECT printer_id, queue_job_id, file FROM prints")
            done = all(r["queue_job_id"] for r in rows) and len(rows) == 2
            return list(rows) if done else []

        prints = await wait_for(linked, timeout=15, what="history records linked")
        first, second = await _runs(db, sent["id"]), await _runs(db, begun["id"])
    # Not printing at the restart: back to the queue with the reason, then sent once more.
    assert [r["state"] for r in first] == ["requeued", "finished"]
    assert "restarted during the dispatch" in first[0]["error"]
    assert [e.file for e in slow.printer.log] == [first[1]["filename"]]
    # Printing at the restart: followed, never sent again.
    assert [r["state"] for r in second] == ["printing"]
    assert [e.file for e in hung.printer.log] == [second[0]["filename"]]
    # One history record per physical print, each linked to its job.
    by_printer = {r["printer_id"]: r for r in prints}
    assert by_printer[ids[slow.serial]]["queue_job_id"] == sent["id"]
    assert by_printer[ids[hung.serial]]["queue_job_id"] == begun["id"]
