"""Klipper printer objects (as Moonraker reports them) mapped to PrinterState."""

from __future__ import annotations

import time
from typing import Any

from hub.model import EndedJob, HmsError, Job, PrinterState, PrintState, Temperatures
from integrations.printers.merge import merge
from integrations.printers.values import as_float, as_int

SUBSCRIBED_OBJECTS = (
    "print_stats", "virtual_sdcard", "extruder", "heater_bed", "display_status", "webhooks",
)  # fmt: skip

_PRINT_STATES = {
    "standby": PrintState.IDLE,
    "printing": PrintState.PRINTING,
    "paused": PrintState.PAUSED,
    "complete": PrintState.FINISHED,
    "error": PrintState.FAILED,
    "cancelled": PrintState.CANCELLED,
}
# Klipper not ready: an error or shutdown needs a human (ERROR); while it starts or
# is disconnected from Moonraker there is simply no printer yet (OFFLINE).
_KLIPPY_STATES = {
    "error": PrintState.ERROR,
    "shutdown": PrintState.ERROR,
    "startup": PrintState.OFFLINE,
    "disconnected": PrintState.OFFLINE,
}


# How Moonraker's job history says a job ended → the hub's outcome. "server_exit": Moonraker
# stopped while Klipper may have printed on, so nobody knows.
HISTORY_OUTCOMES = {
    "completed": "finished",
    "cancelled": "cancelled",
    "error": "failed",
    "klippy_shutdown": "failed",
    "klippy_disconnect": "failed",
    "interrupted": "failed",
    "server_exit": "unknown",
}
IN_PROGRESS = "in_progress"


