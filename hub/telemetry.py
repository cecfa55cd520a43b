"""Telemetry wiring: drivers feed telemetry$, the stream pipelines publish to the bus, sinks subscribe."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from databases import Database
from reactivex.disposable import CompositeDisposable
from reactivex.scheduler.eventloop import AsyncIOScheduler
from reactivex.subject import Subject

from hub.broadcast import Broadcaster
from hub.bus import EventBus, Unsubscribe
from hub.events import NotificationStored, PrintRecorded
from hub.model import Job, PrinterState, plain, rfc3339
from hub.retry import RETRY_S, until_stored
from hub.store import notifications as notes_store
from hub.store import prints as prints_store
from hub.store.errors import is_unavailable
from streams import (
    ActiveJob,
    AmsEvent,
    LifecycleEvent,
    LifecycleKind,
    NotificationEvent,
    ProgressEvent,
    RecordedPrints,
    StreamSettings,
    build_pipelines,
    subscribe_isolated,
)

log = logging.getLogger(__name__)

PROGRESS_FLUSH_S = 5.0
__all__ = ["RETRY_S", "Telemetry"]

#: Writes the outbox rows an event makes inside the caller's transaction; the result wakes the
#: delivery workers and is called once that transaction has committed (`Outbox.write_rows`).
OutboxHook = Callable[[object], Awaitable[Callable[[], None]]]


async def load_seed(db: Database) -> dict[str, ActiveJob]:
    """Prints the database says are running, so lifecycle tracking resumes after a restart."""
    seed: dict[str, ActiveJob] = {}
    for record in await prints_store.open_prints(db):
        job = Job(
            file=record.file,
            progress=record.progress,
            total_layers=record.total_layers,
            started_at=record.started_at,
        )
        seed[record.printer_id] = ActiveJob(
            record.job_key, job, record.started_at, paused=record.state == "paused"
        )
    return seed


async def load_recorded(db: Database) -> dict[str, RecordedPrints]:
    """What the history holds of each printer's recent prints, so replays are not news twice."""
    return {
        printer_id: RecordedPrints(tuple(keys), newest)
        for printer_id, (keys, newest) in (await prints_store.recent_by_printer(db)).items()
    }


def ams_payload(event: AmsEvent) -> dict[str, Any]:
    """An AMS change as `ams.update` messages (and outbound integrations) show it."""
    return {
        "printer_id": event.printer_id,
        "units": [plain(u) for u in event.units],
        "active_tray": event.active_tray,
    }


def lifecycle_payload(event: LifecycleEvent) -> dict[str, Any]:
    """A print's lifecycle step as `print.lifecycle` messages (and outbound integrations) show it."""
    return {
        "printer_id": event.printer_id,
        "kind": event.kind.value,
        "job_key": event.job_key,
        "file": event.job.file,
        "progress": event.progress,
        "at": rfc3339(event.at),
        "inferred": event.inferred,
    }


