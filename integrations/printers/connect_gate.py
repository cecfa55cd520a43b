"""A hub-wide bound on printer connects in progress: a fleet starting at once takes turns.

A connect (TCP, TLS, the protocol's handshake and first request) costs the hub far more than
a report over a link that is up. Thousands of them at once starve each other: each waits for
the CPU until its own timeout, is retried, and the fleet never comes online. The gate lets
`limit` links connect at a time; the others wait their turn before their connect timeout
starts counting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

DEFAULT_LIMIT = 64

Release = Callable[[], None]


class ConnectGate:
    """At most `limit` connects in progress; `enter` waits for a turn and returns its release."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        if limit < 1:
            raise ValueError(f"the connect limit must be at least 1, got {limit}")
        self.limit = limit
        self._free = asyncio.Semaphore(limit)
        self.in_progress = 0
        self.peak = 0  # the most connects ever in progress at once
        self.waiting = 0  # links waiting for a turn now
        self.admitted = 0  # turns given since start

    async def enter(self) -> Release:
        """Wait for a turn; the returned function ends it (calling it again does nothing)."""
        self.waiting += 1
        try:
            await self._free.acquire()
        finally:
            self.waiting -= 1
        self.in_progress += 1
        self.admitted += 1
        self.peak = max(self.peak, self.in_progress)
        done = False

        def release() -> None:
            nonlocal done
            if not done:
                done = True
                self.in_progress -= 1
                self._free.release()

        return release

    def stats(self) -> dict[str, int]:
        """Counters for /api/metrics and tests."""
        return {
            "waiting": self.waiting,
            "connecting": self.in_progress,
            "admitted": self.admitted,
            "peak": self.peak,
        }
