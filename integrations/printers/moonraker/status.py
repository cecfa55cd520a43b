"""Klipper printer objects (as Moonraker reports them) mapped to PrinterState."""

from __future__ import annotations

import time
from typing import Any

from hub.model import HmsError, Job, PrinterState, PrintState, Temperatures
from integrations.printers.merge import merge

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


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    number = _float(value)
    return int(number) if number is not None else None


class KlipperStatus:
    """The subscribed objects, kept current by `notify_status_update` deltas."""

    def __init__(self) -> None:
        self.objects: dict[str, Any] = {}
        self.klippy_state = "disconnected"
        self.klippy_message: str | None = None
        self._job_file: str | None = None
        self._started_at: float | None = None

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
            if filename != self._job_file or self._started_at is None:
                duration = _float(stats.get("total_duration")) or 0.0
                self._job_file = filename
                self._started_at = time.time() - duration
        elif state == "standby":
            self._job_file, self._started_at = None, None

    def _progress(self) -> float:
        progress = _float(self._obj("virtual_sdcard").get("progress"))
        if progress is None:
            progress = _float(self._obj("display_status").get("progress"))
        return round(min(max(progress or 0.0, 0.0), 1.0) * 100, 2)

    def _job(self, state: PrintState) -> Job | None:
        stats = self._obj("print_stats")
        filename = stats.get("filename")
        if state in (PrintState.IDLE, PrintState.OFFLINE, PrintState.ERROR) or not filename:
            return None
        progress = self._progress()
        duration = _float(stats.get("print_duration")) or 0.0
        remaining = None
        if 0 < progress < 100 and duration > 0:
            # Moonraker has no time estimate of its own: extrapolate from file progress.
            remaining = int(duration * (100 - progress) / progress)
        elif state is PrintState.FINISHED:
            remaining = 0
        info = stats.get("info")
        if not isinstance(info, dict):
            info = {}
        return Job(
            file=str(filename),
            progress=100.0 if state is PrintState.FINISHED else progress,
            layer=_int(info.get("current_layer")),
            total_layers=_int(info.get("total_layer")),
            remaining_s=remaining,
            started_at=self._started_at,
            # Millimetres Klipper has extruded for this print so far.
            filament_used_mm=_float(stats.get("filament_used")),
        )

    def to_state(self, printer_id: str) -> PrinterState:
        """Build the normalized snapshot."""
        extruder, bed = self._obj("extruder"), self._obj("heater_bed")
        temps = Temperatures(
            nozzle=_float(extruder.get("temperature")),
            nozzle_target=_float(extruder.get("target")),
            bed=_float(bed.get("temperature")),
            bed_target=_float(bed.get("target")),
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
        )
