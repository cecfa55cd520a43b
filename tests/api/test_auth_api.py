"""Login, logout, me; token forgery; login throttling; secret and revocation persistence."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from hub.auth import REQUIRED_CLAIMS
from hub.store import kv
from hub.store import users as users_store
from tests.api.conftest import (
    ADMIN_PASSWORD,
    PASSWORDS,
    Api,
    assert_problem,
    make_settings,
    reset_database,
    running_app,
)
from tests.conftest import ONE_ENGINE


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(api: Api, who: str = "admin", **changes: Any) -> dict[str, Any]:
    """Claims exactly like the hub issues for `who`'s user, with some changed."""
    now = int(time.time())
    user = api.users[who]
    claims: dict[str, Any] = {
        "sub": user.id,
        "name": user.username,
        "role": user.role,
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "jti": f"forged-{now}-{who}",
        "iss": api.hub.settings.auth.issuer,
        "aud": api.hub.settings.auth.audience,
    }
    claims.update(changes)
    return claims


def _hand_signed(header: dict[str, Any], claims: dict[str, Any], secret: str | None) -> str:
    """A JWT with an arbitrary header, HMAC-SHA256-signed with `secret` (or unsigned)."""
    head = _b64(json.dumps(header).encode())
    body = _b64(json.dumps(claims).encode())
    signing_input = f"{head}.{body}".encode()
    if secret is None:
        return f"{head}.{body}."
    sig = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}"


async def _me(api: Api, token: str) -> Any:
    return await api.client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})


