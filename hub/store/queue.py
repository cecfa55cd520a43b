"""Queue jobs and their dispatch runs: explicit SQL, and the one claim that makes a start exactly-once."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from databases import Database

from hub.store.db import is_postgres
from hub.store.errors import is_unique_violation

ACTIVE = ("dispatching", "printing")
WAITING = ("queued", "held")
TERMINAL = ("done", "failed", "cancelled")
STATES = WAITING + ACTIVE + TERMINAL


@dataclass(frozen=True)
class JobRow:
    """One queue job as stored."""

    id: str
    file_id: str
    plate: int
    copies: int
    copies_done: int
    priority: int
    position: float
    target: dict[str, Any]
    materials: list[dict[str, Any]]
    state: str
    attempts: int
    waiting_reason: str | None
    last_error: str | None
    added_by: str | None
    printer_id: str | None
    run_id: str | None
    created_at: float
    updated_at: float

    def sort_key(self) -> tuple[int, float, float, str]:
        """Dispatch order: higher priority first, then position, then age."""
        return (-self.priority, self.position, self.created_at, self.id)


@dataclass(frozen=True)
class RunRow:
    """One attempt to print one copy of a job on one printer."""

    id: str
    job_id: str
    printer_id: str
    copy: int
    filename: str
    ams_mapping: list[int] | None
    state: str  # claimed | sent | printing | finished | failed | cancelled | requeued
    error: str | None = None
    print_job_key: str | None = None
    print_id: str | None = None
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    ended_at: float | None = None
    forced_by: str | None = None  # the user whose forced dispatch made this run

    @property
    def tag(self) -> str:
        """The marker in the file name sent to the printer, to recognise this run's print."""
        return f"q{self.id.replace('-', '')[:10]}"


_JOB_COLUMNS = (
    "id, file_id, plate, copies, copies_done, priority, position, target, materials, state,"
    " attempts, waiting_reason, last_error, added_by, printer_id, run_id, created_at, updated_at"
)


def _job(row: Any) -> JobRow:
    return JobRow(
        id=row["id"],
        file_id=row["file_id"],
        plate=int(row["plate"]),
        copies=int(row["copies"]),
        copies_done=int(row["copies_done"]),
        priority=int(row["priority"]),
        position=float(row["position"]),
        target=json.loads(row["target"]),
        materials=json.loads(row["materials"]),
        state=row["state"],
        attempts=int(row["attempts"]),
        waiting_reason=row["waiting_reason"],
        last_error=row["last_error"],
        added_by=row["added_by"],
        printer_id=row["printer_id"],
        run_id=row["run_id"],
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
    )


def _job_values(job: JobRow) -> dict[str, Any]:
    values = {name.strip(): getattr(job, name.strip()) for name in _JOB_COLUMNS.split(",")}
    values["target"] = json.dumps(job.target)
    values["materials"] = json.dumps(job.materials)
    return values


def _run(row: Any) -> RunRow:
    mapping = row["ams_mapping"]
    return RunRow(
        id=row["id"],
        job_id=row["job_id"],
        printer_id=row["printer_id"],
        copy=int(row["copy"]),
        filename=row["filename"],
        ams_mapping=json.loads(mapping) if mapping else None,
        state=row["state"],
        error=row["error"],
        print_job_key=row["print_job_key"],
        print_id=row["print_id"],
        created_at=float(row["created_at"]),
        started_at=None if row["started_at"] is None else float(row["started_at"]),
        ended_at=None if row["ended_at"] is None else float(row["ended_at"]),
        forced_by=row["forced_by"],
    )


async def insert_job(db: Database, job: JobRow) -> None:
    """Store a new job."""
    names = [n.strip() for n in _JOB_COLUMNS.split(",")]
    await db.execute(
        f"INSERT INTO queue_jobs ({_JOB_COLUMNS}) VALUES ({', '.join(':' + n for n in names)})",
        _job_values(job),
    )


async def save_job(db: Database, job: JobRow) -> JobRow:
    """Write every field of a job back (stamped now); returns what was stored."""
    job = replace(job, updated_at=time.time())
    names = [n.strip() for n in _JOB_COLUMNS.split(",") if n.strip() not in ("id", "created_at")]
    values = _job_values(job)
    values.pop("created_at")
    await db.execute(
        f"UPDATE queue_jobs SET {', '.join(f'{n} = :{n}' for n in names)} WHERE id = :id", values
    )
    return job


