"""Migrations apply once, in order, on both engines."""

from __future__ import annotations

from databases import Database

from hub.store import db as store
from hub.store import kv


async def test_migrations_are_recorded_and_idempotent(db: Database) -> None:
    versions = await store.applied_versions(db)
    assert versions == {m.version for m in store.migrations()}
    assert await store.migrate(db) == []


async def test_kv_get_or_create_keeps_first_value(db: Database) -> None:
    assert await kv.get(db, "jwt_secret") is None
    first = await kv.get_or_create(db, "jwt_secret", "a" * 40)
    second = await kv.get_or_create(db, "jwt_secret", "b" * 40)
    assert first == second == "a" * 40
