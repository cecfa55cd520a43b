"""Fixtures shared by the whole suite: databases on both engines."""

from __future__ import annotations

import asyncio
import atexit
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from argon2 import PasswordHasher
from databases import Database

import hub.auth
from hub.store import db as store
from tests.services import ensure_postgres


def cheap_password_hasher() -> PasswordHasher:
    """Still argon2id, with the smallest cost parameters: tests hash many passwords."""
    return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture(autouse=True)
def fast_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every hub started in the test process hashes with cheap argon2id parameters: each start
    on an empty database hashes the admin password and each login verifies one, 0.2-0.4 s a
    hash at production cost on a loaded machine. Hubs run as `printforge serve` processes keep
    the production cost; tests/hub/test_auth.py checks its parameters."""
    monkeypatch.setattr(hub.auth, "PasswordHasher", cheap_password_hasher)


async def _admin(sql: str, server: str) -> None:
    conn = await asyncpg.connect(server.replace("postgresql+asyncpg", "postgresql") + "/postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    server = ensure_postgres()
    name = f"pf_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"', server))
    try:
        yield f"{server}/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', server))


async def _clear(db: Database) -> None:
    """Empty every table but the migration history, so each test starts clean.

    On PostgreSQL a DELETE per table, with foreign-key triggers off for the transaction: a
    TRUNCATE of all 21 tables swaps every table's files and took 0.8 s even when they were
    empty, against 0.03 s for these deletes (docs/testing.md). Sequences are left as they are,
    as TRUNCATE without RESTART IDENTITY left them."""
    if store.is_postgres(db):
        rows = await db.fetch_all(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " AND tablename <> 'schema_migrations'"
        )
        names = [f'"{row["tablename"]}"' for row in rows]
        try:
            async with db.transaction():
                await db.execute("SET LOCAL session_replication_role = replica")
                for name in names:
                    await db.execute(f"DELETE FROM {name}")
        except asyncpg.InsufficientPrivilegeError:
            # Only a superuser may turn the triggers off (PGUSER names another role).
            await db.execute(f"TRUNCATE {', '.join(names)} CASCADE")


_template: Path | None = None


async def _sqlite_template() -> Path:
    """A SQLite file migrated once per process; tests start from copies of it."""
    global _template
    if _template is None:
        folder = Path(tempfile.mkdtemp(prefix="pf_template_"))
        atexit.register(shutil.rmtree, folder, True)
        path = folder / "migrated.db"
        database = await store.connect(f"sqlite+aiosqlite:///{path}")
        try:
            await store.migrate(database)
        finally:
            await database.disconnect()
        # The last connection's close checkpoints the WAL into the file and removes it.
        assert not path.with_name(path.name + "-wal").exists(), "template WAL left behind"
        _template = path
    return _template


def _seed(path: Path, template: Path) -> None:
    """Copy the migrated template to `path` unless a database is already there."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, path)


async def _connect(url: str, attempts: int = 5) -> Database:
    """store.connect, tried again when PostgreSQL does not answer within its 1 s connect
    timeout: on a loaded machine a fixture's connect can take longer, and the test never
    started is no finding about the hub."""
    for attempt in range(1, attempts + 1):
        try:
            return await store.connect(url)
        except (TimeoutError, OSError):
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


async def prepare_database(url: str) -> Database:
    """Connect to `url` migrated and with every table empty.

    A SQLite file that does not exist yet starts as a copy of a file migrated once per process
    (0.02 s against 0.27 s for running every migration again); `migrate` then finds nothing
    to apply. The migrations themselves still run on both engines at each session's start."""
    if url.startswith("sqlite") and ":///" in url and not url.endswith(":memory:"):
        _seed(Path(url.split(":///", 1)[1]), await _sqlite_template())
    database = await _connect(url)
    try:
        await store.migrate(database)
        await _clear(database)
    except BaseException:
        await database.disconnect()
        raise
    return database


# For a test whose outcome cannot depend on the engine (request parsing and validation,
# routing, roles, the OpenAPI document, in-memory counters and limits): SQLite only. Whatever
# reads or writes rows on purpose keeps both engines.
ONE_ENGINE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL on each engine: a new SQLite file, or the session's PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    """A connected, migrated, empty database on each engine."""
    database = await prepare_database(db_url)
    try:
        yield database
    finally:
        await database.disconnect()
