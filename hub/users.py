"""The users service: the account rules every caller shares (API, CLI) — names are unique, the
last admin is never removed or demoted."""

from __future__ import annotations

from databases import Database

from hub.errors import Conflict, NotFound
from hub.store import users as users_store
from hub.store.users import User


class LastAdmin(Conflict):
    """The change would leave the hub without an admin."""

    code = "last_admin"


async def create_user(db: Database, username: str, password_hash: str, role: str) -> User:
    """Add an account; Conflict when the name is taken."""
    try:
        return await users_store.create(db, username, password_hash, role)
    except users_store.Duplicate:
        raise Conflict(f"user {username!r} already exists", field="username") from None


async def list_users(db: Database, limit: int, offset: int) -> tuple[list[User], int]:
    """A page of accounts and how many there are in all."""
    return await users_store.list_all(db, limit, offset)


async def get_user(db: Database, user_id: str) -> User:
    """One account, or NotFound."""
    user = await users_store.by_id(db, user_id)
    if user is None:
        raise NotFound(f"no user with id {user_id}")
    return user


async def _guard_last_admin(db: Database, user: User, new_role: str | None) -> None:
    if user.role == "admin" and new_role != "admin" and await users_store.count_admins(db) <= 1:
        raise LastAdmin("the last admin account cannot be removed or demoted")


async def update_user(
    db: Database,
    user_id: str,
    *,
    role: str | None = None,
    password_hash: str | None = None,
    disabled: bool | None = None,
) -> User:
    """Change an account's role, password hash and/or disabled flag (never demoting or
    disabling the last admin). Each of these revokes the account's existing tokens."""
    user = await get_user(db, user_id)
    if role is not None:
        await _guard_last_admin(db, user, role)
    if disabled:
        await _guard_last_admin(db, user, None)
    updated = await users_store.update(
        db, user_id, role=role, password_hash=password_hash, disabled=disabled
    )
    if updated is None:
        raise NotFound(f"no user with id {user_id}")
    return updated


async def delete_user(db: Database, user_id: str) -> None:
    """Remove an account (never the last admin)."""
    await _guard_last_admin(db, await get_user(db, user_id), None)
    await users_store.delete(db, user_id)
