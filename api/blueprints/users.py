"""User administration (admins only)."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, jsonify

from api import schemas
from api.context import hub
from api.errors import ApiError
from api.registry import Ctx, Page, endpoint
from hub.store import users as users_store
from hub.store.errors import is_unique_violation

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
    found, total = await users_store.list_all(hub().db, page.per_page, page.offset)
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
    if await users_store.by_username(h.db, ctx.body["username"]) is not None:
        raise ApiError(409, "conflict", f"user {ctx.body['username']!r} already exists")
    try:
        user = await users_store.create(
            h.db,
            ctx.body["username"],
            await h.auth.hash_password_async(ctx.body["password"]),
            ctx.body["role"],
        )
    except Exception as exc:
        if is_unique_violation(exc):
            raise ApiError(
                409, "conflict", f"user {ctx.body['username']!r} already exists"
            ) from None
        raise
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
    user = await users_store.by_id(hub().db, user_id)
    if user is None:
        raise ApiError(404, "not_found", f"no user with id {user_id}")
    return user.public()


async def _guard_last_admin(user_id: str, new_role: str | None) -> None:
    h = hub()
    user = await users_store.by_id(h.db, user_id)
    if user is None:
        raise ApiError(404, "not_found", f"no user with id {user_id}")
    losing_admin = user.role == "admin" and new_role != "admin"
    if losing_admin and await users_store.count_admins(h.db) <= 1:
        raise ApiError(409, "last_admin", "the last admin account cannot be removed or demoted")


@endpoint(
    bp,
    "PUT",
    "/api/users/<user_id>",
    role="admin",
    summary="Change a user's role or password",
    tag="Users",
    body=schemas.USER_UPDATE,
    response=schemas.USER,
    errors=(400, 401, 403, 404, 409),
)
async def update_user(ctx: Ctx, user_id: str) -> dict[str, Any]:
    """Update role and/or password."""
    h = hub()
    if "role" in ctx.body:
        await _guard_last_admin(user_id, ctx.body["role"])
    password = ctx.body.get("password")
    user = await users_store.update(
        h.db,
        user_id,
        role=ctx.body.get("role"),
        password_hash=await h.auth.hash_password_async(password) if password else None,
    )
    if user is None:
        raise ApiError(404, "not_found", f"no user with id {user_id}")
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
    await _guard_last_admin(user_id, None)
    await users_store.delete(hub().db, user_id)
    return "", 204
