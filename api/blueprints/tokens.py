"""Long-lived API tokens for automations: list, create (secret shown once), delete."""

from __future__ import annotations

import time
from typing import Any

from quart import Blueprint, Response, jsonify

from api import schemas
from api.context import hub
from api.errors import ApiError
from api.registry import Ctx, Page, Rule, endpoint
from hub.auth import ROLE_RANK
from hub.model import parse_rfc3339
from hub.store import api_tokens as store

bp = Blueprint("tokens", __name__)


def _field_error(status: int, code: str, field: str, rule: str, message: str) -> ApiError:
    return ApiError(
        status,
        code,
        f"body field '{field}' breaks rule '{rule}': {message}",
        extra={"errors": [{"field": field, "rule": rule, "message": message}]},
    )


@endpoint(
    bp,
    "GET",
    "/api/tokens",
    role="viewer",
    summary="List API tokens (your own; admins see every user's)",
    tag="Authentication",
    query=schemas.PAGE_QUERY,
    response=schemas.collection(schemas.API_TOKEN, paginated=True),
    errors=(400, 401),
)
async def list_tokens(ctx: Ctx) -> dict[str, Any]:
    """Newest first, without secrets."""
    assert ctx.principal is not None
    page = Page.of(ctx)
    owner = None if ctx.principal.allows("admin") else ctx.principal.user_id
    items, total = await store.list_page(
        hub().db, user_id=owner, limit=page.per_page, offset=page.offset
    )
    return page.envelope([t.public() for t in items], total)


@endpoint(
    bp,
    "POST",
    "/api/tokens",
    role="viewer",
    summary="Create an API token (the secret is in this answer only)",
    tag="Authentication",
    body=schemas.API_TOKEN_CREATE,
    response=schemas.API_TOKEN_CREATED,
    status=201,
    errors=(400, 401, 403),
    rules=(Rule(400, "expires_at", "future", "when given, a time in the future"),),
)
async def create_token(ctx: Ctx) -> Response:
    """Mint a token for the caller with a role no higher than the caller's own."""
    principal = ctx.principal
    assert principal is not None
    role = ctx.body.get("role") or principal.role
    if ROLE_RANK[role] > ROLE_RANK[principal.role]:
        raise _field_error(
            403,
            "forbidden",
            "role",
            "role_ceiling",
            f"a token cannot have role '{role}' above your own ('{principal.role}')",
        )
    expires_at: float | None = None
    if ctx.body.get("expires_at") is not None:
        try:
            expires_at = parse_rfc3339(ctx.body["expires_at"])
        except ValueError:
            raise _field_error(
                400, "validation_error", "expires_at", "format", "must be an RFC 3339 date-time"
            ) from None
        if expires_at <= time.time():
            raise _field_error(
                400, "validation_error", "expires_at", "future", "must be a time in the future"
            )
    token, secret = await hub().auth.tokens.create(
        user_id=principal.user_id, name=ctx.body["name"], role=role, expires_at=expires_at
    )
    response = jsonify({**token.public(), "token": secret})
    response.status_code = 201
    response.headers["Location"] = f"/api/tokens/{token.id}"
    return response


@endpoint(
    bp,
    "DELETE",
    "/api/tokens/<token_id>",
    role="viewer",
    summary="Revoke an API token (your own; admins any)",
    tag="Authentication",
    status=204,
    errors=(401, 404),
)
async def delete_token(ctx: Ctx, token_id: str) -> tuple[str, int]:
    """Delete a token: requests and open WebSockets using it are refused at once."""
    assert ctx.principal is not None
    h = hub()
    token = await store.by_id(h.db, token_id)
    # Another user's token is reported absent, so ids cannot be probed.
    if token is None or not (
        ctx.principal.allows("admin") or token.user_id == ctx.principal.user_id
    ):
        raise ApiError(404, "not_found", f"no API token with id {token_id}")
    await h.auth.tokens.delete(token_id)
    return "", 204
