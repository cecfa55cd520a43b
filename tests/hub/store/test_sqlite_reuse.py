"""SQLite statements reuse kept connections; one left inside a transaction is never reused."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from hub.store import db as store


async def test_statements_reuse_a_few_connections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = await store.connect(f"sqlite:///{tmp_path / 'reuse.db'}")
    opened: list[str] = []
    real_connect = sqlite3.connect

    def counting_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        opened.append(str(args[0] if args else kwargs.get("database")))
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", counting_connect)
    try:
        for _ in range(40):
            assert await db.fetch_val("SELECT 1") == 1
        values = await asyncio.gather(*(db.fetch_val("SELECT 2") for _ in range(20)))
        assert values == [2] * 20
        # One statement, one connection (and a thread) each before: 60 here.
        assert len(opened) <= 20, opened
        for _ in range(40):
            assert await db.fetch_val("SELECT 3") == 3
        assert len(opened) <= 20, "the burst's connections are kept for later statements"
    finally:
        await db.disconnect()


async def test_a_connection_left_in_a_transaction_is_not_reused(tmp_path: Path) -> None:
    db = await store.connect(f"sqlite:///{tmp_path / 'reuse.db'}")
    try:
        await db.execute("CREATE TABLE t (x INTEGER)")
        async with db.connection() as connection:
            # A task cut short between BEGIN and COMMIT gives its connection back mid-transaction.
            await connection.execute("BEGIN")
            await connection.execute("INSERT INTO t (x) VALUES (1)")
        # Reused, that connection would show the uncommitted row and keep the write lock.
        assert await db.fetch_val("SELECT COUNT(*) FROM t") == 0
        await db.execute("INSERT INTO t (x) VALUES (2)")
        assert await db.fetch_val("SELECT COUNT(*) FROM t") == 1
    finally:
        await db.disconnect()
