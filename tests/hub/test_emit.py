"""Changes and their events (hub/emit.py), on both engines: rows written with the change, the
bus told only after the commit, nothing published for a change (or a nested part of one) that
rolled back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from databases import Database

from hub.bus import EventBus
from hub.emit import Emitter
from hub.events import NotificationStored, PrinterRemoved


async def _notes(db: Database) -> list[str]:
    rows = await db.fetch_all("SELECT kind FROM notifications ORDER BY created_at, kind")
    return [r["kind"] for r in rows]


def _note(kind: str) -> dict[str, object]:
    return dict(printer_id=None, kind=kind, severity="info", title=kind, message=kind, data={})


async def test_published_after_commit_and_marked_written(db: Database) -> None:
    bus = EventBus()
    seen: list[object] = []
    bus.subscribe((NotificationStored, PrinterRemoved), seen.append, name="t", inline=True)
    emitter = Emitter(db, bus)
    written: list[object] = []

    async def hook(*events: object) -> Callable[[], None]:
        written.append(events)
        return lambda: seen.append("woken")

    emitter.hook = hook
    async with emitter.batch() as change:
        await change.notify(**_note("a"))  # type: ignore[arg-type]
        await change.emit(PrinterRemoved("p1", "one"))
        assert seen == [], "published before the commit"
    # The change's events have their rows written together, once, inside its transaction.
    assert len(written) == 1
    assert [type(e).__name__ for e in written[0]] == ["NotificationStored", "PrinterRemoved"]
    assert all(
        isinstance(e, (NotificationStored, PrinterRemoved)) and e.outboxed for e in written[0]
    )
    assert [type(e).__name__ for e in seen[:2]] == ["NotificationStored", "PrinterRemoved"]
    assert seen[2:] == ["woken"]
    assert await _notes(db) == ["a"]
    await bus.close()


async def test_rolled_back_changes_publish_nothing(db: Database) -> None:
    bus = EventBus()
    seen: list[object] = []
    bus.subscribe(NotificationStored, seen.append, name="t", inline=True)
    emitter = Emitter(db, bus)
    with pytest.raises(RuntimeError):
        async with emitter.batch() as change:
            await change.notify(**_note("lost"))  # type: ignore[arg-type]
            raise RuntimeError("the change fails")
    assert seen == [] and await _notes(db) == []

    # A nested change that fails is rolled back alone; the enclosing one still commits.
    async with emitter.batch() as outer:
        await outer.notify(**_note("kept"))  # type: ignore[arg-type]
        with pytest.raises(RuntimeError):
            async with emitter.batch() as inner:
                assert inner is outer
                await inner.notify(**_note("dropped"))  # type: ignore[arg-type]
                raise RuntimeError("the nested part fails")
        await outer.notify(**_note("later"))  # type: ignore[arg-type]
    assert [e.note["kind"] for e in seen if isinstance(e, NotificationStored)] == [
        "kept",
        "later",
    ]
    assert sorted(await _notes(db)) == ["kept", "later"]
    await bus.close()


async def test_a_flat_change_takes_no_savepoints_and_fails_whole(db: Database) -> None:
    bus = EventBus()
    seen: list[object] = []
    bus.subscribe(NotificationStored, seen.append, name="t", inline=True)
    emitter = Emitter(db, bus)
    opened: list[bool] = []
    transaction = db.transaction

    def counted(*args: Any, **kwargs: Any) -> Any:
        opened.append(True)
        return transaction(*args, **kwargs)

    db.transaction = counted  # type: ignore[method-assign]
    try:
        # Nested parts of a plain change are savepoints (a transaction each)...
        async with emitter.batch():
            async with emitter.batch():
                pass
        assert len(opened) == 2
        # ...of a flat change they join it with none: one transaction for the whole.
        opened.clear()
        async with emitter.batch(flat=True) as outer:
            for kind in ("one", "two"):
                async with emitter.batch() as inner:
                    assert inner is outer
                    await inner.notify(**_note(kind))  # type: ignore[arg-type]
        assert len(opened) == 1
    finally:
        db.transaction = transaction  # type: ignore[method-assign]
    assert sorted(await _notes(db)) == ["one", "two"]

    # A part that fails fails the whole flat change: nothing of it is kept or published.
    seen.clear()
    with pytest.raises(RuntimeError):
        async with emitter.batch(flat=True) as outer:
            await outer.notify(**_note("first"))  # type: ignore[arg-type]
            async with emitter.batch() as inner:
                await inner.notify(**_note("second"))  # type: ignore[arg-type]
                raise RuntimeError("a part fails")
    assert seen == [] and sorted(await _notes(db)) == ["one", "two"]
    await bus.close()


async def test_rows_of_a_rolled_back_part_are_not_written(db: Database) -> None:
    bus = EventBus()
    emitter = Emitter(db, bus)
    written: list[str] = []

    async def hook(*events: object) -> Callable[[], None]:
        written.extend(e.note["kind"] for e in events if isinstance(e, NotificationStored))
        return lambda: None

    emitter.hook = hook
    async with emitter.batch() as outer:
        await outer.notify(**_note("kept"))  # type: ignore[arg-type]
        with pytest.raises(RuntimeError):
            async with emitter.batch() as inner:
                await inner.notify(**_note("dropped"))  # type: ignore[arg-type]
                raise RuntimeError("the nested part fails")
        await outer.notify(**_note("later"))  # type: ignore[arg-type]
    assert written == ["kept", "later"]
    await bus.close()