async def get_job(db: Database, job_id: str) -> JobRow | None:
    """One job by id."""
    row = await db.fetch_one(
        f"SELECT {_JOB_COLUMNS} FROM queue_jobs WHERE id = :id", {"id": job_id}
    )
    return None if row is None else _job(row)


async def jobs_in(db: Database, states: tuple[str, ...]) -> list[JobRow]:
    """Every job in one of `states`."""
    marks = ", ".join(f":s{i}" for i in range(len(states)))
    rows = await db.fetch_all(
        f"SELECT {_JOB_COLUMNS} FROM queue_jobs WHERE state IN ({marks})",
        {f"s{i}": s for i, s in enumerate(states)},
    )
    return [_job(r) for r in rows]


async def max_position(db: Database) -> float:
    """The largest position in use (0 when the queue is empty)."""
    value = await db.fetch_val("SELECT MAX(position) FROM queue_jobs")
    return float(value or 0.0)


async def count_open(db: Database) -> int:
    """Jobs not yet finished one way or another."""
    value = await db.fetch_val(
        "SELECT COUNT(*) FROM queue_jobs WHERE state IN ('queued', 'dispatching', 'printing')"
    )
    return int(value or 0)


async def insert_run(db: Database, run: RunRow) -> None:
    """Store a new run."""
    await db.execute(
        "INSERT INTO queue_runs (id, job_id, printer_id, copy, filename, ams_mapping, state,"
        " error, print_job_key, print_id, created_at, started_at, ended_at, forced_by) VALUES"
        " (:id, :job, :printer, :copy, :filename, :mapping, :state, NULL, NULL, NULL, :at, NULL,"
        " NULL, :forced_by)",
        _run_values(run),
    )


async def save_run(db: Database, run: RunRow) -> None:
    """Write a run's progress fields back."""
    await db.execute(
        "UPDATE queue_runs SET state = :state, error = :error, print_job_key = :key,"
        " print_id = :print_id, started_at = :started, ended_at = :ended WHERE id = :id",
        {
            "state": run.state,
            "error": run.error,
            "key": run.print_job_key,
            "print_id": run.print_id,
            "started": run.started_at,
            "ended": run.ended_at,
            "id": run.id,
        },
    )


# Types of the columns a batched save writes (PostgreSQL's json_to_recordset needs them).
_JOB_TYPES = {
    "file_id": "text", "plate": "integer", "copies": "integer", "copies_done": "integer",
    "priority": "integer", "position": "double precision", "target": "text",
    "materials": "text", "state": "text", "attempts": "integer", "waiting_reason": "text",
    "last_error": "text", "added_by": "text", "printer_id": "text", "run_id": "text",
    "updated_at": "double precision",
}  # fmt: skip
_RUN_TYPES = {
    "state": "text", "error": "text", "print_job_key": "text", "print_id": "text",
    "started_at": "double precision", "ended_at": "double precision",
}  # fmt: skip


def _save_many(engine: str, table: str, types: dict[str, str]) -> str:
    """An UPDATE of `table` setting the columns `types` from rows given as one JSON parameter."""
    sets = ", ".join(f"{c} = v.{c}" for c in types)
    if engine == "postgresql":
        cols = ", ".join(f"{c} {t}" for c, t in {"id": "text", **types}.items())
        return (
            f"UPDATE {table} AS q SET {sets} FROM json_to_recordset(CAST(:rows AS json))"
            f" AS v({cols}) WHERE q.id = v.id"
        )
    cols = ", ".join(f"json_extract(value, '$.{c}') AS {c}" for c in ("id", *types))
    return (
        f"UPDATE {table} SET {sets} FROM (SELECT {cols} FROM json_each(:rows)) AS v"
        f" WHERE {table}.id = v.id"
    )


