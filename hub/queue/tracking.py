"""Following a claimed job: seen printing, a copy ended, a start that never came, a restart.

Each step's job change, run change and notifications commit together (`hub.emitter.batch()`).
Steps heard on the bus (a printer shows a run printing or finished, a print's end) are settled
in waves: whatever arrived while the last wave was being written commits in one transaction,
as a dispatch pass claims its starts, and a pass follows each wave."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from config.loader import QueueSettings
from hub.model import ACTIVE_STATES, Connection, PrinterState, PrintState
from hub.queue.service import QueueService
from hub.retry import until_stored
from hub.store import queue as store
from hub.store.db import held_connection
from hub.store.queue import ACTIVE, JobRow, RunRow
from streams.events import LifecycleKind

if TYPE_CHECKING:
    from hub.queue.readiness import Readiness
    from hub.runtime import Hub

log = logging.getLogger(__name__)

# After a restart, a job found `dispatching` is judged only once its printer has had this long
# to show the print it may have been sent just before (a start takes the printer a moment).
RECONCILE_GRACE_S = 10.0
ENDED_KEPT = 10_000  # ended runs kept by tag, for their history records arriving after the end


@dataclass(frozen=True)
class Step:
    """One change to settle in a wave: a run seen printing (`end` None) or ended (`end` set);
    `bed_of`: the printer whose bed the ended print leaves used (with or without a run)."""

    job: JobRow | None
    run: RunRow | None
    end: LifecycleKind | None = None
    job_key: str | None = None
    bed_of: str | None = None


class Tracking:
    """The part of the dispatcher that follows runs from claim to end (state in the database)."""

    hub: Hub
    queue: QueueService
    settings: QueueSettings
    ready: Readiness
    runs: dict[str, RunRow]  # runs of jobs that are dispatching or printing
    reconcile: set[str]  # jobs found dispatching at start-up
    idle_printing: dict[str, float]  # printing jobs whose printer looks idle: since when
    reported: set[str]  # printers that reported since the watchdog last looked (the manager's)
    ended_runs: OrderedDict[str, RunRow]  # recently ended runs by tag (their records link later)
    tracking_since: float  # when this hub began following runs (time.time())
    _wake: asyncio.Event

    def _init_tracking(self) -> None:
        self._steps: list[Step] = []  # heard on the bus, for the next wave
        self._steps_wake = asyncio.Event()
        self._ending: set[str] = set()  # runs with an end waiting in `_steps`
        # Jobs as the wave being written left them (the cache takes them after its commit).
        self._wave: dict[str, JobRow] | None = None
        self._wave_ended: list[RunRow] = []  # runs the wave being written ended
        # What the wave being written changed, written at its end in one statement each.
        self._wave_runs: dict[str, RunRow] = {}
        self._wave_beds: list[str] = []
        self.tracking_since = time.time()  # the hub's start, for jobs caught by a restart
        self.waves = 0  # waves written, and steps settled in them
        self.wave_steps = 0

    def later(self, step: Step) -> None:
        """Settle `step` in the next wave (never waits; the bus handlers' way)."""
        if step.end is not None and step.run is not None:
            if step.run.id in self._ending:
                return  # a second report of the same end, before the first is written
            self._ending.add(step.run.id)
        self._steps.append(step)
        self._steps_wake.set()

    async def _settle_waves(self) -> None:
        """Write the steps heard since the last wave, all in one transaction; then a pass."""
        async with held_connection(self.hub.db):
            while True:
                await self._steps_wake.wait()
                self._steps_wake.clear()
                steps, self._steps = self._steps, []
                try:
                    # While the database is away the wave waits for it (one warning line), its
                    # steps kept: a print that ended meanwhile is settled once it is back.
                    await until_stored(
                        f"settling {len(steps)} queue step(s)",
                        partial(self.settle, steps),
                        retry_any=False,
                    )
                except Exception:
                    # One bad step must not hold back the others: each on its own.
                    log.exception("settling %d queue step(s) together failed", len(steps))
                    for step in steps:
                        try:
                            await until_stored(
                                "settling a queue step",
                                partial(self.settle, [step]),
                                retry_any=False,
                            )
                        except Exception:
                            log.exception("settling a queue step failed")
                finally:
                    self._ending.difference_update(
                        s.run.id for s in steps if s.end is not None and s.run is not None
                    )
                self.wake()

    def _current(self, job_id: str) -> JobRow | None:
        wave = self._wave
        if wave is not None and job_id in wave:
            return wave[job_id]
        return self.queue.jobs.get(job_id)

    async def _saved(self, job: JobRow) -> JobRow:
        if self._wave is None:
            return await self.queue.saved(job)
        # In a wave: its events now, the row with the wave's other jobs at its end.
        job = replace(job, updated_at=time.time())
        async with self.hub.emitter.batch() as change:
            await self.queue.announce(change, job)
        self._wave[job.id] = job
        return job

    async def _save_run(self, run: RunRow) -> None:
        if self._wave is None:
            await store.save_run(self.hub.db, run)
        else:
            self._wave_runs[run.id] = run

    async def settle(self, steps: list[Step]) -> None:
        """Settle `steps` in order, in one transaction (each step as `mark_printing` and
        `print_ended` do; a step the ones before it made moot changes nothing)."""
        if not steps:
            return
        # Flat: a failing step fails the whole wave, which `_settle_waves` then settles step by
        # step, so the steps need no savepoints of their own (four statements fewer per end).
        async with self.queue.lock, self.hub.emitter.batch(flat=True):
            self._wave, self._wave_ended, self._wave_runs, self._wave_beds = {}, [], {}, []
            try:
                for step in steps:
                    if step.bed_of is not None:
                        self._wave_beds.append(step.bed_of)
                    if step.job is None or step.run is None:
                        continue
                    if step.end is None:
                        await self._printing(step.job, step.run, step.job_key)
                    else:
                        await self._ended(step.job, step.run, step.end)
                # The wave's rows, one statement per table whatever the number of steps.
                await self.ready.beds_used(self._wave_beds)
                await store.save_runs(self.hub.db, list(self._wave_runs.values()))
                await store.save_jobs(self.hub.db, list(self._wave.values()))
                await self._queue_empty(self._wave)
            finally:
                self._wave = None
        # Committed: the ended runs are found by tag when their history records arrive.
        for run in self._wave_ended:
            self.ended_runs[run.tag] = run
            if len(self.ended_runs) > ENDED_KEPT:
                self.ended_runs.popitem(last=False)
        self.waves += 1
        self.wave_steps += len(steps)

    def wake(self) -> None:
        """Ask for a dispatch pass soon."""
        self._wake.set()

    def _name(self, printer_id: str | None) -> str:
        row = self.hub.printers.get(printer_id or "")
        return row.name if row is not None else str(printer_id)

    async def mark_printing(self, job: JobRow, run: RunRow, job_key: str | None = None) -> None:
        """The printer shows the run's print: the job is printing."""
        await self.settle([Step(job, run, job_key=job_key)])

    async def _printing(self, job: JobRow, run: RunRow, job_key: str | None) -> None:
        # A job no longer cached has settled (terminal jobs leave the cache): the caller's
        # copy is stale, and acting on it would change a finished job again.
        current = self._current(job.id)
        if current is None or current.run_id != run.id or current.state != "dispatching":
            return
        job = current
        run = replace(
            self.runs.get(run.id, run), state="printing", started_at=time.time(),
            print_job_key=job_key or run.print_job_key,
        )  # fmt: skip
        self.runs[run.id] = run
        await self._save_run(run)
        self.reconcile.discard(job.id)
        self.ready.started(run.printer_id)
        job = await self._saved(replace(job, state="printing", last_error=None))
        name = (
            self.queue.files[job.file_id].name if job.file_id in self.queue.files else job.file_id
        )
        await self.queue.notify(
            "queue_job_started", "info", f"Job started: {name}",
            f"{name} (copy {run.copy} of {job.copies}) started on"
            f" {self._name(job.printer_id)}", job,
        )  # fmt: skip

    async def print_ended(self, job: JobRow, run: RunRow, kind: LifecycleKind) -> None:
        """A queued print ended: count the copy, retry, or hold the job."""
        await self.settle([Step(job, run, end=kind)])

    async def _ended(self, job: JobRow, run: RunRow, kind: LifecycleKind) -> None:
        printer = self._name(job.printer_id)
        current = self._current(job.id)
        if current is None or current.run_id != run.id:
            return  # settled already, by another report of the same end
        job = current
        run = replace(self.runs.pop(run.id, run), state=kind.value, ended_at=time.time())
        self._wave_ended.append(run)
        await self._save_run(run)
        self.reconcile.discard(job.id)
        free: dict[str, Any] = {"printer_id": None, "run_id": None}
        if kind is LifecycleKind.FINISHED:
            done = job.copies_done + 1
            state = "done" if done >= job.copies else "queued"
            job = replace(job, copies_done=done, state=state, attempts=0, last_error=None, **free)
        elif kind is LifecycleKind.UNKNOWN:
            reason = (
                f"the print on {printer} ended while the hub was away and its outcome is"
                " unknown: check the part, then release the job (or remove it)"
            )
            job = replace(job, state="held", waiting_reason=reason, **free)
        elif kind is LifecycleKind.CANCELLED:
            reason = f"the print was cancelled on {printer}; release the job to print it again"
            job = replace(job, state="held", waiting_reason=reason, **free)
        else:
            error = f"the print failed on {printer}"
            state = "failed" if job.attempts >= self.settings.max_attempts else "queued"
            job = replace(job, state=state, last_error=error, **free)
        job = await self._saved(job)
        await self._announce_end(job, printer)

    async def _announce_end(self, job: JobRow, printer: str) -> None:
        file = self.queue.files.get(job.file_id)
        name = file.name if file is not None else job.file_id
        if job.state == "done":
            await self.queue.notify(
                "queue_job_completed", "info", f"Job completed: {name}",
                f"{name}: all {job.copies} cop{'y' if job.copies == 1 else 'ies'} printed"
                f" (last on {printer})", job,
            )  # fmt: skip
        elif job.state == "failed":
            await self.queue.notify(
                "queue_job_failed", "error", f"Job failed: {name}",
                f"{name} failed after {job.attempts} attempt(s): {job.last_error}", job,
            )  # fmt: skip

    async def _queue_empty(self, settled: dict[str, JobRow]) -> None:
        """Notify `queue_empty` when the jobs just settled (not yet in the cache) finished the
        last open ones."""
        if not any(j.state in ("done", "failed") for j in settled.values()):
            return
        if any(j.state in ("queued", *ACTIVE) for j in settled.values()):
            return
        # Jobs still queued, or another printer's, mean not empty without asking the database.
        by_printer = self.queue.by_printer
        if len(self.queue.index) or len(by_printer) > len(settled):
            return
        if any(job_id not in settled for job_id in by_printer.values()):
            return
        if await store.count_open(self.hub.db) == 0:
            await self.queue.notify(
                "queue_empty", "info", "Print queue empty", "Every queued job has finished.", None
            )

    async def start_failed(
        self, job_id: str, run_id: str, reason: str, *, refused: bool = True
    ) -> None:
        """A start did not happen: back to the queue with the reason, or failed after N tries.

        `refused`: the printer refused it or did not begin it, so it cools down (a start lost
        to a hub restart is no fault of the printer's)."""
        async with self.queue.lock, self.hub.emitter.batch():
            job = self.queue.jobs.get(job_id)
            if job is None or job.run_id != run_id or job.state != "dispatching":
                return
            run = self.runs.pop(run_id, None)
            if run is not None:
                run = replace(run, state="requeued", error=reason, ended_at=time.time())
                await store.save_run(self.hub.db, run)
            self.reconcile.discard(job_id)
            if refused and job.printer_id:
                self.ready.refused(job.printer_id)
            failed = job.attempts >= self.settings.max_attempts
            job = await self.queue.saved(
                replace(
                    job, state="failed" if failed else "queued", last_error=reason,
                    printer_id=None, run_id=None,
                )
            )  # fmt: skip
            if failed:
                await self._announce_end(job, self._name(run.printer_id if run else None))
                await self._queue_empty({job.id: job})
        log.warning("queue job %s not started: %s", job_id, reason)
        self.wake()

    def watch_reported(self) -> None:
        """Printing jobs whose printer reported since the last look are watched again (a
        printer seen printing is left alone until it reports something else)."""
        reported, watched, manager = self.reported, self.queue.watched, self.hub.manager
        while reported:
            printer_id = reported.pop()
            job_id = self.queue.by_printer.get(printer_id)
            if job_id is None or job_id in watched:
                continue
            try:
                printing = manager.state(printer_id).state in ACTIVE_STATES
                online = manager.link(printer_id).connection is Connection.ONLINE
            except KeyError:
                printing = online = False
            if not (printing and online):
                watched.add(job_id)

    async def check_starts(self) -> None:
        """Requeue sends that did not become prints in time; settle jobs caught by a restart.

        Looks only at the watched jobs: the dispatching ones, and printing ones whose printer
        has not been seen printing since it last reported."""
        now = time.time()
        timeout = self.settings.start_timeout_s
        self.watch_reported()
        watched = self.queue.watched
        for job_id in list(watched):
            job = self.queue.jobs.get(job_id)
            if job is None or job.state not in ("dispatching", "printing"):
                watched.discard(job_id)
                continue
            run = self.runs.get(job.run_id or "")
            if run is None or job.printer_id is None:
                continue
            try:
                state = self.hub.manager.state(job.printer_id)
                link = self.hub.manager.link(job.printer_id)
            except KeyError:
                state, link = None, None
            file = state.job.file if state is not None and state.job is not None else ""
            shown = run.tag in (file or "")
            online = state is not None and link is not None and link.connection is Connection.ONLINE
            if job.state == "printing":
                if online and state is not None and state.state in ACTIVE_STATES:
                    watched.discard(job_id)  # printing as it should: until it reports again
                await self._check_printing(job, run, state if online else None, shown, now)
            elif online and shown and state is not None and state.state in ACTIVE_STATES:
                await self.mark_printing(job, run)
            elif online and shown and state is not None and state.state is PrintState.FINISHED:
                # A short print (or one that ended while the hub was away) can finish before a
                # report showed it running: it started, and the copy counts.
                await self.mark_printing(job, run)
                await self.print_ended(job, run, LifecycleKind.FINISHED)
            elif job.id in self.reconcile and online and state is not None:
                if now - run.created_at >= min(RECONCILE_GRACE_S, timeout):
                    await self.start_failed(
                        job.id, run.id,
                        f"the hub restarted during the dispatch and {self._name(job.printer_id)}"
                        " did not start it", refused=False,
                    )  # fmt: skip
            elif job.id in self.reconcile:
                # Caught by a restart, its printer not online since to say whether the start
                # reached it: it has a start timeout from the restart to come back and show it.
                if now - max(run.created_at, self.tracking_since) >= timeout:
                    await self.start_failed(
                        job.id, run.id,
                        f"the hub restarted during the dispatch and {self._name(job.printer_id)}"
                        f" stayed offline for {timeout:g} s after the restart", refused=False,
                    )  # fmt: skip
            elif now - run.created_at >= timeout:
                await self.start_failed(
                    job.id, run.id,
                    f"{self._name(job.printer_id)} did not start printing within {timeout:g} s",
                )  # fmt: skip

    async def _check_printing(
        self, job: JobRow, run: RunRow, state: PrinterState | None, shown: bool, now: float
    ) -> None:
        """A backstop for a print end the lifecycle stream did not report: a printing job whose
        printer has been idle for a start timeout is settled (finished when the printer still
        shows the run's file as finished, else with an unknown outcome)."""
        if state is None or state.state in ACTIVE_STATES:
            self.idle_printing.pop(job.id, None)
            return
        first = self.idle_printing.setdefault(job.id, now)
        if now - first >= self.settings.start_timeout_s:
            self.idle_printing.pop(job.id, None)
            ended = shown and state.state is PrintState.FINISHED
            await self.print_ended(
                job, run, LifecycleKind.FINISHED if ended else LifecycleKind.UNKNOWN
            )
