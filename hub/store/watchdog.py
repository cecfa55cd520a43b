"""Notice PostgreSQL waits that last, and cut the pool loose when the server no longer answers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from types import TracebackType

log = logging.getLogger(__name__)

#: A database wait (acquire, statement, BEGIN/COMMIT, release) older than this asks for a probe.
STALL_S = 0.25
#: While a wait goes on, it asks again this often.
RECHECK_S = 0.25
#: A probe that found the server up stands for this long for waits older than it.
PROBE_EVERY_S = 1.0


class Watchdog:
    """Tells a slow database from one that does not answer, and acts on the second.

    Every database wait is watched. One that lasts past `STALL_S` asks for a probe: a fresh
    connection and `SELECT 1`, bounded by the connect timeout (one probe at a time, shared by
    every wait that asks). A probe that gets an answer, even an error, means the server is
    there and the work is only slow: it goes on, however long it takes (an export, a
    migration). A probe that gets no answer means the link is gone: `on_down` is called (the
    database then terminates every pooled connection, so each wait on them fails at once as
    an outage: a 503 for a request, a retry for a writer).
    """

    def __init__(self, probe: Callable[[], Awaitable[bool]], on_down: Callable[[], None]) -> None:
        self._probe = probe
        self._on_down = on_down
        self._probing: asyncio.Task[None] | None = None
        self._last_probe_at = float("-inf")  # monotonic start of the last finished probe
        self.probes = 0
        self.downs = 0

    def watch(self) -> Watch:
        """Watch the database wait run inside the `with` block."""
        return Watch(self)

    def _ask(self, since: float) -> None:
        """A wait that began at `since` is still going: probe, unless a probe is running or
        one began after the wait did and less than `PROBE_EVERY_S` ago (it found the server
        up, so the wait is only slow)."""
        if self._probing is not None:
            return
        recent = time.monotonic() - self._last_probe_at < PROBE_EVERY_S
        if self._last_probe_at >= since and recent:
            return
        self._probing = asyncio.get_running_loop().create_task(self._run_probe())

    async def _run_probe(self) -> None:
        started = time.monotonic()
        self.probes += 1
        try:
            alive = await self._probe()
        except Exception:
            log.exception("database probe failed")
            alive = True  # a bug in the probe is no reason to cut live connections
        finally:
            self._last_probe_at = started
            self._probing = None
        if not alive:
            self.downs += 1
            log.warning("the database does not answer: dropping its pooled connections")
            self._on_down()

    async def close(self) -> None:
        """Stop a probe still running."""
        task = self._probing
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class Watch:
    """One database wait: past `STALL_S`, and every `RECHECK_S` after, it asks for a probe."""

    __slots__ = ("_dog", "_handle", "_loop", "_since")

    def __init__(self, dog: Watchdog) -> None:
        self._dog = dog
        self._since = 0.0
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __enter__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._since = time.monotonic()
        self._handle = self._loop.call_later(STALL_S, self._check)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _check(self) -> None:
        assert self._loop is not None
        self._dog._ask(self._since)
        self._handle = self._loop.call_later(RECHECK_S, self._check)
