"""PostgreSQL pool connections go back without asyncpg's reset query (a round trip per
release), except those that took a session advisory lock, which still lose it."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from hub.store import db as store
from hub.store import outbox as outbox_store


async def test_only_a_connection_with_session_state_is_reset(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    resets: list[str] = []
    full = asyncpg.connection.Connection.get_reset_query

    def counted(self: Any) -> str:
        resets.append("reset")
        return str(full(self))

    monkeypatch.setattr(asyncpg.connection.Connection, "get_reset_query", counted)
    db = await store.connect(pg_url)
    try:
        for _ in range(5):  # each takes a pooled connection and gives it back
            assert await db.fetch_val("SELECT 1") == 1
        async with db.transaction():
            await db.fetch_val("SELECT 1")
        assert resets == []
        async with db.connection():
            assert await outbox_store.lock_target(db, "webhook", "t1")
            # Given back with the lock held (as after an error before the unlock).
        assert resets == ["reset"]
        other = await asyncpg.connect(pg_url.replace("postgresql+asyncpg", "postgresql"))
        try:
            key = "outbox:webhook:t1"
            assert await other.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", key)
        finally:
            await other.close()
        assert await db.fetch_val("SELECT 1") == 1
        assert resets == ["reset"]  # the mark went with that release
    finally:
        await db.disconnect()
