"""Migrations apply once, in order, on both engines."""

from __future__ import annotations

from databases import Database

from hub.store import db as store
from hub.store import kv


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
