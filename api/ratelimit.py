"""Per-client rate limiting (requests per minute plus a per-second burst cap)."""

from __future__ import annotations

import abc
import math
import time
from collections import deque
from typing import NamedTuple


class Decision(NamedTuple):
    """The outcome of counting one request against a client's limits."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: int
    retry_after: int


class RateLimitStore(abc.ABC):
    """Where request counts live: in-process now, a shared store when hubs scale out."""

    @abc.abstractmethod
    def hit(self, key: str, now: float) -> Decision:
        """Count one request for `key` and say whether it is allowed."""


class MemoryRateLimitStore(RateLimitStore):
    """Sliding-window counters in this process (one deque of recent request times per client)."""

    def __init__(self, per_minute: int, per_second: int, max_clients: int = 100_000) -> None:
        self.per_minute = per_minute
        self.per_second = per_second
        self.max_clients = max_clients
        self._hits: dict[str, deque[float]] = {}
        # The same hits younger than a second, so the burst check costs O(1), not O(hits).
        self._second: dict[str, deque[float]] = {}

    def _prune(self, now: float) -> None:
        # Bound memory: drop clients whose last request left the window.
        for key in [k for k, q in self._hits.items() if not q or q[-1] <= now - 60]:
            del self._hits[key]
            self._second.pop(key, None)

    def hit(self, key: str, now: float) -> Decision:
        """Count one request for `key` and say whether it is allowed."""
        q = self._hits.get(key)
        if q is None:
            if len(self._hits) >= self.max_clients:
                self._prune(now)
            q = self._hits[key] = deque()
        second = self._second.get(key)
        if second is None:
            second = self._second[key] = deque()
        window_start = now - 60.0
        while q and q[0] <= window_start:
            q.popleft()
        second_start = now - 1.0
        while second and second[0] <= second_start:
            second.popleft()
        in_last_second = len(second)
        if len(q) >= self.per_minute:
            retry = max(1, math.ceil(q[0] + 60.0 - now))
            return Decision(False, self.per_minute, 0, retry, retry)
        if in_last_second >= self.per_second:
            # The oldest request within the last second must age out first.
            oldest_in_second = q[-self.per_second]
            retry = max(1, math.ceil(oldest_in_second + 1.0 - now))
            return Decision(False, self.per_minute, self.per_minute - len(q), retry, retry)
        q.append(now)
        second.append(now)
        reset = max(1, math.ceil(q[0] + 60.0 - now))
        return Decision(True, self.per_minute, self.per_minute - len(q), reset, 0)


class RateLimiter:
    """Applies a store's decisions and formats the RateLimit-* headers."""

    def __init__(self, store: RateLimitStore, per_minute: int, per_second: int) -> None:
        self.store = store
        self.policy = f"{per_minute};w=60, {per_second};w=1"

    def check(self, key: str, now: float | None = None) -> tuple[Decision, dict[str, str]]:
        """Count a request; return the decision and the headers to send."""
        decision = self.store.hit(key, time.monotonic() if now is None else now)
        headers = {
            "RateLimit-Limit": str(decision.limit),
            "RateLimit-Remaining": str(decision.remaining),
            "RateLimit-Reset": str(decision.reset_s),
            "RateLimit-Policy": self.policy,
        }
        if not decision.allowed:
            headers["Retry-After"] = str(decision.retry_after)
        return decision, headers
