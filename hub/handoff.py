"""The bounded hand-off from the printer drivers to telemetry: latest wins per printer.

Drivers report on the event loop as their data arrives; the telemetry streams take the reports
from here in slices bounded in time, yielding to the loop between slices, so the API and
/api/health keep answering however fast the fleet reports. What waits here is bounded: at most
`max_marks` reports per printer, and only reports that differ in what the streams act on.

Latest wins: a report whose *mark* (link, print state, which print, HMS errors, prints ended
unobserved) equals the one waiting before it replaces it; an old report is worth nothing once a
newer one is there, since every report carries the printer's whole state. A report with a new
mark, or whose print's progress went down (a file started again), queues behind the waiting one
instead, so no state change the print tracker
(streams/lifecycle.py) reacts to is skipped: printing → finished → idle still shows the
finish, paused → printing the resume, online → offline → online the drop. Within one mark
only temperatures, fans, progress and AMS figures change, and the streams need only the newest
of those (progress$ is the newest percent; AMS and status are latest-wins downstream too).
A printer flapping through more than `max_marks` marks before it is drained loses its oldest
waiting mark, counted separately.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from hub.model import PrinterState

log = logging.getLogger(__name__)

#: The loop runs other work after this long of feeding telemetry (a request needs a dozen
#: turns of the loop: the slice is paid once per turn).
SLICE_S = 0.005
#: Reports with distinct marks waiting per printer.
MAX_MARKS = 16


def mark(state: PrinterState) -> tuple[Any, ...]:
    """What a report must not be coalesced across: the facts the streams' trackers act on."""
    job = state.job
    return (
        state.online,
        state.connection,
        state.state,
        None if job is None else (job.key, job.file, job.started_at),
        state.errors,
        state.ended,
    )


def _fell_back(older: PrinterState, newer: PrinterState) -> bool:
    """Did progress go down? Without protocol keys that is how a file started again shows."""
    return (
        older.job is not None and newer.job is not None and newer.job.progress < older.job.progress
    )


class ReportHandoff:
    """Reports from drivers, waiting for telemetry; latest wins per printer and mark."""

    def __init__(
        self,
        sink: Callable[[PrinterState], None],
        *,
        slice_s: float = SLICE_S,
        max_marks: int = MAX_MARKS,
    ) -> None:
        self._sink = sink
        self.slice_s = slice_s
        self.max_marks = max_marks
        # Printers in the order their oldest waiting report came in; each with its reports,
        # oldest first, consecutive ones of different marks.
        self._waiting: dict[str, list[tuple[tuple[Any, ...], PrinterState]]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.offered = 0  # reports handed in
        self.delivered = 0  # reports passed on to telemetry
        self.shed = 0  # reports replaced by a newer one of the same mark
        self.shed_marks = 0  # reports of a distinct mark dropped past max_marks

    def __len__(self) -> int:
        """Reports waiting."""
        return sum(len(q) for q in self._waiting.values())

    def offer(self, state: PrinterState) -> None:
        """Hand over one report; never blocks, never grows past the bound."""
        self.offered += 1
        key = mark(state)
        queue = self._waiting.get(state.printer_id)
        if queue is None:
            self._waiting[state.printer_id] = [(key, state)]
            self._wake.set()
        elif queue[-1][0] == key and not _fell_back(queue[-1][1], state):
            queue[-1] = (key, state)
            self.shed += 1
        else:
            if len(queue) >= self.max_marks:
                del queue[0]
                self.shed_marks += 1
            queue.append((key, state))

    def drain_slice(self) -> bool:
        """Pass waiting reports on, printer by printer in arrival order, until `slice_s` is used;
        True when nothing is left."""
        waiting = self._waiting
        deadline = time.perf_counter() + self.slice_s
        while waiting:
            printer_id = next(iter(waiting))
            for _, state in waiting.pop(printer_id):
                self.delivered += 1
                try:
                    self._sink(state)
                except Exception:
                    log.exception("telemetry failed on a report of printer %s", printer_id)
            if time.perf_counter() >= deadline:
                return not waiting
        return True

    def pause(self) -> None:
        """Stop passing reports on (at shutdown: telemetry's CPU goes to stopping); they keep
        waiting, bounded as ever, for `stop` to pass on what it has time for."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self.drain_slice():
                self._wake.set()  # more is waiting: after the API, health and the sockets
                await asyncio.sleep(0)

    def start(self) -> None:
        """Start passing reports on (on the running loop)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="report-handoff")

    async def stop(self, within: float = 1.0) -> None:
        """Pass on what waits for at most `within` seconds, then stop; the rest is counted shed."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        deadline = time.monotonic() + within
        while self._waiting and time.monotonic() < deadline:
            self.drain_slice()
            await asyncio.sleep(0)
        left = len(self)
        if left:
            self.shed += left
            self._waiting.clear()
            log.warning("stopping: %d printer report(s) not passed to telemetry", left)

    def stats(self) -> dict[str, int]:
        """Counters for /api/metrics and tests."""
        return {
            "offered": self.offered,
            "delivered": self.delivered,
            "shed": self.shed,
            "shed_marks": self.shed_marks,
            "waiting": len(self),
        }
