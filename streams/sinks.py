"""subscribe_isolated: attach a sink to a stream so that its failures stay its own."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable

from streams.failures import FailureLog

T = TypeVar("T")


def subscribe_isolated(
    observable: Observable[T],
    on_next: Callable[[T], None],
    name: str,
    disposables: CompositeDisposable,
    log: logging.Logger,
) -> abc.DisposableBase:
    """Subscribe `on_next` so that its exceptions are logged, never reaching the stream or other sinks.

    A sink that raises would otherwise abort delivery of that value to every
    subscriber after it. The subscription is added to `disposables`, which the
    hub disposes on shutdown; it is returned too, to detach this sink alone.
    """
    failures = FailureLog(log, f"sink {name}")

    def safe_next(value: T) -> None:
        try:
            on_next(value)
        except Exception as error:
            failures.failed(error, f" on {type(value).__name__}")

    def on_error(error: Exception) -> None:
        log.error("stream feeding sink %s failed; the sink gets nothing more", name, exc_info=error)

    def on_completed() -> None:
        log.info("stream feeding sink %s completed", name)

    subscription = observable.subscribe(safe_next, on_error, on_completed)
    disposables.add(subscription)
    return subscription