async def save_jobs(db: Database, jobs: list[JobRow]) -> None:
    """Write every field of many jobs back as they are (stamped by the caller) in one
    statement; `save_job` for each, without a round trip each."""
    if not jobs:
        return
    rows = []
    for job in jobs:
        values = _job_values(job)
        rows.append({c: values[c] for c in ("id", *_JOB_TYPES)})
    await db.execute(_save_many(_engine(db), "queue_jobs", _JOB_TYPES), {"rows": json.dumps(rows)})


async def save_runs(db: Database, runs: list[RunRow]) -> None:
    """`save_run` for many runs, in one statement."""
    if not runs:
        return
    rows = [
        {"id": r.id, "state": r.state, "error": r.error, "print_job_key": r.print_job_key,
         "print_id": r.print_id, "started_at": r.started_at, "ended_at": r.ended_at}
        for r in runs
    ]  # fmt: skip
    await db.execute(_save_many(_engine(db), "queue_runs", _RUN_TYPES), {"rows": json.dumps(rows)})


async def get_run(db: Database, run_id: str) -> RunRow | None:
    """One run by id."""
    row = await db.fetch_one("SELECT * FROM queue_runs WHERE id = :id", {"id": run_id})
    return None if row is None else _run(row)


async def run_of_print(db: Database, print_id: str) -> RunRow | None:
    """The run that printed the history record `print_id`, if the queue started it."""
    row = await db.fetch_one(
        "SELECT * FROM queue_runs WHERE print_id = :p ORDER BY created_at DESC", {"p": print_id}
    )
    return None if row is None else _run(row)


async def run_by_tag(db: Database, tag: str) -> RunRow | None:
    """The run whose file name carries `tag` (see RunRow.tag)."""
    row = await db.fetch_one(
        "SELECT * FROM queue_runs WHERE filename LIKE :pattern", {"pattern": f"%-{tag}%"}
    )
    return None if row is None else _run(row)


async def runs_of(db: Database, job_ids: list[str]) -> dict[str, list[RunRow]]:
    """The runs of each job, oldest first."""
    if not job_ids:
        return {}
    marks = ", ".join(f":j{i}" for i in range(len(job_ids)))
    rows = await db.fetch_all(
        f"SELECT * FROM queue_runs WHERE job_id IN ({marks}) ORDER BY created_at, id",
        {f"j{i}": j for i, j in enumerate(job_ids)},
    )
    found: dict[str, list[RunRow]] = {j: [] for j in job_ids}
    for row in rows:
        found[row["job_id"]].append(_run(row))
    return found


async def link_print(
    db: Database, print_id: str, job_id: str, started_by: str | None = None
) -> None:
    """Mark a history record as printed for a queue job (`prints.queue_job_id`); who started
    the print (`prints.started_by`) is the user who forced its dispatch (the run's stored
    `forced_by`), else whoever queued the job."""
    await db.execute(
        "UPDATE prints SET queue_job_id = :j, started_by = COALESCE(started_by, CAST(:u AS VARCHAR(64)),"
        " (SELECT added_by FROM queue_jobs WHERE id = :j2))"
        " WHERE id = :p AND queue_job_id IS NULL",
        {"j": job_id, "u": started_by, "j2": job_id, "p": print_id},
    )


@asynccontextmanager
async def _write_transaction(db: Database) -> AsyncIterator[None]:
    """A transaction that holds the write lock from its first statement.

    SQLite: `BEGIN IMMEDIATE`, so two claimers never both read a job as queued. PostgreSQL: a
    plain transaction; the claim locks the job row with `FOR UPDATE SKIP LOCKED`."""
    if is_postgres(db):
        async with db.transaction():
            yield
        return
    async with db.connection() as conn:
        await conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
        await conn.execute("COMMIT")


class ClaimLost(Exception):
    """The job or the printer was taken by another dispatch first."""


async def claim(
    db: Database,
    job: JobRow,
    run: RunRow,
    within: Callable[[JobRow], Awaitable[None]] | None = None,
) -> JobRow:
    """Move a queued job to `dispatching` on the run's printer and record the run, atomically;
    `within` runs last inside the transaction with the claimed job (its events' outbox rows).

    Raises ClaimLost when the job is no longer queued, or the printer already holds a job."""

    async def each(claimed: JobRow, _: RunRow) -> None:
        if within is not None:
            await within(claimed)

    lost: list[str] = []
    claimed = await claim_all(db, [(job, run)], within=each, lost=lost)
    if not claimed:
        raise ClaimLost(lost[0] if lost else f"job {job.id} was not claimed")
    return claimed[0][0]


