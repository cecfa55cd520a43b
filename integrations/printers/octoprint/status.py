"""OctoPrint `/api/printer`, `/api/job` and push events mapped to PrinterState.

OctoPrint has no job id, and its REST state ("Operational") keeps no outcome. The print
events of its push socket (`PrintStarted`, `PrintDone`, `PrintFailed`, `PrintCancelled`) are
what tells prints apart: each `PrintStarted` gets a key of its own, so the same file started
again is another print, and the end events give the outcome. Without the socket the outcome
is inferred from the polled flags, as before.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import replace
from typing import Any

from hub.model import HmsError, Job, PrinterState, PrintState, Temperatures
from integrations.printers.values import as_float

# Completion at or above this when a print leaves the active states means it finished.
_DONE_PERCENT = 99.9
# A poll answered just after a PrintStarted event may still show the printer idle.
_START_GRACE_S = 3.0
_END_EVENTS = {"PrintDone": PrintState.FINISHED, "PrintCancelled": PrintState.CANCELLED}
_FINAL = (PrintState.FINISHED, PrintState.CANCELLED, PrintState.FAILED)
_keys = itertools.count(1)
# OctoPrint's states for a printer error (the second drops the serial link: /api/printer 409).
_ERROR_STATES = ("Error", "Offline after error")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class OctoPrintStatus:
    """Tracks the current print across polls and push events."""

    def __init__(self) -> None:
        self.events = False  # the push socket is up: its events decide starts and ends
        self._active = False
        self._cancelling = False
        self._outcome: PrintState | None = None
        self._key: str | None = None
        self._started_at: float | None = None
        self._started_mono = 0.0
        self._last_job: Job | None = None
        self._file: str | None = None  # the file named by the print's start event
        self._event_mono = 0.0  # when the last print event arrived
        self._stale = False  # the polled bodies were asked for before the last print event
        self.printer: dict[str, Any] | None = None  # the last polled bodies
        self.job: dict[str, Any] = {}

    def link_lost(self) -> None:
        """Forget the print in flight and any final state: how it ended while the hub was not
        looking is for the print tracker to settle, and an old outcome is not the state now."""
        self._active, self._cancelling, self._outcome = False, False, None
        self._key = self._started_at = self._last_job = self._file = None
        self.events = False

    def on_event(self, kind: str, payload: dict[str, Any]) -> bool:
        """Apply one push event; True when it changed the print's state."""
        if kind == "PrintStarted":
            name = str(payload.get("name") or payload.get("path") or "")
            self._active, self._outcome, self._cancelling = True, None, False
            self._key = f"print-{time.time_ns()}-{next(_keys)}"
            self._started_at, self._started_mono = time.time(), time.monotonic()
            self._file = name or None
            self._last_job = Job(file=name, started_at=self._started_at, key=self._key)
            self._event_mono = self._started_mono
            self._stale = True
            return True
        outcome = _END_EVENTS.get(kind)
        if kind == "PrintFailed":
            if self._outcome is PrintState.CANCELLED:
                return False  # OctoPrint follows PrintCancelled with PrintFailed
            cancelled = payload.get("reason") == "cancelled"
            outcome = PrintState.CANCELLED if cancelled else PrintState.FAILED
        if outcome is None:
            return False
        self._event_mono, self._stale = time.monotonic(), True
        self._active, self._cancelling, self._outcome = False, False, outcome
        if self._last_job is not None and outcome is PrintState.FINISHED:
            self._last_job = replace(self._last_job, progress=100.0, remaining_s=0)
        return True

    def _print_state(self, flags: dict[str, Any], job_state: str, progress: float) -> PrintState:
        if flags.get("cancelling"):
            self._cancelling = True
        busy = bool(
            flags.get("printing")
            or flags.get("paused")
            or flags.get("pausing")
            or flags.get("cancelling")
        )
        if busy and not self._active and self.events and self._outcome is not None:
            # Still cancelling or finishing, or polled before the end event: a new print
            # always comes with its own PrintStarted.
            return self._outcome
        if not busy and self._active and self.events:
            if self._stale or time.monotonic() - self._started_mono < _START_GRACE_S:
                busy = True  # polled before the start event, or OctoPrint still starting
        if busy:
            if not self._active:
                # A print the hub did not see start (joined mid-print): no key, no start time.
                self._active, self._outcome = True, None
                self._key = self._started_at = self._file = None
            # "Pausing" still runs the pause script and OctoPrint drops a resume sent
            # then; only a finished pause is PAUSED, so resume waits for it.
            if flags.get("paused") and not flags.get("pausing"):
                return PrintState.PAUSED
            return PrintState.PREPARING if job_state.startswith("Starting") else PrintState.PRINTING
        if self._active:
            # The print left the active states without an end event: decide once how it ended.
            self._active = False
            if flags.get("error"):
                self._outcome = PrintState.FAILED
            elif self._cancelling or progress < _DONE_PERCENT:
                self._outcome = PrintState.CANCELLED
            else:
                self._outcome = PrintState.FINISHED
            self._cancelling = False
        if flags.get("error"):
            return PrintState.ERROR
        return self._outcome or PrintState.IDLE

    def _job(self, state: PrintState, job: dict[str, Any]) -> Job | None:
        if state in (PrintState.ERROR, PrintState.OFFLINE):
            return None
        if state in _FINAL:
            return self._last_job
        progress = _dict(job.get("progress"))
        file = _dict(_dict(job.get("job")).get("file"))
        name = str(file.get("display") or file.get("name") or "")
        if self._key is not None and self._file:
            name = self._file  # the start event names the print's file; a poll may be older
        done = as_float(progress.get("completion"))
        if state is PrintState.IDLE:
            # The last job OctoPrint still shows: how far it got, for a print that ended
            # while the hub was away (no start time, no key: it is matched by file and progress).
            return Job(file=name, progress=round(done, 2)) if name and done is not None else None
        left = as_float(progress.get("printTimeLeft"))
        if self._stale and self._key is not None:
            done, left = 0.0, None  # polled before this print started: the last print's numbers
        filament = _dict(_dict(job.get("job")).get("filament"))
        # The slicer's length for the whole file, summed over the tools.
        lengths = [as_float(_dict(tool).get("length")) for tool in filament.values()]
        known = [length for length in lengths if length is not None]
        self._last_job = Job(
            file=name or (self._last_job.file if self._last_job else ""),
            progress=round(done or 0.0, 2),
            remaining_s=int(left) if left is not None else None,
            started_at=self._started_at,
            key=self._key,
            filament_mm=sum(known) if known else None,
        )
        return self._last_job

    def to_state(
        self,
        printer_id: str,
        printer: dict[str, Any] | None,
        job: dict[str, Any],
        asked_at: float | None = None,
    ) -> PrinterState:
        """Build the snapshot from a poll asked at monotonic `asked_at`; `printer` is None when
        OctoPrint answered 409 (not operational)."""
        self.printer, self.job = printer, job
        asked = time.monotonic() if asked_at is None else asked_at
        self._stale = asked < self._event_mono
        return self.current(printer_id)

    def current(self, printer_id: str) -> PrinterState:
        """The snapshot from the last polled bodies and the events since."""
        printer, job = self.printer, self.job
        job_state = str(job.get("state") or "")
        if printer is None and job_state.startswith(_ERROR_STATES):
            # The serial link went down on a printer error: that is how a print fails, and
            # the push event saying so may never come (socket down, or it lost the race).
            if self._active:
                self._active, self._cancelling, self._outcome = False, False, PrintState.FAILED
            return PrinterState(
                printer_id=printer_id,
                online=True,
                state=PrintState.ERROR,
                errors=(HmsError(code="OCTOPRINT_ERROR", text=job_state),),
            )
        if printer is None:
            return PrinterState(
                printer_id=printer_id,
                online=True,
                state=PrintState.OFFLINE,
                errors=(
                    HmsError(
                        code="OCTOPRINT_NOT_OPERATIONAL",
                        text=f"OctoPrint has no operational printer ({job_state or 'offline'})",
                    ),
                ),
            )
        flags = _dict(_dict(printer.get("state")).get("flags"))
        completion = as_float(_dict(job.get("progress")).get("completion")) or 0.0
        state = self._print_state(flags, job_state, completion)
        if state is PrintState.FINISHED and self._last_job is not None:
            self._last_job = replace(self._last_job, progress=100.0, remaining_s=0)
        temps = _dict(printer.get("temperature"))
        tool, bed, chamber = (_dict(temps.get(k)) for k in ("tool0", "bed", "chamber"))
        errors: tuple[HmsError, ...] = ()
        if state is PrintState.ERROR:
            text = str(_dict(printer.get("state")).get("error") or job.get("error") or job_state)
            errors = (HmsError(code="OCTOPRINT_ERROR", text=text or "printer error"),)
        return PrinterState(
            printer_id=printer_id,
            online=True,
            state=state,
            job=self._job(state, job),
            temps=Temperatures(
                nozzle=as_float(tool.get("actual")),
                nozzle_target=as_float(tool.get("target")),
                bed=as_float(bed.get("actual")),
                bed_target=as_float(bed.get("target")),
                chamber=as_float(chamber.get("actual")),
            ),
            errors=errors,
        )
