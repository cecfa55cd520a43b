"""Small key/value settings the hub persists for itself (e.g. the generated JWT secret)."""

from __future__ import annotations

from databases import Database


async def get(db: Database, key: str) -> str | None:
    """Read one value, None when absent."""
    row = await db.fetch_one("SELECT value FROM hub_settings WHERE key = :key", {"key": key})
    return None if row is None else str(row["value"])


async def get_or_create(db: Database, key: str, value: str) -> str:
    """Return the stored value, storing `value` first if none exists (safe under races)."""
    current = await get(db, key)
    if current is not None:
        return current
    try:
        await db.execute(
            "INSERT INTO hub_settings (key, value) VALUES (:key, :value)",
            {"key": key, "value": value},
        )
    except Exception:  # another process stored it first: its value wins
        pass
    stored = await get(db, key)
    assert stored is not None
    return stored