class Telemetry:
    """Owns telemetry$, the pipelines' subscriptions and the tasks that write to the database."""

    def __init__(
        self,
        db: Database,
        broadcaster: Broadcaster,
        status_payload: Callable[[PrinterState], dict[str, Any]],
        settings: StreamSettings | None = None,
        name_of: Callable[[str], str] = str,
        bus: EventBus | None = None,
    ) -> None:
        self.db = db
        self.bus = bus or EventBus()
        self.name_of = name_of
        self.broadcaster = broadcaster
        self.status_payload = status_payload
        self.settings = settings or StreamSettings()
        self.subject: Subject[PrinterState] = Subject()
        self.disposables = CompositeDisposable()
        self._unsubscribe: list[Unsubscribe] = []
        self.progress: dict[str, float] = {}  # job_key -> whole percent not yet stored
        self._stored: dict[str, float] = {}  # job_key -> whole percent last stored
        self.tasks: list[asyncio.Task[None]] = []
        self.reports = 0
        # Set by the hub once the outbox exists: notifications and print steps then commit
        # with their outbox rows, so a kill right after the commit loses no delivery.
        self.outbox_hook: OutboxHook | None = None

    async def start(self) -> None:
        """Seed lifecycle tracking from the database, subscribe the sinks, start the pipelines."""
        seed = await load_seed(self.db)
        recorded = await load_recorded(self.db)
        scheduler = AsyncIOScheduler(asyncio.get_running_loop())
        pipes = build_pipelines(self.subject, scheduler, self.settings, seed, recorded)
        bus = self.bus
        # The sinks are bus subscribers like any other consumer. Fan-out to /ws is inline
        # (the broadcaster buffers per client); the writers have buffers and tasks of their
        # own and lose nothing (lifecycle steps and notifications are rare and must land).
        self._unsubscribe = [
            bus.subscribe(PrinterState, self._on_status, name="ws-status", inline=True),
            bus.subscribe(ProgressEvent, self._on_progress, name="progress", inline=True),
            bus.subscribe(AmsEvent, self._on_ams, name="ws-ams", inline=True),
            bus.subscribe(LifecycleEvent, self._on_lifecycle, name="ws-lifecycle", inline=True),
            bus.subscribe(NotificationStored, self._on_notification, name="ws-notes", inline=True),
            bus.subscribe(LifecycleEvent, self._write_history, name="history", max_pending=None),
            bus.subscribe(
                NotificationEvent, self._store_notification, name="notifications", max_pending=None
            ),
        ]
        for observable, name in (
            (pipes.status, "status"),
            (pipes.progress, "progress"),
            (pipes.ams, "ams"),
            (pipes.lifecycle, "lifecycle"),
            (pipes.notification, "notification"),
        ):
            subscribe_isolated(observable, bus.publish, f"bus:{name}", self.disposables, log)
        self.disposables.add(pipes.connect())
        self.tasks = [asyncio.create_task(self._progress_flusher(), name="progress-flusher")]

    def feed(self, state: PrinterState) -> None:
        """Push one driver report into telemetry$."""
        self.reports += 1
        self.subject.on_next(state)

    async def stop(self, within: float = 10.0) -> None:
        """Dispose every subscription, then let the writers finish what was queued, for at most
        `within` seconds (the last progress write included); what is left is logged."""
        started = time.monotonic()
        self.disposables.dispose()
        if not await self.bus.drain(within * 0.7):
            log.warning("stopping: bus subscribers still busy after %.1f s", within * 0.7)
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        left = max(0.05, within - (time.monotonic() - started))
        try:
            await asyncio.wait_for(self._flush_progress(), left)
        except TimeoutError:
            log.warning("stopping: the last progress write took longer than %.1f s", left)

    # Inline sinks: synchronous, cheap, never touching the database themselves ----------

    def _on_status(self, state: PrinterState) -> None:
        self.broadcaster.publish("printer.status", self.status_payload(state), state.printer_id)

    def _on_progress(self, event: ProgressEvent) -> None:
        progress = float(event.progress)
        # progress$ fires on every remaining-time change; only a new whole percent is news
        # for the database.
        if self._stored.get(event.job_key) != progress:
            self.progress[event.job_key] = progress
        self.broadcaster.publish("print.progress", plain(event), event.printer_id)

    def _on_ams(self, event: AmsEvent) -> None:
        self.broadcaster.publish("ams.update", ams_payload(event), event.printer_id)

    def _on_lifecycle(self, event: LifecycleEvent) -> None:
        self.broadcaster.publish("print.lifecycle", lifecycle_payload(event), event.printer_id)

    # Writers: one task each, retrying until the database takes the write ---------------

    async def _retrying(self, what: str, action: Callable[[], Any]) -> None:
        await until_stored(what, action)

    async def _write_history(self, event: LifecycleEvent) -> None:
        done: list[tuple[PrintRecorded, Callable[[], None] | None]] = []

        async def write() -> None:
            done.clear()
            async with self.db.transaction():
                await self._write(event)
                record = await prints_store.by_key(self.db, event.job_key)
                if record is None:
                    return
                hook = self.outbox_hook
                recorded = PrintRecorded(
                    event.printer_id, record.id, event.job_key, event, outboxed=hook is not None
                )
                after = await hook(recorded) if hook is not None else None
            done.append((recorded, after))

        await self._retrying(f"history write {event.job_key}", write)
        for recorded, after in done:
            if after is not None:
                after()
            self.bus.publish(recorded)

    async def _write(self, event: LifecycleEvent) -> None:
        if event.kind in (LifecycleKind.PAUSED, LifecycleKind.RESUMED):
            state = "paused" if event.kind is LifecycleKind.PAUSED else "printing"
            await prints_store.set_state(self.db, event.job_key, state, event.progress)
            return
        # Opening is idempotent on job_key, so a terminal step whose start was never
        # stored (the hub saw only the end) still leaves one whole record.
        await prints_store.start(
            self.db,
            job_key=event.job_key,
            printer_id=event.printer_id,
            file=event.job.file,
            started_at=event.job.started_at or event.at,
            progress=event.progress,
            total_layers=event.job.total_layers,
        )
        if event.kind is not LifecycleKind.STARTED:
            await prints_store.finish(
                self.db, event.job_key, event.kind.value, event.at, event.progress
            )
            self.progress.pop(event.job_key, None)
            self._stored.pop(event.job_key, None)

    async def _store_notification(self, event: NotificationEvent) -> None:
        stored: list[tuple[NotificationStored, Callable[[], None] | None]] = []
        # One id and time for every try: a try whose commit went through unacknowledged (the
        # link dropped with it) makes the next try a no-op instead of a second notification.
        note_id, created_at = str(uuid.uuid4()), time.time()

        async def store() -> None:
            stored.clear()
            # The streams know printers by id; people know them by name.
            name = self.name_of(event.printer_id)
            async with self.db.transaction():
                note = await notes_store.add(
                    self.db,
                    printer_id=event.printer_id,
                    kind=event.kind.value,
                    severity=event.severity.value,
                    title=event.title.replace(event.printer_id, name),
                    message=event.message.replace(event.printer_id, name),
                    data={**event.data, "printer_name": name},
                    note_id=note_id,
                    created_at=created_at,
                )
                hook = self.outbox_hook
                published = NotificationStored(
                    event.printer_id, note.public(), outboxed=hook is not None
                )
                after = await hook(published) if hook is not None else None
            stored.append((published, after))

        await self._retrying(f"notification {event.kind}", store)
        published, after = stored[0]
        if after is not None:
            after()
        self.bus.publish(published)

    def _on_notification(self, event: NotificationStored) -> None:
        self.broadcaster.publish("notification", event.note, event.printer_id)

    async def _progress_flusher(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_FLUSH_S)
            await self._flush_progress()

    async def _flush_progress(self) -> None:
        pending, self.progress = self.progress, {}
        if not pending:
            return
        try:
            await prints_store.set_progress_many(self.db, pending)
        except Exception as exc:
            if is_unavailable(exc):
                log.warning(
                    "progress write of %d prints waits for the database: %r", len(pending), exc
                )
            else:
                log.exception(
                    "progress write of %d prints failed; kept for the next flush", len(pending)
                )
            for job_key, progress in pending.items():
                self.progress.setdefault(job_key, progress)
            return
        self._stored.update(pending)
