"""Webhook endpoints, their test messages and deliveries (admins only)."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, jsonify

from api import schemas
from api.context import hub
from api.registry import Ctx, Page, endpoint
from hub import webhooks as service

bp = Blueprint("webhooks", __name__)

_H16 = "[0-9A-Fa-f]{1,4}"
# An IPv6 literal in hex groups (RFC 4291 text forms without an embedded IPv4 or a zone).
_IPV6 = "|".join(
    [
        f"(?:{_H16}:){{7}}{_H16}",
        f"(?:{_H16}:){{1,7}}:",
        *(f"(?:{_H16}:){{1,{6 - k}}}(?::{_H16}){{1,{k + 1}}}" for k in range(6)),
        f":(?:(?::{_H16}){{1,7}}|:)",
    ]
)
# http(s), then a host (a name, an IPv4 or a bracketed IPv6 literal), an optional port and the
# rest, all in printable ASCII (RFC 3986): exactly what the hub can deliver to.
URL_PATTERN = (
    r"^https?://(?:[A-Za-z0-9._~%!$&'()*+,;=:-]*@)?"
    rf"(?:[A-Za-z0-9._~%!$&'()*+,;=-]+|\[(?:{_IPV6})\])"
    r"(?::[0-9]{0,5})?(?:[/?#][!-~]*)?$"
)
URL = {"type": "string", "pattern": URL_PATTERN, "minLength": 8, "maxLength": 2048}
DESCRIPTION = {"type": "string", "maxLength": 500}

WEBHOOK: dict[str, Any] = {
    "type": "object",
    "required": ["id", "url", "events", "enabled", "description", "created_at", "updated_at"],
    "properties": {
        "id": {"type": "string"},
        "url": {"type": "string"},
        "events": {"type": "array", "items": {"type": "string"}},
        "enabled": {"type": "boolean"},
        "description": {"type": "string"},
        "disabled_reason": {"type": ["string", "null"]},
        "created_at": schemas.TIMESTAMP,
        "updated_at": schemas.TIMESTAMP,
        "secret": {
            "type": "string",
            "description": "The signing secret (`whsec_…`), only in the answer that made it.",
        },
    },
}

WEBHOOK_CREATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["url", "events"],
    "properties": {
        "url": URL,
        "events": schemas.EVENT_FILTER,
        "enabled": {"type": "boolean", "default": True},
        "description": DESCRIPTION,
    },
}

WEBHOOK_UPDATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "url": URL,
        "events": schemas.EVENT_FILTER,
        "enabled": {"type": "boolean"},
        "description": DESCRIPTION,
        "rotate_secret": {
            "const": True,
            "description": "Make a new secret (shown once in the answer).",
        },
    },
}

ERRORS = (400, 401, 403, 404)


@endpoint(
    bp,
    "GET",
    "/api/webhooks",
    role="admin",
    summary="List webhook endpoints",
    tag="Webhooks",
    query=schemas.PAGE_QUERY,
    response=schemas.collection(WEBHOOK, paginated=True),
    errors=(400, 401, 403),
)
async def list_webhooks(ctx: Ctx) -> dict[str, Any]:
    """A page of endpoints (secrets never included)."""
    page = Page.of(ctx)
    items, total = await service.list_page(hub(), page.per_page, page.offset)
    return page.envelope([h.public() for h in items], total)


@endpoint(
    bp,
    "POST",
    "/api/webhooks",
    role="admin",
    summary="Add a webhook endpoint",
    tag="Webhooks",
    body=WEBHOOK_CREATE,
    response=WEBHOOK,
    status=201,
    errors=(400, 401, 403),
)
async def create_webhook(ctx: Ctx) -> Response:
    """The answer carries the signing secret, shown this once."""
    hook = await service.create(hub(), ctx.body)
    response = jsonify(hook.public(with_secret=True))
    response.status_code = 201
    response.headers["Location"] = f"/api/webhooks/{hook.id}"
    return response


@endpoint(
    bp,
    "GET",
    "/api/webhooks/<webhook_id>",
    role="admin",
    summary="Get a webhook endpoint",
    tag="Webhooks",
    response=WEBHOOK,
    errors=(401, 403, 404),
)
async def get_webhook(ctx: Ctx, webhook_id: str) -> dict[str, Any]:
    """One endpoint (without its secret)."""
    return (await service.get(hub(), webhook_id)).public()


@endpoint(
    bp,
    "PUT",
    "/api/webhooks/<webhook_id>",
    role="admin",
    summary="Change a webhook endpoint",
    tag="Webhooks",
    body=WEBHOOK_UPDATE,
    response=WEBHOOK,
    errors=ERRORS,
)
async def update_webhook(ctx: Ctx, webhook_id: str) -> dict[str, Any]:
    """Enabling an endpoint clears its failure record and resumes its deliveries."""
    hook = await service.update(hub(), webhook_id, ctx.body)
    return hook.public(with_secret=bool(ctx.body.get("rotate_secret")))


@endpoint(
    bp,
    "DELETE",
    "/api/webhooks/<webhook_id>",
    role="admin",
    summary="Delete a webhook endpoint",
    tag="Webhooks",
    status=204,
    errors=(401, 403, 404),
)
async def delete_webhook(ctx: Ctx, webhook_id: str) -> tuple[str, int]:
    """Remove the endpoint and its deliveries."""
    await service.delete(hub(), webhook_id)
    return "", 204


@endpoint(
    bp,
    "POST",
    "/api/webhooks/<webhook_id>/test",
    role="admin",
    summary="Send a test message",
    tag="Webhooks",
    response=schemas.DELIVERY,
    status=202,
    errors=(401, 403, 404),
)
async def test_webhook(ctx: Ctx, webhook_id: str) -> tuple[dict[str, Any], int]:
    """Queue a signed `webhook.test` message; follow it in the deliveries list."""
    delivery = await service.send_test(hub(), webhook_id)
    return delivery.public(), 202


@endpoint(
    bp,
    "GET",
    "/api/webhooks/<webhook_id>/deliveries",
    role="admin",
    summary="List a webhook's deliveries",
    tag="Webhooks",
    query=schemas.DELIVERY_QUERY,
    response=schemas.collection(schemas.DELIVERY, paginated=True),
    errors=ERRORS,
)
async def list_deliveries(ctx: Ctx, webhook_id: str) -> dict[str, Any]:
    """Newest first, with state, attempts, last status and error; `state=` filters."""
    page = Page.of(ctx)
    items, total = await service.deliveries(
        hub(), webhook_id, state=ctx.query.get("state"), limit=page.per_page, offset=page.offset
    )
    return page.envelope([d.public() for d in items], total)


@endpoint(
    bp,
    "POST",
    "/api/webhooks/<webhook_id>/deliveries/<delivery_id>/redeliver",
    role="admin",
    summary="Send a delivery again",
    tag="Webhooks",
    response=schemas.DELIVERY,
    status=202,
    errors=(401, 403, 404),
)
async def redeliver(ctx: Ctx, webhook_id: str, delivery_id: str) -> tuple[dict[str, Any], int]:
    """The message goes out again with the same webhook-id."""
    delivery = await service.redeliver(hub(), webhook_id, delivery_id)
    return delivery.public(), 202
