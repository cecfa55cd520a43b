"""The delivery outbox: one row per message to one target (webhook endpoint or notification channel)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from databases import Database

from hub.model import rfc3339
from hub.store import resilient
from hub.store.db import is_postgres

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"

#: Tables of the targets the outbox delivers to, by target kind (never taken from input).
TARGET_TABLES = {"webhook": "webhooks", "channel": "notify_channels"}

_seq_floor = [0]


def next_seq() -> int:
    """A strictly increasing number (microseconds since the epoch, bumped on ties): a target's
    messages go out in this order, also after a restart."""
    now = time.time_ns() // 1000
    seq = max(now, _seq_floor[0] + 1)
    _seq_floor[0] = seq
    return seq


@dataclass(frozen=True)
class NewMessage:
    """A message to write into the outbox."""

    target_kind: str
    target_id: str
    event_id: str
    event_type: str
    payload: str
    not_before: float | None = None


@dataclass(frozen=True)
class Delivery:
    """One outbox row."""

    id: str
    seq: int
    target_kind: str
    target_id: str
    event_id: str
    event_type: str
    payload: str
    state: str
    attempts: int
    next_attempt_at: float
    created_at: float
    retry_from: float
    last_attempt_at: float | None
    last_status: int | None
    last_error: str | None
    delivered_at: float | None

    def public(self) -> dict[str, Any]:
        """The JSON form shown in the deliveries list."""
        return {
            "id": self.id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "state": self.state,
            "attempts": self.attempts,
            "created_at": rfc3339(self.created_at),
            "next_attempt_at": rfc3339(self.next_attempt_at) if self.state == PENDING else None,
            "last_attempt_at": rfc3339(self.last_attempt_at),
            "last_status": self.last_status,
            "last_error": self.last_error,
            "delivered_at": rfc3339(self.delivered_at),
        }


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=row["id"],
        seq=int(row["seq"]),
        target_kind=row["target_kind"],
        target_id=row["target_id"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        payload=row["payload"],
        state=row["state"],
        attempts=int(row["attempts"]),
        next_attempt_at=float(row["next_attempt_at"]),
        created_at=float(row["created_at"]),
        retry_from=float(row["retry_from"]),
        last_attempt_at=_opt(row["last_attempt_at"]),
        last_status=None if row["last_status"] is None else int(row["last_status"]),
        last_error=row["last_error"],
        delivered_at=_opt(row["delivered_at"]),
    )


async def enqueue(db: Database, messages: list[NewMessage]) -> None:
    """Write messages as pending (in one transaction); a message already written for the same
    target and event is left as it is."""
    if not messages:
        return
    now = time.time()
    values = [
        {
            "id": str(uuid.uuid4()),
            "seq": next_seq(),
            "kind": m.target_kind,
            "target": m.target_id,
            "event_id": m.event_id,
            "type": m.event_type,
            "payload": m.payload,
            "due": max(now, m.not_before or now),
            "now": now,
        }
        for m in messages
    ]
    await db.execute_many(
        "INSERT INTO outbox (id, seq, target_kind, target_id, event_id, event_type, payload,"
        " state, attempts, next_attempt_at, created_at, retry_from)"
        " VALUES (:id, :seq, :kind, :target, :event_id, :type, :payload, 'pending', 0, :due,"
        " :now, :due) ON CONFLICT (target_kind, target_id, event_id) DO NOTHING",
        values,
    )


async def next_pending(db: Database, kind: str, target_id: str, limit: int = 1) -> list[Delivery]:
    """The target's oldest pending messages, in order (its deliveries go out strictly in order)."""
    rows = await db.fetch_all(
        "SELECT * FROM outbox WHERE target_kind = :kind AND target_id = :target"
        " AND state = 'pending' ORDER BY seq, id LIMIT :limit",
        {"kind": kind, "target": target_id, "limit": limit},
    )
    return [_delivery(r) for r in rows]


async def pending_targets(db: Database) -> list[tuple[str, str]]:
    """Every (kind, target id) with a pending message."""
    rows = await db.fetch_all(
        "SELECT DISTINCT target_kind, target_id FROM outbox WHERE state = 'pending'"
    )
    return [(r["target_kind"], r["target_id"]) for r in rows]


async def record(
    db: Database,
    delivery_id: str,
    *,
    state: str,
    attempts: int,
    next_attempt_at: float,
    at: float,
    status: int | None,
    error: str | None,
) -> None:
    """Store the outcome of one attempt."""
    await db.execute(
        "UPDATE outbox SET state = :state, attempts = :attempts, next_attempt_at = :next,"
        " last_attempt_at = :at, last_status = :status, last_error = :error,"
        " delivered_at = :delivered WHERE id = :id",
        {
            "state": state,
            "attempts": attempts,
            "next": next_attempt_at,
            "at": at,
            "status": status,
            "error": None if error is None else error[:1000],
            "delivered": at if state == DELIVERED else None,
            "id": delivery_id,
        },
    )


