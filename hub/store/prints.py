"""Print records: one row per print, written idempotently on the print's job_key."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from dataclasses import dataclass
from typing import Any

from databases import Database

from hub.store import print_materials
from hub.store.db import is_postgres


@dataclass(frozen=True)
class PrintRecord:
    """One print as history keeps it."""

    id: str
    job_key: str
    printer_id: str
    file: str
    state: str
    outcome: str | None
    progress: float
    total_layers: int | None
    started_at: float
    ended_at: float | None
    updated_at: float

    def public(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "id": self.id,
            "job_key": self.job_key,
            "printer_id": self.printer_id,
            "file": self.file,
            "state": self.state,
            "outcome": self.outcome,
            "progress": self.progress,
            "total_layers": self.total_layers,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration_s": None if self.ended_at is None else self.ended_at - self.started_at,
        }


def _record(row: Any) -> PrintRecord:
    return PrintRecord(
        id=row["id"],
        job_key=row["job_key"],
        printer_id=row["printer_id"],
        file=row["file"],
        state=row["state"],
        outcome=row["outcome"],
        progress=float(row["progress"]),
        total_layers=None if row["total_layers"] is None else int(row["total_layers"]),
        started_at=float(row["started_at"]),
        ended_at=None if row["ended_at"] is None else float(row["ended_at"]),
        updated_at=float(row["updated_at"]),
    )


async def by_key(db: Database, job_key: str) -> PrintRecord | None:
    """The record of one print."""
    row = await db.fetch_one("SELECT * FROM prints WHERE job_key = :k", {"k": job_key})
    return None if row is None else _record(row)


async def start(
    db: Database,
    *,
    job_key: str,
    printer_id: str,
    file: str,
    started_at: float,
    progress: float,
    total_layers: int | None,
) -> bool:
    """Open a record unless one exists for job_key; True when inserted (the insert itself
    decides, so two writers racing on the same print cannot both open it)."""
    async with db.transaction():
        inserted = await db.fetch_one(
            "INSERT INTO prints (id, job_key, printer_id, file, state, outcome, progress,"
            " total_layers, started_at, ended_at, updated_at) VALUES (:id, :k, :p, :f,"
            " 'printing', NULL, :progress, :layers, :started, NULL, :now)"
            " ON CONFLICT (job_key) DO NOTHING RETURNING id",
            {
                "id": str(uuid.uuid4()),
                "k": job_key,
                "p": printer_id,
                "f": file,
                "progress": progress,
                "layers": total_layers,
                "started": started_at,
                "now": time.time(),
            },
        )
        if inserted is not None:
            await count(db, printer_id, "running", 1)
            file_id = await _count_file(db, file)
            await db.execute(
                "UPDATE prints SET file_id = :f WHERE id = :id",
                {"f": file_id, "id": inserted["id"]},
            )
            await count_file(db, file_id, printer_id, "running", 1)
    return inserted is not None


async def _count_file(db: Database, file: str) -> int:
    """Count a print of a file name in `history_files` (the history's file filter searches the
    distinct names, migrations 0016 and 0019) and return the name's id; a new name joins
    SQLite's trigram table too, under the same id."""
    key = "(md5(file))" if is_postgres(db) else "(file)"
    row = await db.fetch_one(
        f"INSERT INTO history_files (file, n) VALUES (:f, 1) ON CONFLICT {key}"
        " DO UPDATE SET n = history_files.n + 1 RETURNING id, n",
        {"f": file},
    )
    assert row is not None  # an upsert returns its row
    if int(row["n"]) == 1 and not is_postgres(db):
        await db.execute(
            "INSERT INTO history_files_fts (rowid, file) VALUES (:id, :f)",
            {"id": row["id"], "f": file},
        )
    return int(row["id"])


