"""Persisted notifications with read/unread state."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from databases import Database

from hub.model import rfc3339
from hub.store.db import is_postgres


@dataclass(frozen=True)
class Notification:
    """One stored notification."""

    id: str
    printer_id: str | None
    kind: str
    severity: str
    title: str
    message: str
    data: dict[str, Any]
    created_at: float
    read_at: float | None

    def public(self) -> dict[str, Any]:
        """The JSON form (also the WebSocket `notification` payload)."""
        return {
            "id": self.id,
            "printer_id": self.printer_id,
            "kind": self.kind,
            "severity": self.severity,
            "title": self.title,
            "message": self.message,
            "data": self.data,
            "created_at": rfc3339(self.created_at),
            "read": self.read_at is not None,
            "read_at": rfc3339(self.read_at),
        }


def _note(row: Any) -> Notification:
    return Notification(
        id=row["id"],
        printer_id=row["printer_id"],
        kind=row["kind"],
        severity=row["severity"],
        title=row["title"],
        message=row["message"],
        data=json.loads(row["data"]),
        created_at=float(row["created_at"]),
        read_at=None if row["read_at"] is None else float(row["read_at"]),
    )


def new(
    *,
    printer_id: str | None,
    kind: str,
    severity: str,
    title: str,
    message: str,
    data: dict[str, Any],
    created_at: float | None = None,
    note_id: str | None = None,
) -> Notification:
    """A notification not yet stored, unread (`add_many` stores it)."""
    return Notification(
        id=note_id or str(uuid.uuid4()),
        printer_id=printer_id,
        kind=kind,
        severity=severity,
        title=title,
        message=message,
        data=data,
        created_at=time.time() if created_at is None else created_at,
        read_at=None,
    )


async def add(
    db: Database,
    *,
    printer_id: str | None,
    kind: str,
    severity: str,
    title: str,
    message: str,
    data: dict[str, Any],
    created_at: float | None = None,
    note_id: str | None = None,
) -> Notification:
    """Store a notification, unread. Given `note_id`, storing it again is a no-op (a retry
    after a commit whose answer was lost stores it once)."""
    note = new(
        printer_id=printer_id, kind=kind, severity=severity, title=title, message=message,
        data=data, created_at=created_at, note_id=note_id,
    )  # fmt: skip
    await db.execute(
        "INSERT INTO notifications (id, printer_id, kind, severity, title, message, data,"
        " created_at, read_at) VALUES (:id, :p, :k, :s, :t, :m, :d, :c, NULL)"
        " ON CONFLICT (id) DO NOTHING",
        _values(note),
    )
    return note


def _values(note: Notification) -> dict[str, Any]:
    return {
        "id": note.id,
        "p": note.printer_id,
        "k": note.kind,
        "s": note.severity,
        "t": note.title,
        "m": note.message,
        "d": json.dumps(note.data, default=str),
        "c": note.created_at,
    }


_ADD_FROM = {
    "postgresql": "SELECT id, p, k, s, t, m, d, c, NULL FROM json_to_recordset(CAST(:rows AS json))"
    " AS v(id text, p text, k text, s text, t text, m text, d text, c double precision)",
    "sqlite": "SELECT json_extract(value, '$.id'), json_extract(value, '$.p'),"
    " json_extract(value, '$.k'), json_extract(value, '$.s'), json_extract(value, '$.t'),"
    " json_extract(value, '$.m'), json_extract(value, '$.d'), json_extract(value, '$.c'), NULL"
    " FROM json_each(:rows) WHERE true",
}


async def add_many(db: Database, notes: list[Notification]) -> None:
    """Store notifications made by `new`, in one statement (one already stored is left)."""
    if not notes:
        return
    engine = "postgresql" if is_postgres(db) else "sqlite"
    await db.execute(
        "INSERT INTO notifications (id, printer_id, kind, severity, title, message, data,"
        f" created_at, read_at) {_ADD_FROM[engine]} ON CONFLICT (id) DO NOTHING",
        {"rows": json.dumps([_values(note) for note in notes])},
    )


async def list_page(
    db: Database, *, unread_only: bool, limit: int, offset: int
) -> tuple[list[Notification], int]:
    """A page of notifications, newest first."""
    where = "WHERE read_at IS NULL" if unread_only else ""
    rows = await db.fetch_all(
        f"SELECT * FROM notifications {where} ORDER BY created_at DESC, id"
        " LIMIT :limit OFFSET :offset",
        {"limit": limit, "offset": offset},
    )
    total = await db.fetch_val(f"SELECT COUNT(*) FROM notifications {where}")
    return [_note(r) for r in rows], int(total or 0)


async def mark_read(db: Database, note_id: str) -> Notification | None:
    """Mark one notification read (keeping the first read time); None when absent."""
    row = await db.fetch_one(
        "UPDATE notifications SET read_at = COALESCE(read_at, :now) WHERE id = :id RETURNING *",
        {"now": time.time(), "id": note_id},
    )
    return None if row is None else _note(row)


async def mark_all_read(db: Database) -> int:
    """Mark every unread notification read; return how many this call changed."""
    rows = await db.fetch_all(
        "UPDATE notifications SET read_at = :now WHERE read_at IS NULL RETURNING id",
        {"now": time.time()},
    )
    return len(rows)