async def get(db: Database, kind: str, target_id: str, delivery_id: str) -> Delivery | None:
    """One message of a target."""
    row = await db.fetch_one(
        "SELECT * FROM outbox WHERE id = :id AND target_kind = :kind AND target_id = :target",
        {"id": delivery_id, "kind": kind, "target": target_id},
    )
    return None if row is None else _delivery(row)


async def by_event(db: Database, kind: str, target_id: str, event_id: str) -> Delivery | None:
    """A target's message for one event."""
    row = await db.fetch_one(
        "SELECT * FROM outbox WHERE target_kind = :kind AND target_id = :target"
        " AND event_id = :event",
        {"kind": kind, "target": target_id, "event": event_id},
    )
    return None if row is None else _delivery(row)


async def list_page(
    db: Database, kind: str, target_id: str, *, state: str | None, limit: int, offset: int
) -> tuple[list[Delivery], int]:
    """A page of a target's messages, newest first."""
    where = "target_kind = :kind AND target_id = :target"
    params: dict[str, Any] = {"kind": kind, "target": target_id}
    if state is not None:
        where += " AND state = :state"
        params["state"] = state
    rows = await db.fetch_all(
        f"SELECT * FROM outbox WHERE {where} ORDER BY seq DESC, id LIMIT :limit OFFSET :offset",
        {**params, "limit": limit, "offset": offset},
    )
    total = await db.fetch_val(f"SELECT COUNT(*) FROM outbox WHERE {where}", params)
    return [_delivery(r) for r in rows], int(total or 0)


async def redeliver(db: Database, kind: str, target_id: str, delivery_id: str) -> Delivery | None:
    """Make a message pending again, due now, with a fresh retry window (same event id)."""
    now = time.time()
    await db.execute(
        "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = :now,"
        " retry_from = :now, delivered_at = NULL"
        " WHERE id = :id AND target_kind = :kind AND target_id = :target",
        {"now": now, "id": delivery_id, "kind": kind, "target": target_id},
    )
    return await get(db, kind, target_id, delivery_id)


async def delete_target(db: Database, kind: str, target_id: str) -> None:
    """Forget every message of a deleted target."""
    await db.execute(
        "DELETE FROM outbox WHERE target_kind = :kind AND target_id = :target",
        {"kind": kind, "target": target_id},
    )


# Target bookkeeping shared by webhooks and channels -----------------------------------------


async def lock_target(db: Database, kind: str, target_id: str) -> bool:
    """Take the target for this connection: on PostgreSQL a session advisory lock, so hub
    processes sharing the database never send to one target at once (False: another has it).
    A SQLite file has one hub process: always True."""
    if not is_postgres(db):
        return True
    key = f"outbox:{kind}:{target_id}"
    # Before the lock: a connection given back with it held (an error between the two
    # statements) has it released by the pool's reset.
    resilient.keeps_session_state(db)
    return bool(await db.fetch_val("SELECT pg_try_advisory_lock(hashtext(:key))", {"key": key}))


async def unlock_target(db: Database, kind: str, target_id: str) -> None:
    """Give the target back (see `lock_target`)."""
    if is_postgres(db):
        key = f"outbox:{kind}:{target_id}"
        await db.fetch_val("SELECT pg_advisory_unlock(hashtext(:key))", {"key": key})


async def target_state(db: Database, kind: str, target_id: str) -> bool | None:
    """Whether the target is enabled; None when it no longer exists."""
    table = TARGET_TABLES[kind]
    value = await db.fetch_val(f"SELECT enabled FROM {table} WHERE id = :id", {"id": target_id})
    return None if value is None else bool(value)


async def target_succeeded(db: Database, kind: str, target_id: str) -> None:
    """A delivery got through: the target's run of failures ends."""
    table = TARGET_TABLES[kind]
    await db.execute(
        f"UPDATE {table} SET failure_streak = 0 WHERE id = :id AND failure_streak <> 0",
        {"id": target_id},
    )


async def target_failed(db: Database, kind: str, target_id: str) -> int:
    """A delivery failed for good: count it; return the target's run of failures."""
    table = TARGET_TABLES[kind]
    await db.execute(
        f"UPDATE {table} SET failure_streak = failure_streak + 1 WHERE id = :id",
        {"id": target_id},
    )
    value = await db.fetch_val(
        f"SELECT failure_streak FROM {table} WHERE id = :id", {"id": target_id}
    )
    return int(value or 0)


async def disable_target(db: Database, kind: str, target_id: str, reason: str) -> None:
    """Turn a target off, saying why."""
    table = TARGET_TABLES[kind]
    await db.execute(
        f"UPDATE {table} SET enabled = 0, disabled_reason = :reason, updated_at = :now"
        " WHERE id = :id",
        {"reason": reason[:1000], "now": time.time(), "id": target_id},
    )
