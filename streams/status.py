"""status$ and ams$: a printer's state when it meaningfully changes, at a bounded rate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from operator import attrgetter

from reactivex import Observable, abc
from reactivex import operators as ops

from hub.model import AmsUnit, PrinterState, Temperatures
from streams.events import AmsEvent
from streams.operators import NOTHING, scan_emit, throttle_latest
from streams.reports import is_up

# Every field but the clock, the temperatures (compared with a tolerance), the
# printer id (one group is one printer) and the prints ended unobserved (for the print
# tracker only, never shown). Derived from the model so a field added there counts as
# meaningful without touching this module.
_IGNORED = frozenset({"printer_id", "updated_at", "temps", "ended"})
_EXACT_FIELDS = tuple(f.name for f in fields(PrinterState) if f.name not in _IGNORED)
_exact_key = attrgetter(*_EXACT_FIELDS)


def _close(a: float | None, b: float | None, jitter: float) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) < jitter


def same_temperatures(a: Temperatures, b: Temperatures, jitter: float) -> bool:
    """True when readings differ by less than `jitter` °C and the targets are equal."""
    return a is b or (
        a.nozzle_target == b.nozzle_target
        and a.bed_target == b.bed_target
        and _close(a.nozzle, b.nozzle, jitter)
        and _close(a.bed, b.bed, jitter)
        and _close(a.chamber, b.chamber, jitter)
    )


def same_status(jitter: float) -> Callable[[PrinterState, PrinterState], bool]:
    """Comparer: equal but for updated_at and temperature moves below `jitter` °C."""

    def same(a: PrinterState, b: PrinterState) -> bool:
        return a is b or (
            _exact_key(a) == _exact_key(b) and same_temperatures(a.temps, b.temps, jitter)
        )

    return same


def status_updates(
    interval_s: float, jitter: float, scheduler: abc.SchedulerBase
) -> Callable[[Observable[PrinterState]], Observable[PrinterState]]:
    """One printer's reports → meaningful changes, at most one per `interval_s`, latest wins."""
    same = same_status(jitter)

    def operator(reports: Observable[PrinterState]) -> Observable[PrinterState]:
        return reports.pipe(
            ops.distinct_until_changed(comparer=same),
            throttle_latest(interval_s, scheduler),
            # A change undone inside one window must not resend what already went out.
            ops.distinct_until_changed(comparer=same),
        )

    return operator


_AmsSeen = tuple[tuple[AmsUnit, ...], int | None]
_NO_AMS: _AmsSeen = ((), None)


def ams_moves() -> Callable[[Observable[PrinterState]], Observable[PrinterState]]:
    """One printer's live reports whose AMS units, trays or active tray differ from the last one.

    Everything AMS-derived hangs off this, so the AMS is compared once per
    report and the rest runs only when it actually changed.
    """

    def step(seen: _AmsSeen, report: PrinterState) -> tuple[_AmsSeen, tuple[PrinterState, ...]]:
        # A report over a dead link says nothing about the AMS: keep the last reading.
        if not is_up(report):
            return seen, NOTHING
        units, tray = seen
        if (report.ams is units or report.ams == units) and report.active_tray == tray:
            return seen, NOTHING
        return (report.ams, report.active_tray), (report,)

    return scan_emit("ams", step, _NO_AMS)


def ams_event(report: PrinterState) -> AmsEvent:
    """The AmsEvent of a report from ams_moves()."""
    progress = None if report.job is None else report.job.progress
    return AmsEvent(report.printer_id, report.ams, report.active_tray, progress)
