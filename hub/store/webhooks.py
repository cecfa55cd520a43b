"""Webhook endpoints: URL, wanted events, signing secret."""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

from databases import Database

from hub.model import rfc3339


def new_secret() -> str:
    """A signing secret in the Standard Webhooks form: `whsec_` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


@dataclass(frozen=True)
class Webhook:
    """One stored endpoint."""

    id: str
    url: str
    events: list[str]
    secret: str
    enabled: bool
    description: str
    disabled_reason: str | None
    failure_streak: int
    created_at: float
    updated_at: float

    def public(self, *, with_secret: bool = False) -> dict[str, Any]:
        """The JSON form; the secret only when asked (right after it was made)."""
        body: dict[str, Any] = {
            "id": self.id,
            "url": self.url,
            "events": self.events,
            "enabled": self.enabled,
            "description": self.description,
            "disabled_reason": self.disabled_reason,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        }
        if with_secret:
            body["secret"] = self.secret
        return body


def _webhook(row: Any) -> Webhook:
    return Webhook(
        id=row["id"],
        url=row["url"],
        events=json.loads(row["events"]),
        secret=row["secret"],
        enabled=bool(row["enabled"]),
        description=row["description"],
        disabled_reason=row["disabled_reason"],
        failure_streak=int(row["failure_streak"]),
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
    )


async def create(db: Database, data: dict[str, Any]) -> Webhook:
    """Store a new endpoint with a fresh secret."""
    now = time.time()
    hook = Webhook(
        id=str(uuid.uuid4()),
        url=data["url"],
        events=list(data["events"]),
        secret=new_secret(),
        enabled=bool(data.get("enabled", True)),
        description=data.get("description", ""),
        disabled_reason=None,
        failure_streak=0,
        created_at=now,
        updated_at=now,
    )
    await db.execute(
        "INSERT INTO webhooks (id, url, events, secret, enabled, description, disabled_reason,"
        " failure_streak, created_at, updated_at) VALUES (:id, :url, :events, :secret, :enabled,"
        " :description, NULL, 0, :now, :now)",
        {
            "id": hook.id,
            "url": hook.url,
            "events": json.dumps(hook.events),
            "secret": hook.secret,
            "enabled": 1 if hook.enabled else 0,
            "description": hook.description,
            "now": now,
        },
    )
    return hook


async def get(db: Database, hook_id: str) -> Webhook | None:
    """One endpoint, or None."""
    row = await db.fetch_one("SELECT * FROM webhooks WHERE id = :id", {"id": hook_id})
    return None if row is None else _webhook(row)


async def list_page(db: Database, limit: int, offset: int) -> tuple[list[Webhook], int]:
    """A page of endpoints, oldest first."""
    rows = await db.fetch_all(
        "SELECT * FROM webhooks ORDER BY created_at, id LIMIT :limit OFFSET :offset",
        {"limit": limit, "offset": offset},
    )
    total = await db.fetch_val("SELECT COUNT(*) FROM webhooks")
    return [_webhook(r) for r in rows], int(total or 0)


async def enabled(db: Database) -> list[Webhook]:
    """Every enabled endpoint."""
    rows = await db.fetch_all("SELECT * FROM webhooks WHERE enabled = 1 ORDER BY created_at, id")
    return [_webhook(r) for r in rows]


async def update(db: Database, hook_id: str, data: dict[str, Any]) -> Webhook | None:
    """Change fields; enabling clears the failure record; `rotate_secret` makes a new secret."""
    current = await get(db, hook_id)
    if current is None:
        return None
    enabling = data.get("enabled") is True and not current.enabled
    values = {
        "url": data.get("url", current.url),
        "events": json.dumps(data.get("events", current.events)),
        "secret": new_secret() if data.get("rotate_secret") else current.secret,
        "enabled": 1 if data.get("enabled", current.enabled) else 0,
        "description": data.get("description", current.description),
        "reason": None if enabling else current.disabled_reason,
        "streak": 0 if enabling else current.failure_streak,
        "now": time.time(),
        "id": hook_id,
    }
    await db.execute(
        "UPDATE webhooks SET url = :url, events = :events, secret = :secret, enabled = :enabled,"
        " description = :description, disabled_reason = :reason, failure_streak = :streak,"
        " updated_at = :now WHERE id = :id",
        values,
    )
    return await get(db, hook_id)


async def delete(db: Database, hook_id: str) -> bool:
    """Remove an endpoint; False when there was none."""
    if await get(db, hook_id) is None:
        return False
    await db.execute("DELETE FROM webhooks WHERE id = :id", {"id": hook_id})
    return True
