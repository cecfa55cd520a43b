"""notification$: what a person should hear about, each condition once per occurrence."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from reactivex import Observable

from hub.model import HmsError, PrinterState
from streams.events import (
    LifecycleEvent,
    LifecycleKind,
    NotificationEvent,
    NotificationKind,
    Severity,
)
from streams.operators import NOTHING, scan_emit
from streams.reports import is_up

T = TypeVar("T")
Notes = tuple[NotificationEvent, ...]
Errors = tuple[HmsError, ...]
_NO_ERRORS: Errors = ()

_LIFECYCLE_NOTES: dict[LifecycleKind, tuple[NotificationKind, Severity, str]] = {
    LifecycleKind.STARTED: (NotificationKind.PRINT_STARTED, Severity.INFO, "Print started"),
    LifecycleKind.PAUSED: (NotificationKind.PRINT_PAUSED, Severity.WARNING, "Print paused"),
    LifecycleKind.FINISHED: (NotificationKind.PRINT_FINISHED, Severity.INFO, "Print finished"),
    LifecycleKind.FAILED: (NotificationKind.PRINT_FAILED, Severity.ERROR, "Print failed"),
    LifecycleKind.CANCELLED: (
        NotificationKind.PRINT_CANCELLED,
        Severity.WARNING,
        "Print cancelled",
    ),
    # Not a failure: the print ended while unobserved and the printer kept no verdict.
    LifecycleKind.UNKNOWN: (
        NotificationKind.PRINT_UNOBSERVED,
        Severity.INFO,
        "Print ended unobserved",
    ),
}

# Printer health levels as drivers pass them (Bambu: fatal, serious, common, info).
_HMS_SEVERITY = {
    "fatal": Severity.ERROR,
    "serious": Severity.ERROR,
    "error": Severity.ERROR,
    "common": Severity.WARNING,
    "warning": Severity.WARNING,
    "info": Severity.INFO,
}


def lifecycle_notice(event: LifecycleEvent) -> NotificationEvent | None:
    """The notification for a lifecycle step, or None for steps nobody is told about (resumed)."""
    spec = _LIFECYCLE_NOTES.get(event.kind)
    if spec is None:
        return None
    kind, severity, title = spec
    message = f"{event.printer_id}: {event.job.file} ({event.progress:.0f}%)"
    if event.kind is LifecycleKind.UNKNOWN:
        message += " — ended while unobserved; the printer does not say how"
    elif event.inferred:
        message += " — ended without a final state from the printer"
    data = {
        "job_key": event.job_key,
        "file": event.job.file,
        "progress": event.progress,
        "inferred": event.inferred,
    }
    return NotificationEvent(event.printer_id, kind, severity, title, message, data, event.at)


def announce_lifecycle() -> Callable[[Observable[T]], Observable[T | NotificationEvent]]:
    """Pass every item through; follow each notable LifecycleEvent with its notification."""

    def step(_: None, item: T) -> tuple[None, tuple[T | NotificationEvent, ...]]:
        if isinstance(item, LifecycleEvent):
            notice = lifecycle_notice(item)
            if notice is not None:
                return None, (item, notice)
        return None, (item,)

    return scan_emit("announce_lifecycle", step, None)


_Link = tuple[bool | None, bool]  # (link up at the last report, ever up since the hub started)
_UNSEEN: _Link = (None, False)


def link_notifications() -> Callable[[Observable[PrinterState]], Observable[NotificationEvent]]:
    """Printer offline / back online, on change only, once the printer has been up at least once.

    Silence until the first live report: at start-up drivers report every
    printer offline until they connect, which is not news.
    """

    def step(link: _Link, report: PrinterState) -> tuple[_Link, Notes]:
        up = is_up(report)
        was_up, ever_up = link
        if up is was_up:
            return link, NOTHING
        if not ever_up:
            return (up, up), NOTHING
        pid = report.printer_id
        if up:
            note = NotificationEvent(
                pid,
                NotificationKind.PRINTER_ONLINE,
                Severity.INFO,
                "Printer back online",
                f"{pid} is reachable again",
                {},
                report.updated_at,
            )
        else:
            note = NotificationEvent(
                pid,
                NotificationKind.PRINTER_OFFLINE,
                Severity.WARNING,
                "Printer offline",
                f"{pid} stopped answering",
                {},
                report.updated_at,
            )
        return (up, True), (note,)

    return scan_emit("link", step, _UNSEEN)


def _hms_note(report: PrinterState, error: HmsError, raised: bool) -> NotificationEvent:
    pid = report.printer_id
    data = {"code": error.code, "text": error.text, "severity": error.severity}
    if raised:
        severity = _HMS_SEVERITY.get(error.severity.lower(), Severity.ERROR)
        return NotificationEvent(
            pid,
            NotificationKind.HMS_RAISED,
            severity,
            f"Printer error {error.code}",
            f"{pid}: {error.text or error.code}",
            data,
            report.updated_at,
        )
    return NotificationEvent(
        pid,
        NotificationKind.HMS_CLEARED,
        Severity.INFO,
        f"Printer error cleared {error.code}",
        f"{pid}: {error.text or error.code}",
        data,
        report.updated_at,
    )


def hms_notifications() -> Callable[[Observable[PrinterState]], Observable[NotificationEvent]]:
    """Each HMS error code once when it appears and once when it goes (errors present at first sight count)."""

    def step(known: Errors, report: PrinterState) -> tuple[Errors, Notes]:
        errors = report.errors
        # A dead link reports no errors; that does not clear them.
        if errors is known or errors == known or not is_up(report):
            return known, NOTHING
        old = {error.code for error in known}
        new = {error.code for error in errors}
        notes: list[NotificationEvent] = []
        for error in errors:
            if error.code not in old:
                old.add(error.code)  # a code listed twice in one report is raised once
                notes.append(_hms_note(report, error, raised=True))
        for error in known:
            if error.code not in new:
                new.add(error.code)
                notes.append(_hms_note(report, error, raised=False))
        return errors, tuple(notes)

    return scan_emit("hms", step, _NO_ERRORS)


_Trays = frozenset[tuple[int, int]]  # (unit, slot) of the trays alerted
_NO_TRAYS: _Trays = frozenset()


def filament_low(
    threshold_pct: int, rearm_margin_pct: int
) -> Callable[[Observable[PrinterState]], Observable[NotificationEvent]]:
    """A tray's remain dropping below `threshold_pct`: once, until it is back at threshold + margin.

    Fed by ams_moves(), so it runs only when the AMS changed.
    """

    def step(low: _Trays, report: PrinterState) -> tuple[_Trays, Notes]:
        notes: list[NotificationEvent] = []
        now_low = set(low)
        for unit in report.ams:
            for tray in unit.trays:
                remain = tray.remain
                if remain is None or remain < 0 or tray.empty:
                    continue  # unknown remain: keep what we knew
                key = (unit.unit, tray.slot)
                if key in now_low:
                    if remain >= threshold_pct + rearm_margin_pct:
                        now_low.discard(key)
                elif remain < threshold_pct:
                    now_low.add(key)
                    notes.append(
                        NotificationEvent(
                            report.printer_id,
                            NotificationKind.FILAMENT_LOW,
                            Severity.WARNING,
                            "Filament low",
                            f"{report.printer_id}: AMS {unit.unit} tray {tray.slot} "
                            f"({tray.material or '?'} {tray.color or ''}) at {remain}%",
                            {
                                "unit": unit.unit,
                                "slot": tray.slot,
                                "material": tray.material,
                                "color": tray.color,
                                "remain": remain,
                                "threshold": threshold_pct,
                            },
                            report.updated_at,
                        )
                    )
        return (low if now_low == low else frozenset(now_low)), tuple(notes)

    return scan_emit("filament_low", step, _NO_TRAYS)


_Units = frozenset[int]  # the units alerted
_NO_UNITS: _Units = frozenset()


def humidity_high(
    threshold_pct: int, rearm_margin_pct: int
) -> Callable[[Observable[PrinterState]], Observable[NotificationEvent]]:
    """An AMS unit's humidity rising above `threshold_pct`: once, until back at threshold - margin.

    Fed by ams_moves(), so it runs only when the AMS changed.
    """

    def step(high: _Units, report: PrinterState) -> tuple[_Units, Notes]:
        notes: list[NotificationEvent] = []
        now_high = set(high)
        for unit in report.ams:
            humidity = unit.humidity
            if humidity is None:
                continue
            if unit.unit in now_high:
                if humidity <= threshold_pct - rearm_margin_pct:
                    now_high.discard(unit.unit)
            elif humidity > threshold_pct:
                now_high.add(unit.unit)
                notes.append(
                    NotificationEvent(
                        report.printer_id,
                        NotificationKind.HUMIDITY_HIGH,
                        Severity.WARNING,
                        "AMS humidity high",
                        f"{report.printer_id}: AMS {unit.unit} at {humidity}% humidity",
                        {"unit": unit.unit, "humidity": humidity, "threshold": threshold_pct},
                        report.updated_at,
                    )
                )
        return (high if now_high == high else frozenset(now_high)), tuple(notes)

    return scan_emit("humidity_high", step, _NO_UNITS)