class KlipperStatus:
    """The subscribed objects, kept current by `notify_status_update` deltas."""

    def __init__(self) -> None:
        self.objects: dict[str, Any] = {}
        self.klippy_state = "disconnected"
        self.klippy_message: str | None = None
        self._job_file: str | None = None
        self._started_at: float | None = None
        self._duration = 0.0  # print_stats.total_duration last seen while printing
        # The history job of the current print (Moonraker's job_id), when history is on.
        self.history_job: dict[str, Any] | None = None
        self.history_available = False
        self._ended: list[EndedJob] = []  # history jobs ended unobserved, not yet told

    def note_history_job(self, job: dict[str, Any]) -> None:
        """A job from `server.history.list` or `notify_history_changed` (newest last)."""
        self.history_available = True
        status = str(job.get("status") or "")
        current = self.history_job
        same = current is not None and current.get("job_id") == job.get("job_id")
        newer = current is None or (as_float(job.get("start_time")) or 0.0) >= (
            as_float(current.get("start_time")) or 0.0
        )
        if status == IN_PROGRESS and current is not None and not same:
            # A new print starts from nothing: the progress still cached is the last one's.
            for name in ("virtual_sdcard", "display_status"):
                obj = self.objects.get(name)
                if isinstance(obj, dict) and "progress" in obj:
                    obj["progress"] = 0.0
        if same or newer:
            # The newest job is the one print_stats shows, running or ended (until the next).
            self.history_job = job
        outcome = HISTORY_OUTCOMES.get(status)
        if outcome is not None:
            self._ended.append(EndedJob(history_job(job), outcome, as_float(job.get("end_time"))))

    def take_ended(self) -> tuple[EndedJob, ...]:
        """The ended history jobs not yet reported (once)."""
        ended, self._ended = tuple(self._ended), []
        return ended

    def replace(self, status: dict[str, Any]) -> None:
        """Take the full status from a subscribe reply."""
        self.objects = {}
        merge(self.objects, status)
        self._track_job()

    def update(self, delta: dict[str, Any]) -> bool:
        """Apply a `notify_status_update` delta; True if anything changed."""
        changed = merge(self.objects, delta)
        if changed:
            self._track_job()
        return changed

    def _obj(self, name: str) -> dict[str, Any]:
        value = self.objects.get(name)
        return value if isinstance(value, dict) else {}

    def effective_klippy_state(self) -> str:
        """Klippy's state; the `webhooks` object is fresher than the last notification."""
        if self.klippy_state == "ready":
            return str(self._obj("webhooks").get("state") or "ready")
        return self.klippy_state

    def _track_job(self) -> None:
        stats = self._obj("print_stats")
        state = stats.get("state")
        filename = stats.get("filename") or None
        if state in ("printing", "paused"):
            duration = as_float(stats.get("total_duration")) or 0.0
            # A print's duration only grows: less than before is the file started again (a
            # cancel and restart between two updates never shows the print ended).
            again = duration < self._duration
            if filename != self._job_file or self._started_at is None or again:
                self._job_file = filename
                self._started_at = time.time() - duration
            self._duration = duration
        elif state == "standby":
            self._job_file, self._started_at, self._duration = None, None, 0.0

    def _progress(self) -> float:
        progress = as_float(self._obj("virtual_sdcard").get("progress"))
        if progress is None:
            progress = as_float(self._obj("display_status").get("progress"))
        return round(min(max(progress or 0.0, 0.0), 1.0) * 100, 2)

    def _job(self, state: PrintState) -> Job | None:
        stats = self._obj("print_stats")
        filename = stats.get("filename")
        if state in (PrintState.IDLE, PrintState.OFFLINE, PrintState.ERROR) or not filename:
            return None
        progress = self._progress()
        duration = as_float(stats.get("print_duration")) or 0.0
        remaining = None
        if 0 < progress < 100 and duration > 0:
            # Moonraker has no time estimate of its own: extrapolate from file progress.
            remaining = int(duration * (100 - progress) / progress)
        elif state is PrintState.FINISHED:
            remaining = 0
        info = stats.get("info")
        if not isinstance(info, dict):
            info = {}
        key, started_at = None, self._started_at
        current = self.history_job
        if self.history_available:
            running = current is not None and current.get("status") == IN_PROGRESS
            active = state in (PrintState.PRINTING, PrintState.PAUSED)
            if current is None or active != running or current.get("filename") != filename:
                # Between a history change and the status update that shows it (a new print
                # running before its `added`, or the last print's final state after it): which
                # job is it? Say none, so two prints never share one id and none is told twice.
                return None
            key, started_at = str(current.get("job_id")), as_float(current.get("start_time"))
        return Job(
            file=str(filename),
            progress=100.0 if state is PrintState.FINISHED else progress,
            layer=as_int(info.get("current_layer")),
            total_layers=as_int(info.get("total_layer")),
            remaining_s=remaining,
            started_at=started_at,
            key=key,
            # Millimetres Klipper has extruded for this print so far.
            filament_used_mm=as_float(stats.get("filament_used")),
        )

    def to_state(self, printer_id: str) -> PrinterState:
        """Build the normalized snapshot."""
        extruder, bed = self._obj("extruder"), self._obj("heater_bed")
        temps = Temperatures(
            nozzle=as_float(extruder.get("temperature")),
            nozzle_target=as_float(extruder.get("target")),
            bed=as_float(bed.get("temperature")),
            bed_target=as_float(bed.get("target")),
        )
        klippy = self.effective_klippy_state()
        if klippy != "ready":
            message = self._obj("webhooks").get("state_message") or self.klippy_message
            return PrinterState(
                printer_id=printer_id,
                online=True,
                state=_KLIPPY_STATES.get(klippy, PrintState.OFFLINE),
                temps=temps,
                errors=(
                    HmsError(
                        code=f"KLIPPY_{klippy.upper()}",
                        text=str(message or f"Klipper is {klippy}"),
                        severity="error",
                    ),
                ),
                ended=self.take_ended(),
            )
        stats = self._obj("print_stats")
        state = _PRINT_STATES.get(str(stats.get("state")), PrintState.IDLE)
        errors: tuple[HmsError, ...] = ()
        if state is PrintState.FAILED and stats.get("message"):
            errors = (HmsError(code="KLIPPER_PRINT_ERROR", text=str(stats["message"])),)
        return PrinterState(
            printer_id=printer_id,
            online=True,
            state=state,
            job=self._job(state),
            temps=temps,
            errors=errors,
            ended=self.take_ended(),
        )


def history_job(job: dict[str, Any]) -> Job:
    """A Moonraker history job as the hub's Job (progress from its own estimate, if any)."""
    status = str(job.get("status") or "")
    progress = 0.0
    if status == "completed":
        progress = 100.0
    else:
        metadata = job.get("metadata")
        estimate = as_float(metadata.get("estimated_time")) if isinstance(metadata, dict) else None
        printed = as_float(job.get("print_duration"))
        if estimate and printed is not None:
            progress = round(min(99.0, printed * 100 / estimate), 2)
    return Job(
        file=str(job.get("filename") or ""),
        progress=progress,
        started_at=as_float(job.get("start_time")),
        key=str(job.get("job_id") or "") or None,
        filament_used_mm=as_float(job.get("filament_used")),
    )
