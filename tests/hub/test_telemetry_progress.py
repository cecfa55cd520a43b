"""Progress reaches the database once per new whole percent, not once per progress event."""

from __future__ import annotations

import pytest
from databases import Database

from hub.broadcast import Broadcaster
from hub.store import prints as prints_store
from hub.telemetry import Telemetry
from streams import ProgressEvent


def _event(progress: int, remaining_s: int) -> ProgressEvent:
    return ProgressEvent("p1", "cube.gcode", progress, 3, 100, remaining_s, "p1/task-1")


async def test_unchanged_percent_is_not_rewritten(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[tuple[str, float]] = []

    async def set_progress_many(db: Database, progress: dict[str, float]) -> None:
        writes.extend(progress.items())

    monkeypatch.setattr(prints_store, "set_progress_many", set_progress_many)
    telemetry = Telemetry(db, Broadcaster(), lambda state: {})
    for remaining in (600, 590, 580):
        telemetry._on_progress(_event(10, remaining))
    await telemetry._flush_progress()
    assert writes == [("p1/task-1", 10.0)]
    telemetry._on_progress(_event(10, 570))  # remaining time moved, the percent did not
    await telemetry._flush_progress()
    assert writes == [("p1/task-1", 10.0)]
    telemetry._on_progress(_event(11, 560))
    await telemetry._flush_progress()
    assert writes == [("p1/task-1", 10.0), ("p1/task-1", 11.0)]


async def test_failed_write_is_retried(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[float] = []

    async def flaky(db: Database, progress: dict[str, float]) -> None:
        attempts.extend(progress.values())
        if len(attempts) == 1:
            raise ConnectionError("database away")

    monkeypatch.setattr(prints_store, "set_progress_many", flaky)
    telemetry = Telemetry(db, Broadcaster(), lambda state: {})
    telemetry._on_progress(_event(20, 300))
    await telemetry._flush_progress()
    telemetry._on_progress(_event(20, 290))
    await telemetry._flush_progress()
    assert attempts == [20.0, 20.0]
    await telemetry._flush_progress()
    assert attempts == [20.0, 20.0]
