"""The dispatch claim under concurrency: two hub processes (connections) racing for jobs and printers."""

from __future__ import annotations

import asyncio
import time
import uuid

from databases import Database

from hub.store import db as store
from hub.store import queue as queue_store
from hub.store.queue import ClaimLost, JobRow, RunRow


def _job(position: float) -> JobRow:
    now = time.time()
    return JobRow(
        id=str(uuid.uuid4()), file_id="f", plate=1, copies=1, copies_done=0, priority=0,
        position=position, target={}, materials=[], state="queued", attempts=0,
        waiting_reason=None, last_error=None, added_by="t", printer_id=None, run_id=None,
        created_at=now, updated_at=now,
    )  # fmt: skip


def _run(job: JobRow, printer: str) -> RunRow:
    return RunRow(str(uuid.uuid4()), job.id, printer, 1, "x.gcode", None, "claimed")


async def _claims(databases: list[Database], pairs: list[tuple[JobRow, RunRow]]) -> list[bool]:
    async def one(database: Database, job: JobRow, run: RunRow) -> bool:
        try:
            await queue_store.claim(database, job, run)
        except ClaimLost:
            return False
        return True

    return await asyncio.gather(
        *(one(databases[i % len(databases)], job, run) for i, (job, run) in enumerate(pairs))
    )


async def test_one_job_to_many_printers_only_one_wins(db: Database, db_url: str) -> None:
    other = await store.connect(db_url)  # a second hub process on the same database
    try:
        job = _job(1)
        await queue_store.insert_job(db, job)
        pairs = [(job, _run(job, f"printer-{i}")) for i in range(20)]
        won = await _claims([db, other], pairs)
        assert won.count(True) == 1
        stored = await queue_store.get_job(db, job.id)
        assert stored is not None and stored.state == "dispatching" and stored.attempts == 1
        runs = await queue_store.runs_of(db, [job.id])
        assert len(runs[job.id]) == 1 and runs[job.id][0].printer_id == stored.printer_id
    finally:
        await other.disconnect()


async def test_many_jobs_to_one_printer_only_one_wins(db: Database, db_url: str) -> None:
    other = await store.connect(db_url)
    try:
        jobs = [_job(i) for i in range(20)]
        for job in jobs:
            await queue_store.insert_job(db, job)
        won = await _claims([db, other], [(job, _run(job, "printer-1")) for job in jobs])
        assert won.count(True) == 1
        busy = await db.fetch_val(
            "SELECT COUNT(*) FROM queue_jobs WHERE printer_id = 'printer-1'"
            " AND state IN ('dispatching', 'printing')"
        )
        assert busy == 1
        assert len(await queue_store.jobs_in(db, ("queued",))) == 19
    finally:
        await other.disconnect()


async def test_a_pass_claims_its_pairs_together_leaving_out_those_it_lost(db: Database) -> None:
    jobs = [_job(i) for i in range(3)]
    for job in jobs:
        await queue_store.insert_job(db, job)
    await queue_store.claim(db, jobs[0], _run(jobs[0], "printer-x"))  # another pass was first
    pairs = [
        (jobs[0], _run(jobs[0], "printer-a")),  # the job is no longer queued
        (jobs[1], _run(jobs[1], "printer-x")),  # the printer already holds a job
        (jobs[2], _run(jobs[2], "printer-b")),
    ]
    lost: list[str] = []
    claimed = await queue_store.claim_all(db, pairs, lost=lost)
    assert [(job.id, run.printer_id) for job, run in claimed] == [(jobs[2].id, "printer-b")]
    assert lost == [f"job {jobs[0].id} is no longer queued", "printer printer-x already has a job"]
    stored = {j.id: await queue_store.get_job(db, j.id) for j in jobs}
    assert [(s.state, s.printer_id) for s in stored.values() if s is not None] == [
        ("dispatching", "printer-x"), ("queued", None), ("dispatching", "printer-b"),
    ]  # fmt: skip
    runs = await queue_store.runs_of(db, [j.id for j in jobs])
    assert [len(runs[j.id]) for j in jobs] == [1, 0, 1]
