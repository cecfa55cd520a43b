"""User accounts: explicit SQL over the `users` table."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from databases import Database

from hub.model import rfc3339
from hub.store.generation import Generation

ROLES = ("viewer", "operator", "admin")

_writes = Generation()


def generation() -> int:
    """A number that changes whenever this process creates, updates or deletes a user."""
    return _writes.value


@dataclass(frozen=True)
class User:
    """A hub account (the password hash never leaves the store layer's callers)."""

    id: str
    username: str
    role: str
    password_hash: str
    created_at: float
    updated_at: float
    # Tokens issued before this moment are refused (password or role changed, disabled).
    tokens_valid_after: float = 0.0
    disabled: bool = False

    def public(self) -> dict[str, Any]:
        """The JSON form returned by the API."""
        return {
            "id": self.id,
            "username": self.username,
            "role": self.role,
            "disabled": self.disabled,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        }


def _user(row: Any) -> User:
    return User(
        id=row["id"],
        username=row["username"],
        role=row["role"],
        password_hash=row["password_hash"],
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
        tokens_valid_after=float(row["tokens_valid_after"] or 0.0),
        disabled=bool(row["disabled"]),
    )


class Duplicate(Exception):
    """A user with this name already exists."""


async def create(db: Database, username: str, password_hash: str, role: str) -> User:
    """Insert a user; Duplicate when the name is taken (decided by the insert itself)."""
    now = time.time()
    values = {
        "id": str(uuid.uuid4()),
        "username": username,
        "password_hash": password_hash,
        "role": role,
        "now": now,
    }
    inserted = await db.fetch_one(
        "INSERT INTO users (id, username, password_hash, role, created_at, updated_at) "
        "VALUES (:id, :username, :password_hash, :role, :now, :now)"
        " ON CONFLICT (username) DO NOTHING RETURNING id",
        values,
    )
    if inserted is None:
        raise Duplicate(f"user {username!r} already exists")
    _writes.bump()
    return User(str(values["id"]), username, role, password_hash, now, now)


async def by_username(db: Database, username: str) -> User | None:
    """Find a user by name."""
    row = await db.fetch_one("SELECT * FROM users WHERE username = :u", {"u": username})
    return None if row is None else _user(row)


async def by_id(db: Database, user_id: str) -> User | None:
    """Find a user by id."""
    row = await db.fetch_one("SELECT * FROM users WHERE id = :id", {"id": user_id})
    return None if row is None else _user(row)


async def list_all(db: Database, limit: int, offset: int) -> tuple[list[User], int]:
    """A page of users ordered by name, and the total count."""
    rows = await db.fetch_all(
        "SELECT * FROM users ORDER BY username LIMIT :limit OFFSET :offset",
        {"limit": limit, "offset": offset},
    )
    total = await db.fetch_val("SELECT COUNT(*) FROM users")
    return [_user(r) for r in rows], int(total or 0)


async def update(
    db: Database,
    user_id: str,
    *,
    role: str | None = None,
    password_hash: str | None = None,
    disabled: bool | None = None,
    keep_sessions: bool = False,
) -> User | None:
    """Change a user's role, password hash and/or disabled flag; None when the user does not
    exist. A new password, a different role or disabling revokes every token issued so far
    (keep_sessions: a re-hash of the same password, which changes nothing for the user)."""
    user = await by_id(db, user_id)
    if user is None:
        return None
    now = time.time()
    revoke = not keep_sessions and (
        password_hash is not None
        or (role is not None and role != user.role)
        or (disabled is True and not user.disabled)
    )
    await db.execute(
        "UPDATE users SET role = :role, password_hash = :hash, disabled = :disabled,"
        " tokens_valid_after = :valid_after, updated_at = :now WHERE id = :id",
        {
            "role": role or user.role,
            "hash": password_hash or user.password_hash,
            "disabled": int(user.disabled if disabled is None else disabled),
            "valid_after": now if revoke else user.tokens_valid_after,
            "now": now,
            "id": user_id,
        },
    )
    _writes.bump()
    return await by_id(db, user_id)


async def delete(db: Database, user_id: str) -> bool:
    """Remove a user; False when absent."""
    if await by_id(db, user_id) is None:
        return False
    # The foreign key cascades on PostgreSQL; SQLite enforces it only where the connection
    # enabled it, so the user's API tokens go explicitly.
    await db.execute("DELETE FROM api_tokens WHERE user_id = :id", {"id": user_id})
    await db.execute("DELETE FROM users WHERE id = :id", {"id": user_id})
    _writes.bump()
    return True


async def count_admins(db: Database) -> int:
    """How many admin accounts exist."""
    return int(
        await db.fetch_val("SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0") or 0
    )


async def revoke_token(db: Database, jti: str, expires_at: float) -> None:
    """Record a revoked token id until its expiry."""
    await db.execute(
        "INSERT INTO revoked_tokens (jti, expires_at) VALUES (:j, :e) ON CONFLICT (jti) DO NOTHING",
        {"j": jti, "e": expires_at},
    )


async def revoked_tokens(db: Database, now: float) -> dict[str, float]:
    """Unexpired revoked token ids (expired ones are purged)."""
    await db.execute("DELETE FROM revoked_tokens WHERE expires_at < :now", {"now": now})
    rows = await db.fetch_all("SELECT jti, expires_at FROM revoked_tokens")
    return {r["jti"]: float(r["expires_at"]) for r in rows}
