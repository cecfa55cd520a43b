"""Events that commit with the change causing them: notification and outbox rows are written in
the change's transaction, and the events go on the bus only once that transaction has committed.

    async with hub.emitter.batch() as change:
        row = await store.write(...)                  # the change itself
        await change.emit(SomethingChanged(...))      # its outbox rows, same transaction
        await change.notify(kind="...", ...)          # a notification row and its outbox rows
    # committed: the events published in order, then the delivery workers woken

The notification rows and the outbox rows of a change are written at its end, still inside its
transaction: one statement for its notifications and one planning (one look at the targets)
for its events, however many it made.

A batch opened while another is open in the same task joins it (a savepoint of its
transaction): its events go out when the outermost change commits, and not at all if it
rolls back. Before the outbox is running (`hook` None) events are only published; the
outbound plug-ins then write their rows when they take them from the bus.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from databases import Database

from hub.bus import EventBus
from hub.events import NotificationStored
from hub.store import notifications as notes_store
from hub.store.db import is_postgres

#: Writes the outbox rows the events make inside the caller's transaction; the result wakes the
#: delivery workers and is called once that transaction has committed (`Outbox.write_rows`).
OutboxHook = Callable[..., Awaitable[Callable[[], None]]]

E = TypeVar("E")

# SQLite: a statement that writes nothing yet takes the write lock, so a change that reads
# before it writes is not refused at its first write because another connection committed in
# between (a deferred WAL transaction cannot upgrade a stale snapshot; BEGIN IMMEDIATE's effect).
_TAKE_WRITE_LOCK = "UPDATE schema_migrations SET version = version WHERE 0 = 1"

_open: ContextVar[Batch | None] = ContextVar("printforge_emit_batch", default=None)


class Batch:
    """The events of one change, written with it and published after its commit."""

    def __init__(self, emitter: Emitter) -> None:
        self.emitter = emitter
        # A task started inside a change inherits this batch through its context: it joins
        # only while the change is open and only from the task that opened it.
        self.task = asyncio.current_task()
        self.open = True
        # Parts opened inside join this change without a savepoint of their own: the change's
        # owner handles a failure of any part by rolling back the whole (see `Emitter.batch`).
        self.flat = False
        # Run in order once the change has committed: bus publishes, callbacks, then wake-ups.
        self.after: list[Callable[[], None]] = []
        # Events whose outbox rows are still to be written: all of them at the change's end,
        # still inside its transaction (`write_rows`), so the planners' lookups and the rows'
        # insert are made once per change, not once per event.
        self.unwritten: list[object] = []
        self.hook: OutboxHook | None = None
        # Notifications to store at the change's end, in one statement.
        self.notes: list[notes_store.Notification] = []

    async def emit(self, event: E) -> E:
        """Have `event`'s outbox rows written with the change (in its transaction) and publish
        it after commit; returns the event as published (`outboxed` set when the change writes
        its rows)."""
        hook = self.hook or self.emitter.hook
        if hook is not None:
            # Every event emitted here has an `outboxed` field (hub/events.py).
            event = dataclasses.replace(event, outboxed=True)  # type: ignore[type-var]
            self.hook = hook
            self.unwritten.append(event)
        bus = self.emitter.bus
        self.after.append(lambda: bus.publish(event))
        return event

    async def write_rows(self) -> None:
        """Store the notifications and write the outbox rows of the events emitted so far
        (inside the change's transaction): one statement for the notifications, one look at
        the targets and one write for the rows."""
        notes, self.notes = self.notes, []
        await notes_store.add_many(self.emitter.db, notes)
        events, self.unwritten = self.unwritten, []
        if events and self.hook is not None:
            self.after.append(await self.hook(*events))

    async def notify(
        self,
        *,
        printer_id: str | None,
        kind: str,
        severity: str,
        title: str,
        message: str,
        data: dict[str, Any],
    ) -> NotificationStored:
        """Store a notification and its outbox rows in the change (at its end, with the change's
        other notifications); published after commit."""
        note = notes_store.new(
            printer_id=printer_id, kind=kind, severity=severity, title=title, message=message,
            data=data,
        )  # fmt: skip
        self.notes.append(note)
        return await self.emit(NotificationStored(printer_id, note.public()))

    def then(self, callback: Callable[[], None]) -> None:
        """Run `callback` after the commit, in order with the events' publishing."""
        self.after.append(callback)


class Emitter:
    """Opens changes whose events commit with them (see the module docstring)."""

    def __init__(self, db: Database, bus: EventBus) -> None:
        self.db = db
        self.bus = bus
        # Set by the hub once the outbox and the plug-ins' planners are running.
        self.hook: OutboxHook | None = None

    @asynccontextmanager
    async def batch(self, *, transaction: bool = True, flat: bool = False) -> AsyncIterator[Batch]:
        """A change: a transaction (or, with `transaction` False, the caller's own, already
        open on this task's connection, or opened inside the change by the caller, who then
        calls `write_rows` before committing it) whose events go out after it commits. `flat`: parts
        opened inside it take no savepoint (two statements each), for a change whose owner
        rolls it back whole when any part fails."""
        outer = _open.get()
        if (
            outer is not None
            and outer.open
            and outer.emitter is self
            and outer.task is asyncio.current_task()
        ):
            mark, unwritten, notes = len(outer.after), len(outer.unwritten), len(outer.notes)
            try:
                if transaction and not outer.flat:
                    async with self.db.transaction():
                        yield outer
                else:
                    yield outer
            except BaseException:
                # Rolled back to the savepoint: what it emitted never happened.
                del outer.after[mark:]
                del outer.unwritten[unwritten:]
                del outer.notes[notes:]
                raise
            return
        batch = Batch(self)
        batch.flat = flat
        token = _open.set(batch)
        try:
            if transaction:
                async with self.db.transaction():
                    if not is_postgres(self.db):
                        await self.db.execute(_TAKE_WRITE_LOCK)
                    yield batch
                    await batch.write_rows()
            else:
                yield batch
                await batch.write_rows()
        finally:
            batch.open = False
            _open.reset(token)
        for callback in batch.after:
            callback()
