"""User repository functions on both engines."""

from __future__ import annotations

import time

import pytest
from databases import Database

from hub.model import parse_rfc3339, rfc3339
from hub.store import users as users_store


async def test_create_and_find(db: Database) -> None:
    before = time.time()
    user = await users_store.create(db, "ana", "$argon2id$hash", "operator")
    assert user.username == "ana" and user.role == "operator"
    assert user.created_at == user.updated_at >= before
    assert await users_store.by_username(db, "ana") == user
    assert await users_store.by_id(db, user.id) == user
    assert await users_store.by_username(db, "ANA") is None
    assert await users_store.by_id(db, "missing") is None
    assert user.public() == {
        "id": user.id,
        "username": "ana",
        "role": "operator",
        "disabled": False,
        "created_at": rfc3339(user.created_at),
        "updated_at": rfc3339(user.updated_at),
    }
    assert parse_rfc3339(user.public()["created_at"]) == pytest.approx(user.created_at, abs=0.001)


async def test_duplicate_username_is_refused(db: Database) -> None:
    await users_store.create(db, "dup", "h1", "viewer")
    with pytest.raises(Exception):  # noqa: B017  (each driver raises its own integrity error)
        await users_store.create(db, "dup", "h2", "admin")
    assert await users_store.count_admins(db) == 0


async def test_list_pages_in_name_order(db: Database) -> None:
    for name in ("carl", "anna", "bob", "dora"):
        await users_store.create(db, name, "h", "viewer")
    page, total = await users_store.list_all(db, limit=2, offset=0)
    assert total == 4 and [u.username for u in page] == ["anna", "bob"]
    page, total = await users_store.list_all(db, limit=2, offset=2)
    assert [u.username for u in page] == ["carl", "dora"]
    page, total = await users_store.list_all(db, limit=2, offset=4)
    assert page == [] and total == 4


async def test_update_and_delete(db: Database) -> None:
    user = await users_store.create(db, "eve", "old-hash", "viewer")
    changed = await users_store.update(db, user.id, role="admin")
    assert changed is not None
    assert changed.role == "admin" and changed.password_hash == "old-hash"
    assert changed.updated_at >= user.updated_at and changed.created_at == user.created_at
    changed = await users_store.update(db, user.id, password_hash="new-hash")
    assert changed is not None and changed.role == "admin" and changed.password_hash == "new-hash"
    assert await users_store.update(db, "missing", role="admin") is None
    assert await users_store.count_admins(db) == 1
    assert await users_store.delete(db, user.id) is True
    assert await users_store.delete(db, user.id) is False
    assert await users_store.by_id(db, user.id) is None
    assert await users_store.count_admins(db) == 0


async def test_revoked_tokens(db: Database) -> None:
    now = time.time()
    await users_store.revoke_token(db, "live", now + 100)
    await users_store.revoke_token(db, "live", now + 100)
    await users_store.revoke_token(db, "dead", now - 1)
    assert await users_store.revoked_tokens(db, now) == {"live": now + 100}
    assert await db.fetch_val("SELECT COUNT(*) FROM revoked_tokens") == 1
