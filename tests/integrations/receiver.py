"""A real HTTP receiver on loopback for outbound tests: records requests, answers as scripted."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    """Scripted answers (`script`, then `default`), a delay per request, and what arrived."""

    default: int = 200
    script: deque[tuple[int, dict[str, str]]] = field(default_factory=deque)
    delay_s: float = 0.0
    received: list[Received] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    url: str = ""
    _runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            body = await request.read()
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            self.received.append(Received(request.path, dict(request.headers), body, time.time()))
            status, headers = self.script.popleft() if self.script else (self.default, {})
            return web.Response(status=status, headers=headers, text="ok")
        finally:
            self.in_flight -= 1

    async def start(self, host: str = "127.0.0.1") -> Receiver:
        """Listen on a free port of `host`."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, 0)
        await site.start()
        server: Any = site._server
        port = server.sockets[0].getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{port}"
        return self

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
