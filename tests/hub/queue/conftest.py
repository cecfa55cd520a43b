"""A served hub with the queue on and a simulated farm on an accelerated clock, driven over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.runtime import Hub
from integrations.simulator import Fleet, SimPrinter
from tests.api.conftest import ADMIN_PASSWORD, make_settings
from tests.conftest import prepare_database
from tests.e2e.conftest import start_server
from tests.integrations.printers.conftest import FAST, SECRET_KEYS, random_subnet

SPEED = 600.0  # simulated seconds per real second: a 60 s print plus heat-up in well under 1 s


@dataclass
class Farm:
    """The hub, its fleet and an admin session on its API."""

    hub: Hub
    fleet: Fleet
    base: str
    session: aiohttp.ClientSession
    token: str
    settings: Any = None
    server: tuple[asyncio.Task[None], asyncio.Event] | None = None
    sims: dict[str, SimPrinter] = field(default_factory=dict)  # printer id -> simulated printer

    async def stop_hub(self) -> None:
        """Stop the hub; a start under way is abandoned as a killed hub would leave it."""
        assert self.server is not None
        task, stop = self.server
        stop.set()
        await asyncio.wait_for(task, 15)
        self.server = None

    async def start_hub(self) -> None:
        """Start a new hub on the same database and fleet."""
        self.hub = Hub(self.settings, driver_options=FAST)
        task, stop, port = await start_server(self.hub)
        self.server = (task, stop)
        self.base = f"http://127.0.0.1:{port}"
        async with self.session.post(
            f"{self.base}/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        ) as r:
            self.token = (await r.json())["token"]

    async def call(
        self, method: str, path: str, json: Any = None, data: Any = None
    ) -> tuple[int, Any]:
        """One API call as admin: (status, parsed body or None)."""
        headers = {"Authorization": f"Bearer {self.token}"}
        async with self.session.request(
            method, self.base + path, json=json, data=data, headers=headers
        ) as r:
            body = await r.json(content_type=None) if r.status != 204 else None
            return r.status, body

    async def ok(self, method: str, path: str, json: Any = None, data: Any = None) -> Any:
        """An API call that must succeed; its body."""
        status, body = await self.call(method, path, json, data)
        assert status < 300, (method, path, status, body)
        return body

    async def add(self, sim: SimPrinter, **settings: Any) -> str:
        """Register a simulated printer with the hub; its id."""
        entry = sim.describe()
        body = {
            "name": entry["name"], "protocol": sim.protocol, "host": sim.host, "port": sim.port,
            "serial": sim.serial, "model": sim.model_name,
            SECRET_KEYS[sim.protocol]: sim.secret, **settings,
        }  # fmt: skip
        if sim.protocol == "bambu":
            body["ftps_port"] = sim.ftps_port
        if sim.protocol == "prusalink":
            body["username"] = "maker"
        row = await self.ok("POST", "/api/printers", body)
        self.sims[row["id"]] = sim
        return str(row["id"])

    async def upload(self, name: str, data: bytes) -> dict[str, Any]:
        """Upload a print file; its record."""
        body: dict[str, Any] = await self.ok("POST", f"/api/files?filename={name}", data=data)
        return body

    async def job(self, job_id: str) -> dict[str, Any]:
        """One job as the API shows it."""
        body: dict[str, Any] = await self.ok("GET", f"/api/queue/{job_id}")
        return body

    async def spool(
        self, printer_id: str, tray: int, material: str, color: str, grams: float
    ) -> None:
        """Put a new spool on a printer's tray."""
        spool = await self.ok(
            "POST", "/api/filaments",
            {"material": material, "color": color, "weight_total_g": 1000.0,
             "weight_remaining_g": grams},
        )  # fmt: skip
        await self.ok("PUT", f"/api/printers/{printer_id}/trays/{tray}", {"spool_id": spool["id"]})

    async def online(self, *printer_ids: str) -> None:
        """Wait until the hub has a live link to every printer."""
        from tests.helpers import wait_for

        async def all_up() -> bool:
            for pid in printer_ids:
                status = await self.ok("GET", f"/api/printers/{pid}/status")
                if status["connection"] != "online" or status["state"] == "offline":
                    return False
            return True

        await wait_for(all_up, timeout=45, interval=0.05, what="printers online")


def set_tray(sim: SimPrinter, slot: int, material: str, color: str, grams: float = 800.0) -> None:
    """Load a simulated Bambu AMS tray with a spool (`color` as RRGGBB)."""
    tray = sim.printer.tray(slot)
    assert tray is not None
    tray.material, tray.color, tray.grams, tray.empty = material, f"{color}FF", grams, False


FarmFactory = Callable[..., Awaitable[Farm]]


@pytest.fixture
async def farm_factory(db_url: str, tmp_path: Path) -> AsyncIterator[FarmFactory]:
    """Start a hub (queue settings from keyword arguments) serving a fresh simulated fleet."""
    stops: list[Callable[[], Awaitable[None]]] = []

    async def make(**env: str) -> Farm:
        database = await prepare_database(db_url)
        await database.disconnect()
        settings = make_settings(db_url, tmp_path, **env)
        hub = Hub(settings, driver_options=FAST)  # replaced by start_hub
        fleet = Fleet(speed=SPEED, subnet=random_subnet())
        await fleet.start()
        farm = Farm(hub, fleet, "", aiohttp.ClientSession(), "", settings)
        await farm.start_hub()

        async def close() -> None:
            if farm.server is not None:
                await farm.stop_hub()
            await farm.session.close()
            await fleet.close()

        stops.append(close)
        return farm

    yield make
    for close in reversed(stops):
        await close()
