"""WebSocket `/ws`: authenticated live messages with per-client filters and back-pressure."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from quart import Blueprint, Response, current_app, websocket

from api.context import hub
from hub.auth import AuthError, Principal
from hub.broadcast import MESSAGE_TYPES, Client, encode

log = logging.getLogger(__name__)

bp = Blueprint("ws", __name__)

# Close codes (documented in docs/websocket.md).
CLOSE_AUTH_FAILED = 4401
CLOSE_AUTH_TIMEOUT = 4408
CLOSE_TOKEN_ENDED = 4403
AUTH_TIMEOUT_S = 5.0


def _origin_allowed() -> bool:
    origin = websocket.headers.get("Origin")
    if not origin:
        return True  # not a browser: scripts and automations send no Origin
    allowed = hub().settings.server.allowed_origins
    if origin in allowed or "*" in allowed:
        return True
    host = websocket.headers.get("Host", "")
    return origin in {f"https://{host}", f"http://{host}"}


async def _authenticate() -> Principal | None:
    """Bearer header on the upgrade, else a first `auth` message within five seconds."""
    h = hub()
    header = websocket.headers.get("Authorization", "")
    try:
        if header.lower().startswith("bearer "):
            return h.auth.verify(header[7:].strip())
        try:
            raw = await asyncio.wait_for(websocket.receive(), AUTH_TIMEOUT_S)
        except TimeoutError:
            await websocket.close(CLOSE_AUTH_TIMEOUT, "no auth message within 5 s")
            return None
        message = json.loads(raw)
        if not isinstance(message, dict) or message.get("type") != "auth":
            raise ValueError
        token = message.get("token")
        if not isinstance(token, str):
            raise ValueError
        return h.auth.verify(token)
    except AuthError as exc:
        await websocket.close(CLOSE_AUTH_FAILED, exc.reason[:120])
    except (ValueError, TypeError):
        await websocket.close(
            CLOSE_AUTH_FAILED, 'first message must be {"type": "auth", "token": "..."}'
        )
    return None


def _error(detail: str) -> str:
    return encode("error", {"detail": detail})


def _apply_subscribe(client: Client, message: dict[str, Any]) -> str | None:
    printers = message.get("printers")
    types = message.get("types")
    if printers is not None and (
        not isinstance(printers, list) or not all(isinstance(p, str) for p in printers)
    ):
        return "subscribe: 'printers' must be a list of printer ids"
    if types is not None:
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            return "subscribe: 'types' must be a list of message types"
        unknown = sorted(set(types) - set(MESSAGE_TYPES))
        if unknown:
            return f"subscribe: unknown types {unknown}; known: {list(MESSAGE_TYPES)}"
    client.printers = None if printers is None else frozenset(printers)
    client.types = None if types is None else frozenset(types)
    return None


async def _reader(client: Client) -> None:
    while True:
        raw = await websocket.receive()
        try:
            message = json.loads(raw)
            if not isinstance(message, dict):
                raise ValueError
        except (ValueError, TypeError):
            await websocket.send(_error("messages must be JSON objects"))
            continue
        kind = message.get("type")
        if kind == "subscribe":
            problem = _apply_subscribe(client, message)
            if problem:
                await websocket.send(_error(problem))
            else:
                await websocket.send(
                    encode(
                        "subscribed",
                        {
                            "printers": None
                            if client.printers is None
                            else sorted(client.printers),
                            "types": None if client.types is None else sorted(client.types),
                        },
                    )
                )
        elif kind == "ping":
            await websocket.send(encode("pong", {}))
        else:
            await websocket.send(_error(f"unknown message type {kind!r}"))


async def _writer(client: Client, principal: Principal) -> None:
    h = hub()
    while True:
        try:
            await asyncio.wait_for(client.ready.wait(), 1.0)
        except TimeoutError:
            pass
        if time.time() >= principal.expires_at:
            await websocket.close(CLOSE_TOKEN_ENDED, "token expired")
            return
        if h.auth.is_revoked(principal.jti):
            await websocket.close(CLOSE_TOKEN_ENDED, "token revoked")
            return
        for message in client.drain():
            await websocket.send(message.text)


@bp.websocket("/ws")
async def ws() -> Response | None:
    """Live printer status, progress, AMS, lifecycle and notifications."""
    if not _origin_allowed():
        return Response("origin not allowed", status=403)
    await websocket.accept()
    principal = await _authenticate()
    if principal is None:
        return None
    h = hub()
    client = Client(max_events=current_app.config.get("WS_MAX_EVENTS", 1000))
    h.broadcaster.register(client)
    # The snapshot goes through the same buffer, so a newer update replaces it, never the reverse.
    for printer_id in list(h.printers):
        client.offer(h.status_message(printer_id))
    tasks = [
        asyncio.ensure_future(_reader(client)),
        asyncio.ensure_future(_writer(client, principal)),
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.debug("websocket client ended: %r", task.exception())
    finally:
        h.broadcaster.unregister(client)
        for task in tasks:
            task.cancel()
    return None
