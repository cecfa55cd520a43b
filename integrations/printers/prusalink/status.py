"""PrusaLink `/api/v1/status` and `/api/v1/job` mapped to PrinterState."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from hub.model import HmsError, Job, PrinterState, PrintState, Temperatures
from integrations.printers.values import as_float, as_int

_STATES = {
    "IDLE": PrintState.IDLE,
    "READY": PrintState.IDLE,
    "PRINTING": PrintState.PRINTING,
    "PAUSED": PrintState.PAUSED,
    "FINISHED": PrintState.FINISHED,
    "STOPPED": PrintState.CANCELLED,
    "ERROR": PrintState.ERROR,
}
_ENDED = (PrintState.FINISHED, PrintState.CANCELLED)


def job_file_name(job: dict[str, Any] | None) -> str | None:
    """The display name of a `/api/v1/job` body's file."""
    file = job.get("file") if isinstance(job, dict) else None
    if not isinstance(file, dict):
        return None
    name = file.get("display_name") or file.get("name") or file.get("path")
    return str(name) if name else None


class PrusaLinkStatus:
    """Maps polled bodies to state, remembering the last job so a finished one keeps its file."""

    def __init__(self) -> None:
        self.job_id: int | None = None
        self.job_file: str | None = None
        self._started_at: float | None = None
        self._last_job: Job | None = None
        self.job_grams: float | None = None

    def needs_job_details(self, status: dict[str, Any]) -> bool:
        """Whether `/api/v1/job` must be fetched (a job we have no file name for)."""
        job = status.get("job")
        job_id = as_int(job.get("id")) if isinstance(job, dict) else None
        return job_id is not None and (job_id != self.job_id or self.job_file is None)

    def note_job(self, details: dict[str, Any] | None) -> None:
        """Remember the id and file of the current job (None body: no job)."""
        if not isinstance(details, dict):
            return
        job_id = as_int(details.get("id"))
        if job_id != self.job_id:
            self._started_at = None
        self.job_id = job_id
        self.job_file = job_file_name(details)
        file = details.get("file")
        meta = file.get("meta") if isinstance(file, dict) else None
        # The slicer's estimate for the whole file, from its G-code header.
        self.job_grams = as_float(meta.get("filament used [g]")) if isinstance(meta, dict) else None

    def _job(self, state: PrintState, job: dict[str, Any] | None) -> Job | None:
        if isinstance(job, dict) and as_int(job.get("id")) is not None:
            job_id = as_int(job.get("id"))
            if job_id != self.job_id:
                self.job_id, self.job_file, self._started_at = job_id, None, None
                self.job_grams = None
            printing = as_int(job.get("time_printing"))
            if self._started_at is None:
                self._started_at = time.time() - (printing or 0)
            progress = as_float(job.get("progress")) or 0.0
            self._last_job = Job(
                file=self.job_file or "",
                progress=100.0 if state is PrintState.FINISHED else progress,
                remaining_s=as_int(job.get("time_remaining")),
                started_at=self._started_at,
                key=str(job_id),
                filament_g=self.job_grams,
            )
            return self._last_job
        if state in _ENDED and self._last_job is not None:
            # The job object can vanish right after the end; keep what we knew of it.
            if state is PrintState.FINISHED:
                return replace(self._last_job, progress=100.0, remaining_s=0)
            return self._last_job
        return None

    def to_state(self, printer_id: str, status: dict[str, Any]) -> PrinterState:
        """Build the normalized snapshot from a `/api/v1/status` body."""
        printer = status.get("printer")
        if not isinstance(printer, dict):
            printer = {}
        job = status.get("job")
        if not isinstance(job, dict):
            job = None
        raw_state = str(printer.get("state") or "IDLE").upper()
        has_job = job is not None
        errors: tuple[HmsError, ...] = ()
        if raw_state == "BUSY":
            state = PrintState.PREPARING if has_job else PrintState.IDLE
        elif raw_state == "ATTENTION":
            # The printer waits for a human (runout, crash detection...): a print is held.
            state = PrintState.PAUSED if has_job else PrintState.ERROR
            errors = (HmsError(code="PRUSA_ATTENTION", text="printer needs attention",
                               severity="warning"),)  # fmt: skip
        else:
            state = _STATES.get(raw_state, PrintState.IDLE)
            if state is PrintState.ERROR:
                errors = (HmsError(code="PRUSA_ERROR", text="printer reports an error"),)
        if state is PrintState.IDLE:
            self._last_job = None
        return PrinterState(
            printer_id=printer_id,
            online=True,
            state=state,
            job=self._job(state, job),
            temps=Temperatures(
                nozzle=as_float(printer.get("temp_nozzle")),
                nozzle_target=as_float(printer.get("target_nozzle")),
                bed=as_float(printer.get("temp_bed")),
                bed_target=as_float(printer.get("target_bed")),
            ),
            errors=errors,
        )
