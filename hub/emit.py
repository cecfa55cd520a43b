"""Events that commit with the change causing them: notification and outbox rows are written in
the change's transaction, and the events go on the bus only once that transaction has committed.

    async with hub.emitter.batch() as change:
        row = await store.write(...)                  # the change itself
        await change.emit(SomethingChanged(...))      # its outbox rows, same transaction
        await change.notify(kind="...", ...)          # a notification row and its outbox rows
    # committed: the delivery workers are woken and the events published, in order

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

#: Writes the outbox rows an event makes inside the caller's transaction; the result wakes the
#: delivery workers and is called once that transaction has committed (`Outbox.write_rows`).
OutboxHook = Callable[[object], Awaitable[Callable[[], None]]]

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
        # Run in order once the change has committed: wake-ups, bus publishes, callbacks.
        self.after: list[Callable[[], None]] = []

    async def emit(self, event: E) -> E:
        """Write `event`'s outbox rows now (in the transaction) and publish it after commit;
        returns the event as published (`outboxed` set when its rows were written)."""
        hook = self.emitter.hook
        if hook is not None:
            # Every event emitted here has an `outboxed` field (hub/events.py).
            event = dataclasses.replace(event, outboxed=True)  # type: ignore[type-var]
            self.after.append(await hook(event))
        bus = self.emitter.bus
        self.after.append(lambda: bus.publish(event))
        return event

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
        """Store a notification and its outbox rows in the change; published after commit."""
        note = await notes_store.add(
            self.emitter.db, printer_id=printer_id, kind=kind, severity=severity,
            title=title, message=message, data=data,
        )  # fmt: skip
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
        open on this task's connection) whose events go out after it commits. `flat`: parts
        opened inside it take no savepoint (two statements each), for a change whose owner
        rolls it back whole when any part fails."""
        outer = _open.get()
        if (
            outer is not None
            and outer.open
            and outer.emitter is self
            and outer.task is asyncio.current_task()
        ):
            mark = len(outer.after)
            try:
                if transaction and not outer.flat:
                    async with self.db.transaction():
                        yield outer
                else:
                    yield outer
            except BaseException:
                # Rolled back to the savepoint: what it emitted never happened.
                del outer.after[mark:]
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
            else:
                yield batch
        finally:
            batch.open = False
            _open.reset(token)
        for callback in batch.after:
            callback()
