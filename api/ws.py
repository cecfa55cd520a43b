"""WebSocket `/ws`: authenticated live messages with per-client filters and back-pressure.

One connection runs two tasks: a reader (requests from the client) and a writer (the only task
that sends). Replies and the close frame go through the writer, so a `subscribed` reply is never
overtaken by a message of the old filter and a close never interleaves with a message. Tokens of
every open socket are re-checked by one task per app (`Sessions`), with one database query per
distinct user, so a logout, an expiry or a deleted account ends the socket within
`WS_RECHECK_S`. The close codes are documented in docs/websocket.md.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from quart import Blueprint, Response, current_app, websocket

from api.context import hub
from api.ws_requests import auth_token, error_frame, handle_request, offer_snapshot
from hub.auth import AuthError, Principal
from hub.broadcast import MESSAGE_TYPES, Client, encode
from hub.model import rfc3339
from hub.runtime import Hub
from hub.store import api_tokens as tokens_store
from hub.store import users as users_store
from hub.store.errors import is_unavailable

log = logging.getLogger(__name__)

bp = Blueprint("ws", __name__)

# Close codes (documented in docs/websocket.md).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001  # the hub is shutting down
CLOSE_POLICY = 1008  # the client sends requests but does not read the replies
CLOSE_SERVER_ERROR = 1011
CLOSE_AUTH_FAILED = 4401  # no, malformed, invalid, expired or revoked token at connect
CLOSE_TOKEN_ENDED = 4403  # the token expired, was revoked or its user deleted while connected
CLOSE_AUTH_TIMEOUT = 4408  # no auth message in time

# Settings read from app.config (the defaults below apply when a key is absent).
AUTH_TIMEOUT_S = 5.0  # WS_AUTH_TIMEOUT_S: time allowed for the first-message auth
RECHECK_S = 1.0  # WS_RECHECK_S: how often open sockets' tokens and users are re-checked
MAX_EVENTS = 1000  # WS_MAX_EVENTS: unsent notifications/lifecycle kept per client
MAX_REQUEST_BYTES = 65_536  # WS_MAX_REQUEST_BYTES: larger client messages are refused
MAX_REPLIES = 100  # WS_MAX_REPLIES: unsent replies before a non-reading client is closed
CLOSE_GRACE_S = 1.0  # time the writer gets to send a close frame before the socket is dropped
BATCH_INTERVAL_S = 0.025  # WS_BATCH_INTERVAL_S: least time between two batch frames


def _setting(name: str, default: float) -> float:
    return float(current_app.config.get(name, default))


def _reason(text: str) -> str:
    """A close reason within the protocol's 123-byte limit."""
    data = text.encode()
    return text if len(data) <= 120 else data[:120].decode(errors="ignore")


