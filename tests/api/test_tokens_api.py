"""Long-lived API tokens: create (secret once, stored hashed), use on REST and /ws, role
ceiling and capping, expiry, last use, per-user listing, revocation at once."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from typing import Any

from quart.testing.connections import WebsocketDisconnectError

from api import ws as ws_api
from hub.model import parse_rfc3339, rfc3339
from hub.store import users as users_store
from tests.api.conftest import Api, assert_problem
from tests.helpers import wait_for


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def create(api: Api, who: str, **body: Any) -> dict[str, Any]:
    r = await api.client.post("/api/tokens", json={"name": "ha", **body}, headers=api.auth(who))
    assert r.status_code == 201, await r.get_data(as_text=True)
    created: dict[str, Any] = await r.get_json()
    assert r.headers["Location"] == f"/api/tokens/{created['id']}"
    return created


async def status_of(api: Api, path: str, token: str) -> int:
    return (await api.client.get(path, headers=bearer(token))).status_code


async def test_secret_shown_once_stored_hashed_and_accepted_as_bearer(api: Api) -> None:
    created = await create(api, "operator", name="home assistant")
    secret = created["token"]
    assert secret.startswith("pft_") and len(secret) > 40
    assert created["role"] == "operator" and created["username"] == "operator"
    assert created["expires_at"] is None and created["last_used_at"] is None

    row = await api.hub.db.fetch_one(
        "SELECT * FROM api_tokens WHERE id = :id", {"id": created["id"]}
    )
    assert row is not None
    stored = json.dumps(dict(row._mapping), default=str)
    assert secret not in stored and secret.removeprefix("pft_") not in stored
    assert row["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()

    me = await api.client.get("/api/auth/me", headers=bearer(secret))
    assert me.status_code == 200 and (await me.get_json())["username"] == "operator"
    # The listing never carries the secret, and now shows when the token was last used.
    listing = await (await api.client.get("/api/tokens", headers=api.auth("operator"))).get_json()
    assert listing["total"] == 1
    (item,) = listing["items"]
    assert "token" not in item and secret not in json.dumps(item)
    assert item["last_used_at"] is not None
    assert parse_rfc3339(item["last_used_at"]) >= parse_rfc3339(created["created_at"])


async def test_role_ceiling_and_bad_input_change_nothing(api: Api) -> None:
    r = await api.client.post(
        "/api/tokens", json={"name": "x", "role": "admin"}, headers=api.auth("operator")
    )
    body = await assert_problem(r, 403, "forbidden")
    assert body["errors"][0]["field"] == "role" and body["errors"][0]["rule"] == "role_ceiling"
    r = await api.client.post(
        "/api/tokens",
        json={"name": "x", "expires_at": rfc3339(time.time() - 10)},
        headers=api.auth("viewer"),
    )
    body = await assert_problem(r, 400, "validation_error")
    assert body["errors"][0]["field"] == "expires_at"
    assert body["errors"][0]["rule"] == "future"
    r = await api.client.post(
        "/api/tokens", json={"name": "x", "expires_at": "next tuesday"}, headers=api.auth("viewer")
    )
    body = await assert_problem(r, 400, "validation_error")
    assert body["errors"][0]["field"] == "expires_at"
    for bad, field in (
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x", "role": "root"}, "role"),
    ):
        r = await api.client.post("/api/tokens", json=bad, headers=api.auth("admin"))
        body = await assert_problem(r, 400, "validation_error")
        assert body["errors"][0]["field"] == field, body
    assert (await api.hub.db.fetch_val("SELECT COUNT(*) FROM api_tokens")) == 0
    r = await api.client.post("/api/tokens", json={"name": "x"})
    await assert_problem(r, 401)


async def test_a_token_role_is_capped_by_its_own_and_by_the_users(api: Api) -> None:
    viewer_token = (await create(api, "admin", role="viewer"))["token"]
    assert await status_of(api, "/api/tokens", viewer_token) == 200
    assert await status_of(api, "/api/users", viewer_token) == 403

    operator_token = (await create(api, "operator"))["token"]
    r = await api.client.post(
        "/api/tokens", json={"name": "y", "role": "operator"}, headers=bearer(viewer_token)
    )
    await assert_problem(r, 403, "forbidden")  # a token cannot mint a stronger one
    await users_store.update(api.hub.db, api.users["operator"].id, role="viewer")
    r = await api.client.post(
        "/api/tokens", json={"name": "z", "role": "operator"}, headers=bearer(operator_token)
    )
    await assert_problem(r, 403, "forbidden")  # the demoted user's token is a viewer's now


async def test_listing_is_per_user_and_admins_see_all(api: Api) -> None:
    mine = await create(api, "viewer", name="mine")
    theirs = await create(api, "operator", name="theirs")
    listing = await (await api.client.get("/api/tokens", headers=api.auth("viewer"))).get_json()
    assert [t["id"] for t in listing["items"]] == [mine["id"]]
    everything = await (await api.client.get("/api/tokens", headers=api.auth("admin"))).get_json()
    assert {t["id"] for t in everything["items"]} == {mine["id"], theirs["id"]}
    assert everything["total"] == 2 and everything["page"] == 1
    # Someone else's token is absent to a non-admin, and stays usable.
    r = await api.client.delete(f"/api/tokens/{theirs['id']}", headers=api.auth("viewer"))
    await assert_problem(r, 404, "not_found")
    assert await status_of(api, "/api/auth/me", theirs["token"]) == 200
    r = await api.client.delete(f"/api/tokens/{theirs['id']}", headers=api.auth("admin"))
    assert r.status_code == 204
    assert await status_of(api, "/api/auth/me", theirs["token"]) == 401


async def test_revocation_is_immediate_on_rest_and_ws(api: Api) -> None:
    created = await create(api, "viewer")
    secret = created["token"]
    assert await status_of(api, "/api/auth/me", secret) == 200  # now cached by the verifier
    async with api.client.websocket("/ws", headers=bearer(secret)) as conn:
        hello = json.loads(await asyncio.wait_for(conn.receive(), 3))
        assert hello["type"] == "hello" and hello["payload"]["expires_at"] is None
        r = await api.client.delete(f"/api/tokens/{created['id']}", headers=api.auth("viewer"))
        assert r.status_code == 204
        r = await api.client.get("/api/auth/me", headers=bearer(secret))
        body = await assert_problem(r, 401, "unauthorized")
        assert "revoked" in body["detail"]
        started = time.monotonic()
        try:
            while True:
                await asyncio.wait_for(conn.receive(), 5)
        except WebsocketDisconnectError as closed:
            assert closed.args[0] == ws_api.CLOSE_TOKEN_ENDED
        assert time.monotonic() - started < ws_api.RECHECK_S + 1.5
    # A new socket with the deleted token is refused at connect.
    async with api.client.websocket("/ws", headers=bearer(secret)) as conn:
        try:
            await asyncio.wait_for(conn.receive(), 3)
            raise AssertionError("socket with a deleted token was not closed")
        except WebsocketDisconnectError as closed:
            assert closed.args[0] == ws_api.CLOSE_AUTH_FAILED
    r = await api.client.delete(f"/api/tokens/{created['id']}", headers=api.auth("admin"))
    await assert_problem(r, 404)


async def test_expiry_logout_and_user_deletion_end_a_token(api: Api) -> None:
    short = await create(api, "viewer", expires_at=rfc3339(time.time() + 1.0))
    assert await status_of(api, "/api/auth/me", short["token"]) == 200

    async def expired() -> bool:
        return await status_of(api, "/api/auth/me", short["token"]) == 401

    await wait_for(expired, timeout=5, interval=0.1, what="the token to expire")

    logged_out = (await create(api, "operator"))["token"]
    r = await api.client.post("/api/auth/logout", headers=bearer(logged_out))
    assert r.status_code == 204
    assert await status_of(api, "/api/auth/me", logged_out) == 401
    assert (
        await api.hub.db.fetch_val(
            "SELECT COUNT(*) FROM api_tokens WHERE user_id = :u", {"u": api.users["operator"].id}
        )
        == 0
    )

    orphan = (await create(api, "operator"))["token"]
    r = await api.client.delete(f"/api/users/{api.users['operator'].id}", headers=api.auth("admin"))
    assert r.status_code == 204
    assert await status_of(api, "/api/auth/me", orphan) == 401
    left = "SELECT COUNT(*) FROM api_tokens WHERE user_id = :u"
    assert await api.hub.db.fetch_val(left, {"u": api.users["operator"].id}) == 0


async def test_a_token_deleted_by_another_process_closes_its_sockets(api: Api) -> None:
    created = await create(api, "viewer")
    async with api.client.websocket("/ws", headers=bearer(created["token"])) as conn:
        assert json.loads(await asyncio.wait_for(conn.receive(), 3))["type"] == "hello"
        # Straight in the database, as another hub process or the CLI would.
        await api.hub.db.execute("DELETE FROM api_tokens WHERE id = :id", {"id": created["id"]})
        started = time.monotonic()
        try:
            while True:
                await asyncio.wait_for(conn.receive(), 5)
        except WebsocketDisconnectError as closed:
            assert closed.args[0] == ws_api.CLOSE_TOKEN_ENDED
        assert time.monotonic() - started < ws_api.RECHECK_S + 1.5
