"""Small generic ReactiveX operators the pipelines are composed from."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, SerialDisposable

from streams.failures import FailureLog

S = TypeVar("S")
T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)

#: The "nothing to emit" result of a step; a shared constant so steps allocate nothing.
NOTHING: tuple[Any, ...] = ()


def scan_emit(
    name: str, step: Callable[[S, T], tuple[S, tuple[R, ...]]], initial: S
) -> Callable[[Observable[T]], Observable[R]]:
    """A scan whose step returns (new state, outputs) and which emits only the outputs, in order.

    One operator instead of scan → map → filter → flatten keeps a report to a
    single hop. The state starts from `initial` on every subscription, so
    `initial` must be immutable. A step that raises is logged and the report is
    skipped with the state unchanged: one printer's odd report must not end
    the farm's streams.
    """

    def operator(source: Observable[T]) -> Observable[R]:
        def subscribe(
            observer: abc.ObserverBase[R], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            state = initial
            failures = FailureLog(log, f"stream step {name}")

            def on_next(value: T) -> None:
                nonlocal state
                try:
                    state, outputs = step(state, value)
                except Exception as error:
                    failures.failed(error, f" on a report of {getattr(value, 'printer_id', '?')}")
                    return
                for output in outputs:
                    observer.on_next(output)

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return Observable(subscribe)

    return operator


class _Missing:
    """Marks 'no value pending' (None is a legal value)."""


_MISSING = _Missing()


def throttle_latest(
    interval_s: float, scheduler: abc.SchedulerBase
) -> Callable[[Observable[T]], Observable[T]]:
    """At most one value per interval: the first at once, later ones coalesced, latest at window end.

    Time comes from `scheduler` only (asyncio in the hub, virtual in tests).
    Delivery is single-threaded (the asyncio loop), so there is no lock. A
    timer is scheduled only when a second value arrives inside a window, so a
    printer reporting slower than the interval costs no timers at all.
    """
    window = timedelta(seconds=interval_s)
    zero = timedelta(0)

    def operator(source: Observable[T]) -> Observable[T]:
        def subscribe(
            observer: abc.ObserverBase[T], _: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            last_sent: datetime | None = None
            pending: T | _Missing = _MISSING
            timer = SerialDisposable()

            def flush(_scheduler: abc.SchedulerBase | None = None, _state: Any = None) -> None:
                nonlocal last_sent, pending
                value = pending
                if isinstance(value, _Missing):
                    return
                pending = _MISSING
                last_sent = scheduler.now
                observer.on_next(value)

            def on_next(value: T) -> None:
                nonlocal last_sent, pending
                now = scheduler.now
                if last_sent is None or (
                    isinstance(pending, _Missing) and now - last_sent >= window
                ):
                    last_sent = now
                    observer.on_next(value)
                    return
                if isinstance(pending, _Missing):
                    # Clamped to one window: a wall clock stepping back must not stall a printer.
                    wait = min(window, max(zero, last_sent + window - now))
                    timer.disposable = scheduler.schedule_relative(wait, flush)
                pending = value

            def on_error(error: Exception) -> None:
                timer.dispose()
                observer.on_error(error)

            def on_completed() -> None:
                timer.dispose()
                flush()  # the latest value is never lost at the end
                observer.on_completed()

            return CompositeDisposable(source.subscribe(on_next, on_error, on_completed), timer)

        return Observable(subscribe)

    return operator


def merge_now(*sources: Observable[T]) -> Observable[T]:
    """Merge that subscribes to every source at once, in order, on the calling thread.

    reactivex.merge subscribes through from_iterable, which may defer to a
    scheduler; a per-printer part subscribed late would miss the very report
    that created its printer's group.
    """

    def subscribe(
        observer: abc.ObserverBase[T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        remaining = len(sources)
        subscriptions = CompositeDisposable()

        def on_completed() -> None:
            nonlocal remaining
            remaining -= 1
            if remaining == 0:
                observer.on_completed()

        for source in sources:
            subscriptions.add(
                source.subscribe(
                    observer.on_next, observer.on_error, on_completed, scheduler=scheduler
                )
            )
        return subscriptions

    return Observable(subscribe)
