"""OctoPrint `/api/printer` and `/api/job` mapped to PrinterState."""

from __future__ import annotations

import time
from typing import Any

from hub.model import HmsError, Job, PrinterState, PrintState, Temperatures

# Completion at or above this when a print leaves the active states means it finished.
_DONE_PERCENT = 99.9


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class OctoPrintStatus:
    """Infers job outcomes, which OctoPrint's REST state ("Operational") does not keep."""

    def __init__(self) -> None:
        self._active = False
        self._cancelling = False
        self._outcome: PrintState | None = None
        self._started_at: float | None = None
        self._last_job: Job | None = None

    def link_lost(self) -> None:
        """Forget a print in flight: how it ended while we were not looking is unknown."""
        if self._active:
            self._active, self._cancelling, self._outcome = False, False, None

    def _print_state(self, flags: dict[str, Any], job_state: str, progress: float) -> PrintState:
        if flags.get("cancelling"):
            self._cancelling = True
        if (
            flags.get("printing")
            or flags.get("paused")
            or flags.get("pausing")
            or flags.get("cancelling")
        ):
            if not self._active:
                self._active, self._outcome, self._started_at = True, None, None
            # "Pausing" still runs the pause script and OctoPrint drops a resume sent
            # then; only a finished pause is PAUSED, so resume waits for it.
            if flags.get("paused") and not flags.get("pausing"):
                return PrintState.PAUSED
            return PrintState.PREPARING if job_state.startswith("Starting") else PrintState.PRINTING
        if self._active:
            # The print just left the active states: decide once how it ended.
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
        if state in (PrintState.IDLE, PrintState.ERROR, PrintState.OFFLINE):
            return None
        if state in (PrintState.FINISHED, PrintState.CANCELLED, PrintState.FAILED):
            return self._last_job
        progress = _dict(job.get("progress"))
        print_time = _float(progress.get("printTime"))
        if self._started_at is None:
            self._started_at = time.time() - (print_time or 0.0)
        left = _float(progress.get("printTimeLeft"))
        file = _dict(_dict(job.get("job")).get("file"))
        done = _float(progress.get("completion")) or 0.0
        filament = _dict(_dict(job.get("job")).get("filament"))
        # The slicer's length for the whole file, summed over the tools.
        lengths = [_float(_dict(tool).get("length")) for tool in filament.values()]
        known = [length for length in lengths if length is not None]
        self._last_job = Job(
            file=str(file.get("display") or file.get("name") or ""),
            progress=round(done, 2),
            remaining_s=int(left) if left is not None else None,
            started_at=self._started_at,
            filament_mm=sum(known) if known else None,
        )
        return self._last_job

    def to_state(
        self, printer_id: str, printer: dict[str, Any] | None, job: dict[str, Any]
    ) -> PrinterState:
        """Build the snapshot; `printer` is None when OctoPrint answered 409 (not operational)."""
        job_state = str(job.get("state") or "")
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
        completion = _float(_dict(job.get("progress")).get("completion")) or 0.0
        state = self._print_state(flags, job_state, completion)
        if state is PrintState.FINISHED and self._last_job is not None:
            self._last_job = Job(
                file=self._last_job.file, progress=100.0, remaining_s=0,
                started_at=self._last_job.started_at, filament_mm=self._last_job.filament_mm,
            )  # fmt: skip
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
                nozzle=_float(tool.get("actual")),
                nozzle_target=_float(tool.get("target")),
                bed=_float(bed.get("actual")),
                bed_target=_float(bed.get("target")),
                chamber=_float(chamber.get("actual")),
            ),
            errors=errors,
        )
