"""A running hub follows printers another process adds, changes or removes in the database."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from hub import printer_sync
from hub.events import PrinterConfigured, PrinterRemoved
from hub.runtime import Hub
from hub.store import db as store
from hub.store import printers as printers_store
from tests.api.conftest import make_settings, reset_database
from tests.helpers import wait_for


def _printer(i: int) -> dict[str, object]:
    return {
        "name": f"P{i}",
        "protocol": "octoprint",
        "host": f"127.66.0.{i + 2}",
        "port": 5000,
        "enabled": False,
    }


async def test_hub_follows_changes_made_by_another_process(db_url: str, tmp_path: Path) -> None:
    await reset_database(db_url)
    hub = Hub(make_settings(db_url, tmp_path))
    await hub.start()
    events: list[object] = []
    hub.bus.subscribe(PrinterConfigured, events.append, name="t", inline=True)
    hub.bus.subscribe(PrinterRemoved, events.append, name="t2", inline=True)
    other = await store.connect(db_url)  # the importing process's own connection
    watcher = asyncio.create_task(printer_sync.watch(hub, poll_s=0.05))
    try:
        added, skipped = await printers_store.create_many(other, [_printer(i) for i in range(3)])
        assert len(added) == 3 and not skipped
        await wait_for(lambda: len(hub.printers) == 3, what="three printers picked up")
        assert {p.name for p in hub.printers.values()} == {"P0", "P1", "P2"}
        assert hub.printer_status(added[0].id)["connection"] == "disabled"

        await printers_store.replace(other, added[0], {"name": "Renamed"})
        await wait_for(lambda: hub.printers[added[0].id].name == "Renamed", what="rename")
        await printers_store.delete(other, added[1].id)
        await wait_for(lambda: added[1].id not in hub.printers, what="removal")
        assert added[1].id not in hub.manager.printer_ids()
        # The removal is announced once its outbox rows commit, just after the table lets go.
        await wait_for(
            lambda: any(isinstance(e, PrinterRemoved) for e in events), what="removal announced"
        )
        kinds = [type(e).__name__ for e in events]
        assert kinds.count("PrinterConfigured") == 4 and kinds.count("PrinterRemoved") == 1
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await other.disconnect()
        await hub.stop()


async def test_the_hubs_own_changes_load_nothing(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await reset_database(db_url)
    hub = Hub(make_settings(db_url, tmp_path))
    await hub.start()
    loads: list[int] = []
    real = printers_store.list_all

    async def counted(db: object) -> object:
        loads.append(1)
        return await real(db)  # type: ignore[arg-type]

    monkeypatch.setattr(printers_store, "list_all", counted)
    polls: list[int] = []
    real_fingerprint = printers_store.fingerprint

    async def polled(db: object) -> tuple[int, float]:
        polls.append(1)
        return await real_fingerprint(db)  # type: ignore[arg-type]

    monkeypatch.setattr(printers_store, "fingerprint", polled)
    watcher = asyncio.create_task(printer_sync.watch(hub, poll_s=0.02))
    try:
        for i in range(3):
            await hub.add_printer(_printer(i))
        after = len(polls)
        await wait_for(lambda: len(polls) >= after + 5, what="several polls after the adds")
        assert loads == [], "a change the hub made itself reloaded the table"
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await hub.stop()
