"""Print records and notifications on both engines."""

from __future__ import annotations

from pathlib import Path

import pytest
from databases import Database

from hub.store import db as store
from hub.store import notifications, prints


async def test_print_record_is_idempotent_and_closes_once(db: Database) -> None:
    args = dict(
        job_key="k1",
        printer_id="p1",
        file="a.gcode",
        started_at=100.0,
        progress=0.0,
        total_layers=50,
    )
    assert await prints.start(db, **args) is True
    assert await prints.start(db, **args) is False
    await prints.set_progress(db, "k1", 40.0)
    await prints.set_progress(db, "k1", 30.0)  # never lowers
    await prints.set_state(db, "k1", "paused", None)
    record = await prints.by_key(db, "k1")
    assert record is not None and record.progress == 40.0 and record.state == "paused"
    assert [r.job_key for r in await prints.open_prints(db)] == ["k1"]
    assert await prints.finish(db, "k1", "cancelled", 200.0, 41.0) is True
    assert await prints.finish(db, "k1", "finished", 300.0, 100.0) is False
    assert await prints.start(db, **{**args, "job_key": "k2"}) is True
    assert await prints.finish(db, "k2", "finished", 300.0, 100.0) is True
    done = await prints.by_key(db, "k2")  # the lifecycle's `finished` is history's `completed`
    assert done is not None and (done.outcome, done.state) == ("completed", "completed")
    record = await prints.by_key(db, "k1")
    assert record is not None
    assert (record.outcome, record.ended_at, record.progress) == ("cancelled", 200.0, 41.0)
    assert await prints.open_prints(db) == []
    page, total = await prints.list_page(db, printer_id="p1", limit=10, offset=0)
    durations = {r.job_key: r.public()["duration_s"] for r in page}
    assert total == 2 and durations == {"k1": 100.0, "k2": 200.0}


async def _progress_of_many(db: Database) -> None:
    keys = [f"k{i}" for i in range(450)] + ['odd "key" \\ é']  # more than one CASE statement
    for key in keys:
        await prints.start(
            db, job_key=key, printer_id="p1", file="a.gcode", started_at=1.0, progress=10.0,
            total_layers=None,
        )  # fmt: skip
    await prints.finish(db, "k3", "failed", 2.0, 10.0)
    await prints.set_progress_many(db, {key: 20.0 + i % 50 for i, key in enumerate(keys)})
    await prints.set_progress_many(db, {"k0": 5.0, "k1": 99.5})  # never lowers
    got = {key: (await prints.by_key(db, key)) for key in keys}
    assert got["k0"] is not None and got["k0"].progress == 20.0 and got["k0"].updated_at > 1.0
    assert got["k1"] is not None and got["k1"].progress == 99.5
    assert got["k3"] is not None and got["k3"].progress == 10.0  # closed prints stay as they were
    assert all(r is not None and r.progress == 20.0 + i % 50 for i, r in enumerate(got.values())
               if i not in (1, 3))  # fmt: skip
    await prints.set_progress_many(db, {})


async def test_recent_prints_per_printer_and_the_unknown_outcome(db: Database) -> None:
    for n, (printer, started) in enumerate([("p1", 100.0), ("p1", 300.0), ("p1", 200.0),
                                            ("p2", 50.0), ("p1", 400.0)]):  # fmt: skip
        key = f"{printer}/{n}"
        await prints.start(db, job_key=key, printer_id=printer, file="a.gcode",
                           started_at=started, progress=0.0, total_layers=None)  # fmt: skip
        if started != 400.0:  # p1's newest is still open
            await prints.finish(db, key, "unknown", started + 10, 40.0)
    recent = await prints.recent_by_printer(db, per_printer=3)
    assert recent == {"p1": (["p1/2", "p1/1"], 400.0), "p2": (["p2/3"], 50.0)}
    record = await prints.by_key(db, "p1/0")
    assert record is not None and (record.outcome, record.progress) == ("unknown", 40.0)


async def test_progress_of_many_prints_in_one_write(db: Database) -> None:
    await _progress_of_many(db)


async def test_progress_case_form_for_sqlite_without_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite before 3.38 gets the same result from CASE statements of 200 prints."""
    monkeypatch.setattr(prints, "SQLITE_HAS_JSON_UPDATE", False)
    db = await store.connect(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        await store.migrate(db)
        await _progress_of_many(db)
    finally:
        await db.disconnect()


async def test_notifications_read_state(db: Database) -> None:
    for i in range(3):
        await notifications.add(
            db,
            printer_id="p1",
            kind="print_finished",
            severity="info",
            title=f"t{i}",
            message="m",
            data={"i": i},
            created_at=float(i),
        )
    items, total = await notifications.list_page(db, unread_only=True, limit=2, offset=0)
    assert total == 3 and [n.title for n in items] == ["t2", "t1"]
    marked = await notifications.mark_read(db, items[0].id)
    assert marked is not None and marked.public()["read"] is True
    assert (await notifications.list_page(db, unread_only=True, limit=10, offset=0))[1] == 2
    assert await notifications.mark_all_read(db) == 2
    assert (await notifications.list_page(db, unread_only=True, limit=10, offset=0))[1] == 0
    assert await notifications.mark_read(db, "missing") is None
