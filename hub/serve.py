"""Run the hub: HTTPS (self-signed by default) plus an HTTP listener that redirects to it."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import resource
import signal
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config as HyperConfig
from hypercorn.config import Sockets

from api.app import create_app
from api.ws import going_away
from config.loader import Settings
from hub import gcpolicy, printer_sync
from hub.runtime import Hub
from hub.tls import ensure_certificate

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


# A client that stops reading (a frozen tablet) must not hold the server forever: unacked
# data older than this ends the connection. Linux hands the option down to accepted sockets.
TCP_USER_TIMEOUT_MS = 20_000
# From SIGTERM to exit, within 5 s (docs/reliability.md, "Overload"): WebSocket clients get
# their goodbye, requests in flight their drain, then Hub.stop its budget (hub/shutdown.py).
GOING_AWAY_S = 0.3
GRACEFUL_S = 0.7
# Past this a process still running (a step ignoring its bound, an executor thread stuck in a
# connect) exits anyway: everything acknowledged is already committed.
EXIT_LIMIT_S = 4.5
# The status of a process the timer ends: the same as a stop in time (docs/reliability.md,
# "Overload"). It was asked to stop and it stopped; a supervisor must not count it a crash.
FORCED_EXIT_STATUS = 0
# Hub.start, connecting the database and starting every printer's driver.
STARTUP_LIMIT_S = 600
# Socket errors that mean the peer went away (reset, broken pipe, a descriptor already closed).
DROPPED_ERRNOS = {errno.ECONNRESET, errno.EPIPE, errno.EBADF, errno.ENOTCONN, errno.ETIMEDOUT}


class Config(HyperConfig):
    """Hypercorn configuration whose listening sockets carry TCP_USER_TIMEOUT."""

    def create_sockets(self) -> Sockets:
        """Hypercorn's sockets with the user timeout set where the platform has it."""
        sockets = super().create_sockets()
        option = getattr(socket, "TCP_USER_TIMEOUT", None)
        if option is not None:
            for sock in (*sockets.secure_sockets, *sockets.insecure_sockets):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, option, TCP_USER_TIMEOUT_MS)
        return sockets


def redirect_app(https_port: int) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """A tiny ASGI app answering every HTTP request with a redirect to HTTPS."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        host = dict(scope["headers"]).get(b"host", b"localhost").decode("latin-1")
        host = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        path = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        query = scope.get("query_string", b"").decode("latin-1")
        location = f"https://{host}:{https_port}{path}" + (f"?{query}" if query else "")
        await send(
            {
                "type": "http.response.start",
                "status": 308,
                "headers": [(b"location", location.encode())],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    return app


def raise_open_files_limit() -> int:
    """Lift the soft open-files limit to the hard one: each printer holds a socket or two."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
    return soft


async def until_stopped(serving: Awaitable[None], stop: asyncio.Event) -> None:
    """Run a server; once a stop was asked for, a connection failing to close is only logged.

    Hypercorn gathers its connections on shutdown and re-raises the first error, e.g. a TLS
    peer that sent data after close_notify: the hub has stopped cleanly all the same.
    """
    try:
        await serving
    except Exception as exc:
        if not stop.is_set():
            raise
        # A client's connection, not the hub: one line, no traceback.
        log.warning("a connection did not close cleanly while the server stopped: %r", exc)


