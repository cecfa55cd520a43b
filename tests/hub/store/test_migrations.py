"""Migrations apply once, in order, on both engines."""

from __future__ import annotations

import uuid
from pathlib import Path

from databases import Database

from hub.store import db as store
from hub.store import history, kv
from hub.store.history_query import Filters
from tests.conftest import _admin


async def test_migrations_are_recorded_and_idempotent(db: Database) -> None:
    versions = await store.applied_versions(db)
    assert versions == {m.version for m in store.migrations()}
    assert await store.migrate(db) == []


async def test_kv_get_or_create_keeps_first_value(db: Database) -> None:
    assert await kv.get(db, "jwt_secret") is None
    first = await kv.get_or_create(db, "jwt_secret", "a" * 40)
    second = await kv.get_or_create(db, "jwt_secret", "b" * 40)
    assert first == second == "a" * 40


async def test_0018_renames_stored_filament_notifications(db: Database) -> None:
    """Notifications and pending outbox payloads stored as filament_low / filament_runout take
    the dotted names; other kinds and delivered messages are left as they are."""
    note = "INSERT INTO notifications (id, printer_id, kind, severity, title, message, data,"
    note += " created_at) VALUES (:id, NULL, :kind, 'warning', 't', 'm', '{}', 1.0)"
    for id_, kind in (("n1", "filament_low"), ("n2", "filament_runout"), ("n3", "printer_offline")):
        await db.execute(note, {"id": id_, "kind": kind})
    row = "INSERT INTO outbox (id, seq, target_kind, target_id, event_id, event_type, payload,"
    row += " state, attempts, next_attempt_at, created_at, retry_from) VALUES (:id, :seq,"
    row += " 'webhook', 'w', :id, 'notification', :payload, :state, 0, 1.0, 1.0, 1.0)"
    payload = '{"type": "notification", "data": {"kind": "filament_low"}}'
    await db.execute(row, {"id": "o1", "seq": 1, "payload": payload, "state": "pending"})
    await db.execute(row, {"id": "o2", "seq": 2, "payload": payload, "state": "delivered"})
    await db.execute("DELETE FROM schema_migrations WHERE version = 18")
    assert await store.migrate(db) == [18]
    kinds = await db.fetch_all("SELECT id, kind FROM notifications ORDER BY id")
    assert [(r["id"], r["kind"]) for r in kinds] == [
        ("n1", "filament.low"),
        ("n2", "filament.runout"),
        ("n3", "printer_offline"),
    ]
    payloads = await db.fetch_all("SELECT id, payload FROM outbox ORDER BY id")
    assert [r["payload"] for r in payloads] == [
        '{"type": "notification", "data": {"kind": "filament.low"}}',
        payload,
    ]


async def test_engine_specific_migrations_pair_up_and_apply(db: Database) -> None:
    """A version written per engine exists for both, under one name; each engine got its own
    file-name search index (migrations 0015, 0016: on the distinct names)."""
    sqlite, postgres = store.migrations("sqlite"), store.migrations("postgresql")
    assert [(m.version, m.name) for m in sqlite] == [(m.version, m.name) for m in postgres]
    assert any(a.sql != b.sql for a, b in zip(sqlite, postgres, strict=True))
    if store.is_postgres(db):
        found = await db.fetch_val(
            "SELECT COUNT(*) FROM pg_indexes WHERE indexname = 'history_files_trgm'"
        )
    else:
        found = await db.fetch_val(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'history_files_fts'"
            " AND instr(sql, 'trigram') > 0"
        )
    assert found == 1


async def _at_version(db: Database, last: int) -> None:
    """Apply the migrations up to `last` only (as a database made before the next ones)."""
    await store.applied_versions(db)
    for migration in store.migrations(store.engine_of(db)):
        if migration.version > last:
            break
        for statement in migration.statements():
            await db.execute(statement)
        await db.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (:v, :n, 0)",
            {"v": migration.version, "n": migration.name},
        )


async def test_0016_renames_finished_and_indexes_the_stored_names(
    db_url: str, tmp_path: Path
) -> None:
    """A history written before 0016: `finished` rows and counts become `completed`, and the
    names already stored are searchable with their print counts."""
    url, scratch = db_url, None
    if db_url.startswith("postgresql"):
        scratch = f"pf_mig_{uuid.uuid4().hex[:10]}"
        server = db_url.rsplit("/", 1)[0]
        await _admin(f'CREATE DATABASE "{scratch}"', server)
        url = f"{server}/{scratch}"
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    db = await store.connect(url)
    try:
        await _at_version(db, 15)
        for i, (file, outcome) in enumerate(
            [("Benchy.gcode", "finished"), ("benchy.gcode", "failed"), ("Benchy.gcode", "finished")]
        ):  # fmt: skip
            await db.execute(
                "INSERT INTO prints (id, job_key, printer_id, file, state, outcome, progress,"
                " started_at, updated_at) VALUES (:id, :k, 'p1', :f, :o, :o2, 100, :at, :at)",
                {"id": f"id{i}", "k": f"k{i}", "f": file, "o": outcome, "o2": outcome, "at": i},
            )
        await db.execute(
            "INSERT INTO print_counts (printer_id, outcome, n) VALUES ('p1', 'finished', 2),"
            " ('p1', 'failed', 1)"
        )
        assert 16 in await store.migrate(db)
        rows = await db.fetch_all("SELECT id, outcome, state FROM prints ORDER BY id")
        assert [(r["outcome"], r["state"]) for r in rows] == [
            ("completed", "completed"), ("failed", "failed"), ("completed", "completed"),
        ]  # fmt: skip
        counts = await db.fetch_all("SELECT outcome, n FROM print_counts ORDER BY outcome")
        assert [(r["outcome"], r["n"]) for r in counts] == [("completed", 2), ("failed", 1)]
        items, total = await history.page(
            db, Filters(file="BENCHY.g", outcome="completed"), limit=5
        )
        assert total == 2 and {i["id"] for i in items} == {"id0", "id2"}
        assert (await history.page(db, Filters(file="benchy"), limit=5))[1] == 3
    finally:
        await db.disconnect()
        if scratch is not None:
            await _admin(
                f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)', db_url.rsplit("/", 1)[0]
            )
