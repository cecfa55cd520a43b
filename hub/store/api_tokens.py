"""Long-lived API tokens: explicit SQL over the `api_tokens` table (secrets kept as hashes)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from databases import Database

from hub.model import rfc3339
from hub.store.generation import Generation

_writes = Generation()


def generation() -> int:
    """A number that changes whenever this process creates or deletes a token."""
    return _writes.value


@dataclass(frozen=True)
class ApiToken:
    """One stored token (never its secret, only the secret's hash)."""

    id: str
    user_id: str
    username: str
    name: str
    role: str
    secret_hash: str
    created_at: float
    expires_at: float | None
    last_used_at: float | None

    def public(self) -> dict[str, Any]:
        """The JSON form returned by the API."""
        return {
            "id": self.id,
            "user_id": self.user_id,
            "username": self.username,
            "name": self.name,
            "role": self.role,
            "created_at": rfc3339(self.created_at),
            "expires_at": rfc3339(self.expires_at),
            "last_used_at": rfc3339(self.last_used_at),
        }


_SELECT = (
    "SELECT t.id, t.user_id, u.username, t.name, t.role, t.secret_hash, t.created_at,"
    " t.expires_at, t.last_used_at FROM api_tokens t JOIN users u ON u.id = t.user_id"
)


def _optional(value: Any) -> float | None:
    return None if value is None else float(value)


def _token(row: Any) -> ApiToken:
    return ApiToken(
        id=row["id"],
        user_id=row["user_id"],
        username=row["username"],
        name=row["name"],
        role=row["role"],
        secret_hash=row["secret_hash"],
        created_at=float(row["created_at"]),
        expires_at=_optional(row["expires_at"]),
        last_used_at=_optional(row["last_used_at"]),
    )


async def create(
    db: Database,
    *,
    user_id: str,
    name: str,
    role: str,
    secret_hash: str,
    expires_at: float | None,
) -> ApiToken:
    """Store a new token and return it."""
    token_id = str(uuid.uuid4())
    await db.execute(
        "INSERT INTO api_tokens (id, user_id, name, role, secret_hash, created_at, expires_at)"
        " VALUES (:id, :user_id, :name, :role, :hash, :now, :expires_at)",
        {
            "id": token_id,
            "user_id": user_id,
            "name": name,
            "role": role,
            "hash": secret_hash,
            "now": time.time(),
            "expires_at": expires_at,
        },
    )
    _writes.bump()
    found = await by_id(db, token_id)
    assert found is not None
    return found


async def by_id(db: Database, token_id: str) -> ApiToken | None:
    """One token by id."""
    row = await db.fetch_one(f"{_SELECT} WHERE t.id = :id", {"id": token_id})
    return None if row is None else _token(row)


async def by_hash(db: Database, secret_hash: str) -> ApiToken | None:
    """The token whose secret hashes to `secret_hash`."""
    row = await db.fetch_one(f"{_SELECT} WHERE t.secret_hash = :h", {"h": secret_hash})
    return None if row is None else _token(row)


async def existing(db: Database, token_ids: set[str]) -> set[str]:
    """Which of these token ids are still stored (one query)."""
    if not token_ids:
        return set()
    ids = sorted(token_ids)
    marks = ", ".join(f":i{n}" for n in range(len(ids)))
    rows = await db.fetch_all(
        f"SELECT id FROM api_tokens WHERE id IN ({marks})",
        {f"i{n}": token_id for n, token_id in enumerate(ids)},
    )
    return {row["id"] for row in rows}


async def list_page(
    db: Database, *, user_id: str | None, limit: int, offset: int
) -> tuple[list[ApiToken], int]:
    """A page of tokens, newest first (one user's, or everyone's when `user_id` is None)."""
    where = "" if user_id is None else " WHERE t.user_id = :user_id"
    params: dict[str, Any] = {} if user_id is None else {"user_id": user_id}
    rows = await db.fetch_all(
        f"{_SELECT}{where} ORDER BY t.created_at DESC, t.id LIMIT :limit OFFSET :offset",
        {**params, "limit": limit, "offset": offset},
    )
    total = await db.fetch_val(f"SELECT COUNT(*) FROM api_tokens t{where}", params)
    return [_token(r) for r in rows], int(total or 0)


async def delete(db: Database, token_id: str) -> bool:
    """Remove a token; False when there was none."""
    row = await db.fetch_one("DELETE FROM api_tokens WHERE id = :id RETURNING id", {"id": token_id})
    _writes.bump()
    return row is not None


async def touch(db: Database, token_id: str, at: float) -> None:
    """Record when the token was last used."""
    await db.execute(
        "UPDATE api_tokens SET last_used_at = :at WHERE id = :id", {"at": at, "id": token_id}
    )
