"""Notification channels (apprise URLs), their tests and deliveries (admins only)."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, jsonify

from api import schemas
from api.context import hub
from api.registry import Ctx, Page, endpoint
from hub import channels as service
from integrations.notify.quiet import CLOCK, ZONES

bp = Blueprint("channels", __name__)

BASE = "/api/notifications/channels"
SEVERITY = {"enum": ["info", "warning", "error"]}
URL = {
    "type": "string",
    "minLength": 3,
    "maxLength": 2048,
    "writeOnly": True,
    "description": "An apprise URL (ntfy://, mailto://, tgram://, discord://, json://, hassio://"
    " …). It holds secrets: answers show it masked.",
}
QUIET_HOURS: dict[str, Any] = {
    "type": ["object", "null"],
    "additionalProperties": False,
    "required": ["start", "end", "timezone"],
    "properties": {
        "start": {"type": "string", "pattern": CLOCK},
        "end": {"type": "string", "pattern": CLOCK},
        "timezone": {"enum": list(ZONES), "description": "an IANA time zone name"},
    },
    "description": "Daily local-time window (may span midnight) in which messages are held"
    " until it ends.",
}
# In answers the zone is what was stored (the list of names is the requests' business).
QUIET_HOURS_SHOWN: dict[str, Any] = {
    **QUIET_HOURS,
    "properties": {**QUIET_HOURS["properties"], "timezone": {"type": "string"}},
}
NAME = {"type": "string", "minLength": 1, "maxLength": 100}
EVENTS = schemas.event_filter(service.CHANNEL_TYPES)

CHANNEL: dict[str, Any] = {
    "type": "object",
    "required": ["id", "name", "url", "service", "events", "min_severity", "enabled"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "service": {"type": ["string", "null"]},
        "url": {"type": ["string", "null"], "description": "The URL with secrets masked."},
        "events": {"type": "array", "items": {"type": "string"}},
        "min_severity": SEVERITY,
        "quiet_hours": QUIET_HOURS_SHOWN,
        "enabled": {"type": "boolean"},
        "disabled_reason": {"type": ["string", "null"]},
        "created_at": schemas.TIMESTAMP,
        "updated_at": schemas.TIMESTAMP,
    },
}

CHANNEL_CREATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "url"],
    "properties": {
        "name": NAME,
        "url": URL,
        "events": {**EVENTS, "default": ["*"]},
        "min_severity": {**SEVERITY, "default": "info"},
        "quiet_hours": QUIET_HOURS,
        "enabled": {"type": "boolean", "default": True},
    },
}

CHANNEL_UPDATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "name": NAME,
        "url": URL,
        "events": EVENTS,
        "min_severity": SEVERITY,
        "quiet_hours": QUIET_HOURS,
        "enabled": {"type": "boolean"},
    },
}


@endpoint(
    bp,
    "GET",
    BASE,
    role="admin",
    summary="List notification channels",
    tag="Notifications",
    query=schemas.PAGE_QUERY,
    response=schemas.collection(CHANNEL, paginated=True),
    errors=(400, 401, 403),
)
async def list_channels(ctx: Ctx) -> dict[str, Any]:
    """A page of channels (oldest first), URLs masked."""
    page = Page.of(ctx)
    channels = await service.list_all(hub())
    chosen = channels[page.offset : page.offset + page.per_page]
    return page.envelope([service.public(c) for c in chosen], len(channels))


@endpoint(
    bp,
    "POST",
    BASE,
    role="admin",
    summary="Add a notification channel",
    tag="Notifications",
    body=CHANNEL_CREATE,
    response=CHANNEL,
    status=201,
    errors=(400, 401, 403),
)
async def create_channel(ctx: Ctx) -> Response:
    """The URL is checked with apprise and stored; answers show it masked."""
    channel = await service.create(hub(), ctx.body)
    response = jsonify(service.public(channel))
    response.status_code = 201
    response.headers["Location"] = f"{BASE}/{channel.id}"
    return response


@endpoint(
    bp,
    "GET",
    f"{BASE}/<channel_id>",
    role="admin",
    summary="Get a notification channel",
    tag="Notifications",
    response=CHANNEL,
    errors=(401, 403, 404),
)
async def get_channel(ctx: Ctx, channel_id: str) -> dict[str, Any]:
    """One channel, URL masked."""
    return service.public(await service.get(hub(), channel_id))


@endpoint(
    bp,
    "PUT",
    f"{BASE}/<channel_id>",
    role="admin",
    summary="Change a notification channel",
    tag="Notifications",
    body=CHANNEL_UPDATE,
    response=CHANNEL,
    errors=(400, 401, 403, 404),
)
async def update_channel(ctx: Ctx, channel_id: str) -> dict[str, Any]:
    """An omitted `url` keeps the stored one; `"enabled": true` resumes a disabled channel."""
    return service.public(await service.update(hub(), channel_id, ctx.body))


@endpoint(
    bp,
    "DELETE",
    f"{BASE}/<channel_id>",
    role="admin",
    summary="Delete a notification channel",
    tag="Notifications",
    status=204,
    errors=(401, 403, 404),
)
async def delete_channel(ctx: Ctx, channel_id: str) -> tuple[str, int]:
    """Remove the channel and its messages."""
    await service.delete(hub(), channel_id)
    return "", 204


@endpoint(
    bp,
    "POST",
    f"{BASE}/<channel_id>/test",
    role="admin",
    summary="Send a test notification",
    tag="Notifications",
    response=schemas.DELIVERY,
    status=202,
    errors=(401, 403, 404),
)
async def test_channel(ctx: Ctx, channel_id: str) -> tuple[dict[str, Any], int]:
    """Queue a test message; follow it in the deliveries list."""
    return (await service.send_test(hub(), channel_id)).public(), 202


@endpoint(
    bp,
    "GET",
    f"{BASE}/<channel_id>/deliveries",
    role="admin",
    summary="List a notification channel's deliveries",
    tag="Notifications",
    query=schemas.DELIVERY_QUERY,
    response=schemas.collection(schemas.DELIVERY, paginated=True),
    errors=(400, 401, 403, 404),
)
async def list_deliveries(ctx: Ctx, channel_id: str) -> dict[str, Any]:
    """Newest first, with state, attempts and last error; `state=` filters."""
    page = Page.of(ctx)
    items, total = await service.deliveries(
        hub(), channel_id, state=ctx.query.get("state"), limit=page.per_page, offset=page.offset
    )
    return page.envelope([d.public() for d in items], total)


@endpoint(
    bp,
    "POST",
    f"{BASE}/<channel_id>/deliveries/<delivery_id>/redeliver",
    role="admin",
    summary="Send a channel's message again",
    tag="Notifications",
    response=schemas.DELIVERY,
    status=202,
    errors=(401, 403, 404),
)
async def redeliver(ctx: Ctx, channel_id: str, delivery_id: str) -> tuple[dict[str, Any], int]:
    """The message goes out again."""
    return (await service.redeliver(hub(), channel_id, delivery_id)).public(), 202
