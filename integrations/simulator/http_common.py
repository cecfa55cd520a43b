"""Shared machinery for the HTTP front ends: aiohttp serving, fault middleware, dropping links."""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from integrations.simulator.frontend import FrontEnd, PrinterContext

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# A silent printer never answers; give up on a hung request after this long.
SILENT_HOLD_S = 300.0


class HttpFrontEnd(FrontEnd):
    """An aiohttp application on the printer's address; subclasses add routes and auth."""

    def __init__(self, ctx: PrinterContext) -> None:
        super().__init__(ctx)
        self._runner: web.AppRunner | None = None
        self._transports: set[asyncio.BaseTransport] = set()
        self.websockets: set[web.WebSocketResponse] = set()

    @abc.abstractmethod
    def routes(self, app: web.Application) -> None:
        """Register the protocol's routes on `app`."""

    @abc.abstractmethod
    def authorized(self, request: web.Request) -> bool:
        """True if the request carries valid credentials."""

    @abc.abstractmethod
    def unauthorized(self, request: web.Request) -> web.StreamResponse:
        """The protocol's answer to a request without valid credentials."""

    def public(self, request: web.Request) -> bool:
        """Paths served without credentials (none by default)."""
        return False

    async def start(self) -> None:
        """Serve the application on host:port (port 0 binds an ephemeral port)."""
        app = web.Application(middlewares=[self._middleware], client_max_size=512 * 1024 * 1024)
        self.routes(app)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.ctx.host, self.ctx.port, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            self.ctx.port = int(server.sockets[0].getsockname()[1])
        self._runner = runner
        self.running = True

    async def stop(self) -> None:
        """Stop serving; open connections and websockets are cut."""
        self.running = False
        self.drop_connections()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            with contextlib.suppress(Exception):
                await runner.cleanup()

    def drop_connections(self) -> None:
        """Abort every HTTP keep-alive connection and websocket."""
        for transport in list(self._transports):
            transport.abort()  # type: ignore[attr-defined]
        self._transports.clear()
        self.websockets.clear()

    def _track(self, request: web.Request) -> None:
        transport = request.transport
        if transport is None:
            return
        if len(self._transports) > 64:
            self._transports = {t for t in self._transports if not t.is_closing()}
        self._transports.add(transport)

    async def hold_if_silent(self) -> None:
        """Block while the printer is silent (a hung firmware answers nothing)."""
        try:
            await asyncio.wait_for(self.ctx.faults.wait_awake(), SILENT_HOLD_S)
        except TimeoutError:
            raise asyncio.CancelledError from None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self._track(request)
        faults = self.ctx.faults
        if faults.silent:
            await self.hold_if_silent()
        if faults.delay > 0:
            await asyncio.sleep(faults.delay)
        if not self.public(request) and (faults.refuse_auth or not self.authorized(request)):
            return self.unauthorized(request)
        return await handler(request)


def file_name(path: str) -> str:
    """The base name of an uploaded path (storage folders are flattened)."""
    return path.replace("\\", "/").strip("/").rsplit("/", 1)[-1]


async def read_upload(request: web.Request) -> tuple[str | None, bytes, dict[str, str]]:
    """A multipart upload: (file name, data of field `file`, other fields as text)."""
    reader = await request.multipart()
    name: str | None = None
    data = b""
    fields: dict[str, str] = {}
    while True:
        part: Any = await reader.next()
        if part is None:
            break
        if part.name == "file":
            name = part.filename
            data = bytes(await part.read())
        elif part.name:
            fields[part.name] = (await part.text()).strip()
    return name, data, fields


def truthy(value: str | None) -> bool:
    """HTML-form and query booleans: true/1/yes/on."""
    return (value or "").strip().lower() in ("true", "1", "yes", "on", "?1")
