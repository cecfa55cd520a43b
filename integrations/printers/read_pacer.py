"""Printer links' socket reads paced per event-loop turn: a fleet reporting at once cannot
hold the loop, so the API and /api/health wait a few short turns, not a few long ones.

Reading a link (TLS, MQTT framing, JSON, merging the report into the printer's state) runs
in the loop's reader callback. Left alone, every socket that became readable is read in the
same turn: with thousands of links reporting that is a turn of tens of milliseconds, and a
request that needs a dozen turns waits a second. Here the reads of one turn share a budget
(`slice_s`); a link that becomes readable once it is spent is *parked*: its socket is no
longer watched, and it is read in a later turn, links parked longest first. Nothing is
dropped here: what a parked link's printer sends meanwhile waits in the socket's buffer and
is read with it (latest wins after that, in the hand-off to telemetry, hub/handoff.py).
Per turn the reads take at most the budget plus one read.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Protocol

log = logging.getLogger(__name__)

#: Seconds of link reads per event-loop turn before further readable links wait a turn.
SLICE_S = 0.004


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

    def __init__(self, loop: asyncio.AbstractEventLoop, slice_s: float = SLICE_S) -> None:
        self._loop = weakref.ref(loop)
        self.slice_s = slice_s
        self._used = 0.0  # seconds of reads in the current turn
        self._turn_reads = 0  # reads in the current turn
        self._reset_due = False  # a reset of `_used` is scheduled for the next turn
        self._resume_due = False
        self._parked: dict[PacedLink, None] = {}  # insertion-ordered: parked longest first
        self.reads = 0  # reads done
        self.deferred = 0  # reads put off to a later turn

    def __len__(self) -> int:
        """Links parked now."""
        return len(self._parked)

    def readable(self, link: PacedLink) -> None:
        """The loop found `link`'s socket readable: read it now if the turn's budget allows,
        else park it behind the links already waiting."""
        if self._parked or self._spent():
            link.park()
            self._parked[link] = None
            self.deferred += 1
            self._schedule_resume()
            return
        self._read(link)

    def _spent(self) -> bool:
        """Has this turn had its reads? (Every turn may read one link, whatever the budget.)"""
        return self._turn_reads > 0 and self._used >= self.slice_s

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
        """Runs first in the turn after one with reads: the new turn's budget is whole."""
        self._reset_due = False
        self._used = 0.0
        self._turn_reads = 0

    def _schedule_resume(self) -> None:
        loop = self._loop()
        if not self._resume_due and loop is not None and not loop.is_closed():
            self._resume_due = True
            loop.call_soon(self._resume)

    def _resume(self) -> None:
        """Read parked links, longest parked first, while this turn's budget lasts."""
        self._resume_due = False
        parked = self._parked
        while parked and not self._spent():
            link = next(iter(parked))
            del parked[link]
            if link.unpark():
                self._read(link)
        if parked:
            self._schedule_resume()

    def stats(self) -> dict[str, int]:
        """Counters for /api/metrics and tests."""
        return {"reads": self.reads, "deferred": self.deferred, "parked": len(self._parked)}


_PACERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ReadPacer] = (
    weakref.WeakKeyDictionary()
)


def pacer_of(loop: asyncio.AbstractEventLoop) -> ReadPacer:
    """The loop's read pacer (made on first use)."""
    pacer = _PACERS.get(loop)
    if pacer is None:
        pacer = _PACERS[loop] = ReadPacer(loop)
    return pacer
