"""AuthService: secret, hashing, tokens, revocation, login and its throttle, first admin."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import argon2
import jwt
import pytest
from argon2 import PasswordHasher
from databases import Database

import hub.auth
from config.loader import AuthSettings
from hub.auth import AuthError, AuthService, LoginThrottle, LoginThrottled
from hub.store import kv
from hub.store import users as users_store


async def _service(db: Database, **settings: Any) -> AuthService:
    service = AuthService(db, AuthSettings(**settings))
    await service.start()
    return service


def _decoded_len(secret: str) -> int:
    return len(base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4)))


def test_production_hashes_are_argon2id_with_sound_parameters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The production hasher, which the suite's fast_hashing fixture replaces (tests/conftest.py).
    monkeypatch.setattr(hub.auth, "PasswordHasher", PasswordHasher)
    service = AuthService(None, AuthSettings())  # type: ignore[arg-type]  # hashing needs no db
    hashed = service.hash_password("correct horse battery")
    assert hashed.startswith("$argon2id$")
    params = argon2.extract_parameters(hashed)
    assert params.type is argon2.Type.ID
    # At least OWASP's minimum (19 MiB, 2 passes); the default is RFC 9106's 64 MiB, 3 passes.
    assert params.memory_cost >= 19 * 1024 and params.time_cost >= 2
    assert service.hasher.verify(hashed, "correct horse battery")
    assert service.hash_password("correct horse battery") != hashed  # salted


async def test_secret_is_generated_once_and_persisted(db: Database) -> None:
    first = await _service(db)
    assert _decoded_len(first.secret) >= 32
    assert await kv.get(db, "jwt_secret") == first.secret
    again = await _service(db)
    assert again.secret == first.secret
    # A token from before the "restart" is still valid.
    user = await users_store.create(db, "kim", first.hash_password("kim-password"), "viewer")
    assert again.verify(first.issue(user)).user_id == user.id


async def test_configured_secret_wins(db: Database) -> None:
    service = await _service(db, jwt_secret="c" * 40)
    assert service.secret == "c" * 40
    assert await kv.get(db, "jwt_secret") is None


async def test_issue_and_verify(db: Database) -> None:
    service = await _service(db, token_ttl_hours=2)
    user = await users_store.create(db, "op", service.hash_password("op-password"), "operator")
    now = time.time()
    token = service.issue(user, now=now)
    principal = service.verify(token)
    assert principal.user_id == user.id and principal.username == "op"
    assert principal.role == "operator"
    assert principal.expires_at == int(now) + 2 * 3600
    assert principal.allows("viewer") and principal.allows("operator")
    assert not principal.allows("admin")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == "printforge" and claims["aud"] == "printforge-api"
    assert service.verify(service.issue(user)).jti != principal.jti

    # Expired (beyond the small clock-skew leeway) or from another hub: refused.
    with pytest.raises(AuthError, match="expired"):
        service.verify(service.issue(user, now=now - 2 * 3600 - 60))
    other = await _service(db, jwt_secret="o" * 40)
    with pytest.raises(AuthError, match="invalid token"):
        service.verify(other.issue(user))
    with pytest.raises(AuthError):
        service.verify(jwt.encode({"sub": user.id}, service.secret, algorithm="HS256"))


async def test_revocation_persists_and_expired_ones_are_purged(db: Database) -> None:
    service = await _service(db)
    user = await users_store.create(db, "rev", service.hash_password("rev-password"), "viewer")
    token = service.issue(user)
    principal = service.verify(token)
    await service.revoke(principal)
    await service.revoke(principal)  # twice is harmless
    assert service.is_revoked(principal.jti)
    with pytest.raises(AuthError, match="revoked"):
        service.verify(token)
    await users_store.revoke_token(db, "old-jti", time.time() - 10)

    restarted = await _service(db)
    assert restarted.is_revoked(principal.jti)
    with pytest.raises(AuthError, match="revoked"):
        restarted.verify(token)
    assert "old-jti" not in restarted.revoked
    assert await users_store.revoked_tokens(db, time.time()) == {
        principal.jti: principal.expires_at
    }


async def test_authenticate_follows_the_stored_user(db: Database) -> None:
    service = await _service(db)
    user = await users_store.create(db, "ada", service.hash_password("ada-password"), "admin")
    token = service.issue(user)
    assert (await service.authenticate(token)).role == "admin"
    # A role change ends the sessions issued before it (docs/security.md).
    await users_store.update(db, user.id, role="viewer")
    with pytest.raises(AuthError, match="revoked"):
        await service.authenticate(token)
    fresh = service.issue((await users_store.by_id(db, user.id)) or user)
    demoted = await service.authenticate(fresh)
    assert demoted.role == "viewer" and not demoted.allows("operator")
    await users_store.delete(db, user.id)
    with pytest.raises(AuthError, match="no longer exists"):
        await service.authenticate(fresh)


async def test_login(db: Database) -> None:
    service = await _service(db, login_max_failures=2)
    user = await users_store.create(db, "lee", service.hash_password("lee-password"), "operator")
    token, found = await service.login("lee", "lee-password", "10.0.0.1")
    assert found.id == user.id
    assert service.verify(token).user_id == user.id
    for name, password in (("lee", "wrong"), ("ghost", "lee-password")):
        with pytest.raises(AuthError, match="invalid username or password"):
            await service.login(name, password, f"10.0.0.{len(name)}")
    # A second failure for "lee" reaches the limit: even the right password now waits.
    with pytest.raises(AuthError):
        await service.login("LEE", "wrong", "10.0.0.9")
    with pytest.raises(LoginThrottled) as caught:
        await service.login("lee", "lee-password", "10.0.0.10")
    assert isinstance(caught.value.retry_after, int) and caught.value.retry_after >= 1


async def test_login_upgrades_outdated_hashes(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    user = await users_store.create(db, "old", weak.hash("old-password"), "viewer")
    monkeypatch.setattr(
        hub.auth,
        "PasswordHasher",
        lambda: PasswordHasher(time_cost=2, memory_cost=16, parallelism=1),
    )
    service = await _service(db)
    await service.login("old", "old-password", "10.0.0.1")
    stored = await users_store.by_id(db, user.id)
    assert stored is not None and stored.password_hash != user.password_hash
    params = argon2.extract_parameters(stored.password_hash)
    assert (params.time_cost, params.memory_cost) == (2, 16)
    await service.login("old", "old-password", "10.0.0.1")  # the new hash verifies


async def test_ensure_admin(db: Database) -> None:
    service = await _service(db)
    generated = await service.ensure_admin(None)
    assert generated is not None and len(generated) >= 12
    admin = await users_store.by_username(db, "admin")
    assert admin is not None and admin.role == "admin"
    assert admin.password_hash.startswith("$argon2id$")
    await service.login("admin", generated, "10.0.0.1")
    assert await service.ensure_admin("ignored-now-1") is None
    assert await users_store.count_admins(db) == 1


async def test_ensure_admin_promotes_an_existing_account(db: Database) -> None:
    service = await _service(db)
    await users_store.create(db, "admin", service.hash_password("viewer-pass"), "viewer")
    assert await service.ensure_admin("chosen-password") is None
    admin = await users_store.by_username(db, "admin")
    assert admin is not None and admin.role == "admin"
    await service.login("admin", "chosen-password", "10.0.0.1")


def test_throttle_counts_failures_and_grows_the_wait() -> None:
    throttle = LoginThrottle(max_failures=3, window_s=60)
    for t in (0.0, 1.0):
        throttle.failed("k", t)
        assert throttle.retry_after("k", t) == 0
    throttle.failed("k", 2.0)
    assert throttle.retry_after("k", 2.0) == 2  # limit reached: 2 s after the last failure
    assert throttle.retry_after("k", 3.5) == 1
    assert throttle.retry_after("k", 4.0) == 0
    throttle.failed("k", 4.0)
    assert throttle.retry_after("k", 4.0) == 4  # one more failure doubles the wait
    throttle.failed("k", 8.0)
    assert throttle.retry_after("k", 8.0) == 8
    assert throttle.retry_after("other", 8.0) == 0
    # Failures leave the window after window_s seconds.
    assert throttle.retry_after("k", 62.5) == 0
    throttle.succeeded("k")
    assert throttle.retry_after("k", 9.0) == 0


def test_throttle_wait_is_capped_at_the_window() -> None:
    throttle = LoginThrottle(max_failures=1, window_s=30)
    for i in range(40):
        throttle.failed("k", float(i) * 0.01)
    assert 0 < throttle.retry_after("k", 0.4) <= 30


async def test_concurrent_cache_misses_share_one_lookup(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = await _service(db)
    user = await users_store.create(db, "kim", service.hash_password("kim-password"), "viewer")
    token = service.issue(user)
    calls: list[str] = []
    real_by_id = users_store.by_id

    async def counted(database: Database, user_id: str) -> users_store.User | None:
        calls.append(user_id)
        found = await real_by_id(database, user_id)
        await asyncio.sleep(0.05)  # long enough for every request below to arrive meanwhile
        return found

    monkeypatch.setattr(users_store, "by_id", counted)
    principals = await asyncio.gather(*(service.authenticate(token) for _ in range(20)))
    assert calls == [user.id]
    assert {p.role for p in principals} == {"viewer"}
    # Cached now: no lookup at all.
    await service.authenticate(token)
    assert calls == [user.id]

    # After a change to any account, requests do not join a lookup that started before it
    # (that one read the account before the change).
    service._users.clear()
    first = asyncio.ensure_future(service.authenticate(token))
    await asyncio.sleep(0.01)  # its lookup has read the account and is still in flight
    assert user.id in service._lookups
    monkeypatch.setattr(users_store, "by_id", real_by_id)  # update() reads the account too
    await users_store.update(db, user.id, role="operator", keep_sessions=True)
    monkeypatch.setattr(users_store, "by_id", counted)
    second = await service.authenticate(token)
    assert second.role == "operator"
    assert (await first).role == "viewer"
    assert service._lookups == {}


async def test_a_failed_shared_lookup_fails_its_callers_and_is_retried(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = await _service(db)
    user = await users_store.create(db, "kim", service.hash_password("kim-password"), "viewer")
    token = service.issue(user)
    real_by_id = users_store.by_id

    async def broken(database: Database, user_id: str) -> users_store.User | None:
        await asyncio.sleep(0.01)
        raise ConnectionError("database went away")

    monkeypatch.setattr(users_store, "by_id", broken)
    results = await asyncio.gather(
        *(service.authenticate(token) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, ConnectionError) for r in results)
    assert service._lookups == {}
    monkeypatch.setattr(users_store, "by_id", real_by_id)
    assert (await service.authenticate(token)).user_id == user.id