def _normal_origin(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


def _origin_allowed(allowed: tuple[str, ...]) -> bool:
    """No Origin (scripts), the hub's own origin, or one listed in server.allowed_origins."""
    origin = websocket.headers.get("Origin")
    if origin is None:
        return True  # not a browser: scripts and automations send no Origin
    origin = _normal_origin(origin)
    listed = {_normal_origin(o) for o in allowed}
    if origin in listed or "*" in listed:
        return True
    host = websocket.headers.get("Host", "").strip().lower()
    return bool(host) and origin in {f"https://{host}", f"http://{host}"}


@dataclass(eq=False)
class Session:
    """One authenticated socket: its broadcast buffer, pending replies and close request."""

    client: Client
    principal: Principal
    max_replies: int = MAX_REPLIES
    replies: deque[str] = field(default_factory=deque)
    close: tuple[int, str] | None = None
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    reported_drops: int = 0
    handler: asyncio.Task[Any] | None = None

    def reply(self, text: str) -> bool:
        """Queue a reply for the writer; False when too many are already waiting."""
        if len(self.replies) >= self.max_replies:
            return False
        self.replies.append(text)
        self.client.ready.set()
        return True

    def end(self, code: int, reason: str) -> None:
        """Ask the writer to close the socket (the first request wins)."""
        if self.close is None:
            self.close = (code, _reason(reason))
            self.closing.set()
            self.client.ready.set()


class Sessions:
    """The open sockets of one app and the single task re-checking their tokens and users."""

    def __init__(self, hub_: Hub, config: Any) -> None:
        self.hub = hub_
        self.config = config
        self.sessions: set[Session] = set()
        self.task: asyncio.Task[None] | None = None

    def add(self, session: Session) -> None:
        """Track a session; start the re-check task if it is not running."""
        self.sessions.add(session)
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._watch(), name="ws-token-recheck")

    def discard(self, session: Session) -> None:
        """Forget a session (its task ends by itself once no session is left)."""
        self.sessions.discard(session)

    async def cancel_all(self) -> None:
        """End every handler still running once the server stopped serving.

        At the end of its graceful timeout hypercorn cancels the connection, and Quart then
        leaves the WebSocket handler task running, waiting for messages that never come.
        """
        handlers = [s.handler for s in self.sessions if s.handler is not None]
        for handler in handlers:
            handler.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    async def _watch(self) -> None:
        while self.sessions:
            await asyncio.sleep(float(self.config.get("WS_RECHECK_S", RECHECK_S)))
            try:
                await self.check()
            except Exception:  # never let one bad round end the re-checks of every socket
                log.exception("websocket token re-check failed")

    async def check(self) -> None:
        """End sockets whose token expired or was revoked, or whose user no longer exists."""
        now = time.time()
        by_user: dict[str, list[Session]] = {}
        for session in list(self.sessions):
            principal = session.principal
            if session.close is not None:
                continue
            if now >= principal.expires_at:
                session.end(CLOSE_TOKEN_ENDED, "token expired")
            elif self.hub.auth.is_revoked(principal.jti):
                session.end(CLOSE_TOKEN_ENDED, "token revoked")
            else:
                by_user.setdefault(principal.user_id, []).append(session)
        await self._check_api_tokens([s for group in by_user.values() for s in group])
        for user_id, group in by_user.items():
            try:
                user = await users_store.by_id(self.hub.db, user_id)
            except Exception as exc:  # a database hiccup is no reason to drop dashboards
                log.warning("websocket re-check: user lookup failed: %r", exc)
                continue
            for session in group:
                if user is None:
                    session.end(CLOSE_TOKEN_ENDED, "the token's user no longer exists")
                elif session.principal.role_for(user.role) != session.principal.role:
                    # As for REST requests, the stored role applies (capped by an API token's).
                    role = session.principal.role_for(user.role)
                    session.principal = replace(session.principal, role=role)

    async def _check_api_tokens(self, sessions: list[Session]) -> None:
        """End sockets whose API token was deleted, also by another process sharing the
        database (this process's own deletions are caught by `is_revoked` at once)."""
        ids = {s.principal.token_id for s in sessions if s.principal.token_id is not None}
        if not ids:
            return
        try:
            alive = await tokens_store.existing(self.hub.db, ids)
        except Exception as exc:  # a database hiccup is no reason to drop dashboards
            log.warning("websocket re-check: API token lookup failed: %r", exc)
            return
        for session in sessions:
            if session.principal.token_id is not None and session.principal.token_id not in alive:
                session.end(CLOSE_TOKEN_ENDED, "token revoked")


def _sessions(hub_: Hub) -> Sessions:
    found = current_app.extensions.get("printforge.ws")
    if not isinstance(found, Sessions):
        found = Sessions(hub_, current_app.config)
        current_app.extensions["printforge.ws"] = found
    return found


async def _close(code: int, reason: str) -> None:
    await websocket.close(code, _reason(reason))


async def _authenticate(h: Hub) -> Principal | None:
    """Bearer header on the upgrade, else a first `auth` message within WS_AUTH_TIMEOUT_S.

    The stored user is checked too (a deleted user's token is refused, a changed role applies).
    On failure the socket is closed and None returned.
    """
    header = websocket.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            await _close(CLOSE_AUTH_FAILED, "the Authorization header must be 'Bearer <token>'")
            return None
    else:
        timeout = _setting("WS_AUTH_TIMEOUT_S", AUTH_TIMEOUT_S)
        try:
            raw = await asyncio.wait_for(websocket.receive(), timeout)
        except TimeoutError:
            await _close(CLOSE_AUTH_TIMEOUT, f"no auth message within {timeout:g} s")
            return None
        found = auth_token(raw, MAX_REQUEST_BYTES)
        if found is None:
            await _close(
                CLOSE_AUTH_FAILED, 'the first message must be {"type": "auth", "token": "..."}'
            )
            return None
        token = found
    try:
        principal = await h.auth.authenticate(token)
    except AuthError as exc:
        await _close(CLOSE_AUTH_FAILED, exc.reason)
        return None
    except Exception as exc:
        if is_unavailable(exc):  # an outage, not a bug: one line
            log.warning("websocket authentication: database unavailable: %r", exc)
        else:
            log.exception("websocket authentication failed")
        await _close(CLOSE_SERVER_ERROR, "authentication unavailable")
        return None
    if principal.expires_at <= time.time():  # inside the verifier's clock-skew leeway
        await _close(CLOSE_AUTH_FAILED, "token expired")
        return None
    return principal


async def _reader(h: Hub, session: Session, max_bytes: int) -> None:
    while True:
        raw = await websocket.receive()
        try:
            reply = handle_request(h, session.client, raw, max_bytes)
        except Exception:  # a bug handling one request must not end the socket
            log.exception("websocket request failed")
            reply = error_frame("internal error handling the request")
        if not session.reply(reply):
            session.end(CLOSE_POLICY, "too many unread replies: read your messages")
            return


