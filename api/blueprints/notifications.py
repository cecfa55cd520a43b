"""Notifications: list (paginated, unread filter), mark read."""

from __future__ import annotations

from typing import Any

from quart import Blueprint

from api import schemas
from api.context import hub
from api.registry import Ctx, Page, endpoint
from hub import notifications

bp = Blueprint("notifications", __name__)

NOTIFICATION: dict[str, Any] = {
    "type": "object",
    "required": ["id", "kind", "severity", "title", "message", "created_at", "read"],
    "properties": {
        "id": {"type": "string"},
        "printer_id": {"type": ["string", "null"]},
        "kind": {"type": "string"},
        "severity": {"enum": ["info", "warning", "error"]},
        "title": {"type": "string"},
        "message": {"type": "string"},
        "data": {"type": "object"},
        "created_at": schemas.TIMESTAMP,
        "read": {"type": "boolean"},
        "read_at": schemas.TIMESTAMP_OR_NULL,
    },
}

QUERY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {**schemas.PAGE_QUERY["properties"], "unread": {"type": "boolean"}},
}


@endpoint(
    bp,
    "GET",
    "/api/notifications",
    role="viewer",
    summary="List notifications",
    tag="Notifications",
    query=QUERY,
    response=schemas.collection(NOTIFICATION, paginated=True),
    errors=(400, 401),
)
async def list_notifications(ctx: Ctx) -> dict[str, Any]:
    """Newest first; `unread=true` for unread only."""
    page = Page.of(ctx)
    items, total = await notifications.list_notifications(
        hub().db,
        unread_only=bool(ctx.query.get("unread", False)),
        limit=page.per_page,
        offset=page.offset,
    )
    return page.envelope([n.public() for n in items], total)


@endpoint(
    bp,
    "POST",
    "/api/notifications/<notification_id>/read",
    role="viewer",
    summary="Mark a notification read",
    tag="Notifications",
    response=NOTIFICATION,
    errors=(401, 404),
)
async def read_one(ctx: Ctx, notification_id: str) -> dict[str, Any]:
    """Mark one read."""
    return (await notifications.mark_read(hub().db, notification_id)).public()


@endpoint(
    bp,
    "POST",
    "/api/notifications/read-all",
    role="viewer",
    summary="Mark every notification read",
    tag="Notifications",
    response={"type": "object", "properties": {"marked": {"type": "integer"}}},
    errors=(401,),
)
async def read_all(ctx: Ctx) -> dict[str, Any]:
    """Mark all read."""
    return {"marked": await notifications.mark_all_read(hub().db)}
