"""build_pipelines: telemetry$ → state$ per printer → status$, progress$, ams$, lifecycle$, notification$."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reactivex import GroupedObservable, Observable, abc
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable
from reactivex.observable import ConnectableObservable
from reactivex.subject import Subject

from hub.model import PrinterState
from streams.events import (
    ActiveJob,
    AmsEvent,
    LifecycleEvent,
    NotificationEvent,
    ProgressEvent,
    RecordedPrints,
)
from streams.lifecycle import track_jobs
from streams.notifications import (
    announce_lifecycle,
    filament_low,
    hms_notifications,
    humidity_high,
    link_notifications,
)
from streams.operators import merge_now
from streams.settings import StreamSettings
from streams.status import ams_event, ams_moves, status_updates

PrinterEvent = PrinterState | ProgressEvent | AmsEvent | LifecycleEvent | NotificationEvent


@dataclass(frozen=True, slots=True)
class Pipelines:
    """The hot output streams; subscribe the sinks, then connect() once to start them."""

    state: Observable[GroupedObservable[str, PrinterState]]
    status: Observable[PrinterState]
    progress: Observable[ProgressEvent]
    ams: Observable[AmsEvent]
    lifecycle: Observable[LifecycleEvent]
    notification: Observable[NotificationEvent]
    _connect: Callable[[], abc.DisposableBase] = field(repr=False)

    def connect(self) -> abc.DisposableBase:
        """Start processing telemetry (idempotent); dispose the result to stop every pipeline."""
        return self._connect()


def printer_pipeline(
    reports: GroupedObservable[str, PrinterState],
    scheduler: abc.SchedulerBase,
    settings: StreamSettings,
    seed: ActiveJob | None,
    recorded: RecordedPrints | None = None,
) -> Observable[PrinterEvent]:
    """Every output of one printer's reports, merged; each part keeps its state per subscription."""
    printer_id: str = reports.key
    ams = reports.pipe(ams_moves(), ops.share())
    # Subscription order is emission order for one report: "back online" comes
    # before the lifecycle steps that the reconnect reveals.
    return merge_now(
        reports.pipe(
            status_updates(settings.status_interval_s, settings.temperature_jitter_c, scheduler)
        ),
        reports.pipe(link_notifications()),
        reports.pipe(track_jobs(printer_id, settings, seed, recorded), announce_lifecycle()),
        reports.pipe(hms_notifications()),
        ams.pipe(ops.map(ams_event)),
        ams.pipe(filament_low(settings.filament_low_pct, settings.filament_rearm_margin_pct)),
        ams.pipe(humidity_high(settings.humidity_high_pct, settings.humidity_rearm_margin_pct)),
    )


def _printer_id(report: PrinterState) -> str:
    return report.printer_id


def build_pipelines(
    telemetry: Observable[PrinterState],
    scheduler: abc.SchedulerBase,
    settings: StreamSettings = StreamSettings(),
    seed: Mapping[str, ActiveJob] | None = None,
    recorded: Mapping[str, RecordedPrints] | None = None,
) -> Pipelines:
    """Compose every stream over `telemetry`; `seed` holds the prints the database says are running,
    `recorded` what it holds of each printer's recent prints.

    The work runs once, whatever the number of subscribers: one grouped
    subscription to telemetry feeds the per-printer pipelines, whose merged
    output is routed by type into one Subject per output stream. Nothing
    flows until connect(), so sinks subscribed before it miss nothing.
    """
    seeds = dict(seed or {})
    history = dict(recorded or {})
    # publish(), not replay(): a ReplaySubject delivers through a scheduler, and a
    # group delivered late would lose the report that created it.
    groups: ConnectableObservable[GroupedObservable[str, PrinterState]] = telemetry.pipe(
        ops.group_by(_printer_id), ops.publish()
    )
    known: dict[str, GroupedObservable[str, PrinterState]] = {}

    def subscribe_state(
        observer: abc.ObserverBase[GroupedObservable[str, PrinterState]],
        _: abc.SchedulerBase | None = None,
    ) -> abc.DisposableBase:
        # A late subscriber first gets the printers already seen, synchronously.
        for group in list(known.values()):
            observer.on_next(group)
        return groups.subscribe(observer)

    def remember(group: GroupedObservable[str, PrinterState]) -> None:
        known[group.key] = group

    def ignore(_: Exception) -> None:
        """Errors reach the sinks through the routed outputs; this observer only keeps a list."""

    def per_printer(group: GroupedObservable[str, PrinterState]) -> Observable[PrinterEvent]:
        return printer_pipeline(
            group, scheduler, settings, seeds.get(group.key), history.get(group.key)
        )

    merged: Observable[PrinterEvent] = groups.pipe(ops.flat_map(per_printer))
    status: Subject[PrinterState] = Subject()
    progress: Subject[ProgressEvent] = Subject()
    ams: Subject[AmsEvent] = Subject()
    lifecycle: Subject[LifecycleEvent] = Subject()
    notification: Subject[NotificationEvent] = Subject()
    routes: dict[type, Subject[Any]] = {
        PrinterState: status,
        ProgressEvent: progress,
        AmsEvent: ams,
        LifecycleEvent: lifecycle,
        NotificationEvent: notification,
    }
    outputs = tuple(routes.values())

    def route(event: PrinterEvent) -> None:
        routes[type(event)].on_next(event)

    def on_error(error: Exception) -> None:
        for subject in outputs:
            subject.on_error(error)

    def on_completed() -> None:
        for subject in outputs:
            subject.on_completed()

    connection: abc.DisposableBase | None = None

    def connect() -> abc.DisposableBase:
        nonlocal connection
        if connection is None:
            # Route first, then open the tap, so the first report already has a way out.
            remembered = groups.subscribe(remember, ignore)
            routed = merged.subscribe(route, on_error, on_completed, scheduler=scheduler)
            connection = CompositeDisposable(remembered, routed, groups.connect(scheduler))
        return connection

    return Pipelines(
        state=Observable(subscribe_state),
        status=status,
        progress=progress,
        ams=ams,
        lifecycle=lifecycle,
        notification=notification,
        _connect=connect,
    )