async def test_login_me_logout_round_trip(api: Api) -> None:
    r = await api.client.post(
        "/api/auth/login", json={"username": "operator", "password": PASSWORDS["operator"]}
    )
    assert r.status_code == 200
    body = await r.get_json()
    assert set(body) == {"token", "expiresIn"}
    assert body["expiresIn"] == "24h"
    token = body["token"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "HS256"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 24 * 3600
    assert set(REQUIRED_CLAIMS) <= set(claims)

    headers = {"Authorization": f"Bearer {token}"}
    me = await api.client.get("/api/auth/me", headers=headers)
    assert me.status_code == 200
    user = await me.get_json()
    assert user["username"] == "operator"
    assert user["role"] == "operator"
    assert user["id"] == api.users["operator"].id
    assert "password_hash" not in user and "password" not in user

    out = await api.client.post("/api/auth/logout", headers=headers)
    assert out.status_code == 204
    assert await out.get_data() == b""
    after = await api.client.get("/api/auth/me", headers=headers)
    body = await assert_problem(after, 401)
    assert "revoked" in body["detail"]
    assert after.headers["WWW-Authenticate"] == "Bearer"
    # The same user's other tokens are unaffected.
    assert (await api.client.get("/api/auth/me", headers=api.auth("operator"))).status_code == 200


@pytest.mark.parametrize(
    ("username", "password"),
    [("admin", "wrong-password"), ("nobody", "whatever-pass"), ("Admin", ADMIN_PASSWORD)],
)
async def test_bad_credentials_are_401(api: Api, username: str, password: str) -> None:
    r = await api.client.post("/api/auth/login", json={"username": username, "password": password})
    body = await assert_problem(r, 401, "invalid_credentials")
    # The same answer whether or not the user exists.
    assert body["detail"] == "invalid username or password"
    assert "token" not in body


@ONE_ENGINE
async def test_login_body_is_validated(api: Api) -> None:
    r = await api.client.post("/api/auth/login", json={"username": "admin"})
    body = await assert_problem(r, 400, "validation_error")
    assert body["errors"][0]["field"] == "password"
    assert body["errors"][0]["rule"] == "required"


async def test_stored_hashes_are_argon2id(api: Api) -> None:
    for role in ("admin", "operator", "viewer"):
        user = await users_store.by_username(api.hub.db, role)
        assert user is not None
        assert user.password_hash.startswith("$argon2id$")
        assert PASSWORDS[role] not in user.password_hash


@ONE_ENGINE
async def test_forged_and_broken_tokens_are_rejected(api: Api) -> None:
    secret = api.hub.auth.secret
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    good = jwt.encode(_claims(api), secret, algorithm="HS256")
    # The forging helpers make tokens the hub accepts when nothing is wrong with them.
    assert (await _me(api, good)).status_code == 200
    assert (
        await _me(api, _hand_signed({"alg": "HS256", "typ": "JWT"}, _claims(api), secret))
    ).status_code == 200

    head, body, sig = good.split(".")
    flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    cases: dict[str, str] = {
        "expired": jwt.encode(
            _claims(api, iat=now - 7200, nbf=now - 7200, exp=now - 3600), secret, "HS256"
        ),
        "not yet valid": jwt.encode(_claims(api, nbf=now + 3600), secret, "HS256"),
        "tampered signature": f"{head}.{body}.{flipped}",
        "tampered payload": ".".join(
            [head, _b64(json.dumps(_claims(api, "viewer", role="admin")).encode()), sig]
        ),
        "other secret": jwt.encode(_claims(api), "x" * 48, "HS256"),
        "wrong audience": jwt.encode(_claims(api, aud="someone-else"), secret, "HS256"),
        "wrong issuer": jwt.encode(_claims(api, iss="someone-else"), secret, "HS256"),
        "unknown role": jwt.encode(_claims(api, role="root"), secret, "HS256"),
        "alg none": _hand_signed({"alg": "none", "typ": "JWT"}, _claims(api), None),
        "alg None": _hand_signed({"alg": "None", "typ": "JWT"}, _claims(api), None),
        "HS512 with the real secret": jwt.encode(_claims(api), secret, "HS512"),
        "RS256 header, HMAC signature with the secret": _hand_signed(
            {"alg": "RS256", "typ": "JWT"}, _claims(api), secret
        ),
        "real RS256 token": jwt.encode(_claims(api), rsa_key, "RS256"),
        "garbage": "not.a.jwt",
        "empty segments": "..",
    }
    for claim in REQUIRED_CLAIMS:
        partial = {k: v for k, v in _claims(api).items() if k != claim}
        cases[f"missing {claim}"] = jwt.encode(partial, secret, "HS256")

    accepted = []
    for name, token in cases.items():
        r = await _me(api, token)
        if r.status_code != 401:
            accepted.append((name, r.status_code))
            continue
        await assert_problem(r, 401, "unauthorized")
        assert r.headers.get("WWW-Authenticate") == "Bearer"
    assert accepted == [], accepted


@ONE_ENGINE
@pytest.mark.parametrize(
    "header", ["Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer    ", "Token abc", "bearer x.y.z"]
)
async def test_malformed_authorization_header_is_401(api: Api, header: str) -> None:
    r = await api.client.get("/api/printers", headers={"Authorization": header})
    await assert_problem(r, 401, "unauthorized")


async def test_deleted_or_demoted_users_tokens_lose_their_rights(api: Api) -> None:
    operator = api.auth("operator")
    assert (await api.client.get("/api/auth/me", headers=operator)).status_code == 200
    # Demote the operator: the old token is revoked at once (docs/security.md).
    r = await api.client.put(
        f"/api/users/{api.users['operator'].id}", headers=api.auth("admin"), json={"role": "viewer"}
    )
    assert r.status_code == 200
    create = await api.client.post(
        "/api/printers/no-such-printer/command", headers=operator, json={"command": "pause"}
    )
    await assert_problem(create, 401, "unauthorized")
    # Delete the user: the token no longer authenticates anywhere.
    r = await api.client.delete(f"/api/users/{api.users['operator'].id}", headers=api.auth("admin"))
    assert r.status_code == 204
    await assert_problem(await api.client.get("/api/printers", headers=operator), 401)


async def test_repeated_failures_for_one_user_are_throttled(api: Api) -> None:
    max_failures = api.hub.settings.auth.login_max_failures
    for i in range(max_failures):
        # Each attempt from another address: only the per-user counter can trip.
        r = await api.client.post(
            "/api/auth/login",
            json={"username": "viewer", "password": "wrong-password"},
            scope_base={"client": (f"10.0.0.{i + 1}", 40000)},
        )
        await assert_problem(r, 401, "invalid_credentials")
    r = await api.client.post(
        "/api/auth/login",
        json={"username": "viewer", "password": PASSWORDS["viewer"]},
        scope_base={"client": ("10.0.1.1", 40000)},
    )
    await assert_problem(r, 429, "login_throttled")
    retry = r.headers["Retry-After"]
    assert retry.isdigit() and int(retry) >= 1
    # Another user is not affected.
    other = await api.client.post(
        "/api/auth/login",
        json={"username": "operator", "password": PASSWORDS["operator"]},
        scope_base={"client": ("10.0.1.1", 40000)},
    )
    assert other.status_code == 200


async def test_repeated_failures_from_one_address_are_throttled(api: Api) -> None:
    # An address has a budget of its own, larger than one account's (docs/security.md).
    max_failures = api.hub.auth.address_throttle.max_failures
    attacker = {"client": ("192.0.2.7", 50000)}
    for i in range(max_failures):
        # A different (unknown) user each time: only the per-address counter can trip.
        r = await api.client.post(
            "/api/auth/login",
            json={"username": f"guess{i}", "password": "wrong-password"},
            scope_base=attacker,
        )
        await assert_problem(r, 401, "invalid_credentials")
    r = await api.client.post(
        "/api/auth/login",
        json={"username": "viewer", "password": PASSWORDS["viewer"]},
        scope_base=attacker,
    )
    await assert_problem(r, 429, "login_throttled")
    assert r.headers["Retry-After"].isdigit()
    # The same user from another address still logs in.
    ok = await api.client.post(
        "/api/auth/login",
        json={"username": "viewer", "password": PASSWORDS["viewer"]},
        scope_base={"client": ("192.0.2.8", 50000)},
    )
    assert ok.status_code == 200


async def test_secret_and_revocations_survive_a_restart(db_url: str, tmp_path: Path) -> None:
    """Real argon2 cost here: this is the production path end to end."""
    await reset_database(db_url)
    settings = make_settings(db_url, tmp_path)
    login = {"username": "admin", "password": ADMIN_PASSWORD}

    async with running_app(settings) as (hub1, app1):
        client = app1.test_client()
        secret = hub1.auth.secret
        assert await kv.get(hub1.db, "jwt_secret") == secret
        raw = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
        assert len(raw) >= 32
        admin = await users_store.by_username(hub1.db, "admin")
        assert admin is not None
        assert admin.password_hash.startswith("$argon2id$")
        kept = (await (await client.post("/api/auth/login", json=login)).get_json())["token"]
        revoked = (await (await client.post("/api/auth/login", json=login)).get_json())["token"]
        r = await client.post("/api/auth/logout", headers={"Authorization": f"Bearer {revoked}"})
        assert r.status_code == 204

    async with running_app(settings) as (hub2, app2):
        client = app2.test_client()
        assert hub2.auth.secret == secret
        assert hub2.generated_admin_password is None  # the admin was not recreated
        ok = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {kept}"})
        assert ok.status_code == 200
        gone = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {revoked}"})
        body = await assert_problem(gone, 401)
        assert "revoked" in body["detail"]
