"""The dispatcher: an idle, cleared, compatible printer gets the best queued job, exactly once.

It listens on the bus: `PrinterState` (a printer became idle; a sent job is now printing),
`LifecycleEvent` (a queued print ended; someone printed by hand), `PrintRecorded` (the history
record of a queued print). A pass matches ready printers (longest idle first, which spreads ties
across the farm) with queued jobs in priority, position and age order; each pair is claimed in
the database (`hub.store.queue.claim`) before the printer's own driver uploads and starts it.
A start watchdog puts a job back when its printer is not printing it in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections import OrderedDict
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

from hub.bus import Unsubscribe
from hub.emit import Batch
from hub.errors import Conflict
from hub.events import PrinterConfigured, PrinterRemoved, PrintRecorded, SpoolChanged
from hub.filament import TraySpool, trays_with_spools
from hub.model import ACTIVE_STATES, PrinterState, PrintState
from hub.queue.matching import PrinterView, ams_mapping, fit
from hub.queue.offers import Offers
from hub.queue.readiness import Readiness
from hub.queue.sending import Sending
from hub.queue.service import QueueService
from hub.queue.tracking import Step, Tracking
from hub.retry import until_stored
from hub.store import printers as printers_store
from hub.store import queue as store
from hub.store.db import held_connection
from hub.store.printers import PrinterRow
from hub.store.queue import ClaimLost, JobRow, RunRow
from streams.events import LifecycleEvent, LifecycleKind

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger(__name__)

BACKSTOP_S = 5.0  # a pass at least this often, whatever the events said
_TAG = re.compile(r"-(q[0-9a-f]{10})(?:\.gcode\.3mf|\.3mf|\.gcode)?$", re.I)


def run_filename(name: str, tag: str) -> str:
    """The name a run's file gets on the printer: the original stem plus the run's tag."""
    lowered = name.lower()
    ext = next((e for e in (".gcode.3mf", ".3mf", ".gcode") if lowered.endswith(e)), "")
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name[: len(name) - len(ext)]).strip("._") or "job"
    return f"{stem[:60]}-{tag}{ext}"


class Dispatcher(Offers, Sending, Tracking):
    """Starts queued jobs on ready printers and follows them until they end."""

    def __init__(self, hub: Hub, queue: QueueService) -> None:
        self.hub = hub
        self.queue = queue
        self.settings = hub.settings.queue
        self.ready = Readiness(hub, queue)
        self.runs: dict[str, RunRow] = {}  # runs of jobs that are dispatching or printing
        self.reconcile: set[str] = set()  # jobs found dispatching at start-up
        self.idle_printing: dict[str, float] = {}
        self.reported: set[str] = set()  # the manager's tracker, from `start`
        self._init_sending()
        self._init_tracking()
        self.ended_runs: OrderedDict[str, RunRow] = OrderedDict()
        self.decide_cpu_s = 0.0  # CPU spent choosing (readiness, order, matching), not sending
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._unsubscribe: list[Unsubscribe] = []
        self.spools: dict[str, list[TraySpool]] = {}  # printer id -> spools on its trays
        self.spools_stale: set[str] = set()
        self.spool_holders: dict[str, set[str]] = {}
        self._records: list[tuple[str, PrintRecorded]] = []  # heard, for the next link batch
        self._records_wake = asyncio.Event()

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Load running jobs, mark those caught mid-dispatch for reconciliation, subscribe."""
        self.tracking_since = time.time()
        active = [j for j in self.queue.jobs.values() if j.run_id]
        for job in active:
            run = await store.get_run(self.hub.db, job.run_id or "")
            if run is not None:
                self.runs[run.id] = run
            if job.state == "dispatching":
                self.reconcile.add(job.id)
        for printer_id in list(self.hub.printers):
            self.set_spools(printer_id, await trays_with_spools(self.hub.db, printer_id))
        self.reported = self.hub.manager.track()
        self.ready.track()
        bus = self.hub.bus
        self._unsubscribe = [
            bus.subscribe(SpoolChanged, self._on_spool, name="queue-spools", inline=True),
            # Readiness hears every state at once (a set and a flag): a printer turning idle is
            # a candidate without waiting behind the slower handlers.
            bus.subscribe(PrinterState, self.ready.observe, name="queue-idle", inline=True),
            bus.subscribe(PrinterState, self._on_status, name="queue-status"),
            bus.subscribe(LifecycleEvent, self._on_lifecycle, name="queue-lifecycle", max_pending=None),
            bus.subscribe(PrintRecorded, self._on_recorded, name="queue-history", max_pending=None),
            bus.subscribe(PrinterConfigured, lambda _: self.wake(), name="queue-printers", inline=True),
            bus.subscribe(PrinterRemoved, lambda _: self.wake(), name="queue-printers-gone", inline=True),
        ]  # fmt: skip
        self._tasks = [
            asyncio.create_task(self._loop(), name="queue-dispatch"),
            asyncio.create_task(self._watchdog(), name="queue-watchdog"),
            asyncio.create_task(self._mark_sent(), name="queue-sent"),
            asyncio.create_task(self._settle_waves(), name="queue-settle"),
            asyncio.create_task(self._link_records(), name="queue-history-links"),
        ]

    async def stop(self) -> None:
        """Stop listening and dispatching; starts under way are abandoned (reconciled next start)."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        tasks = [*self._tasks, *self._sending]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _loop(self) -> None:
        resynced = 0.0
        async with held_connection(self.hub.db):
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), BACKSTOP_S)
                self._wake.clear()
                if time.monotonic() - resynced >= BACKSTOP_S:
                    self.ready.resync()
                    resynced = time.monotonic()
                if not self.settings.auto_dispatch:
                    continue
                try:
                    await self.dispatch_pass()
                except Exception:
                    log.exception("dispatch pass failed")

    # --- choosing ------------------------------------------------------------------------

    def _candidates(self, printer_id: str | None, forced: bool) -> list[PrinterRow]:
        """Ready printers, longest idle first: of the idle ones (never the whole fleet), or the
        one asked for."""
        ids = [printer_id] if printer_id is not None else list(self.ready.idle)
        rows = []
        for pid in ids:
            row = self.hub.printers.get(pid)
            if row is None:
                self.ready.idle.discard(pid)
            elif self.ready.reason(row, forced=forced) is None:
                rows.append(row)
        rows.sort(key=lambda r: self.ready.idle_since.get(r.id, 0.0))
        return rows

    def _choose(
        self, view: PrinterView, job_id: str | None, chosen: set[str]
    ) -> tuple[JobRow, dict[int, int]] | None:
        """The printer's job: the one asked for if it fits, else the best by the index."""
        if job_id is not None:
            job = self.queue.jobs.get(job_id)
            if job is None or job.state != "queued" or job.id in chosen:
                return None
            mapping, _ = fit(self.queue.needs(job), view)
            return None if mapping is None else (job, mapping)
        found = self.queue.index.best(lambda needs: fit(needs, view)[0])
        return None if found is None else (self.queue.jobs[found[0]], found[1])

    async def dispatch_pass(
        self,
        *,
        job_id: str | None = None,
        printer_id: str | None = None,
        forced: bool = False,
        user: str | None = None,
    ) -> list[tuple[JobRow, RunRow]]:
        """Match ready printers with queued jobs, claim every pair in one transaction; the
        starts run on in the send pool. Runs a `user` asked for carry that user (`forced_by`),
        stored with the claim."""
        async with self.queue.lock, held_connection(self.hub.db):
            await self.refresh_spools()
            cpu = time.thread_time()
            if not len(self.queue.index) and job_id is None:
                # Nothing to start: no look at the printers (a pass runs on every printer
                # added and every printer turning idle).
                self.decide_cpu_s += time.thread_time() - cpu
                return []
            pairs: list[tuple[JobRow, RunRow]] = []
            chosen: set[str] = set()
            for row in self._candidates(printer_id, forced):
                found = self._choose(self.view(row), job_id, chosen)
                if found is None:
                    continue
                job, mapping = found
                self.queue.index.take(job.id)
                run = self._run_for(job, row, mapping, user)
                if run is None:
                    self.queue.index.update(job)
                    continue
                chosen.add(job.id)
                pairs.append((job, run))
            self.decide_cpu_s += time.thread_time() - cpu
            return await self._claim_all(pairs) if pairs else []

    def _run_for(
        self, job: JobRow, row: PrinterRow, mapping: dict[int, int], user: str | None = None
    ) -> RunRow | None:
        file = self.queue.files.get(job.file_id)
        if file is None:
            return None
        run_id = str(uuid.uuid4())
        tag = RunRow(run_id, job.id, row.id, 0, "", None, "claimed").tag
        ams = list(ams_mapping(mapping)) if self.manifest(row).tray_mapping and mapping else None
        return RunRow(
            id=run_id, job_id=job.id, printer_id=row.id, copy=job.copies_done + 1,
            filename=run_filename(file.name, tag), ams_mapping=ams, state="claimed",
            forced_by=user,
        )  # fmt: skip

    async def _beds_used(self, change: Batch, runs: list[RunRow]) -> None:
        """In the claim's transaction: the prints go onto their beds, which need clearing after
        (one statement for the pass)."""
        ids = []
        for run in runs:
            row = self.hub.printers.get(run.printer_id)
            if row is not None and row.bed_clear:
                ids.append(run.printer_id)
        if not ids:
            return
        await printers_store.set_beds_clear(self.hub.db, ids, False)

        def cached() -> None:
            for printer_id in ids:
                current = self.hub.printers.get(printer_id)
                if current is not None:
                    self.hub.printers[printer_id] = replace(current, bed_clear=False)

        change.then(cached)

    async def _claim_all(self, pairs: list[tuple[JobRow, RunRow]]) -> list[tuple[JobRow, RunRow]]:
        try:
            claimed = await self.queue.claim_all(pairs, self._beds_used)
        except ClaimLost as exc:
            log.info("dispatch pass lost its claims: %s", exc)
            claimed = []
        taken = {job.id for job, _ in claimed}
        for job, run in pairs:
            if job.id in taken:
                continue
            log.info("dispatch of job %s to %s lost", job.id, self._name(run.printer_id))
            fresh = await store.get_job(self.hub.db, job.id)
            if fresh is not None:
                self.queue.remember(fresh, announce=self.queue.is_news(fresh))
        for job, run in claimed:
            self.runs[run.id] = run
            row = self.hub.printers.get(run.printer_id)
            if row is not None:
                self.send(job, run, row)
        return claimed

    # --- following a started job ---------------------------------------------------------

    def _ours(self, printer_id: str, file: str | None) -> tuple[JobRow, RunRow] | None:
        job = self.queue.active_job(printer_id)
        run = self.runs.get(job.run_id or "") if job is not None else None
        if job is None or run is None or not file or run.tag not in file:
            return None
        return job, run

    async def _on_status(self, state: PrinterState) -> None:
        # Steps go to the next wave (`Tracking.settle`): this handler never waits on a write,
        # so the reports of a farm's printers ending together are not held back one by one.
        if state.state in ACTIVE_STATES and state.job is not None:
            found = self._ours(state.printer_id, state.job.file)
            if found is not None and found[0].state == "dispatching":
                self.later(Step(*found))
        elif state.state is PrintState.FINISHED and state.job is not None:
            # The printer shows the run's file finished: the copy is done now, not once the
            # history pipeline's end event arrives (the printer is free for the next job). A
            # short print may finish before a report showed it running: it started.
            found = self._ours(state.printer_id, state.job.file)
            if found is not None:
                job, run = found
                if job.state == "dispatching":
                    self.later(Step(job, run))
                self.later(Step(job, run, end=LifecycleKind.FINISHED, bed_of=state.printer_id))

    async def _on_lifecycle(self, event: LifecycleEvent) -> None:
        found = self._ours(event.printer_id, event.job.file)
        if event.kind is LifecycleKind.STARTED:
            if found is not None:
                self.later(Step(*found, job_key=event.job_key))
            elif _TAG.search(event.job.file or "") is None:
                # Not a run of the queue's (whose start may be reported after its end).
                self.ready.manual.add(event.printer_id)
            return
        if event.kind in (LifecycleKind.PAUSED, LifecycleKind.RESUMED):
            return
        # Every end leaves the bed used; a pass follows the wave that writes it.
        job, run = found if found is not None else (None, None)
        self.later(Step(job, run, end=event.kind, bed_of=event.printer_id))

    async def _on_recorded(self, event: PrintRecorded) -> None:
        # Linked in the next batch (`_link_records`): records arriving together (a farm's
        # prints ending together) take the queue lock once, not once each.
        tag = _TAG.search(event.event.job.file or "")
        if tag is None:
            return
        self._records.append((tag.group(1).lower(), event))
        self._records_wake.set()

    async def _link_records(self) -> None:
        """Link the history records heard since the last batch, all in one transaction."""
        async with held_connection(self.hub.db):
            while True:
                await self._records_wake.wait()
                self._records_wake.clear()
                records, self._records = self._records, []
                try:
                    # While the database is away the batch waits for it (one warning line), its
                    # records kept (linking again after an unknown outcome changes nothing).
                    await until_stored(
                        f"linking {len(records)} history record(s)",
                        partial(self.link_records, records),
                        retry_any=False,
                    )
                except Exception:
                    # One bad record must not hold back the others: each on its own.
                    log.exception("linking %d history record(s) together failed", len(records))
                    for record in records:
                        try:
                            await until_stored(
                                "linking a history record",
                                partial(self.link_records, [record]),
                                retry_any=False,
                            )
                        except Exception:
                            log.exception("linking a history record failed")

    async def link_records(self, records: list[tuple[str, PrintRecorded]]) -> None:
        """Link history records (with their runs' tags) to their queue runs and jobs: one lock
        and one transaction for all of them."""
        if not records:
            return
        linked: dict[str, RunRow] = {}  # by tag, as this batch leaves them
        async with self.queue.lock, self.hub.emitter.batch(flat=True):
            for wanted, event in records:
                # Usually ended already (the printer's report of the end comes first).
                run = linked.get(wanted) or self.ended_runs.get(wanted)
                if run is None:
                    run = next((r for r in self.runs.values() if r.tag == wanted), None)
                if run is None:
                    # A short print can end before its history record is written: the run is over.
                    run = await store.run_by_tag(self.hub.db, wanted)
                if run is None or run.print_id == event.print_id:
                    continue
                linked[wanted] = replace(run, print_id=event.print_id, print_job_key=event.job_key)
            await store.link_runs(self.hub.db, list(linked.values()))
        # Committed: the caches take the linked runs.
        for wanted, run in linked.items():
            if run.id in self.runs:
                self.runs[run.id] = run
            if wanted in self.ended_runs:
                self.ended_runs[wanted] = run

    # --- watchdog and reconciliation -----------------------------------------------------

    async def _watchdog(self) -> None:
        interval = max(0.05, min(1.0, self.settings.start_timeout_s / 4))
        async with held_connection(self.hub.db):
            while True:
                await asyncio.sleep(interval)
                try:
                    await self.check_starts()
                except Exception:
                    log.exception("start watchdog failed")

    # --- forced dispatch -----------------------------------------------------------------

    async def dispatch_now(
        self, job_id: str | None, printer_id: str | None, user: str | None = None
    ) -> list[tuple[JobRow, RunRow]]:
        """`POST /api/queue/dispatch`: a pass now, or one job and/or one printer (409 + reason).
        The prints it starts record `user` as who started them (stored with each run's claim,
        so a hub restart before the print's record is linked keeps it)."""
        self.ready.resync()  # a person asks: every printer as it is now, not as last heard
        await self.refresh_spools()
        if job_id is None and printer_id is None:
            return await self.dispatch_pass(user=user)
        job = await self.queue.get(job_id) if job_id else None
        if job is not None and job.state != "queued":
            raise Conflict(f"job {job.id} is {job.state}, not queued")
        row = self.hub.printer(printer_id) if printer_id else None
        if row is not None:
            not_ready = self.ready.reason(row, forced=True)
            if not_ready:
                raise Conflict(f"cannot dispatch to {row.name}: {not_ready}")
            if job is not None:
                _, why = fit(self.queue.needs(job), self.view(row))
                if why:
                    raise Conflict(f"job {job.id} does not fit {row.name}: {why}")
        started = await self.dispatch_pass(
            job_id=job_id, printer_id=printer_id, forced=True, user=user
        )
        if not started:
            what = f"job {job_id}" if job_id else f"printer {row.name if row else printer_id}"
            why = self.ready.why_waiting(job, self) if job is not None else "no queued job fits it"
            raise Conflict(f"nothing dispatched for {what}: {why}")
        return started
