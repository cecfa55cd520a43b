"""User administration (admins only)."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, jsonify

from api import schemas
from api.context import hub
from api.registry import Ctx, Page, endpoint
from hub import users

bp = Blueprint("users", __name__)


@endpoint(
    bp,
    "GET",
    "/api/users",
    role="admin",
    summary="List users",
    tag="Users",
    query=schemas.PAGE_QUERY,
    response=schemas.collection(schemas.USER, paginated=True),
    errors=(400, 401, 403),
)
async def list_users(ctx: Ctx) -> dict[str, Any]:
    """A page of users."""
    page = Page.of(ctx)
    found, total = await users.list_users(hub().db, page.per_page, page.offset)
    return page.envelope([u.public() for u in found], total)


@endpoint(
    bp,
    "POST",
    "/api/users",
    role="admin",
    summary="Create a user",
    tag="Users",
    body=schemas.USER_CREATE,
    response=schemas.USER,
    status=201,
    errors=(400, 401, 403, 409),
)
async def create_user(ctx: Ctx) -> Response:
    """Add an account."""
    h = hub()
    password_hash = await h.auth.hash_password_async(ctx.body["password"])
    user = await users.create_user(h.db, ctx.body["username"], password_hash, ctx.body["role"])
    response = jsonify(user.public())
    response.status_code = 201
    response.headers["Location"] = f"/api/users/{user.id}"
    return response


@endpoint(
    bp,
    "GET",
    "/api/users/<user_id>",
    role="admin",
    summary="Get a user",
    tag="Users",
    response=schemas.USER,
    errors=(401, 403, 404),
)
async def get_user(ctx: Ctx, user_id: str) -> dict[str, Any]:
    """One account."""
    return (await users.get_user(hub().db, user_id)).public()


@endpoint(
    bp,
    "PUT",
    "/api/users/<user_id>",
    role="admin",
    summary="Change a user's role, password or disabled flag (revokes their tokens)",
    tag="Users",
    body=schemas.USER_UPDATE,
    response=schemas.USER,
    errors=(400, 401, 403, 404, 409),
)
async def update_user(ctx: Ctx, user_id: str) -> dict[str, Any]:
    """Update role, password and/or disabled; each revokes the account's existing tokens."""
    h = hub()
    password = ctx.body.get("password")
    user = await users.update_user(
        h.db,
        user_id,
        role=ctx.body.get("role"),
        password_hash=await h.auth.hash_password_async(password) if password else None,
        disabled=ctx.body.get("disabled"),
    )
    return user.public()


@endpoint(
    bp,
    "DELETE",
    "/api/users/<user_id>",
    role="admin",
    summary="Delete a user",
    tag="Users",
    status=204,
    errors=(401, 403, 404, 409),
)
async def delete_user(ctx: Ctx, user_id: str) -> tuple[str, int]:
    """Remove an account (never the last admin)."""
    await users.delete_user(hub().db, user_id)
    return "", 204
