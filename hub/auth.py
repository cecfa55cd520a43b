"""Authentication: argon2id password hashes, HS256 JWTs with revocation, login throttling."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import math
import secrets
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from databases import Database

from config.loader import AuthSettings
from hub.store import kv
from hub.store import users as users_store
from hub.store.users import ROLES, User
from hub.tokens import ApiTokens, TokenRejected, is_api_token, jti_of

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["sub", "role", "iat", "nbf", "exp", "jti", "iss", "aud"]
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}
# How long a looked-up account may answer for requests before it is read again. Changes made
# through this process (API, store functions) take effect at once; this bounds only changes made
# by another process sharing the database (the CLI, another hub).
USER_CACHE_S = 5.0
USER_CACHE_MAX = 10_000
LEEWAY_S = 5  # clock skew allowed on exp and nbf


class AuthError(Exception):
    """A token or credential was rejected; `reason` is safe to show the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LoginThrottled(Exception):
    """Too many failed logins for this user or address."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; retry in {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a request."""

    user_id: str
    username: str
    role: str
    jti: str
    expires_at: float
    # For an API token: its id, and the role it was given (the user's role caps it).
    token_id: str | None = None
    role_cap: str | None = None
    # When the token was issued: sessions from before the account's tokens_valid_after fail.
    issued_at: float = 0.0

    def allows(self, role: str) -> bool:
        """True when this caller's role is at least `role`."""
        return ROLE_RANK[self.role] >= ROLE_RANK[role]

    def role_for(self, user_role: str) -> str:
        """The role this caller has while its user holds `user_role` (an API token's is capped)."""
        if self.role_cap is None:
            return user_role
        return min(user_role, self.role_cap, key=ROLE_RANK.__getitem__)


# The longest one account can be made to wait by failed logins (someone else's guesses).
ACCOUNT_MAX_WAIT_S = 60.0
# An address may fail this many times the per-account limit within the window.
ADDRESS_BUDGET_FACTOR = 4


class LoginThrottle:
    """Counts failed logins per key (user or address) in a sliding window, with growing delays."""

    def __init__(self, max_failures: int, window_s: float, max_wait_s: float | None = None) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_wait_s = window_s if max_wait_s is None else min(max_wait_s, window_s)
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        while q and q[0] < now - self.window_s:
            q.popleft()
        if not q:
            del self._failures[key]
            return deque()
        return q

    def retry_after(self, key: str, now: float) -> int:
        """Seconds the key must wait before another attempt (0 = may try now)."""
        q = self._recent(key, now)
        excess = len(q) - self.max_failures + 1
        if excess <= 0:
            return 0
        # Each failure past the limit doubles the wait, capped (at most the window).
        wait = min(self.max_wait_s, 2.0 ** min(excess, 20))
        return max(0, int(q[-1] + wait - now + 0.999))

    def failed(self, key: str, now: float) -> None:
        """Record a failed attempt."""
        self._recent(key, now)
        self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, key: str) -> None:
        """Forget failures after a successful login."""
        self._failures.pop(key, None)