def quiet_connection_errors(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Event-loop error handler: a client dropping its (TLS) connection is one info line, not
    a traceback; anything else goes to asyncio's default handler."""
    exc = context.get("exception")
    if isinstance(exc, ConnectionError | ssl.SSLError | TimeoutError) or (
        isinstance(exc, OSError) and exc.errno in DROPPED_ERRNOS
    ):
        log.info("client connection dropped: %s (%r)", context.get("message", ""), exc)
        return
    loop.default_exception_handler(context)


class ExitBackstop:
    """Ends the process `seconds` after `arm()` unless it has ended by then.

    Its daemon thread is started beforehand and only waits for an event, so arming is safe in
    a signal handler and the count starts at the signal, however busy the event loop is."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._armed = threading.Event()
        threading.Thread(target=self._run, name="exit-backstop", daemon=True).start()

    @property
    def armed(self) -> bool:
        """Has the countdown started?"""
        return self._armed.is_set()

    def arm(self) -> None:
        """Start the countdown (once; later calls change nothing)."""
        self._armed.set()

    def _run(self) -> None:
        self._armed.wait()
        time.sleep(self.seconds)
        log.warning("the hub did not stop within %.1f s of the signal; exiting now", self.seconds)
        for handler in logging.getLogger().handlers:
            with contextlib.suppress(Exception):
                handler.flush()
        os._exit(FORCED_EXIT_STATUS)


def exit_after(seconds: float) -> ExitBackstop:
    """End the process `seconds` from now unless it has ended by then."""
    backstop = ExitBackstop(seconds)
    backstop.arm()
    return backstop


async def run(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM."""
    raise_open_files_limit()
    # The composition root of a serving hub: the embedded simulator runs only here.
    hub = Hub(settings, simulator=settings.simulator.enabled)
    app = create_app(hub)
    server = settings.server
    config = Config()
    config.accesslog = None
    # Hypercorn's own logger given as a Logger: it then adds no handler of its own, and each
    # line goes out once, through the hub's logging set-up.
    config.errorlog = logging.getLogger("hypercorn.error")
    # Starting thousands of printers on a busy machine can take longer than hypercorn's 60 s.
    config.startup_timeout = STARTUP_LIMIT_S
    config.graceful_timeout = GRACEFUL_S
    scheme = "http"
    if server.tls:
        cert, key = (
            (server.tls_cert, server.tls_key)
            if server.tls_cert and server.tls_key
            else tuple(str(p) for p in ensure_certificate(settings.data_dir / "tls"))
        )
        config.certfile, config.keyfile = cert, key
        scheme = "https"
    config.bind = [f"{server.host}:{server.https_port}"]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(quiet_connection_errors)

    async def shut_down() -> None:
        if stop.is_set():
            return
        # Telemetry's share of the CPU goes to stopping; the newest reports wait, bounded.
        hub.handoff.pause()
        # Tell WebSocket clients the hub is going away (1001) before the server stops.
        await going_away(app, GOING_AWAY_S)
        stop.set()

    backstop = ExitBackstop(EXIT_LIMIT_S)

    def on_signal(signum: int, frame: object) -> None:
        # A Python-level handler runs between two bytecodes of the main thread, so the exit
        # countdown starts at the signal, not once a crowded event loop reaches a callback.
        if backstop.armed:
            return
        backstop.arm()
        loop.call_soon_threadsafe(lambda: asyncio.ensure_future(shut_down()))

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    tasks = [
        asyncio.create_task(
            until_stopped(hypercorn_serve(app, config, shutdown_trigger=stop.wait), stop)
        )
    ]
    gc_task = asyncio.create_task(gcpolicy.housekeeping(), name="gc-housekeeping")
    if server.tls and server.http_port:
        redirect = HyperConfig()
        redirect.accesslog = None
        redirect.errorlog = config.errorlog
        redirect.bind = [f"{server.host}:{server.http_port}"]
        tasks.append(
            asyncio.create_task(
                until_stopped(
                    hypercorn_serve(
                        redirect_app(server.https_port),  # type: ignore[arg-type]
                        redirect,
                        shutdown_trigger=stop.wait,
                    ),
                    stop,
                )
            )
        )
    sync_task: asyncio.Task[None] | None = None
    try:
        if await wait_listening(server.host, server.https_port, tasks[0]):
            for line in start_banner(scheme, server.host, server.https_port, server):
                print(line, flush=True)
            sync_task = asyncio.create_task(printer_sync.watch(hub), name="printer-sync")
        await asyncio.gather(*tasks)
    finally:
        gc_task.cancel()
        if sync_task is not None:
            sync_task.cancel()
        for sig, handler in previous.items():
            if handler is not None:
                signal.signal(sig, handler)


def _local_host(host: str) -> str:
    """The address to reach a listener bound to `host` from this machine."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host in ("::", "[::]"):
        return "::1"
    return host


async def wait_listening(host: str, port: int, serving: asyncio.Task[None]) -> bool:
    """Wait until the port accepts connections (True), or the server task ended (False)."""
    target = _local_host(host)
    while not serving.done():
        try:
            _, writer = await asyncio.open_connection(target, port)
        except OSError:
            await asyncio.wait({serving}, timeout=0.05)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True
    return False


def start_banner(scheme: str, host: str, port: int, server: Any) -> list[str]:
    """The lines printed once the hub listens: where to reach it and its API docs."""
    shown = "localhost" if host in ("", "0.0.0.0", "::", "[::]") else host
    if ":" in shown:
        shown = f"[{shown}]"
    base = f"{scheme}://{shown}:{port}"
    lines = [f"3DPrintForge listening on {base}" + (" (all addresses)" if shown != host else "")]
    lines.append(f"API docs: {base}/api/docs")
    if server.tls and server.http_port:
        lines.append(f"http://{shown}:{server.http_port} redirects to HTTPS")
    return lines
