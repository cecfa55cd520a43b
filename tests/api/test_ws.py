"""The `/ws` contract: auth paths and close codes, origin rule, requests, filters, back-pressure.

Quart's test client covers what needs no real socket; a hub served by hypercorn with aiohttp
clients covers the real upgrade, the HTTP 403 before it, and sockets ended from the REST side.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import jwt
import pytest
from quart.testing.connections import WebsocketDisconnectError, WebsocketResponseError

from api import ws as ws_api
from hub.broadcast import MESSAGE_TYPES, Broadcaster, Client
from tests.api.conftest import PASSWORDS, Api
from tests.e2e.conftest import LiveHub, live  # noqa: F401  (the live-server fixture)
from tests.e2e.test_telemetry_ws import add_sim_printer
from tests.helpers import wait_for


@pytest.fixture
def db_url(tmp_path: Any) -> str:
    """SQLite only: nothing here depends on the engine (both are covered by the store tests)."""
    return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"


# --- helpers --------------------------------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def recv(conn: Any, timeout: float = 3.0) -> dict[str, Any]:
    """The next message from a Quart test websocket."""
    raw = await asyncio.wait_for(conn.receive(), timeout)
    message: dict[str, Any] = json.loads(raw)
    return message


async def recv_type(conn: Any, type_: str, timeout: float = 3.0) -> dict[str, Any]:
    """Skip messages until one of `type_` arrives."""
    deadline = time.monotonic() + timeout
    while True:
        message = await recv(conn, max(0.05, deadline - time.monotonic()))
        if message["type"] == type_:
            return message


async def close_code(conn: Any, timeout: float = 3.0) -> int:
    """Read until the server closes; return its close code."""
    deadline = time.monotonic() + timeout
    with pytest.raises(WebsocketDisconnectError) as info:
        while True:
            await asyncio.wait_for(conn.receive(), max(0.05, deadline - time.monotonic()))
    code: int = info.value.args[0]
    return code


async def add_disabled_printer(api: Api, name: str, host: str) -> str:
    """A printer record with no driver running: its snapshot still goes out."""
    response = await api.client.post(
        "/api/printers",
        json={"name": name, "protocol": "moonraker", "host": host, "enabled": False},
        headers=api.auth("admin"),
    )
    assert response.status_code == 201, await response.get_data(as_text=True)
    printer_id: str = (await response.get_json())["id"]
    return printer_id


def forged(api: Api, **changes: Any) -> dict[str, Any]:
    """Valid claims for the viewer, with changes."""
    now = int(time.time())
    claims = {
        "sub": api.users["viewer"].id,
        "name": "viewer",
        "role": "viewer",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "jti": f"test-{now}-{id(changes)}",
        "iss": api.hub.settings.auth.issuer,
        "aud": api.hub.settings.auth.audience,
    }
    claims.update(changes)
    return claims


def sign(api: Api, claims: dict[str, Any]) -> str:
    return jwt.encode(claims, api.hub.auth.secret, algorithm="HS256")


# --- connecting and authenticating ----------------------------------------------------------


async def test_bearer_header_gets_hello_then_a_status_snapshot_of_every_printer(api: Api) -> None:
    ids = {await add_disabled_printer(api, f"p{i}", f"10.0.0.{i}") for i in (1, 2)}
    async with api.client.websocket("/ws", headers=api.auth("viewer")) as conn:
        hello = await recv(conn)
        assert hello["type"] == "hello"
        assert hello["payload"]["user"] == "viewer" and hello["payload"]["role"] == "viewer"
        assert set(hello) == {"type", "payload", "ts"}
        seen = {}
        while set(seen) != ids:
            message = await recv_type(conn, "printer.status")
            seen[message["payload"]["printer_id"]] = message["payload"]
        for payload in seen.values():
            assert payload["connection"] == "disabled" and payload["state"] == "offline"


async def test_the_snapshot_is_the_last_published_status_encoded_once(api: Api) -> None:
    a = await add_disabled_printer(api, "a", "10.0.0.1")
    broadcaster = api.hub.broadcaster
    async with api.client.websocket("/ws", headers=api.auth("viewer")) as first:
        await recv_type(first, "printer.status")
        broadcaster.publish("printer.status", {"printer_id": a, "mark": 1}, a)
        assert (await recv_type(first, "printer.status"))["payload"]["mark"] == 1
        async with api.client.websocket("/ws", headers=api.auth("viewer")) as second:
            snapshot = await recv_type(second, "printer.status")
            assert snapshot["payload"] == {"printer_id": a, "mark": 1}
    # With nobody connected a newer status is not kept: the next snapshot is the live state.
    await wait_for(lambda: not broadcaster.clients, what="sockets closed")
    broadcaster.publish("printer.status", {"printer_id": a, "mark": 2}, a)
    async with api.client.websocket("/ws", headers=api.auth("viewer")) as third:
        snapshot = await recv_type(third, "printer.status")
        assert "mark" not in snapshot["payload"]
        assert snapshot["payload"]["connection"] == "disabled"


async def test_first_message_auth_is_accepted(api: Api) -> None:
    async with api.client.websocket("/ws") as conn:
        await conn.send(json.dumps({"type": "auth", "token": api.tokens["operator"]}))
        hello = await recv(conn)
        assert hello["type"] == "hello" and hello["payload"]["role"] == "operator"
        await conn.send(json.dumps({"type": "ping"}))
        assert (await recv_type(conn, "pong"))["payload"] == {}


async def test_a_role_change_ends_the_old_token_and_a_new_login_has_the_new_role(
    api: Api,
) -> None:
    token = api.tokens["operator"]
    response = await api.client.put(
        f"/api/users/{api.users['operator'].id}", json={"role": "viewer"}, headers=api.auth("admin")
    )
    assert response.status_code == 200
    async with api.client.websocket("/ws", headers=bearer(token)) as conn:
        assert await close_code(conn) == ws_api.CLOSE_AUTH_FAILED
    login = await api.client.post(
        "/api/auth/login", json={"username": "operator", "password": PASSWORDS["operator"]}
    )
    assert login.status_code == 200
    fresh = (await login.get_json())["token"]
    async with api.client.websocket("/ws", headers=bearer(fresh)) as conn:
        assert (await recv(conn))["payload"]["role"] == "viewer"


@pytest.mark.parametrize(
    "first",
    [
        "not json",
        json.dumps({"type": "subscribe", "types": ["notification"]}),
        json.dumps({"type": "auth"}),
        json.dumps({"type": "auth", "token": 42}),
        json.dumps(["auth", "token"]),
        "[" * 100_000,
    ],
    ids=["not-json", "not-auth", "no-token", "token-not-string", "array", "deep-nesting"],
)
async def test_a_first_message_that_is_not_an_auth_closes_4401(api: Api, first: str) -> None:
    async with api.client.websocket("/ws") as conn:
        await conn.send(first)
        assert await close_code(conn) == ws_api.CLOSE_AUTH_FAILED


async def test_bad_tokens_close_4401_on_both_paths(api: Api) -> None:
    viewer = api.users["viewer"]
    ttl = api.hub.settings.auth.token_ttl_hours * 3600
    revoked_header = api.fresh_auth("viewer")
    assert (await api.client.post("/api/auth/logout", headers=revoked_header)).status_code == 204
    unsigned = jwt.encode(forged(api), None, algorithm="none")  # type: ignore[arg-type]
    bad = {
        "garbage": "not.a.token",
        "alg-none": unsigned,
        "wrong-key": jwt.encode(
            forged(api), "another-secret-that-is-long-enough-for-hs256", algorithm="HS256"
        ),
        "wrong-audience": sign(api, forged(api, aud="someone-else")),
        "expired": api.hub.auth.issue(viewer, now=time.time() - ttl - 60),
        # Inside the verifier's 5 s clock-skew leeway, but past `exp` all the same.
        "just-expired": api.hub.auth.issue(viewer, now=time.time() - ttl - 2),
        "revoked": revoked_header["Authorization"].removeprefix("Bearer "),
        "unknown-role": sign(api, forged(api, role="root")),
    }
    for name, token in bad.items():
        async with api.client.websocket("/ws", headers=bearer(token)) as conn:
            assert await close_code(conn) == ws_api.CLOSE_AUTH_FAILED, name
        async with api.client.websocket("/ws") as conn:
            await conn.send(json.dumps({"type": "auth", "token": token}))
            assert await close_code(conn) == ws_api.CLOSE_AUTH_FAILED, name
    for header in ("Basic dXNlcjpwYXNz", "Bearer ", api.tokens["viewer"]):
        async with api.client.websocket("/ws", headers={"Authorization": header}) as conn:
            assert await close_code(conn) == ws_api.CLOSE_AUTH_FAILED, header


async def test_a_deleted_users_token_is_refused(api: Api) -> None:
    token = api.tokens["viewer"]
    response = await api.client.delete(
        f"/api/users/{api.users['viewer'].id}", headers=api.auth("admin")
    )
    assert response.status_code == 204
    async with api.client.websocket("/ws", headers=bearer(token)) as conn:
        assert await close_code(conn) == ws_api.CLOSE_AUTH_FAILED


async def test_no_auth_message_in_time_closes_4408(api: Api) -> None:
    api.app.config["WS_AUTH_TIMEOUT_S"] = 0.2
    started = time.monotonic()
    async with api.client.websocket("/ws") as conn:
        assert await close_code(conn) == ws_api.CLOSE_AUTH_TIMEOUT
    assert time.monotonic() - started < 2


async def test_a_token_expiring_while_connected_closes_4403_promptly(api: Api) -> None:
    ttl = api.hub.settings.auth.token_ttl_hours * 3600
    token = api.hub.auth.issue(api.users["viewer"], now=time.time() - ttl + 1.5)
    expires_at = jwt.decode(token, options={"verify_signature": False})["exp"]
    async with api.client.websocket("/ws", headers=bearer(token)) as conn:
        assert (await recv(conn))["type"] == "hello"
        assert await close_code(conn, timeout=5) == ws_api.CLOSE_TOKEN_ENDED
        late = time.time() - expires_at
    assert -0.1 <= late <= ws_api.RECHECK_S + 0.5, late


# --- origin ---------------------------------------------------------------------------------


async def test_origin_rule(api: Api) -> None:
    api.hub.settings = replace(
        api.hub.settings,
        server=replace(api.hub.settings.server, allowed_origins=("https://dash.example.com",)),
    )
    with pytest.raises(WebsocketResponseError) as refused:
        async with api.client.websocket(
            "/ws", headers={**api.auth("viewer"), "Origin": "https://evil.example.net"}
        ) as conn:
            await recv(conn)
    assert refused.value.response.status_code == 403
    for origin in (
        None,
        "https://dash.example.com",
        "https://DASH.example.com/",
        "http://localhost",
    ):
        headers = api.auth("viewer") | ({"Origin": origin} if origin else {})
        async with api.client.websocket("/ws", headers=headers) as conn:
            assert (await recv(conn))["type"] == "hello", origin


# --- requests -------------------------------------------------------------------------------


async def test_bad_requests_get_an_error_naming_the_problem_and_the_socket_stays_usable(
    api: Api,
) -> None:
    api.app.config["WS_MAX_REQUEST_BYTES"] = 4096
    cases = {
        "{not json": "malformed JSON",
        "[1, 2]": "JSON objects, not list",
        '"subscribe"': "JSON objects, not str",
        "3": "JSON objects, not int",
        "[" * 3000: "malformed JSON",  # deep nesting: a RecursionError must not end the socket
        "x" * 5000: "too large",
        "{}": "unknown message type None",
        '{"type": "hello"}': "unknown message type 'hello'",
        '{"type": 7}': "unknown message type 7",
        '{"type": "auth", "token": "t"}': "already authenticated",
        '{"type": "ping", "id": {"a": 1}}': "'id' must be a string or a number",
        '{"type": "subscribe", "printer": ["a"]}': "unknown fields ['printer']",
        '{"type": "subscribe", "printers": "a"}': "'printers' must be a list",
        '{"type": "subscribe", "printers": [1]}': "'printers' must be a list",
        '{"type": "subscribe", "types": "notification"}': "'types' must be a list",
        '{"type": "subscribe", "types": ["notifications"]}': "unknown types ['notifications']",
    }
    async with api.client.websocket("/ws", headers=api.auth("viewer")) as conn:
        for request, expected in cases.items():
            await conn.send(request)
            error = await recv_type(conn, "error")
            assert expected in error["payload"]["detail"], (request, error)
        await conn.send(json.dumps({"type": "subscribe", "types": ["notification"], "id": 9}))
        subscribed = await recv_type(conn, "subscribed")
        assert subscribed["payload"] == {"printers": None, "types": ["notification"], "id": 9}
        await conn.send(json.dumps({"type": "ping", "id": "abc"}))
        assert (await recv_type(conn, "pong"))["payload"] == {"id": "abc"}
        assert len(api.hub.broadcaster.clients) == 1


async def test_subscribe_filters_by_printer_and_type_and_resends_status(api: Api) -> None:
    a = await add_disabled_printer(api, "a", "10.0.0.1")
    b = await add_disabled_printer(api, "b", "10.0.0.2")
    broadcaster = api.hub.broadcaster
    async with api.client.websocket("/ws", headers=api.auth("viewer")) as conn:
        await conn.send(
            json.dumps(
                {"type": "subscribe", "printers": [a], "types": ["printer.status", "notification"]}
            )
        )
        subscribed = await recv_type(conn, "subscribed")
        assert subscribed["payload"] == {
            "printers": [a],
            "types": ["notification", "printer.status"],
        }
        # A fresh snapshot of the printers the new filter covers follows the reply.
        snapshot = await recv(conn)
        assert snapshot["type"] == "printer.status" and snapshot["payload"]["printer_id"] == a

        broadcaster.publish("print.progress", {"printer_id": a, "progress": 5}, a)
        broadcaster.publish("notification", {"printer_id": b, "n": 1}, b)
        broadcaster.publish("notification", {"printer_id": a, "n": 2}, a)
        broadcaster.publish("notification", {"printer_id": None, "n": 3}, None)
        got = [await recv(conn), await recv(conn)]
        assert [m["payload"]["n"] for m in got] == [2, 3]

        # Each subscribe replaces the whole filter; omitted fields mean "all".
        await conn.send(json.dumps({"type": "subscribe", "types": ["print.progress"]}))
        assert (await recv_type(conn, "subscribed"))["payload"] == {
            "printers": None,
            "types": ["print.progress"],
        }
        broadcaster.publish("notification", {"n": 4}, a)
        broadcaster.publish("print.progress", {"printer_id": b, "progress": 7}, b)
        message = await recv(conn)
        assert message["type"] == "print.progress" and message["payload"]["printer_id"] == b


async def test_subscribed_is_never_followed_by_a_message_of_the_old_filter(api: Api) -> None:
    broadcaster = api.hub.broadcaster
    async with api.client.websocket("/ws", headers=api.auth("viewer")) as conn:
        assert (await recv(conn))["type"] == "hello"
        for i in range(50):
            broadcaster.publish("notification", {"n": i}, "p1")
        await conn.send(json.dumps({"type": "subscribe", "types": ["print.lifecycle"]}))
        while (message := await recv(conn))["type"] != "subscribed":
            assert message["type"] == "notification"
        broadcaster.publish("print.lifecycle", {"kind": "started"}, "p1")
        assert (await recv(conn))["type"] == "print.lifecycle"


async def test_overflowing_events_are_reported_as_dropped(api: Api) -> None:
    api.app.config["WS_MAX_EVENTS"] = 5
    broadcaster = api.hub.broadcaster
    async with api.client.websocket("/ws", headers=api.auth("viewer")) as conn:
        assert (await recv(conn))["type"] == "hello"
        for i in range(20):  # synchronously: the writer cannot send in between
            broadcaster.publish("notification", {"n": i}, "p1")
            broadcaster.publish("printer.status", {"printer_id": "p1", "n": i}, "p1")
        dropped = await recv(conn)
        assert dropped["type"] == "dropped"
        assert dropped["payload"] == {"count": 15, "total": 15}
        rest = [await recv(conn) for _ in range(6)]
        assert [m["payload"]["n"] for m in rest if m["type"] == "notification"] == [
            15,
            16,
            17,
            18,
            19,
        ]
        assert [m["payload"]["n"] for m in rest if m["type"] == "printer.status"] == [19]


async def test_disconnect_cleans_up_every_task_and_buffer(api: Api) -> None:
    before = {t.get_name() for t in asyncio.all_tasks()}
    for _ in range(3):
        async with api.client.websocket("/ws", headers=api.auth("viewer")) as conn:
            await conn.send("not json")
            await recv_type(conn, "error")
            assert len(api.hub.broadcaster.clients) == 1
    await wait_for(lambda: not api.hub.broadcaster.clients, what="client unregistered")
    sessions = api.app.extensions["printforge.ws"]
    await wait_for(lambda: sessions.task.done(), timeout=3, what="re-check task ended")
    assert not sessions.sessions

    def leftover() -> set[str]:
        return {
            t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("ws-")
        } - before

    await wait_for(lambda: not leftover(), what="no websocket task left")


def test_a_client_flooding_requests_without_reading_is_bounded() -> None:
    session = ws_api.Session(Client(), principal=None, max_replies=3)  # type: ignore[arg-type]
    assert all(session.reply("x") for _ in range(3))
    assert not session.reply("x")
    session.end(4403, "token expired")
    session.end(1000, "later requests do not replace the first")
    assert session.close == (4403, "token expired")


def test_a_stalled_client_never_grows_the_server_buffer_or_blocks_publishing() -> None:
    broadcaster = Broadcaster()
    stalled = Client(max_events=100)
    broadcaster.register(stalled)
    started = time.perf_counter()
    for i in range(20_000):
        printer = f"p{i % 10}"
        for type_ in ("printer.status", "print.progress", "ams.update", "printer.connection"):
            broadcaster.publish(type_, {"i": i}, printer)
        broadcaster.publish("notification", {"i": i}, printer)
        broadcaster.publish("print.lifecycle", {"i": i}, printer)
        # Bounded at every step, not only at the end (publish is synchronous: it cannot wait
        # for the client, so a bounded buffer is what keeps publishing from slowing down).
        assert len(stalled.latest) <= 4 * 10 and len(stalled.events) <= 100
    # A figure, not a bound: a wall-clock limit here failed on a loaded machine.
    print(f"\n120,000 publishes to a stalled client: {time.perf_counter() - started:.2f} s")
    # Latest-wins: one per (type, printer) for status kinds; FIFO kinds capped at max_events.
    assert len(stalled.latest) == 4 * 10
    assert len(stalled.events) == 100
    assert stalled.dropped == 2 * 20_000 - 100
    sent = [json.loads(m.text) for m in stalled.drain()]
    latest = sorted(m["payload"]["i"] for m in sent if m["type"] == "printer.status")
    assert latest == list(range(19_990, 20_000))  # the newest of each printer


def test_message_types_match_the_documented_contract() -> None:
    assert set(MESSAGE_TYPES) == {
        "printer.status",
        "print.progress",
        "ams.update",
        "notification",
        "print.lifecycle",
        "printer.connection",
        "queue.update",
        "filament.update",
    }


# --- on a live server with real sockets -----------------------------------------------------


async def live_connect(served: LiveHub, **kwargs: Any) -> aiohttp.ClientWebSocketResponse:
    return await served.session.ws_connect(served.ws_url, **kwargs)


async def live_close(ws: aiohttp.ClientWebSocketResponse, timeout: float) -> tuple[int, str]:
    """Read until the server closes; return its close code and reason."""

    async def run() -> tuple[int, str]:
        while True:
            msg = await ws.receive()
            if msg.type == aiohttp.WSMsgType.CLOSE:
                return int(msg.data), str(msg.extra)
            if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                raise AssertionError(f"socket ended without a close frame: {msg}")

    return await asyncio.wait_for(run(), timeout)


async def first_of(ws: aiohttp.ClientWebSocketResponse, type_: str) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        async for msg in ws:
            data: dict[str, Any] = json.loads(msg.data)
            if data["type"] == type_:
                return data
        raise AssertionError(f"closed before a {type_} message ({ws.close_code})")

    return await asyncio.wait_for(run(), 5)


@pytest.fixture
async def viewer(live: LiveHub) -> AsyncIterator[tuple[str, str]]:  # noqa: F811
    """A viewer account on the live hub: (user id, token)."""
    status, body = await live.call(
        "POST",
        "/api/users",
        {"username": "watcher", "password": "watcher-pass-1", "role": "viewer"},
    )
    assert status == 201, body
    async with live.session.post(
        live.base + "/api/auth/login", json={"username": "watcher", "password": "watcher-pass-1"}
    ) as r:
        token = (await r.json())["token"]
    yield body["id"], token


async def test_live_upgrade_with_bearer_and_origin_rule(live: LiveHub) -> None:  # noqa: F811
    ws = await live_connect(live, headers=live.headers)
    assert (await first_of(ws, "hello"))["payload"]["role"] == "admin"
    await ws.close()
    own = live.base  # the hub's own origin is allowed
    ws = await live_connect(live, headers={**live.headers, "Origin": own})
    assert (await first_of(ws, "hello"))["type"] == "hello"
    await ws.close()
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await live_connect(live, headers={**live.headers, "Origin": "http://attacker.example"})
    assert refused.value.status == 403
    ws = await live_connect(live)
    await ws.send_str(json.dumps({"type": "auth", "token": "nope"}))
    code, reason = await live_close(ws, 3)
    assert code == ws_api.CLOSE_AUTH_FAILED and reason.startswith("invalid token"), reason


async def test_live_logout_and_user_deletion_close_open_sockets_with_4403(
    live: LiveHub,  # noqa: F811
    viewer: tuple[str, str],
) -> None:
    user_id, token = viewer
    logged_out = await live_connect(live, headers=bearer(token))
    await first_of(logged_out, "hello")
    async with live.session.post(live.base + "/api/auth/logout", headers=bearer(token)) as r:
        assert r.status == 204
    started = time.monotonic()
    assert await live_close(logged_out, 3) == (ws_api.CLOSE_TOKEN_ENDED, "token revoked")
    assert time.monotonic() - started <= ws_api.RECHECK_S + 0.5

    async with live.session.post(
        live.base + "/api/auth/login", json={"username": "watcher", "password": "watcher-pass-1"}
    ) as r:
        token = (await r.json())["token"]
    doomed = await live_connect(live)
    await doomed.send_str(json.dumps({"type": "auth", "token": token}))
    await first_of(doomed, "hello")
    bystander = await live_connect(live, headers=live.headers)
    await first_of(bystander, "hello")
    status, _ = await live.call("DELETE", f"/api/users/{user_id}")
    assert status == 204
    started = time.monotonic()
    code, reason = await live_close(doomed, 3)
    assert (code, reason) == (ws_api.CLOSE_TOKEN_ENDED, "the token's user no longer exists")
    assert time.monotonic() - started <= ws_api.RECHECK_S + 0.5
    # Other users' sockets are untouched.
    await bystander.send_str(json.dumps({"type": "ping"}))
    assert (await first_of(bystander, "pong"))["payload"] == {}
    await bystander.close()


async def test_live_snapshot_of_a_simulated_printer(live: LiveHub) -> None:  # noqa: F811
    sim = await live.fleet.add("bambu", model="P1S")
    printer_id = await add_sim_printer(live, sim)
    ws = await live_connect(live, headers=live.headers)
    snapshot = await first_of(ws, "printer.status")
    assert snapshot["payload"]["printer_id"] == printer_id
    assert snapshot["payload"]["connection"] == "online"
    assert snapshot["payload"]["state"] == "idle"
    await ws.close()


async def test_live_a_stalled_socket_is_released_when_its_token_is_revoked(
    live: LiveHub,  # noqa: F811
    viewer: tuple[str, str],
) -> None:
    _, token = viewer
    host, port = live.base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port), limit=1024)
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    writer.write(
        (
            f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    try:
        await reader.readuntil(b"\r\n\r\n")
        reader._transport.pause_reading()  # type: ignore[attr-defined]
        await wait_for(lambda: len(live.hub.broadcaster.clients) == 1, what="client registered")
        (client,) = live.hub.broadcaster.clients
        # Far more than the socket buffers hold: the server's writer ends up blocked in a send.
        blob = "x" * 200_000
        for i in range(60):
            live.hub.broadcaster.publish("notification", {"i": i, "blob": blob}, None)
        await asyncio.sleep(0.3)
        live.hub.broadcaster.publish("notification", {"i": 60}, None)
        await asyncio.sleep(0.3)
        assert client.pending() > 0, "the writer is stuck behind the stalled socket"

        async with live.session.post(live.base + "/api/auth/logout", headers=bearer(token)) as r:
            assert r.status == 204
        # The close frame cannot reach a client that does not read, so the server lets go of it.
        await wait_for(
            lambda: client not in live.hub.broadcaster.clients,
            timeout=ws_api.RECHECK_S + ws_api.CLOSE_GRACE_S + 1,
            what="stalled client released",
        )
        assert client.closed
    finally:
        writer.transport.abort()