class AuthService:
    """Issues and verifies tokens, checks passwords, keeps the revocation list."""

    def __init__(self, db: Database, settings: AuthSettings) -> None:
        self.db = db
        self.settings = settings
        self.hasher = PasswordHasher()
        self.secret = settings.jwt_secret or ""
        self.revoked: dict[str, float] = {}
        # Per account: a short, capped delay, so nobody can lock another user out for long.
        self.throttle = LoginThrottle(
            settings.login_max_failures, settings.login_window_s, ACCOUNT_MAX_WAIT_S
        )
        # Per address: a larger budget over the whole window that no success resets.
        self.address_throttle = LoginThrottle(
            settings.login_max_failures * ADDRESS_BUDGET_FACTOR, settings.login_window_s
        )
        # A hash to verify against when the user does not exist, so timing does not reveal it.
        self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))
        # user id -> (read at, store generation, the account or None): one lookup per user
        # per USER_CACHE_S instead of one per request.
        self._users: dict[str, tuple[float, int, User | None]] = {}
        # user id -> (store generation, the lookup in flight) while one is running.
        self._lookups: dict[str, tuple[int, asyncio.Future[User | None]]] = {}
        # Tokens whose signature and claims were checked once (the secret never changes while
        # running): a repeat only needs the clock and the revocation list.
        self._verified: dict[str, Principal] = {}
        self.tokens = ApiTokens(db)

    async def start(self) -> None:
        """Load or create the signing secret and the revocation list."""
        if not self.secret:
            self.secret = await kv.get_or_create(self.db, "jwt_secret", secrets.token_urlsafe(48))
        self.revoked = await users_store.revoked_tokens(self.db, time.time())

    def hash_password(self, password: str) -> str:
        """An argon2id hash of the password."""
        return self.hasher.hash(password)

    async def hash_password_async(self, password: str) -> str:
        """hash_password off the event loop (argon2 takes tens of milliseconds by design)."""
        return await asyncio.to_thread(self.hash_password, password)

    async def _verify(self, password_hash: str, password: str) -> bool:
        # argon2 is deliberately slow: keep it off the event loop.
        def check() -> bool:
            try:
                return self.hasher.verify(password_hash, password)
            except (VerificationError, InvalidHashError):
                return False

        return await asyncio.to_thread(check)

    async def login(self, username: str, password: str, address: str) -> tuple[str, User]:
        """Check credentials and return a fresh token; AuthError or LoginThrottled otherwise."""
        now = time.time()
        account, origin = f"user:{username.lower()}", f"addr:{address}"
        wait = max(
            self.throttle.retry_after(account, now),
            self.address_throttle.retry_after(origin, now),
        )
        if wait:
            raise LoginThrottled(wait)
        user = await users_store.by_username(self.db, username)
        ok = await self._verify(user.password_hash if user else self._dummy_hash, password)
        if user is None or not ok or user.disabled:
            self.throttle.failed(account, now)
            self.address_throttle.failed(origin, now)
            raise AuthError("invalid username or password")
        # Only the account's count is forgiven: the address keeps its budget, so logging in
        # to one account does not buy more guesses at others.
        self.throttle.succeeded(account)
        if self.hasher.check_needs_rehash(user.password_hash):
            await users_store.update(
                self.db,
                user.id,
                password_hash=await self.hash_password_async(password),
                keep_sessions=True,
            )
        return self.issue(user), user

    def issue(self, user: User, now: float | None = None) -> str:
        """A signed token for the user."""
        moment = now if now is not None else time.time()
        issued = int(moment)
        claims: dict[str, Any] = {
            # The exact issue time: a session revoked in the same second as a later login
            # must not take the new token with it.
            "auth_time": moment,
            "sub": user.id,
            "name": user.username,
            "role": user.role,
            "iat": issued,
            "nbf": issued,
            "exp": issued + self.settings.token_ttl_hours * 3600,
            "jti": uuid.uuid4().hex,
            "iss": self.settings.issuer,
            "aud": self.settings.audience,
        }
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> Principal:
        """Decode and check a token (signature, algorithm, every claim, revocation)."""
        known = self._verified.get(token)
        if known is not None:
            if known.expires_at <= time.time() - LEEWAY_S:
                del self._verified[token]
                raise AuthError("token expired")
            if known.jti in self.revoked:
                raise AuthError("token revoked")
            return known
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                options={"require": REQUIRED_CLAIMS},
                leeway=LEEWAY_S,
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"invalid token: {exc}") from None
        role = claims.get("role")
        if role not in ROLE_RANK:
            raise AuthError("invalid token: unknown role")
        jti = str(claims["jti"])
        if jti in self.revoked:
            raise AuthError("token revoked")
        principal = Principal(
            user_id=str(claims["sub"]),
            username=str(claims.get("name", "")),
            role=role,
            jti=jti,
            expires_at=float(claims["exp"]),
            issued_at=float(claims.get("auth_time", claims["iat"])),
        )
        if len(self._verified) >= USER_CACHE_MAX:
            self._verified.clear()
        self._verified[token] = principal
        return principal

    async def authenticate(self, token: str) -> Principal:
        """Verify a token and check its user still exists; the role is the user's current one."""
        if is_api_token(token):
            return await self._authenticate_api_token(token)
        principal = self.verify(token)
        user = await self._user(principal.user_id)
        if user is None:
            raise AuthError("the token's user no longer exists")
        _check_session(user, principal.issued_at)
        if user.role != principal.role or user.username != principal.username:
            principal = dataclasses.replace(principal, role=user.role, username=user.username)
        return principal

    async def _authenticate_api_token(self, secret: str) -> Principal:
        try:
            token = await self.tokens.check(secret)
        except TokenRejected as exc:
            raise AuthError(exc.reason) from None
        user = await self._user(token.user_id)
        if user is None:
            raise AuthError("the token's user no longer exists")
        # API tokens are credentials of their own (revoked one by one): a password change
        # leaves them, a role change caps them at once (below), a disabled account stops them.
        if user.disabled:
            raise AuthError("the account is disabled")
        principal = Principal(
            user_id=user.id,
            username=user.username,
            role=token.role,
            jti=jti_of(token.id),
            expires_at=token.expires_at if token.expires_at is not None else math.inf,
            token_id=token.id,
            role_cap=token.role,
        )
        return dataclasses.replace(principal, role=principal.role_for(user.role))

    async def _user(self, user_id: str) -> User | None:
        """The stored account, from the cache while no change to any account was made since.

        Requests that miss the cache together share one lookup (started at the same account
        generation), so a busy client does not send one query per in-flight request each time
        the entry expires."""
        now = time.monotonic()
        generation = users_store.generation()
        cached = self._users.get(user_id)
        if cached is not None and cached[1] == generation and now - cached[0] < USER_CACHE_S:
            return cached[2]
        lookup = self._lookups.get(user_id)
        if lookup is None or lookup[0] != generation:
            task = asyncio.ensure_future(self._look_up(user_id, now, generation))
            lookup = self._lookups[user_id] = (generation, task)
            task.add_done_callback(functools.partial(self._looked_up, user_id))
        # Shielded: a caller that goes away does not cancel the lookup the others wait for.
        return await asyncio.shield(lookup[1])

    async def _look_up(self, user_id: str, now: float, generation: int) -> User | None:
        user = await users_store.by_id(self.db, user_id)
        if len(self._users) >= USER_CACHE_MAX:
            self._users.clear()
        # The generation read before the lookup: a change racing it makes the entry stale.
        self._users[user_id] = (now, generation, user)
        return user

    def _looked_up(self, user_id: str, task: asyncio.Future[User | None]) -> None:
        lookup = self._lookups.get(user_id)
        if lookup is not None and lookup[1] is task:
            del self._lookups[user_id]

    async def revoke(self, principal: Principal) -> None:
        """Revoke a token until it would have expired (persisted, so it survives a restart)."""
        self.revoked[principal.jti] = principal.expires_at
        await users_store.revoke_token(self.db, principal.jti, principal.expires_at)

    def is_revoked(self, jti: str) -> bool:
        """True when the token id was revoked (or names a deleted API token)."""
        return jti in self.revoked or self.tokens.is_deleted(jti)

    async def ensure_admin(self, password: str | None) -> str | None:
        """Create the first admin account if there is none; return a generated password to print."""
        if await users_store.count_admins(self.db) > 0:
            return None
        generated = None
        if not password:
            generated = password = secrets.token_urlsafe(12)
        existing = await users_store.by_username(self.db, self.settings.admin_username)
        if existing is not None:
            await users_store.update(
                self.db, existing.id, role="admin", password_hash=self.hash_password(password)
            )
        else:
            await users_store.create(
                self.db, self.settings.admin_username, self.hash_password(password), "admin"
            )
        return generated


def _check_session(user: User, issued_at: float) -> None:
    """AuthError when the account is disabled or its tokens were revoked after `issued_at`."""
    if user.disabled:
        raise AuthError("the account is disabled")
    if issued_at < user.tokens_valid_after:
        raise AuthError("token revoked: the account's password or role changed")
