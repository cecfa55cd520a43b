"""Long-lived API tokens for automations: minted once, stored as a hash, checked per request."""

from __future__ import annotations

import hashlib
import secrets
import time

from databases import Database

from hub.store import api_tokens as store
from hub.store.api_tokens import ApiToken

#: Every API token starts with this, so the verifier tells it from a JWT without decoding.
PREFIX = "pft_"
# A token read from the database answers for requests this long before it is read again:
# changes made through this process apply at once, this bounds changes by another process.
CACHE_S = 5.0
CACHE_MAX = 10_000
# last_used_at is written at most this often per token, not on every request.
TOUCH_EVERY_S = 60.0


class TokenRejected(Exception):
    """An API token was refused; `reason` is safe to show the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def is_api_token(token: str) -> bool:
    """True when `token` has the form of an API token (not a JWT)."""
    return token.startswith(PREFIX)


def hash_secret(token: str) -> str:
    """The stored form of a token: SHA-256 is enough for 256 random bits (no brute force)."""
    return hashlib.sha256(token.encode()).hexdigest()


_JTI_PREFIX = "token:"


def jti_of(token_id: str) -> str:
    """The revocation key of an API token (distinct from every JWT id)."""
    return _JTI_PREFIX + token_id


class ApiTokens:
    """Mints, checks and deletes API tokens for one database, with a short-lived cache."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # secret hash -> (read at, store generation, the token or None)
        self._cache: dict[str, tuple[float, int, ApiToken | None]] = {}
        self._touched: dict[str, float] = {}
        # Ids of tokens deleted while this process runs: open WebSockets check these.
        self.deleted: set[str] = set()

    async def create(
        self, *, user_id: str, name: str, role: str, expires_at: float | None
    ) -> tuple[ApiToken, str]:
        """Mint a token; the secret is returned here once and never stored."""
        secret = PREFIX + secrets.token_urlsafe(32)
        token = await store.create(
            self.db,
            user_id=user_id,
            name=name,
            role=role,
            secret_hash=hash_secret(secret),
            expires_at=expires_at,
        )
        return token, secret

    async def check(self, secret: str) -> ApiToken:
        """The stored token for `secret`; TokenRejected when unknown or expired."""
        digest = hash_secret(secret)
        now = time.monotonic()
        generation = store.generation()
        cached = self._cache.get(digest)
        if cached is not None and cached[1] == generation and now - cached[0] < CACHE_S:
            token = cached[2]
        else:
            token = await store.by_hash(self.db, digest)
            if len(self._cache) >= CACHE_MAX:
                self._cache.clear()
            self._cache[digest] = (now, generation, token)
        if token is None or token.id in self.deleted:
            raise TokenRejected("unknown or revoked API token")
        wall = time.time()
        if token.expires_at is not None and token.expires_at <= wall:
            raise TokenRejected("API token expired")
        if wall - self._touched.get(token.id, token.last_used_at or 0.0) >= TOUCH_EVERY_S:
            self._touched[token.id] = wall
            await store.touch(self.db, token.id, wall)
        return token

    def is_deleted(self, jti: str) -> bool:
        """True when `jti` names an API token deleted while this process runs."""
        return jti.startswith(_JTI_PREFIX) and jti.removeprefix(_JTI_PREFIX) in self.deleted

    async def delete(self, token_id: str) -> bool:
        """Remove a token; requests and open sockets using it are refused from now on."""
        found = await store.delete(self.db, token_id)
        if found:
            self.deleted.add(token_id)
            self._touched.pop(token_id, None)
        return found