# A pass's jobs, printers and rows go in as one JSON parameter each: a handful of statements per
# pass whatever its size (each awaited statement costs a turn of a busy event loop).
_IDS = {
    "postgresql": "SELECT json_array_elements_text(CAST(:ids AS json))",
    "sqlite": "SELECT value FROM json_each(:ids)",
}
_CLAIM_JOBS = {
    "postgresql": "UPDATE queue_jobs AS q SET state = 'dispatching', printer_id = v.p,"
    " run_id = v.r, attempts = v.a, waiting_reason = NULL, updated_at = v.u"
    " FROM json_to_recordset(CAST(:rows AS json))"
    " AS v(id text, p text, r text, a integer, u double precision) WHERE q.id = v.id",
    "sqlite": "UPDATE queue_jobs SET state = 'dispatching', printer_id = v.p, run_id = v.r,"
    " attempts = v.a, waiting_reason = NULL, updated_at = v.u"
    " FROM (SELECT json_extract(value, '$.id') AS id, json_extract(value, '$.p') AS p,"
    " json_extract(value, '$.r') AS r, json_extract(value, '$.a') AS a,"
    " json_extract(value, '$.u') AS u FROM json_each(:rows)) AS v WHERE queue_jobs.id = v.id",
}
_RUN_FIELDS = ("id", "job", "printer", "copy", "filename", "mapping", "state", "at", "forced_by")
_INSERT_RUNS = (
    "INSERT INTO queue_runs (id, job_id, printer_id, copy, filename, ams_mapping, state,"
    " created_at, forced_by) SELECT id, job, printer, copy, filename, mapping, state, at, forced_by"
)
_RUNS_FROM = {
    "postgresql": " FROM json_to_recordset(CAST(:rows AS json)) AS v(id text, job text,"
    " printer text, copy integer, filename text, mapping text, state text,"
    " at double precision, forced_by text)",
    "sqlite": " FROM (SELECT "
    + ", ".join(f"json_extract(value, '$.{f}') AS {f}" for f in _RUN_FIELDS)
    + " FROM json_each(:rows))",
}


def _engine(db: Database) -> str:
    return "postgresql" if is_postgres(db) else "sqlite"


async def claim_all(
    db: Database,
    pairs: list[tuple[JobRow, RunRow]],
    within: Callable[[JobRow, RunRow], Awaitable[None]] | None = None,
    lost: list[str] | None = None,
    after: Callable[[list[tuple[JobRow, RunRow]]], Awaitable[None]] | None = None,
) -> list[tuple[JobRow, RunRow]]:
    """Claim each (job, run) pair as `claim` does, all in one transaction (one commit for a
    whole dispatch pass, and a bounded number of statements whatever its size); `within` runs
    for each claimed pair inside it (its outbox rows), then `after` once with all of them (the
    start's other writes). A pair whose job is no longer queued, or whose printer already holds
    a job, is left out (why, in `lost`); the others are claimed.

    Raises ClaimLost (nothing claimed) when another process took a printer in the meantime."""
    engine = _engine(db)
    lock = " FOR UPDATE SKIP LOCKED" if engine == "postgresql" else ""
    done: list[tuple[JobRow, RunRow]] = []
    if not pairs:
        return done
    try:
        async with _write_transaction(db):
            rows = await db.fetch_all(
                f"SELECT {_JOB_COLUMNS} FROM queue_jobs"
                f" WHERE id IN ({_IDS[engine]}) AND state = 'queued'{lock}",
                {"ids": json.dumps(sorted({job.id for job, _ in pairs}))},
            )
            queued = {row["id"]: _job(row) for row in rows}
            busy_rows = await db.fetch_all(
                f"SELECT printer_id FROM queue_jobs WHERE printer_id IN ({_IDS[engine]})"
                " AND state IN ('dispatching', 'printing')",
                {"ids": json.dumps(sorted({run.printer_id for _, run in pairs}))},
            )
            busy = {row["printer_id"] for row in busy_rows}
            now = time.time()
            for job, run in pairs:
                current = queued.pop(job.id, None)
                if current is None:
                    if lost is not None:
                        lost.append(f"job {job.id} is no longer queued")
                    continue
                if run.printer_id in busy:
                    if lost is not None:
                        lost.append(f"printer {run.printer_id} already has a job")
                    continue
                busy.add(run.printer_id)
                claimed = replace(
                    current,
                    state="dispatching",
                    printer_id=run.printer_id,
                    run_id=run.id,
                    attempts=current.attempts + 1,
                    waiting_reason=None,
                    updated_at=now,
                )
                done.append((claimed, run))
            if not done:
                return done
            await db.execute(
                _CLAIM_JOBS[engine],
                {
                    "rows": json.dumps(
                        [
                            {"id": j.id, "p": j.printer_id, "r": j.run_id, "a": j.attempts,
                             "u": j.updated_at}
                            for j, _ in done
                        ]
                    )
                },
            )  # fmt: skip
            await db.execute(
                _INSERT_RUNS + _RUNS_FROM[engine],
                {"rows": json.dumps([_run_values(run) for _, run in done])},
            )
            if within is not None:
                for claimed, run in done:
                    await within(claimed, run)
            if after is not None:
                await after(done)
    except Exception as exc:
        # The one-job-per-printer index decided a race between two processes.
        if is_unique_violation(exc):
            raise ClaimLost("another process took one of the printers first") from None
        raise
    return done


