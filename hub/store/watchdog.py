"""Notice PostgreSQL waits that last: cut the pool loose when the server no longer answers, and
cut one connection whose link went silent while the server answers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)

#: A database wait (acquire, statement, BEGIN/COMMIT, release) older than this asks for a probe.
STALL_S = 0.25
#: While a wait goes on, it asks again this often.
RECHECK_S = 0.25
#: A probe that found the server up stands for this long for waits older than it.
PROBE_EVERY_S = 1.0
#: A wait on a connection this old, whose server session has been idle at least this long
#: (the server is done and waits for the client), is on a silent link: that connection is cut.
SILENT_S = 1.0

#: A probe's budget is counted in time the event loop was free to run it, checked this often.
BUDGET_TICK_S = 0.05
#: ... but never longer, in wall time, than this many budgets.
BUDGET_WALL_CAP = 4.0

#: Asks the server, on a fresh connection, whether it answers; given the server pids of
#: connections that wait, says which of them the server has had idle for `SILENT_S` or more.
#: None: no answer (the server, or the link to it, is gone).
Probe = Callable[[Collection[int]], Awaitable["set[int] | None"]]


class Watchdog:
    """Tells a slow database from one that does not answer, and acts on the second.

    Every database wait is watched. One that lasts past `STALL_S` asks for a probe: a fresh
    connection and `SELECT 1`, bounded by the connect timeout (one probe at a time, shared by
    every wait that asks). A probe that gets an answer, even an error, means the server is
    there and the work is only slow: it goes on, however long it takes (an export, a
    migration). A probe that gets no answer means the link is gone: `on_down` is called (the
    database then terminates every pooled connection, so each wait on them fails at once as
    an outage: a 503 for a request, a retry for a writer).

    One pooled connection can go silent alone (a half-open link: a NAT or firewall that lost
    its state, a peer that vanished) while new connections work. The probe then also asks the
    server (pg_stat_activity) about the sessions of the connections whose wait passed
    `SILENT_S`: a session the server has had idle (or idle in a transaction) that long has
    nothing running for the client, so the answer the client waits for is lost on the way,
    or the request never arrived. That connection alone is cut (`cut`), and its wait fails as
    an outage. A session the server reports active (a long statement, a lock wait) is left
    alone, however long it takes. TCP keepalive would not tell: the kernel at the near end of a
    half-open link through a middlebox acknowledges the probes.
    """

    def __init__(
        self,
        probe: Probe,
        on_down: Callable[[], None],
        *,
        pid_of: Callable[[Any, asyncio.Task[Any] | None], int | None] = lambda _l, _t: None,
        cut: Callable[[Any], None] = lambda _link: None,
    ) -> None:
        self._probe = probe
        self._on_down = on_down
        self._pid_of = pid_of
        self._cut = cut
        self._probing: asyncio.Task[None] | None = None
        self._last_probe_at = float("-inf")  # monotonic start of the last finished probe
        self._stalled: set[Watch] = set()  # waits past STALL_S, still going
        self.probes = 0
        self.downs = 0
        self.asked = 0  # sessions asked about (waits past SILENT_S on a connection)
        self.cuts = 0

    def watch(self, link: Any = None) -> Watch:
        """Watch the database wait run inside the `with` block (on `link`, a connection
        `pid_of` and `cut` understand, when the wait is on one; `pid_of` is given the waiting
        task too, and answers None when that task waits for another's turn on the link)."""
        return Watch(self, link)

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

    def _suspects(self, now: float) -> dict[int, Watch]:
        """The waits on a connection older than `SILENT_S`, by their server pid."""
        found: dict[int, Watch] = {}
        for watch in self._stalled:
            if now - watch.since < SILENT_S or watch.link is None:
                continue
            try:
                pid = self._pid_of(watch.link, watch.task)
            except Exception:
                pid = None
            if pid is not None:
                found[pid] = watch
        return found

    async def _run_probe(self) -> None:
        started = time.monotonic()
        self.probes += 1
        suspects = self._suspects(started)
        self.asked += len(suspects)
        idle: set[int] | None
        try:
            idle = await self._probe(list(suspects))
        except Exception:
            log.exception("database probe failed")
            idle = set()  # a bug in the probe is no reason to cut live connections
        finally:
            self._last_probe_at = started
            self._probing = None
        if idle is None:
            self.downs += 1
            log.warning("the database does not answer: dropping its pooled connections")
            self._on_down()
            return
        for pid in idle:
            watch = suspects.get(pid)
            if watch is None or watch not in self._stalled:
                continue  # not asked about, or its wait ended meanwhile: the link answered
            self.cuts += 1
            log.warning(
                "database connection (server pid %d) waited %.1f s on a session the server has "
                "idle: its link is silent, dropping it",
                pid,
                time.monotonic() - watch.since,
            )
            self._cut(watch.link)

    async def close(self) -> None:
        """Stop a probe still running."""
        task = self._probing
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class Watch:
    """One database wait: past `STALL_S`, and every `RECHECK_S` after, it asks for a probe."""

    __slots__ = ("_dog", "_handle", "_loop", "link", "since", "task")

    def __init__(self, dog: Watchdog, link: Any = None) -> None:
        self._dog = dog
        self.link = link
        self.task: asyncio.Task[Any] | None = None
        self.since = 0.0
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __enter__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.task = asyncio.current_task()
        self.since = time.monotonic()
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
        self._dog._stalled.discard(self)

    def _check(self) -> None:
        assert self._loop is not None
        self._dog._stalled.add(self)
        self._dog._ask(self.since)
        self._handle = self._loop.call_later(RECHECK_S, self._check)


async def within_loop_budget(aw: Awaitable[T], budget_s: float) -> T:
    """Await `aw` for `budget_s` of time the event loop was free to run it, else TimeoutError.

    Time the loop spent elsewhere (a long callback, a process starved of CPU: seen as a
    late wake-up) is not charged, so a busy hub does not take a slow answer for none; a wall
    time of `BUDGET_WALL_CAP` budgets ends the wait however busy the loop was.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(aw)
    started = loop.time()
    charged = 0.0
    try:
        while True:
            asked = loop.time()
            done, _ = await asyncio.wait({task}, timeout=BUDGET_TICK_S)
            if done:
                return task.result()
            now = loop.time()
            charged += min(now - asked, BUDGET_TICK_S)  # a late wake-up is not the server's
            if charged >= budget_s or now - started >= BUDGET_WALL_CAP * budget_s:
                raise TimeoutError
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