async def count(db: Database, printer_id: str, outcome: str, delta: int) -> None:
    """Move the history's count of a printer's prints with an outcome ('running': open)."""
    await db.execute(
        "INSERT INTO print_counts (printer_id, outcome, n) VALUES (:p, :o, :d)"
        " ON CONFLICT (printer_id, outcome) DO UPDATE SET n = print_counts.n + excluded.n",
        {"p": printer_id, "o": outcome, "d": delta},
    )


async def count_file(
    db: Database, file_id: int | None, printer_id: str, outcome: str, delta: int
) -> None:
    """Move the count of a file name's prints on a printer with an outcome (migration 0021:
    the history's total for a file filter with printer or outcome, without a time range)."""
    if file_id is None:  # no record is without a name id since migration 0019
        return
    await db.execute(
        "INSERT INTO print_file_counts (file_id, printer_id, outcome, n) VALUES (:f, :p, :o, :d)"
        " ON CONFLICT (file_id, printer_id, outcome)"
        " DO UPDATE SET n = print_file_counts.n + excluded.n",
        {"f": int(file_id), "p": printer_id, "o": outcome, "d": delta},
    )


async def set_state(db: Database, job_key: str, state: str, progress: float | None) -> None:
    """Mark an open print paused or printing (and record progress reached)."""
    await db.execute(
        "UPDATE prints SET state = :s, updated_at = :now WHERE job_key = :k AND outcome IS NULL",
        {"s": state, "now": time.time(), "k": job_key},
    )
    if progress is not None:
        await set_progress(db, job_key, progress)


async def set_progress(db: Database, job_key: str, progress: float) -> None:
    """Record the progress an open print reached (never lowers it)."""
    await set_progress_many(db, {job_key: progress})


PROGRESS_ROWS_PER_STATEMENT = 200  # the CASE form, for SQLite without JSON functions
# SQLite gained UPDATE … FROM in 3.33 and built-in JSON functions in 3.38.
SQLITE_HAS_JSON_UPDATE = sqlite3.sqlite_version_info >= (3, 38, 0)

# One statement for all moved prints, the rows passed as one JSON parameter: two bind values
# instead of two per print, so the statement costs the same to prepare whatever the farm size.
_PROGRESS_FROM_JSON = {
    "postgresql": "json_to_recordset(CAST(:rows AS json)) AS v(k text, p double precision)",
    "sqlite": "(SELECT json_extract(value, '$.k') AS k, json_extract(value, '$.p') AS p"
    " FROM json_each(:rows)) AS v",
}


async def set_progress_many(db: Database, progress: dict[str, float]) -> None:
    """Record the progress of many open prints in one statement (never lowers any)."""
    if not progress:
        return
    postgres = is_postgres(db)
    if not postgres and not SQLITE_HAS_JSON_UPDATE:
        await _set_progress_case(db, progress)
        return
    rows = json.dumps([{"k": key, "p": float(value)} for key, value in progress.items()])
    source = _PROGRESS_FROM_JSON["postgresql" if postgres else "sqlite"]
    await db.execute(
        f"UPDATE prints SET progress = v.p, updated_at = :now FROM {source}"
        " WHERE prints.job_key = v.k AND prints.outcome IS NULL AND prints.progress < v.p",
        {"rows": rows, "now": time.time()},
    )


async def _set_progress_case(db: Database, progress: dict[str, float]) -> None:
    """The same update as `CASE job_key WHEN … END` statements of 200 prints each."""
    items = list(progress.items())
    now = time.time()
    for start_at in range(0, len(items), PROGRESS_ROWS_PER_STATEMENT):
        chunk = items[start_at : start_at + PROGRESS_ROWS_PER_STATEMENT]
        values: dict[str, Any] = {"now": now}
        cases = []
        for i, (job_key, value) in enumerate(chunk):
            values[f"k{i}"] = job_key
            values[f"p{i}"] = float(value)
            cases.append(f"WHEN :k{i} THEN CAST(:p{i} AS DOUBLE PRECISION)")
        new_value = "CASE job_key " + " ".join(cases) + " END"
        keys = ", ".join(f":k{i}" for i in range(len(chunk)))
        await db.execute(
            f"UPDATE prints SET progress = {new_value}, updated_at = :now"  # only placeholders are interpolated
            f" WHERE job_key IN ({keys}) AND outcome IS NULL AND progress < {new_value}",
            values,
        )


