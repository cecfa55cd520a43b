"""Builders of printer reports and a virtual-time runner for build_pipelines."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from reactivex.abc import DisposableBase
from reactivex.testing import ReactiveTest, Recorded, TestScheduler
from reactivex.typing import RelativeTime, ScheduledAction

from hub.model import AmsTray, AmsUnit, HmsError, Job, PrinterState, PrintState, Temperatures
from streams import (
    ActiveJob,
    AmsEvent,
    LifecycleEvent,
    NotificationEvent,
    ProgressEvent,
    RecordedPrints,
    StreamSettings,
    build_pipelines,
)

P = PrintState


def report(
    at: float,
    state: PrintState = PrintState.IDLE,
    job: Job | None = None,
    printer_id: str = "p1",
    online: bool | None = None,
    **fields: Any,
) -> PrinterState:
    """A report stamped with `at`; online unless the state is OFFLINE or online=False."""
    up = state is not PrintState.OFFLINE if online is None else online
    return PrinterState(printer_id, online=up, state=state, job=job, updated_at=at, **fields)


def offline(at: float, printer_id: str = "p1") -> PrinterState:
    """The report a driver sends when its link drops."""
    return PrinterState(printer_id, online=False, state=PrintState.OFFLINE, updated_at=at)


def job(
    progress: float = 0.0,
    file: str = "benchy.gcode",
    key: str | None = None,
    started_at: float | None = None,
    **fields: Any,
) -> Job:
    """A job of `file` at `progress` percent."""
    return Job(file, progress=progress, key=key, started_at=started_at, **fields)


def temps(nozzle: float = 210.0, bed: float = 60.0, **fields: Any) -> Temperatures:
    """Temperatures with the given readings."""
    return Temperatures(nozzle=nozzle, bed=bed, **fields)


def ams(*remains: int | None, humidity: int | None = 20, unit: int = 0) -> tuple[AmsUnit, ...]:
    """One AMS unit whose trays have the given remain percentages."""
    trays = tuple(
        AmsTray(slot, material="PLA", color="FFFFFF", remain=r) for slot, r in enumerate(remains)
    )
    return (AmsUnit(unit, humidity=humidity, trays=trays),)


def hms(*codes: str) -> tuple[HmsError, ...]:
    """HMS errors with the given codes."""
    return tuple(HmsError(code, text=f"text of {code}") for code in codes)


@dataclass
class Run:
    """What every output stream emitted, as (virtual time, event) pairs."""

    status: list[tuple[float, PrinterState]] = field(default_factory=list)
    progress: list[tuple[float, ProgressEvent]] = field(default_factory=list)
    ams: list[tuple[float, AmsEvent]] = field(default_factory=list)
    lifecycle: list[tuple[float, LifecycleEvent]] = field(default_factory=list)
    notification: list[tuple[float, NotificationEvent]] = field(default_factory=list)

    def kinds(self) -> list[str]:
        """Lifecycle kinds in order."""
        return [str(e.kind) for _, e in self.lifecycle]

    def notes(self) -> list[str]:
        """Notification kinds in order."""
        return [str(e.kind) for _, e in self.notification]


def run(
    reports: list[PrinterState],
    settings: StreamSettings | None = None,
    seed: dict[str, ActiveJob] | None = None,
    until: float | None = None,
    recorded: dict[str, RecordedPrints] | None = None,
) -> Run:
    """Feed each report at its updated_at on virtual time and record every output."""
    scheduler = TestScheduler()
    telemetry = scheduler.create_hot_observable(
        [ReactiveTest.on_next(r.updated_at, r) for r in reports]
    )
    pipes = build_pipelines(
        telemetry, scheduler, settings or StreamSettings(), seed or {}, recorded or {}
    )
    out = Run()
    for name in ("status", "progress", "ams", "lifecycle", "notification"):
        recorded: list[tuple[float, Any]] = getattr(out, name)
        getattr(pipes, name).subscribe(
            lambda event, recorded=recorded: recorded.append((scheduler.clock, event))
        )
    connection = pipes.connect()
    if until is not None:
        scheduler.advance_to(until)
    else:
        scheduler.start()
    connection.dispose()
    return out


def marbles(text: str, start: float = 201.0, frame: float = 0.1) -> list[Recorded[Any]]:
    """Parse a marble diagram: each character is one frame; '(..)' shares one; '|' completes."""
    records: list[Recorded[Any]] = []
    index = 0
    grouped = False
    for char in text:
        at = round(start + index * frame, 6)
        if char == "(":
            grouped = True
            continue
        if char == ")":
            grouped = False
            index += 1
            continue
        if char == "|":
            records.append(ReactiveTest.on_completed(at))
        elif char != "-":
            records.append(ReactiveTest.on_next(at, char))
        if not grouped:
            index += 1
    return records


class ProbeScheduler(TestScheduler):
    """A TestScheduler whose wall clock can be skewed and which keeps every timer it hands out."""

    def __init__(self) -> None:
        super().__init__()
        self.skew = timedelta(0)
        self.timers: list[DisposableBase] = []

    @property
    def now(self) -> datetime:
        """Virtual time plus the skew."""
        return super().now + self.skew

    def schedule_relative(
        self, duetime: RelativeTime, action: ScheduledAction[Any], state: Any = None
    ) -> DisposableBase:
        """Schedule as usual, remembering the timer."""
        timer = super().schedule_relative(duetime, action, state)
        self.timers.append(timer)
        return timer