def _run_values(run: RunRow) -> dict[str, Any]:
    return {
        "id": run.id,
        "job": run.job_id,
        "printer": run.printer_id,
        "copy": run.copy,
        "filename": run.filename,
        "mapping": None if run.ams_mapping is None else json.dumps(run.ams_mapping),
        "state": run.state,
        "at": run.created_at,
        "forced_by": run.forced_by,
    }


_LINK_RUNS = {
    "postgresql": "UPDATE queue_runs AS q SET print_id = v.p, print_job_key = v.k"
    " FROM json_to_recordset(CAST(:rows AS json)) AS v(id text, p text, k text)"
    " WHERE q.id = v.id",
    "sqlite": "UPDATE queue_runs SET print_id = v.p, print_job_key = v.k"
    " FROM (SELECT json_extract(value, '$.id') AS id, json_extract(value, '$.p') AS p,"
    " json_extract(value, '$.k') AS k FROM json_each(:rows)) AS v WHERE queue_runs.id = v.id",
}
_LINK_PRINTS = {
    "postgresql": "UPDATE prints AS pr SET queue_job_id = v.j,"
    " started_by = COALESCE(pr.started_by, v.u, (SELECT added_by FROM queue_jobs WHERE id = v.j))"
    " FROM json_to_recordset(CAST(:rows AS json)) AS v(p text, j text, u text)"
    " WHERE pr.id = v.p AND pr.queue_job_id IS NULL",
    "sqlite": "UPDATE prints SET queue_job_id = v.j,"
    " started_by = COALESCE(prints.started_by, v.u,"
    " (SELECT added_by FROM queue_jobs WHERE id = v.j))"
    " FROM (SELECT json_extract(value, '$.p') AS p, json_extract(value, '$.j') AS j,"
    " json_extract(value, '$.u') AS u FROM json_each(:rows)) AS v"
    " WHERE prints.id = v.p AND prints.queue_job_id IS NULL",
}


async def link_runs(db: Database, runs: list[RunRow]) -> None:
    """Record many runs' history records (`print_id`, `print_job_key`) and link each record to
    its run's job as `link_print` does: two statements, whatever the number of runs."""
    runs = [run for run in runs if run.print_id is not None]
    if not runs:
        return
    engine = _engine(db)
    await db.execute(
        _LINK_RUNS[engine],
        {"rows": json.dumps([{"id": r.id, "p": r.print_id, "k": r.print_job_key} for r in runs])},
    )
    await db.execute(
        _LINK_PRINTS[engine],
        {"rows": json.dumps([{"p": r.print_id, "j": r.job_id, "u": r.forced_by} for r in runs])},
    )