# The history's outcome of each terminal lifecycle kind: the lifecycle (on /ws, webhooks, MQTT)
# says `finished`, the history record `completed` (docs/api.md).
HISTORY_OUTCOME = {"finished": "completed"}


def history_outcome(kind: str) -> str:
    """A terminal lifecycle kind (or an outcome already in history form) as history stores it."""
    return HISTORY_OUTCOME.get(kind, kind)


async def finish(
    db: Database, job_key: str, outcome: str, ended_at: float, progress: float
) -> bool:
    """Close an open print with its outcome (a terminal lifecycle kind; `finished` is stored as
    `completed`); False when it was already closed or absent."""
    outcome = history_outcome(outcome)
    record = await by_key(db, job_key)
    if record is None or record.outcome is not None:
        return False
    async with db.transaction():
        # The update itself decides (RETURNING): two writers closing the same print cannot both
        # move the counts.
        closed = await db.fetch_one(
            "UPDATE prints SET state = :o, outcome = :o2, ended_at = :e, progress = :p,"
            " updated_at = :now WHERE job_key = :k AND outcome IS NULL RETURNING id, file_id",
            {
                "o": outcome,
                "o2": outcome,
                "e": ended_at,
                "p": max(progress, record.progress) if outcome == "completed" else progress,
                "now": time.time(),
                "k": job_key,
            },
        )
        if closed is not None:
            await count(db, record.printer_id, "running", -1)
            await count(db, record.printer_id, outcome, 1)
            file_id = closed["file_id"]
            await count_file(db, file_id, record.printer_id, "running", -1)
            await count_file(db, file_id, record.printer_id, outcome, 1)
            await print_materials.close(db, record.id, record.printer_id, outcome, file_id)
    return closed is not None


async def open_prints(db: Database) -> list[PrintRecord]:
    """Prints not yet closed (the seed for lifecycle tracking after a restart)."""
    rows = await db.fetch_all("SELECT * FROM prints WHERE outcome IS NULL ORDER BY started_at")
    return [_record(r) for r in rows]


async def recent_by_printer(
    db: Database, per_printer: int = 32
) -> dict[str, tuple[list[str], float]]:
    """Per printer: the job_keys of its latest closed prints (oldest first) and when its newest
    print started (so a replayed printer history is recognised as already recorded)."""
    rows = await db.fetch_all(
        "SELECT printer_id, job_key, started_at, outcome FROM (SELECT printer_id, job_key,"
        " started_at, outcome, ROW_NUMBER() OVER (PARTITION BY printer_id"
        " ORDER BY started_at DESC, id DESC) AS n FROM prints) AS latest WHERE n <= :n"
        " ORDER BY printer_id, started_at",
        {"n": per_printer},
    )
    recent: dict[str, tuple[list[str], float]] = {}
    for row in rows:
        keys, newest = recent.setdefault(row["printer_id"], ([], float(row["started_at"])))
        if row["outcome"] is not None:
            keys.append(row["job_key"])
        recent[row["printer_id"]] = (keys, max(newest, float(row["started_at"])))
    return recent


async def list_page(
    db: Database, *, printer_id: str | None, limit: int, offset: int
) -> tuple[list[PrintRecord], int]:
    """A page of prints, newest first, optionally for one printer."""
    where, params = ("WHERE printer_id = :p", {"p": printer_id}) if printer_id else ("", {})
    rows = await db.fetch_all(
        f"SELECT * FROM prints {where} ORDER BY started_at DESC, id LIMIT :limit OFFSET :offset",
        {**params, "limit": limit, "offset": offset},
    )
    total = await db.fetch_val(f"SELECT COUNT(*) FROM prints {where}", params)
    return [_record(r) for r in rows], int(total or 0)
