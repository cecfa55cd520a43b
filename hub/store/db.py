"""Database connection and numbered migrations, one history for SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import re
import time
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from databases import Database

from hub.store import resilient
from hub.store.sqlite_pool import SQLiteDatabase

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 1.0
# NNNN_name.sql for both engines; NNNN_name.sqlite.sql and NNNN_name.postgresql.sql when a
# version needs each engine's own DDL (both files, same number and name).
MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)(?:\.(sqlite|postgresql))?\.sql$")
ENGINES = ("sqlite", "postgresql")


@dataclass(frozen=True)
class Migration:
    """One numbered SQL migration file."""

    version: int
    name: str
    sql: str

    def statements(self) -> list[str]:
        """The file's statements, split on ';' at line ends (no procedural SQL here)."""
        lines = [ln for ln in self.sql.splitlines() if not ln.strip().startswith("--")]
        return [s.strip() for s in "\n".join(lines).split(";\n") if s.strip().rstrip(";")]


def migrations(engine: str = "sqlite") -> list[Migration]:
    """All migrations shipped with the package for an engine, in order."""
    if engine not in ENGINES:
        raise ValueError(f"unknown database engine {engine!r}")
    found: dict[int, Migration] = {}
    for entry in (Path(__file__).parent / "migrations").iterdir():
        match = MIGRATION_NAME.match(entry.name)
        if match and match.group(3) in (None, engine):
            version = int(match.group(1))
            if version in found:
                raise ValueError(f"two migrations numbered {version:04d}")
            found[version] = Migration(version, match.group(2), entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def engine_of(db: Database) -> str:
    """'postgresql' or 'sqlite': which form of an engine-specific migration applies."""
    return "postgresql" if is_postgres(db) else "sqlite"


def is_postgres(db: Database) -> bool:
    """True when the database is PostgreSQL."""
    return db.url.dialect.startswith("postgres")


def normalize_url(url: str) -> str:
    """Accept plain sqlite:// and postgresql:// URLs as well as the driver-qualified ones."""
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url[len("postgresql://") :]
    return url


async def connect(url: str) -> Database:
    """Open the database (creating the SQLite file's folder) and return it connected."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("postgresql"):
        # A server that does not answer fails a connect within a second (asyncpg waits a
        # minute by default), so requests during an outage get their 503 at once.
        db: Database = resilient.Database(url, timeout=CONNECT_TIMEOUT_S)
    else:
        db = SQLiteDatabase(url)
    await db.connect()
    if isinstance(db, SQLiteDatabase):
        # WAL lets readers run while the single writer commits; a busy timeout rides out bursts.
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA busy_timeout=5000")
        await db.execute("PRAGMA foreign_keys=ON")
        # Only now: the connections above are gone, and every kept one starts as a new one would.
        db.reuse_connections()
    return db


async def applied_versions(db: Database) -> set[int]:
    """Versions already applied (creating the bookkeeping table on first use)."""
    await db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL,"
        " applied_at DOUBLE PRECISION NOT NULL)"
    )
    rows = await db.fetch_all("SELECT version FROM schema_migrations")
    return {int(row["version"]) for row in rows}


async def migrate(db: Database) -> list[int]:
    """Apply every pending migration, each in its own transaction; return what was applied."""
    done = await applied_versions(db)
    applied: list[int] = []
    for migration in migrations(engine_of(db)):
        if migration.version in done:
            continue
        async with db.transaction():
            for statement in migration.statements():
                await db.execute(statement)
            await db.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) "
                "VALUES (:version, :name, :at)",
                {"version": migration.version, "name": migration.name, "at": time.time()},
            )
        log.info("applied migration %04d_%s", migration.version, migration.name)
        applied.append(migration.version)
    return applied


def held_connection(db: Database) -> AbstractAsyncContextManager[Any]:
    """Keep one connection for a task's statements. With SQLite, a statement otherwise takes a
    connection from the kept ones (hub/store/sqlite_pool.py) and gives it back; PostgreSQL's pool
    makes that cheap, and a held pool connection would only be one fewer for everyone else."""
    return nullcontext() if is_postgres(db) else db.connection()
