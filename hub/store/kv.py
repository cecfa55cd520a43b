"""Small key/value settings the hub persists for itself (e.g. the generated JWT secret)."""

from __future__ import annotations

from databases import Database


async def get(db: Database, key: str) -> str | None:
    """Read one value, None when absent."""
    row = await db.fetch_one("SELECT value FROM hub_settings WHERE key = :key", {"key": key})
    return None if row is None else str(row["value"])


async def get_or_create(db: Database, key: str, value: str) -> str:
    """Return the stored value, storing `value` first if none exists (one statement decides
    between racing processes: the first insert wins, the others read its value)."""
    inserted = await db.fetch_one(
        "INSERT INTO hub_settings (key, value) VALUES (:key, :value)"
        " ON CONFLICT (key) DO NOTHING RETURNING value",
        {"key": key, "value": value},
    )
    if inserted is not None:
        return str(inserted["value"])
    stored = await get(db, key)
    if stored is None:  # only if someone deleted it between the two statements
        raise RuntimeError(f"hub setting {key!r} vanished while being created")
    return stored
