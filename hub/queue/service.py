"""The print queue's jobs: create, change, hold, remove; their JSON; `queue.update` and notifications.

A job's change, its `QueueJobChanged` outbox rows and any notification it raises commit in one
transaction (`hub/emit.py`); the cache, the bus and `/ws` hear of it after the commit."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from hub.emit import Batch
from hub.errors import Conflict, Invalid, NotFound
from hub.events import QueueJobChanged
from hub.model import rfc3339
from hub.queue.index import JobIndex
from hub.queue.matching import JobNeeds, needs_from_json
from hub.store import queue as store
from hub.store.files import FileRow
from hub.store.queue import ACTIVE, STATES, TERMINAL, JobRow, RunRow

if TYPE_CHECKING:
    from hub.runtime import Hub

StartWrites = Callable[[Batch, list[RunRow]], Awaitable[None]]

#: Job versions remembered for `QueueService.is_news` (the newest jobs; older ones are settled).
TAKEN_KEPT = 10_000


def job_json(job: JobRow, file: FileRow | None, runs: list[RunRow] | None = None) -> dict[str, Any]:
    """A job as the API and `queue.update` show it."""
    body: dict[str, Any] = {
        "id": job.id,
        "file_id": job.file_id,
        "file_name": file.name if file is not None else None,
        "plate": job.plate,
        "copies": job.copies,
        "copies_done": job.copies_done,
        "priority": job.priority,
        "position": job.position,
        "target": job.target,
        "materials": job.materials,
        "state": job.state,
        "attempts": job.attempts,
        "waiting_reason": job.waiting_reason,
        "last_error": job.last_error,
        "added_by": job.added_by,
        "printer_id": job.printer_id,
        "created_at": rfc3339(job.created_at),
        "updated_at": rfc3339(job.updated_at),
    }
    if runs is not None:
        body["prints"] = [r.print_id for r in runs if r.print_id]
        body["runs"] = [
            {
                "id": r.id,
                "printer_id": r.printer_id,
                "copy": r.copy,
                "filename": r.filename,
                "ams_mapping": r.ams_mapping,
                "state": r.state,
                "error": r.error,
                "print_id": r.print_id,
                "created_at": rfc3339(r.created_at),
                "started_at": rfc3339(r.started_at),
                "ended_at": rfc3339(r.ended_at),
            }
            for r in runs
        ]
    return body


class QueueService:
    """Owns the jobs that are not finished (cached) and every change made to a job."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.jobs: dict[str, JobRow] = {}  # every job not in a terminal state
        self.files: dict[str, FileRow] = {}
        self.lock = asyncio.Lock()  # one change to the queue at a time in this process
        self.version = 0  # moves with every change, so the dispatcher re-sorts only then
        self.by_printer: dict[str, str] = {}  # printer id -> its dispatching or printing job
        # Jobs the start watchdog looks at: every dispatching job, and printing jobs until the
        # watchdog sees their printer printing (it adds them back when the printer reports).
        self.watched: set[str] = set()
        self._needs: dict[str, tuple[JobRow, JobNeeds]] = {}
        self.index = JobIndex(self.needs)  # the queued jobs by what they need
        # The version (updated_at) of each job this hub last took in, finished ones included
        # (bounded), so a row read back is news only when another process changed it.
        self._taken: OrderedDict[str, float] = OrderedDict()

    async def start(self) -> None:
        """Load the jobs that are not finished."""
        for job in await store.jobs_in(self.hub.db, ("queued", "held", *ACTIVE)):
            await self.file_of(job)  # first: what a job needs depends on its file
            self.remember(job, announce=False)

    async def file_of(self, job: JobRow) -> FileRow | None:
        """The job's file record (cached)."""
        found = self.files.get(job.file_id)
        if found is None:
            try:
                found = await self.hub.files.get(job.file_id)
            except NotFound:
                return None
            self.files[job.file_id] = found
        return found

    def needs(self, job: JobRow) -> JobNeeds:
        """What a printer must offer to print the job (file type, model, nozzle, filament)."""
        cached = self._needs.get(job.id)
        if cached is not None and cached[0] is job:
            return cached[1]
        found = self._needs_of(job)
        self._needs[job.id] = (job, found)
        return found

    def _needs_of(self, job: JobRow) -> JobNeeds:
        file = self.files.get(job.file_id)
        meta = file.meta if file is not None else {}
        return JobNeeds(
            kind=file.kind if file is not None else "gcode",
            model=meta.get("printer_model"),
            nozzle_diameter=meta.get("nozzle_diameter"),
            target=job.target,
            needs=needs_from_json(job.materials),
        )

    def active_job(self, printer_id: str) -> JobRow | None:
        """The job a printer is dispatching or printing, if any."""
        job_id = self.by_printer.get(printer_id)
        return None if job_id is None else self.jobs.get(job_id)

    def ordered(self) -> list[JobRow]:
        """Queued jobs in dispatch order."""
        return sorted((j for j in self.jobs.values() if j.state == "queued"), key=JobRow.sort_key)

    # --- changes -------------------------------------------------------------------------

    async def saved(self, job: JobRow) -> JobRow:
        """Store a changed job with its event's outbox rows; once committed, keep the cache in
        step and tell the world."""
        async with self.hub.emitter.batch() as change:
            job = await store.save_job(self.hub.db, job)
            await self.announce(change, job)
        return job

    async def claim_all(
        self, pairs: list[tuple[JobRow, RunRow]], also: StartWrites | None = None
    ) -> list[tuple[JobRow, RunRow]]:
        """Claim queued jobs for their runs' printers (`store.claim_all`), in one transaction
        with their events' outbox rows and `also` (the start's other writes, given the change
        and the claimed runs);
        raises ClaimLost as the store does."""
        async with self.hub.emitter.batch(transaction=False) as change:

            async def within(claimed: JobRow, run: RunRow) -> None:
                await self.announce(change, claimed)

            async def after(claimed: list[tuple[JobRow, RunRow]]) -> None:
                if also is not None:
                    await also(change, [run for _, run in claimed])
                # The claim's transaction is the store's, inside this change: its events' rows
                # go in before that commits, not at the change's end.
                await change.write_rows()

            return await store.claim_all(self.hub.db, pairs, within=within, after=after)

    async def announce(self, change: Batch, job: JobRow) -> None:
        """Write the job's `QueueJobChanged` outbox rows in `change`; after its commit the cache
        takes the job and the bus and `/ws` hear of it."""
        change.then(lambda: self._cached(job))
        payload = job_json(job, self.files.get(job.file_id))
        await change.emit(QueueJobChanged(job.id, job.state, job.printer_id, payload))
        change.then(lambda: self.hub.broadcaster.publish("queue.update", payload, job.printer_id))

    def _cached(self, job: JobRow) -> None:
        self.remember(job, announce=False)
        self.version += 1

    def is_news(self, job: JobRow) -> bool:
        """Is this version of a job read back from the database one this hub has not taken in
        (a change another hub process made)?"""
        return self._taken.get(job.id) != job.updated_at

    def remember(self, job: JobRow, announce: bool = True) -> None:
        """Take a job as it now is into the cache and announce it to this hub's bus and /ws: a
        change read back from the database, made by another hub process sharing it (which wrote
        its outbox rows with it, so it is marked as written). A change this hub makes announces
        through `announce`, with its outbox rows."""
        self._taken[job.id] = job.updated_at
        self._taken.move_to_end(job.id)
        if len(self._taken) > TAKEN_KEPT:
            self._taken.popitem(last=False)
        before = self.jobs.get(job.id)
        if before is not None and before.printer_id:
            if self.by_printer.get(before.printer_id) == job.id:
                del self.by_printer[before.printer_id]
        if job.state in ACTIVE and (
            before is None or (before.state, before.run_id) != (job.state, job.run_id)
        ):
            self.watched.add(job.id)
        elif job.state not in ACTIVE:
            self.watched.discard(job.id)
        if job.state in TERMINAL:
            self.jobs.pop(job.id, None)
            self._needs.pop(job.id, None)
        else:
            self.jobs[job.id] = job
        self.index.update(job)
        if job.state in ACTIVE and job.printer_id:
            self.by_printer[job.printer_id] = job.id
        if not announce:
            return
        self.version += 1
        payload = job_json(job, self.files.get(job.file_id))
        self.hub.bus.publish(
            QueueJobChanged(job.id, job.state, job.printer_id, payload, outboxed=True)
        )
        self.hub.broadcaster.publish("queue.update", payload, job.printer_id)

    async def create(self, body: dict[str, Any], user: str | None) -> JobRow:
        """Add a job for a stored file; its materials default to what the file says."""
        file = await self.hub.files.get(body["file_id"])
        plate = int(body.get("plate", 1))
        meta = await self.hub.files.plate_meta(file, plate)
        self.files[file.id] = file
        materials = body.get("materials")
        if materials is None:
            materials = [
                {k: m.get(k) for k in ("slot", "material", "color", "grams")}
                for m in meta.get("materials", [])
            ]
        self._check_target(body.get("target") or {})
        now = time.time()
        async with self.lock:
            position = body.get("position")
            if position is None:
                position = await store.max_position(self.hub.db) + 1
            job = JobRow(
                id=str(uuid.uuid4()),
                file_id=file.id,
                plate=plate,
                copies=int(body.get("copies", 1)),
                copies_done=0,
                priority=int(body.get("priority", 0)),
                position=float(position),
                target=dict(body.get("target") or {}),
                materials=list(materials),
                state="held" if body.get("hold") else "queued",
                attempts=0,
                waiting_reason="held" if body.get("hold") else None,
                last_error=None,
                added_by=user,
                printer_id=None,
                run_id=None,
                created_at=now,
                updated_at=now,
            )
            async with self.hub.emitter.batch() as change:
                await store.insert_job(self.hub.db, job)
                await self.announce(change, job)
        return job

    def _check_target(self, target: dict[str, Any]) -> None:
        printer_id = target.get("printer_id")
        if printer_id and printer_id not in self.hub.printers:
            raise Invalid(f"no printer with id {printer_id}", field="target.printer_id")

    async def get(self, job_id: str) -> JobRow:
        """One job (any state), or NotFound."""
        cached = self.jobs.get(job_id)
        if cached is not None:
            return cached
        job = await store.get_job(self.hub.db, job_id)
        if job is None:
            raise NotFound(f"no queue job with id {job_id}")
        await self.file_of(job)
        return job

    async def update(self, job_id: str, body: dict[str, Any]) -> JobRow:
        """Change priority, position, target, materials, copies; hold or release."""
        async with self.lock:
            job = await self.get(job_id)
            if job.state in TERMINAL:
                raise Conflict(f"job {job_id} is {job.state}; it can no longer change")
            active = job.state in ACTIVE
            for name in ("target", "materials"):
                if name in body and active:
                    raise Conflict(f"cannot change '{name}' while the job is {job.state}")
            if "target" in body:
                self._check_target(body["target"])
            copies = int(body.get("copies", job.copies))
            least = job.copies_done + (1 if active else 0)
            if copies < max(1, least):
                raise Invalid(
                    f"copies must be at least {max(1, least)}: {job.copies_done} done"
                    + (" and one printing" if active else ""),
                    field="copies",
                )
            changed = replace(
                job,
                priority=int(body.get("priority", job.priority)),
                position=float(body.get("position", job.position)),
                target=dict(body.get("target", job.target)),
                materials=list(body.get("materials", job.materials)),
                copies=copies,
            )
            hold = body.get("hold")
            if hold is True and job.state == "queued":
                changed = replace(changed, state="held", waiting_reason="held")
            elif hold is True and active:
                raise Conflict(f"job {job_id} is {job.state}: stop the printer to hold it")
            elif hold is False and job.state == "held":
                changed = replace(changed, state="queued", waiting_reason=None, attempts=0)
            return await self.saved(changed)

    async def cancel(self, job_id: str) -> JobRow:
        """Remove a job from the queue (kept as `cancelled`, with the prints it made)."""
        async with self.lock:
            job = await self.get(job_id)
            if job.state in ACTIVE:
                printer = self.hub.printers.get(job.printer_id or "")
                name = printer.name if printer else job.printer_id
                raise Conflict(f"job {job_id} is {job.state} on {name}: stop the printer first")
            if job.state in TERMINAL:
                return job
            return await self.saved(replace(job, state="cancelled", waiting_reason=None))

    async def page(
        self, states: tuple[str, ...], limit: int, offset: int
    ) -> tuple[list[JobRow], int]:
        """A page of jobs in `states`, in dispatch order."""
        marks = ", ".join(f":s{i}" for i in range(len(states)))
        params: dict[str, Any] = {f"s{i}": s for i, s in enumerate(states)}
        db = self.hub.db
        rows = await db.fetch_all(
            f"SELECT id FROM queue_jobs WHERE state IN ({marks})"
            " ORDER BY priority DESC, position, created_at, id LIMIT :limit OFFSET :offset",
            {**params, "limit": limit, "offset": offset},
        )
        total = await db.fetch_val(
            f"SELECT COUNT(*) FROM queue_jobs WHERE state IN ({marks})", params
        )
        return [await self.get(r["id"]) for r in rows], int(total or 0)

    async def notify(
        self, kind: str, severity: str, title: str, message: str, job: JobRow | None
    ) -> None:
        """Store a queue notification with its outbox rows, in the job's change when one is open
        (`hub.emitter.batch()`); the bus (and so /ws) hears of it after the commit."""
        printer_id = job.printer_id if job is not None else None
        data: dict[str, Any] = {}
        if job is not None:
            data = {"job_id": job.id, "file_id": job.file_id, "printer_id": job.printer_id}
        async with self.hub.emitter.batch() as change:
            await change.notify(
                printer_id=printer_id,
                kind=kind,
                severity=severity,
                title=title,
                message=message,
                data=data,
            )


def parse_states(text: str | None) -> tuple[str, ...]:
    """`state` query value (comma-separated) → states; the default is every unfinished one."""
    if not text:
        return ("queued", "held", "dispatching", "printing")
    states = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [s for s in states if s not in STATES]
    if unknown or not states:
        raise Invalid(
            f"unknown state(s) {', '.join(unknown) or '(none)'}; known: {', '.join(STATES)}",
            field="state",
        )
    return states
