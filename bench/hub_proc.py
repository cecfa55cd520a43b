"""The hub under test: a `printforge serve` process on loopback with N printers configured."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from _proc import PYTHON, ROOT, cpu_seconds, stop_process

from hub.gcpolicy import FREEZE_AFTER_S

ADMIN_PASSWORD = "bench-admin-password"
# The hub collects and freezes its start-up objects once at this age (hub/gcpolicy.py): a
# one-off pause of a few hundred ms that measurements of the steady state should not include.
STARTUP_REFRESH_S = FREEZE_AFTER_S[0]
# Per client (the bench logs in once): far above anything the load generators can send.
RATE_PER_MINUTE = 100_000_000
RATE_PER_SECOND = 10_000_000


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def store_printers(database_url: str, entries: list[dict[str, Any]]) -> None:
    """Configure the printers in the hub's database before it starts (as an import would)."""
    from hub.store import db as store
    from hub.store import printers as printers_store

    database = await store.connect(database_url)
    try:
        await store.migrate(database)
        async with database.transaction():
            for e in entries:
                await printers_store.create(
                    database,
                    {
                        "name": e["name"],
                        "protocol": e["protocol"],
                        "host": e["host"],
                        "port": e["port"],
                        "serial": e["serial"],
                        "model": e["model"],
                        "access_code": e["access_code"],
                    },
                )
    finally:
        await database.disconnect()


class HubProcess:
    """Prepare a data directory, start `printforge serve`, log in, read /api/metrics."""

    def __init__(self, workdir: Path, root: Path = ROOT) -> None:
        self.workdir = workdir
        self.root = root  # the source tree whose hub runs (another checkout, for before/after)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"
        self.proc: asyncio.subprocess.Process | None = None
        self.ps: psutil.Process | None = None
        self.token = ""
        self.spawned_at = 0.0
        self.session: aiohttp.ClientSession | None = None
        self.config = workdir / "bench.toml"

    async def prepare(self, entries: list[dict[str, Any]], extra: str = "") -> None:
        """Write the configuration (plus `extra` TOML sections) and store the printers."""
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            f'data_dir = "{data}"\n'
            "[server]\n"
            f'host = "127.0.0.1"\nhttps_port = {self.port}\ntls = false\n'
            'log_level = "warning"\n'
            "[auth]\n"
            f'admin_password = "{ADMIN_PASSWORD}"\n'
            "[rate_limit]\n"
            f"enabled = true\nper_minute = {RATE_PER_MINUTE}\nper_second = {RATE_PER_SECOND}\n"
            + extra,
            encoding="utf-8",
        )
        await store_printers(f"sqlite+aiosqlite:///{data / 'printforge.db'}", entries)

    async def settled(self, warmup_s: float) -> None:
        """Sleep `warmup_s`, and at least until the hub's one-off start-up GC refresh is behind it."""
        age = time.monotonic() - self.spawned_at
        await asyncio.sleep(max(warmup_s, STARTUP_REFRESH_S + 2.0 - age))

    async def start(
        self,
        online_limit_s: float = 180.0,
        *,
        wait_online: bool = True,
        health_limit_s: float = 120.0,
    ) -> tuple[float, float]:
        """Spawn the hub; return (seconds to /api/health 200, seconds to every printer online,
        NaN unless `wait_online`)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTFORGE_")}
        log = (self.workdir / "hub.log").open("wb")
        self.spawned_at = time.monotonic()
        self.proc = await asyncio.create_subprocess_exec(
            PYTHON, "-m", "hub.cli", "serve", "--config", str(self.config),
            cwd=self.root, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
        )  # fmt: skip
        self.ps = psutil.Process(self.proc.pid)
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=8))
        health = await self._until_healthy(health_limit_s)
        self.token = ""
        deadline = time.monotonic() + 60.0
        while not self.token:  # a loaded machine may answer the first logins with a 503
            async with self.session.post(
                f"{self.base}/api/auth/login",
                json={"username": "admin", "password": ADMIN_PASSWORD},
            ) as r:
                body = await r.json(content_type=None)
            self.token = body.get("token", "") if isinstance(body, dict) else ""
            if not self.token:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"admin login failed: {body}")
                await asyncio.sleep(0.5)
        if not wait_online:
            return health, float("nan")
        online = await self.until_online(len(await self.printers()), online_limit_s)
        return health, online

    async def _until_healthy(self, limit_s: float = 120.0) -> float:
        assert self.session is not None and self.proc is not None
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            if self.proc.returncode is not None:
                raise RuntimeError(f"the hub exited; see {self.workdir / 'hub.log'}")
            try:
                async with self.session.get(f"{self.base}/api/health") as r:
                    if r.status == 200:
                        return time.monotonic() - self.spawned_at
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.02)
        raise RuntimeError("the hub did not answer /api/health in time")

    async def until_online(self, count: int, limit_s: float = 180.0) -> float:
        """Seconds from spawn until `count` printers are online (by /api/metrics)."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            metrics = await self.metrics()
            if metrics.get('printforge_printer_links{connection="online"}', 0) >= count:
                return time.monotonic() - self.spawned_at
            await asyncio.sleep(0.1)
        raise RuntimeError(f"not all {count} printers came online in {limit_s:.0f} s")

    @property
    def headers(self) -> dict[str, str]:
        """The admin's authorization header."""
        return {"Authorization": f"Bearer {self.token}"}

    async def get(self, path: str) -> Any:
        """GET a JSON resource as admin."""
        assert self.session is not None
        async with self.session.get(self.base + path, headers=self.headers) as r:
            r.raise_for_status()
            return await r.json()

    async def printers(self) -> list[dict[str, Any]]:
        """The configured printers."""
        body = await self.get("/api/printers")
        items: list[dict[str, Any]] = body["items"]
        return items

    async def metrics(self) -> dict[str, float]:
        """/api/metrics as {"name{labels}": value}."""
        assert self.session is not None
        async with self.session.get(self.base + "/api/metrics", headers=self.headers) as r:
            r.raise_for_status()
            text = await r.text()
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def cpu(self) -> float:
        """CPU seconds of the hub process."""
        assert self.ps is not None
        return cpu_seconds(self.ps)

    def rss_mib(self) -> float:
        """Resident memory of the hub process."""
        assert self.ps is not None
        return self.ps.memory_info().rss / 2**20

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.session is not None:
            await self.session.close()
        await stop_process(self.proc, 30.0)


def write_json(path: Path, data: Any) -> Path:
    """Write JSON to a file and return its path."""
    path.write_text(json.dumps(data), encoding="utf-8")
    return path