async def _writer(session: Session, batch_interval: float) -> None:
    client = session.client
    loop = asyncio.get_running_loop()
    last_batch = 0.0
    while True:
        await client.ready.wait()
        if client.batch and session.close is None:
            # Batch frames at most every `batch_interval`: what arrives meanwhile joins the next.
            wait = last_batch + batch_interval - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
        replies = list(session.replies)
        session.replies.clear()
        close = session.close
        for text in replies:
            await websocket.send(text)
        if close is not None:
            await _close(*close)
            return
        dropped = None
        if client.dropped > session.reported_drops:
            count = client.dropped - session.reported_drops
            session.reported_drops = client.dropped
            dropped = encode("dropped", {"count": count, "total": client.dropped})
        client.ready.clear()
        if client.batch:
            frame, shared_at = client.take_batch(dropped)
            if frame is not None and session.close is None:
                await websocket.send(frame)
                # A shared frame's flushes are `batch_interval` apart by themselves.
                last_batch = loop.time() if shared_at is None else shared_at
            continue
        batch = client.take()
        if dropped is not None:
            await websocket.send(dropped)
        for i, message in enumerate(batch):
            if session.close is not None:
                break
            if client.batch:
                # Switched to batch frames meanwhile (a dashboard subscribing right after
                # connecting, its snapshot still going out): the rest rides in the next frame.
                client.requeue(batch[i:])
                break
            if client.wants(message):  # the filter may have changed since it was queued
                await websocket.send(message.text)


async def going_away(app: Any, grace_s: float = 1.0) -> None:
    """Close every socket with 1001 before the server stops, giving writers `grace_s` to send it."""
    found = app.extensions.get("printforge.ws")
    if not isinstance(found, Sessions):
        return
    handlers = []
    for session in list(found.sessions):
        session.end(CLOSE_GOING_AWAY, "hub shutting down")
        if session.handler is not None:
            handlers.append(session.handler)
    if handlers:
        await asyncio.wait(handlers, timeout=grace_s)


@bp.after_app_serving
async def _end_sessions() -> None:
    found = current_app.extensions.get("printforge.ws")
    if isinstance(found, Sessions):
        await found.cancel_all()


@bp.websocket("/ws")
async def ws() -> Response | None:
    """Live printer status, progress, AMS, lifecycle and notifications."""
    h = hub()
    if not _origin_allowed(h.settings.server.allowed_origins):
        return Response("origin not allowed", status=403)
    await websocket.accept()
    principal = await _authenticate(h)
    if principal is None:
        return None
    client = Client(max_events=int(_setting("WS_MAX_EVENTS", MAX_EVENTS)))
    session = Session(client, principal, max_replies=int(_setting("WS_MAX_REPLIES", MAX_REPLIES)))
    session.reply(
        encode(
            "hello",
            {
                "user": principal.username,
                "role": principal.role,
                # An API token without expiry has none to announce.
                "expires_at": (
                    None if math.isinf(principal.expires_at) else rfc3339(principal.expires_at)
                ),
                "types": list(MESSAGE_TYPES),
            },
        )
    )
    session.handler = asyncio.current_task()
    sessions = _sessions(h)
    h.broadcaster.register(client)
    sessions.add(session)
    # The snapshot goes through the same buffer, so a newer update replaces it, never the reverse.
    offer_snapshot(h, client)
    max_bytes = int(_setting("WS_MAX_REQUEST_BYTES", MAX_REQUEST_BYTES))
    reader = asyncio.create_task(_reader(h, session, max_bytes), name="ws-reader")
    batch_interval = _setting("WS_BATCH_INTERVAL_S", BATCH_INTERVAL_S)
    h.broadcaster.batch_interval = batch_interval
    writer = asyncio.create_task(_writer(session, batch_interval), name="ws-writer")
    closing = asyncio.create_task(session.closing.wait(), name="ws-closing")
    tasks = (reader, writer, closing)
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if writer not in done:
            # A close was requested: the writer sends it unless the client stopped reading.
            await asyncio.wait((writer,), timeout=CLOSE_GRACE_S)
        for worker in (reader, writer):
            if worker.done() and not worker.cancelled() and worker.exception() is not None:
                log.debug("websocket %s ended: %r", worker.get_name(), worker.exception())
    finally:
        # Also runs when the handler is cancelled: by Quart when the client went away, or by
        # `Sessions.cancel_all` when the server has stopped.
        sessions.discard(session)
        h.broadcaster.unregister(client)
        await _stop(tasks)
    return None


async def _stop(tasks: tuple[asyncio.Task[Any], ...]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
