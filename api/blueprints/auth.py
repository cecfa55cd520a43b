"""Login, logout and the current user."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, request

from api import schemas
from api.context import hub
from api.errors import ApiError
from api.registry import Ctx, Rule, endpoint
from hub import users
from hub.auth import AuthError, LoginThrottled
from hub.store import users as users_store

bp = Blueprint("auth", __name__)


def client_address() -> str:
    """The caller's address as the server saw it."""
    return request.remote_addr or "unknown"


@endpoint(
    bp,
    "POST",
    "/api/auth/login",
    role=None,
    summary="Log in, get a JWT",
    tag="Authentication",
    body=schemas.LOGIN,
    response=schemas.TOKEN,
    errors=(400, 401, 429),
)
async def login(ctx: Ctx) -> dict[str, Any]:
    """Exchange a username and password for a token."""
    h = hub()
    try:
        token, _user = await h.auth.login(
            ctx.body["username"], ctx.body["password"], client_address()
        )
    except LoginThrottled as exc:
        raise ApiError(
            429, "login_throttled", str(exc), headers={"Retry-After": str(exc.retry_after)}
        ) from None
    except AuthError as exc:
        raise ApiError(401, "invalid_credentials", exc.reason) from None
    return {"token": token, "expiresIn": f"{h.settings.auth.token_ttl_hours}h"}


@endpoint(
    bp,
    "POST",
    "/api/auth/logout",
    role="viewer",
    summary="Log out (revoke this token)",
    tag="Authentication",
    status=204,
    errors=(401,),
)
async def logout(ctx: Ctx) -> tuple[str, int]:
    """Revoke the token used for this request."""
    assert ctx.principal is not None
    if ctx.principal.token_id is not None:
        # An API token has no expiry to wait out: logging out with it deletes it.
        await hub().auth.tokens.delete(ctx.principal.token_id)
    else:
        await hub().auth.revoke(ctx.principal)
    return "", 204


@endpoint(
    bp,
    "GET",
    "/api/auth/me",
    role="viewer",
    summary="Get the logged-in user",
    tag="Authentication",
    response=schemas.USER,
    errors=(401,),
)
async def me(ctx: Ctx) -> dict[str, Any]:
    """The user behind the token."""
    assert ctx.principal is not None
    user = await users_store.by_id(hub().db, ctx.principal.user_id)
    if user is None:
        raise ApiError(401, "unauthorized", "the token's user no longer exists")
    return user.public()


@endpoint(
    bp,
    "PUT",
    "/api/auth/me/password",
    role="viewer",
    summary="Change your own password (ends your other sessions; answers a fresh token)",
    tag="Authentication",
    body=schemas.PASSWORD_CHANGE,
    response=schemas.TOKEN,
    errors=(400, 401, 429),
    rules=(Rule(400, "current_password", "match", "it is the caller's password"),),
)
async def change_own_password(ctx: Ctx) -> dict[str, Any]:
    """Check the current password (throttled like a login), store the new one, and answer a
    token for the caller: every token issued before the change stops working."""
    assert ctx.principal is not None
    h = hub()
    try:
        await h.auth.login(ctx.principal.username, ctx.body["current_password"], client_address())
    except LoginThrottled as exc:
        raise ApiError(
            429, "login_throttled", str(exc), headers={"Retry-After": str(exc.retry_after)}
        ) from None
    except AuthError:
        raise ApiError(
            400,
            "validation_error",
            "body field 'current_password' breaks rule 'match': it is not your password",
            extra={
                "errors": [
                    {"field": "current_password", "rule": "match", "message": "wrong password"}
                ]
            },
        ) from None
    user = await users.update_user(
        h.db,
        ctx.principal.user_id,
        password_hash=await h.auth.hash_password_async(ctx.body["new_password"]),
    )
    return {"token": h.auth.issue(user), "expiresIn": f"{h.settings.auth.token_ttl_hours}h"}


__all__ = ["AuthError", "bp"]
