"""Whether the database answers, asked once for every health request that arrives meanwhile."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

#: An answer from a probe begun this recently stands: no new probe for a request.
FRESH_S = 0.5
#: While a new probe runs, an answer from a probe begun this recently stands instead of waiting.
STALE_S = 2.0


class DatabaseCheck:
    """One probe (a trivial query) at a time, off the request's path when it can be.

    A request finds the answer of a probe begun less than `FRESH_S` ago and uses it. Past
    that it starts a probe (unless one runs) and, if the last answer is less than `STALE_S`
    old, answers with it at once; the probe's answer is there for the next request. Only
    when the last answer is older does a request wait for the probe. On a crowded event loop
    a probe takes several turns of the loop (trips to the database's thread and back), and a
    health request that waited for one took them all on top of its own; many monitors, or
    one polling fast, now cost at most one query per `FRESH_S`, and a database that stops
    answering shows within one probe's time plus `FRESH_S`.
    """

    def __init__(
        self,
        query: Callable[[], Awaitable[object]],
        fresh_s: float = FRESH_S,
        stale_s: float = STALE_S,
    ) -> None:
        self._query = query
        self._fresh_s = fresh_s
        self._stale_s = stale_s
        self._running: asyncio.Future[bool] | None = None
        self._answer = False
        self._asked_at = float("-inf")
        self.probes = 0

    async def ok(self) -> bool:
        """True when the database answered the latest probe."""
        age = time.monotonic() - self._asked_at
        if age < self._fresh_s:
            return self._answer
        if self._running is None:
            self._running = asyncio.ensure_future(self._probe())
        if age < self._stale_s:
            return self._answer
        # A request that goes away does not cancel the probe the others wait for.
        return await asyncio.shield(self._running)

    async def _probe(self) -> bool:
        started = time.monotonic()
        self.probes += 1
        try:
            await self._query()
            answer = True
        except Exception:
            answer = False
        finally:
            self._running = None
        self._answer, self._asked_at = answer, started
        return answer
