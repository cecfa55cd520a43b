"""The notifications service: what the API and other callers do with stored notifications."""

from __future__ import annotations

from databases import Database

from hub.errors import NotFound
from hub.store import notifications as store
from hub.store.notifications import Notification


async def list_notifications(
    db: Database, *, unread_only: bool, limit: int, offset: int
) -> tuple[list[Notification], int]:
    """A page of notifications, newest first, and how many there are in all."""
    return await store.list_page(db, unread_only=unread_only, limit=limit, offset=offset)


async def mark_read(db: Database, note_id: str) -> Notification:
    """Mark one notification read; NotFound when there is no such notification."""
    note = await store.mark_read(db, note_id)
    if note is None:
        raise NotFound(f"no notification with id {note_id}")
    return note


async def mark_all_read(db: Database) -> int:
    """Mark every unread notification read; how many were."""
    return await store.mark_all_read(db)
