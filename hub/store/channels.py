"""Notification channels: an apprise URL (a secret), event filter, minimum severity, quiet hours."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from databases import Database


@dataclass(frozen=True)
class Channel:
    """One stored channel; `url` holds secrets and never leaves the hub."""

    id: str
    name: str
    url: str
    events: list[str]
    min_severity: str
    quiet_hours: dict[str, str] | None
    enabled: bool
    disabled_reason: str | None
    failure_streak: int
    created_at: float
    updated_at: float


def _channel(row: Any) -> Channel:
    quiet = row["quiet_hours"]
    return Channel(
        id=row["id"],
        name=row["name"],
        url=row["url"],
        events=json.loads(row["events"]),
        min_severity=row["min_severity"],
        quiet_hours=json.loads(quiet) if quiet else None,
        enabled=bool(row["enabled"]),
        disabled_reason=row["disabled_reason"],
        failure_streak=int(row["failure_streak"]),
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
    )


def _values(channel: Channel) -> dict[str, Any]:
    return {
        "id": channel.id,
        "name": channel.name,
        "url": channel.url,
        "events": json.dumps(channel.events),
        "min_severity": channel.min_severity,
        "quiet": json.dumps(channel.quiet_hours) if channel.quiet_hours else None,
        "enabled": 1 if channel.enabled else 0,
        "reason": channel.disabled_reason,
        "streak": channel.failure_streak,
        "created": channel.created_at,
        "updated": channel.updated_at,
    }


async def create(db: Database, data: dict[str, Any]) -> Channel:
    """Store a new channel."""
    now = time.time()
    channel = Channel(
        id=str(uuid.uuid4()),
        name=data["name"],
        url=data["url"],
        events=list(data.get("events", ["*"])),
        min_severity=data.get("min_severity", "info"),
        quiet_hours=data.get("quiet_hours"),
        enabled=bool(data.get("enabled", True)),
        disabled_reason=None,
        failure_streak=0,
        created_at=now,
        updated_at=now,
    )
    await db.execute(
        "INSERT INTO notify_channels (id, name, url, events, min_severity, quiet_hours, enabled,"
        " disabled_reason, failure_streak, created_at, updated_at) VALUES (:id, :name, :url,"
        " :events, :min_severity, :quiet, :enabled, :reason, :streak, :created, :updated)",
        _values(channel),
    )
    return channel


async def get(db: Database, channel_id: str) -> Channel | None:
    """One channel, or None."""
    row = await db.fetch_one("SELECT * FROM notify_channels WHERE id = :id", {"id": channel_id})
    return None if row is None else _channel(row)


async def list_all(db: Database) -> list[Channel]:
    """Every channel, oldest first."""
    rows = await db.fetch_all("SELECT * FROM notify_channels ORDER BY created_at, id")
    return [_channel(r) for r in rows]


async def enabled(db: Database) -> list[Channel]:
    """Every enabled channel."""
    rows = await db.fetch_all(
        "SELECT * FROM notify_channels WHERE enabled = 1 ORDER BY created_at, id"
    )
    return [_channel(r) for r in rows]


async def update(db: Database, channel_id: str, data: dict[str, Any]) -> Channel | None:
    """Change fields (an omitted `url` keeps the stored one); enabling clears the failure record."""
    current = await get(db, channel_id)
    if current is None:
        return None
    enabling = data.get("enabled") is True and not current.enabled
    changed = Channel(
        id=current.id,
        name=data.get("name", current.name),
        url=data.get("url", current.url),
        events=list(data.get("events", current.events)),
        min_severity=data.get("min_severity", current.min_severity),
        quiet_hours=data["quiet_hours"] if "quiet_hours" in data else current.quiet_hours,
        enabled=bool(data.get("enabled", current.enabled)),
        disabled_reason=None if enabling else current.disabled_reason,
        failure_streak=0 if enabling else current.failure_streak,
        created_at=current.created_at,
        updated_at=time.time(),
    )
    await db.execute(
        "UPDATE notify_channels SET name = :name, url = :url, events = :events,"
        " min_severity = :min_severity, quiet_hours = :quiet, enabled = :enabled,"
        " disabled_reason = :reason, failure_streak = :streak, created_at = :created,"
        " updated_at = :updated WHERE id = :id",
        _values(changed),
    )
    return changed


async def delete(db: Database, channel_id: str) -> bool:
    """Remove a channel; False when there was none."""
    if await get(db, channel_id) is None:
        return False
    await db.execute("DELETE FROM notify_channels WHERE id = :id", {"id": channel_id})
    return True
