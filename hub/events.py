"""The catalogue of events carried by the hub's bus: the stream outputs plus the hub's own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hub.bus import coalescing
from hub.model import PrinterState
from streams.events import AmsEvent, LifecycleEvent, NotificationEvent, ProgressEvent

__all__ = [
    "AmsEvent",
    "LifecycleEvent",
    "NotificationEvent",
    "NotificationStored",
    "PrintRecorded",
    "PrinterConfigured",
    "PrinterRemoved",
    "PrinterState",
    "ProgressEvent",
    "QueueJobChanged",
    "SpoolChanged",
]

# status$ (a PrinterState), progress$ and ams$: only the newest per printer matters.
for _kind in (PrinterState, ProgressEvent, AmsEvent):
    coalescing(_kind)


@dataclass(frozen=True, slots=True)
class PrinterConfigured:
    """A printer was added or its configuration changed (secrets left out)."""

    printer_id: str
    name: str
    protocol: str
    model: str
    created: bool
    # True when its outbox rows were written with the change that caused it (same transaction).
    outboxed: bool = False


@dataclass(frozen=True, slots=True)
class PrinterRemoved:
    """A printer was deleted."""

    printer_id: str
    name: str
    # True when its outbox rows were written with the change that caused it (same transaction).
    outboxed: bool = False


@dataclass(frozen=True, slots=True)
class PrintRecorded:
    """A lifecycle step has been written to the print history (its row id is known now)."""

    printer_id: str
    print_id: str
    job_key: str
    event: LifecycleEvent
    # True when its outbox rows were written with the print row (same transaction): the
    # outbound plug-ins then skip it on the bus.
    outboxed: bool = False


@dataclass(frozen=True, slots=True)
class NotificationStored:
    """A notification was stored; `note` is its public JSON form (with its id)."""

    printer_id: str | None
    note: dict[str, Any]
    # True when its outbox rows were written with the notification row (same transaction).
    outboxed: bool = False


@dataclass(frozen=True, slots=True)
class QueueJobChanged:
    """A print queue job was added or changed; `job` is its public JSON form."""

    job_id: str
    state: str
    printer_id: str | None
    job: dict[str, Any]
    # True when its outbox rows were written with the change that caused it (same transaction).
    outboxed: bool = False


@dataclass(frozen=True, slots=True)
class SpoolChanged:
    """A filament spool was created, edited, weighed, consumed from, (un)assigned or deleted.

    `spool` is its public JSON form after the change (the last one known for `deleted`);
    `printer_id` and `tray` say where it sits, if anywhere."""

    spool_id: str
    reason: str
    printer_id: str | None
    tray: int | None
    remaining_g: float
    spool: dict[str, Any]
    # True when its outbox rows were written with the change that caused it (same transaction).
    outboxed: bool = False
