"""Printer links' socket reads paced per event-loop turn: a fleet reporting at once cannot
hold the loop, so the API and /api/health wait a few short turns, not a few long ones.

Reading a link (TLS, MQTT framing, JSON, merging the report into the printer's state) runs
in the loop's reader callback. Left alone, every socket that became readable is read in the
same turn: with thousands of links reporting that is a turn of tens of milliseconds, and a
request that needs a dozen turns waits a second. Here the reads of one turn share a budget;
a link that becomes readable once it is spent is *parked*: its socket is no longer watched,
and it is read in a later turn, links parked longest first. Nothing is dropped here: what a
parked link's printer sends meanwhile waits in the socket's buffer and is read with it
(latest wins after that, in the hand-off to telemetry, hub/handoff.py).

Reads cannot shed: a socket's bytes come in order, the newest report and a keep-alive
answer behind the older ones. A budget that reads less than the fleet sends makes every
link wait longer and longer, until its keep-alive (5 s without a byte read) or its connect
times out and it reconnects, which costs more again. So the budget follows the rest of the
loop's work: a turn's reads may take as long as the other work of the turn before took
(`share`), at least `slice_s` and at most `max_slice_s`. Reads then get about half the
loop when they need it and telemetry's hand-off, which does shed (latest wins), the rest;
a turn stays within about twice its other work. Two more rules keep links alive:
- an *urgent* read (a link waiting for its broker to accept its connect or subscription) is
  never parked: a handshake held back keeps a connect turn, times out and starts again;
- a link parked `max_wait_s` or longer is read whatever the turn's budget. When the fleet
  sends more than the loop can read in its share, turns grow (as they did before the
  pacing) rather than links dropping and reconnecting, which would cost more again.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Protocol

log = logging.getLogger(__name__)

#: Seconds of link reads per event-loop turn, at least, before further readable links wait.
SLICE_S = 0.004
#: Reads of a turn may take this share of the previous turn's other work ...
SHARE = 1.0
#: ... but no more than this.
MAX_SLICE_S = 0.02
#: A link parked this long is read whatever the budget (the Bambu keep-alive is 5 s).
MAX_WAIT_S = 1.0


class PacedLink(Protocol):
    """A link whose reads the pacer schedules."""

    def read_now(self) -> None:
        """Read what the socket holds (the loop said it is readable)."""

    def park(self) -> None:
        """Stop watching the socket for reading: the pacer reads it in a later turn."""

    def unpark(self) -> bool:
        """Watch the socket again; False if the link closed meanwhile (nothing to read)."""


class ReadPacer:
    """One event loop's budget of link reads per turn, and the links waiting for the next."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        slice_s: float = SLICE_S,
        *,
        share: float = SHARE,
        max_slice_s: float = MAX_SLICE_S,
        max_wait_s: float = MAX_WAIT_S,
    ) -> None:
        self._loop = weakref.ref(loop)
        self.slice_s = slice_s
        self.share = share
        self.max_slice_s = max_slice_s
        self.max_wait_s = max_wait_s
        self._budget = slice_s  # seconds of reads this turn
        self._used = 0.0  # seconds of reads in the current turn
        self._turn_reads = 0  # reads in the current turn
        self._turn_started = 0.0  # perf_counter at the start of the current turn with reads
        self._reset_due = False  # a reset of `_used` is scheduled for the next turn
        self._resume_due = False
        # Insertion-ordered, parked longest first; each with when it was parked.
        self._parked: dict[PacedLink, float] = {}
        self.reads = 0  # reads done
        self.deferred = 0  # reads put off to a later turn
        self.overdue = 0  # reads past the turn's budget: the link had waited `max_wait_s`

    def __len__(self) -> int:
        """Links parked now."""
        return len(self._parked)

    def readable(self, link: PacedLink, urgent: bool = False) -> None:
        """The loop found `link`'s socket readable: read it now if it is `urgent` or the
        turn's budget allows, else park it behind the links already waiting."""
        if not urgent and (self._parked or self._spent(self._budget)):
            link.park()
            self._parked[link] = time.monotonic()
            self.deferred += 1
            self._schedule_resume()
            return
        self._read(link)

    def _spent(self, budget: float) -> bool:
        """Has this turn had its reads? (Every turn may read one link, whatever the budget.)"""
        return self._turn_reads > 0 and self._used >= budget

    def discard(self, link: PacedLink) -> None:
        """Forget `link` (it closed)."""
        self._parked.pop(link, None)

    def _read(self, link: PacedLink) -> None:
        if not self._reset_due:
            loop = self._loop()
            if loop is not None:
                self._reset_due = True
                loop.call_soon(self._next_turn)
        started = time.perf_counter()
        try:
            link.read_now()
        except Exception:  # a link's own failure must not stop the others' reads
            log.exception("reading a printer link failed")
        finally:
            self._used += time.perf_counter() - started
            self._turn_reads += 1
            self.reads += 1

    def _next_turn(self) -> None:
        """Runs first in the turn after one with reads: the new turn's budget is whole, and
        as large as the other work of the turn before (within the bounds)."""
        now = time.perf_counter()
        other = now - self._turn_started - self._used
        self._budget = min(self.max_slice_s, max(self.slice_s, self.share * other))
        self._turn_started = now
        self._reset_due = False
        self._used = 0.0
        self._turn_reads = 0

    def _schedule_resume(self) -> None:
        loop = self._loop()
        if not self._resume_due and loop is not None and not loop.is_closed():
            self._resume_due = True
            loop.call_soon(self._resume)

    def _resume(self) -> None:
        """Read parked links, longest parked first, while this turn's budget lasts, and
        every link that has waited `max_wait_s` whatever the budget."""
        self._resume_due = False
        parked = self._parked
        overdue_since = time.monotonic() - self.max_wait_s
        while parked:
            link, since = next(iter(parked.items()))
            overdue = since <= overdue_since
            if not overdue and self._spent(self._budget):
                break
            del parked[link]
            if link.unpark():
                if overdue and self._spent(self._budget):
                    self.overdue += 1
                self._read(link)
        if parked:
            self._schedule_resume()

    def stats(self) -> dict[str, int]:
        """Counters for /api/metrics and tests."""
        return {
            "reads": self.reads,
            "deferred": self.deferred,
            "overdue": self.overdue,
            "parked": len(self._parked),
        }


_PACERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ReadPacer] = (
    weakref.WeakKeyDictionary()
)


def pacer_of(loop: asyncio.AbstractEventLoop) -> ReadPacer:
    """The loop's read pacer (made on first use)."""
    pacer = _PACERS.get(loop)
    if pacer is None:
        pacer = _PACERS[loop] = ReadPacer(loop)
    return pacer
