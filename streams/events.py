"""Typed events the stream pipelines emit, and the seed a pipeline resumes from."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from hub.model import AmsUnit, Job


class LifecycleKind(StrEnum):
    """What happened to a print."""

    STARTED = "started"
    PAUSED = "paused"
    RESUMED = "resumed"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # Ended while unobserved, and the printer cannot tell how (never reported as a failure).
    UNKNOWN = "unknown"


#: Kinds that end a print; exactly one of them is emitted per job_key.
TERMINAL_KINDS = frozenset(
    {LifecycleKind.FINISHED, LifecycleKind.FAILED, LifecycleKind.CANCELLED, LifecycleKind.UNKNOWN}
)


class Severity(StrEnum):
    """How loudly a notification should be delivered."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class NotificationKind(StrEnum):
    """Every notification the pipelines raise."""

    PRINT_STARTED = "print_started"
    PRINT_PAUSED = "print_paused"
    PRINT_FINISHED = "print_finished"
    PRINT_FAILED = "print_failed"
    PRINT_CANCELLED = "print_cancelled"
    PRINT_UNOBSERVED = "print_ended_unobserved"
    HMS_RAISED = "hms_raised"
    HMS_CLEARED = "hms_cleared"
    PRINTER_OFFLINE = "printer_offline"
    PRINTER_ONLINE = "printer_online"
    FILAMENT_LOW = "filament.low"
    HUMIDITY_HIGH = "humidity_high"


@dataclass(frozen=True, slots=True)
class ActiveJob:
    """A print being tracked: the seed from the database on restart, and the tracker's own state."""

    job_key: str
    job: Job
    # When the print started (the job's own started_at, else when the hub first saw it).
    started_at: float
    paused: bool = False


@dataclass(frozen=True, slots=True)
class RecordedPrints:
    """What the history holds of one printer's prints, so a replayed end is not news twice."""

    # job_keys of the prints closed lately, oldest first.
    ended: tuple[str, ...] = ()
    # When the newest recorded print started: a printer's history from before it is old news.
    latest_start: float | None = None


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """Progress of the active print, emitted when the whole percent, layer or remaining time moves."""

    printer_id: str
    file: str
    progress: int
    layer: int | None
    total_layers: int | None
    remaining_s: int | None
    job_key: str


@dataclass(frozen=True, slots=True)
class AmsEvent:
    """The AMS units and active tray of a printer, emitted when any of them changes."""

    printer_id: str
    units: tuple[AmsUnit, ...]
    active_tray: int | None
    # The running print's progress (%) in the same report: where a tray change happened.
    progress: float | None = None


@dataclass(frozen=True, slots=True)
class LifecycleEvent:
    """A step in the life of one print, keyed by a stable, idempotent job_key."""

    printer_id: str
    kind: LifecycleKind
    job: Job
    job_key: str
    at: float
    progress: float
    # True when the outcome was deduced by rule because the printer never reported one.
    inferred: bool = False


@dataclass(frozen=True, slots=True)
class NotificationEvent:
    """Something a person should hear about, ready for the notification channels."""

    printer_id: str
    kind: NotificationKind
    severity: Severity
    title: str
    message: str
    data: dict[str, Any]
    # Printer-reported time of the report that raised it (PrinterState.updated_at).
    at: float
