"""notification$: what a person should hear about, each condition once per occurrence."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from reactivex import Observable

from hub.model import AmsTray, AmsUnit, HmsError, PrinterState
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


K = TypeVar("K")
Item = TypeVar("Item")


def threshold_alarm(
    name: str,
    readings: Callable[[PrinterState], Iterable[tuple[K, int, Item]]],
    trips: Callable[[int], bool],
    rearms: Callable[[int], bool],
    note: Callable[[PrinterState, Item, int], NotificationEvent],
) -> Callable[[Observable[PrinterState]], Observable[NotificationEvent]]:
    """One notification when a keyed reading trips its threshold, then silence for that key
    until the reading is back past the re-arm level (hysteresis: no flapping on noise).

    `readings` yields (key, value, item) per report; keys without a reading keep their state."""
    nothing: frozenset[K] = frozenset()

    def step(alarmed: frozenset[K], report: PrinterState) -> tuple[frozenset[K], Notes]:
        notes: list[NotificationEvent] = []
        now = set(alarmed)
        for key, value, item in readings(report):
            if key in now:
                if rearms(value):
                    now.discard(key)
            elif trips(value):
                now.add(key)
                notes.append(note(report, item, value))
        return (alarmed if now == alarmed else frozenset(now)), tuple(notes)

    return scan_emit(name, step, nothing)


def _tray_remains(
    report: PrinterState,
) -> Iterator[tuple[tuple[int, int], int, tuple[AmsUnit, AmsTray]]]:
    for unit in report.ams:
        for tray in unit.trays:
            remain = tray.remain
            if remain is not None and remain >= 0 and not tray.empty:  # else: keep what we knew
                yield (unit.unit, tray.slot), remain, (unit, tray)


def _unit_humidities(report: PrinterState) -> Iterator[tuple[int, int, AmsUnit]]:
    for unit in report.ams:
        if unit.humidity is not None:
            yield unit.unit, unit.humidity, unit


def filament_low(
    threshold_pct: int, rearm_margin_pct: int
) -> Callable[[Observable[PrinterState]], Observable[NotificationEvent]]:
    """A tray's remain dropping below `threshold_pct`: once, until it is back at threshold + margin.

    Fed by ams_moves(), so it runs only when the AMS changed.
    """

    def note(
        report: PrinterState, where: tuple[AmsUnit, AmsTray], remain: int
    ) -> NotificationEvent:
        unit, tray = where
        return NotificationEvent(
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

    return threshold_alarm(
        "filament_low",
        _tray_remains,
        lambda remain: remain < threshold_pct,
        lambda remain: remain >= threshold_pct + rearm_margin_pct,
        note,
    )


def humidity_high(
    threshold_pct: int, rearm_margin_pct: int
) -> Callable[[Observable[PrinterState]], Observable[NotificationEvent]]:
    """An AMS unit's humidity rising above `threshold_pct`: once, until back at threshold - margin.

    Fed by ams_moves(), so it runs only when the AMS changed.
    """

    def note(report: PrinterState, unit: AmsUnit, humidity: int) -> NotificationEvent:
        return NotificationEvent(
            report.printer_id,
            NotificationKind.HUMIDITY_HIGH,
            Severity.WARNING,
            "AMS humidity high",
            f"{report.printer_id}: AMS {unit.unit} at {humidity}% humidity",
            {"unit": unit.unit, "humidity": humidity, "threshold": threshold_pct},
            report.updated_at,
        )

    return threshold_alarm(
        "humidity_high",
        _unit_humidities,
        lambda humidity: humidity > threshold_pct,
        lambda humidity: humidity <= threshold_pct - rearm_margin_pct,
        note,
    )
