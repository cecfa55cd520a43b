"""Bus events as outbound messages: their public type names (`print.started` …), ids and data."""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from hub.events import (
    NotificationStored,
    PrinterConfigured,
    PrinterRemoved,
    PrintRecorded,
    QueueJobChanged,
    SpoolChanged,
)
from hub.model import rfc3339
from hub.store.queue import STATES as QUEUE_STATES

#: Bus event classes the outbound plug-ins subscribe to.
OUTBOUND_EVENTS: tuple[type, ...] = (
    PrintRecorded,
    NotificationStored,
    PrinterConfigured,
    PrinterRemoved,
    SpoolChanged,
    QueueJobChanged,
)

#: Every type name a webhook may receive (patterns are checked against these in the docs).
EVENT_TYPES = (
    "print.started",
    "print.paused",
    "print.resumed",
    "print.finished",
    "print.failed",
    "print.cancelled",
    "print.unknown",
    "notification",
    "printer.offline",
    "printer.online",
    "filament.low",
    "filament.runout",
    "humidity.high",
    "hms.raised",
    "hms.cleared",
    "printer.added",
    "printer.updated",
    "printer.removed",
    "filament.spool.created",
    "filament.spool.updated",
    "filament.spool.weighed",
    "filament.spool.corrected",
    "filament.spool.assigned",
    "filament.spool.unassigned",
    "filament.spool.deleted",
    *(f"queue.job.{state}" for state in QUEUE_STATES),
    "webhook.test",
)

#: Notifications about a printer's condition, also sent under their own type.
CONDITION_TYPES = frozenset(
    {
        "printer.offline",
        "printer.online",
        "filament.low",
        "filament.runout",
        "humidity.high",
        "hms.raised",
        "hms.cleared",
    }
)

#: An event filter entry: `*`, a type name, or a prefix ending in `.*` (`print.*`).
PATTERN = r"^(\*|[a-z][a-z_]*(\.[a-z][a-z_]*)*(\.\*)?)$"
_PATTERN = re.compile(PATTERN)

SEVERITIES = ("info", "warning", "error")


@dataclass(frozen=True, slots=True)
class Outbound:
    """One message for the outside world: type, stable id, time, data (and a severity for people)."""

    type: str
    id: str
    at: float
    data: dict[str, Any]
    severity: str = "info"
    title: str = ""
    message: str = ""

    def body(self) -> dict[str, Any]:
        """The Standard Webhooks payload: `{"type", "timestamp", "data"}`."""
        return {"type": self.type, "timestamp": rfc3339(self.at), "data": self.data}


def message_id(key: str) -> str:
    """A `msg_` id derived from a stable key, so one event always gets the same id."""
    return "msg_" + hashlib.sha256(key.encode()).hexdigest()[:32]


def matches(patterns: list[str], event_type: str) -> bool:
    """True when any filter entry (`*`, exact, or `prefix.*`) selects `event_type`."""
    return any(fnmatchcase(event_type, p) for p in patterns)


def valid_pattern(pattern: str) -> bool:
    """True when `pattern` is a well-formed event filter entry."""
    return bool(_PATTERN.match(pattern))


def filter_entries(known: tuple[str, ...]) -> list[str]:
    """Every filter entry that selects one of the `known` types: `*`, each type, and `prefix.*`
    for each dotted prefix (`print.*`, `queue.*`, `queue.job.*`); the API takes exactly these."""
    entries = {"*", *known}
    for name in known:
        parts = name.split(".")
        entries.update(".".join(parts[:i]) + ".*" for i in range(1, len(parts)))
    return sorted(entries)


def unmatched(patterns: list[str], known: tuple[str, ...]) -> int | None:
    """The index of the first filter entry that selects none of the `known` types, or None."""
    for index, pattern in enumerate(patterns):
        if not any(fnmatchcase(t, pattern) for t in known):
            return index
    return None


def notification_type(kind: str) -> str:
    """A notification kind as a dotted type: `printer_offline` → `printer.offline`,
    `queue_job_failed` → `queue.job.failed`."""
    return kind.replace("_", ".")


def outbound(event: object, now: float) -> list[Outbound]:
    """The outbound messages one bus event makes (none for events nobody outside hears of)."""
    if isinstance(event, PrintRecorded):
        step = event.event
        kind = step.kind.value
        data = {
            "printer_id": event.printer_id,
            "print_id": event.print_id,
            "job_key": event.job_key,
            "file": step.job.file,
            "progress": step.progress,
            "at": rfc3339(step.at),
            "inferred": step.inferred,
        }
        return [Outbound(f"print.{kind}", message_id(f"print:{event.job_key}:{kind}"), now, data)]
    if isinstance(event, NotificationStored):
        note = event.note
        common: dict[str, Any] = {
            "at": now,
            "data": note,
            "severity": str(note.get("severity", "info")),
            "title": str(note.get("title", "")),
            "message": str(note.get("message", "")),
        }
        found = [Outbound("notification", message_id(f"note:{note['id']}"), **common)]
        dotted = notification_type(str(note.get("kind", "")))
        # Print and queue notifications repeat the print.* and queue.job.* events: only the
        # printer's own conditions get a type of their own.
        if dotted in CONDITION_TYPES:
            found.append(Outbound(dotted, message_id(f"note:{note['id']}:{dotted}"), **common))
        return found
    if isinstance(event, PrinterConfigured):
        kind = "printer.added" if event.created else "printer.updated"
        data = {
            "printer_id": event.printer_id,
            "name": event.name,
            "protocol": event.protocol,
            "model": event.model,
        }
        return [Outbound(kind, message_id(f"{kind}:{uuid.uuid4()}"), now, data)]
    if isinstance(event, SpoolChanged):
        kind = f"filament.spool.{event.reason}"
        data = {
            "spool_id": event.spool_id,
            "reason": event.reason,
            "printer_id": event.printer_id,
            "tray": event.tray,
            "remaining_g": event.remaining_g,
            "spool": event.spool,
        }
        return [Outbound(kind, message_id(f"{kind}:{uuid.uuid4()}"), now, data)]
    if isinstance(event, QueueJobChanged):
        kind = f"queue.job.{event.state}"
        data = {"job_id": event.job_id, "printer_id": event.printer_id, "job": event.job}
        return [Outbound(kind, message_id(f"{kind}:{uuid.uuid4()}"), now, data)]
    if isinstance(event, PrinterRemoved):
        data = {"printer_id": event.printer_id, "name": event.name}
        return [Outbound("printer.removed", message_id(f"removed:{uuid.uuid4()}"), now, data)]
    return []
