"""A real hub served by hypercorn on loopback, driving a simulated fleet over the real protocols."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config as HyperConfig

from api.app import create_app
from hub.runtime import Hub
from integrations.simulator import Fleet
from tests.api.conftest import ADMIN_PASSWORD, make_settings
from tests.conftest import prepare_database
from tests.helpers import wait_for
from tests.integrations.printers.conftest import FAST, random_subnet


def _ephemeral_low(default: int = 32768) -> int:
    """The first port of the kernel's range for outgoing connections."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    return default


def free_port() -> int:
    """An unused TCP port on 127.0.0.1 for a process to bind later, below the kernel's range
    for outgoing connections: a port from that range can be given to some client's connection
    between this check and the bind (`Address already in use` once in a run beside a busy
    simulated fleet). Each pick is random, so test processes seldom try the same one."""
    low = _ephemeral_low()
    for _ in range(100):
        port = random.randint(min(20000, low // 2), low - 1)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        found: int = s.getsockname()[1]
        return found


@dataclass
class LiveHub:
    """A served hub, its base URLs, an admin token and the simulated fleet."""

    hub: Hub
    fleet: Fleet
    base: str
    ws_url: str
    token: str
    session: aiohttp.ClientSession

    @property
    def headers(self) -> dict[str, str]:
        """Admin authorization header."""
        return {"Authorization": f"Bearer {self.token}"}

    async def call(self, method: str, path: str, json: Any = None) -> tuple[int, Any]:
        """One API call as admin: (status, parsed body or None)."""
        async with self.session.request(
            method, self.base + path, json=json, headers=self.headers
        ) as r:
            body = await r.json(content_type=None) if r.status != 204 else None
            return r.status, body


async def start_server(hub: Hub) -> tuple[asyncio.Task[None], asyncio.Event, int]:
    """Serve the hub's app over plain HTTP on a free loopback port."""
    app = create_app(hub)
    config = HyperConfig()
    # A socket bound here and handed over by its descriptor: a port found free and bound
    # later could be taken in between by another process on a busy machine.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config.bind = [f"fd://{listener.detach()}"]
    config.accesslog = None
    config.graceful_timeout = 1
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    async with aiohttp.ClientSession() as session:

        async def answering() -> bool:
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"http://127.0.0.1:{port}/api/health") as r:
                    return r.status == 200
            return False

        await wait_for(answering, timeout=10, interval=0.05, what="the hub answering on its port")
    return task, stop, port


@pytest.fixture
async def live(db_url: str, tmp_path: Path) -> AsyncIterator[LiveHub]:
    """A live hub on each database engine with a fleet at 60x speed."""
    database = await prepare_database(db_url)
    await database.disconnect()
    settings = make_settings(db_url, tmp_path)
    hub = Hub(settings, driver_options=FAST)
    async with Fleet(speed=60.0, subnet=random_subnet()) as fleet:
        task, stop, port = await start_server(hub)
        try:
            async with aiohttp.ClientSession() as session:
                async with session.post(
                    f"http://127.0.0.1:{port}/api/auth/login",
                    json={"username": "admin", "password": ADMIN_PASSWORD},
                ) as r:
                    token = (await r.json())["token"]
                yield LiveHub(
                    hub,
                    fleet,
                    f"http://127.0.0.1:{port}",
                    f"ws://127.0.0.1:{port}/ws",
                    token,
                    session,
                )
        finally:
            stop.set()
            await asyncio.wait_for(task, 15)
