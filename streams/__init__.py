"""The reactive core: pure ReactiveX pipelines over printer telemetry, with no I/O of their own."""

from streams.events import (
    TERMINAL_KINDS,
    ActiveJob,
    AmsEvent,
    LifecycleEvent,
    LifecycleKind,
    NotificationEvent,
    NotificationKind,
    ProgressEvent,
    RecordedPrints,
    Severity,
)
from streams.lifecycle import job_key_for
from streams.pipelines import Pipelines, build_pipelines
from streams.settings import StreamSettings
from streams.sinks import subscribe_isolated

__all__ = [
    "TERMINAL_KINDS",
    "ActiveJob",
    "AmsEvent",
    "LifecycleEvent",
    "LifecycleKind",
    "NotificationEvent",
    "NotificationKind",
    "Pipelines",
    "ProgressEvent",
    "RecordedPrints",
    "Severity",
    "StreamSettings",
    "build_pipelines",
    "job_key_for",
    "subscribe_isolated",
]
