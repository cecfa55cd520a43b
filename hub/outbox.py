"""The outbox dispatcher: delivers stored messages to webhook endpoints and notification channels.

Messages are rows (`hub/store/outbox.py`). For an event that has a row of its own (a stored
notification, a print lifecycle step) the writer calls `write_rows` inside the transaction that
stores it, so the event and its messages commit together; other events become rows when the
plug-ins take them from the bus. On start every target with pending rows gets its worker again,
so a restart or a kill loses no message that was written.
Each target has at most one worker and so at most one delivery in flight; it sends its oldest
pending message and moves on only once that one is delivered or has failed for good, so a slow
receiver gets events in order. Failures are retried with exponential backoff and jitter (or when
the receiver's Retry-After says) until `retry_for_s` has passed; then the message is `failed`.
A target whose deliveries keep failing is disabled and a notification says so (the notification
and its own messages commit with the change that disables the target).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from databases import Database

from config.loader import OutboxSettings
from hub.bus import EventBus
from hub.emit import Emitter
from hub.retry import until_stored
from hub.store import outbox as store
from hub.store.outbox import Delivery, NewMessage

log = logging.getLogger(__name__)

#: Pending messages a worker reads at once (it still sends them one at a time, in order).
BATCH = 20
#: How soon a worker looks again at a target another hub process is sending to.
LOCKED_RETRY_S = 1.0


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one try at sending a message came to."""

    ok: bool
    status: int | None = None
    error: str | None = None
    # False for answers that a retry cannot change (a refused address, a 4xx).
    retry: bool = True
    retry_after: float | None = None


Sender = Callable[[Delivery], Awaitable[Attempt]]
#: What a plug-in makes of events written together: the messages for each of its targets that
#: want them (one look at its targets for all of them).
Planner = Callable[[Sequence[object], float], Awaitable[list[NewMessage]]]


@dataclass(frozen=True, slots=True)
class TargetKind:
    """A kind of target the outbox delivers to: how to send, and how people name it."""

    kind: str
    label: str
    send: Sender


class Outbox:
    """Per-target delivery workers over the outbox table."""

    def __init__(
        self,
        db: Database,
        settings: OutboxSettings,
        bus: EventBus,
        *,
        rng: Callable[[], float] = random.random,
        emitter: Emitter | None = None,
    ) -> None:
        self.db = db
        self.emitter = emitter or Emitter(db, bus)
        self.settings = settings
        self.bus = bus
        self.rng = rng
        self._kinds: dict[str, TargetKind] = {}
        self._planners: list[Planner] = []
        self._workers: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._wakes: dict[tuple[str, str], asyncio.Event] = {}
        self._slots = asyncio.Semaphore(settings.max_in_flight)
        self._stopping = False
        # Targets whose failure streak is known to be 0 (no need to reset it again).
        self._clean: set[tuple[str, str]] = set()
        self.attempted = 0
        self.delivered = 0

    def register(self, kind: TargetKind) -> Callable[[], None]:
        """Deliver messages of `kind.kind` with `kind.send`; the result unregisters it."""
        self._kinds[kind.kind] = kind

        def unregister() -> None:
            self._kinds.pop(kind.kind, None)

        return unregister

    def plan(self, planner: Planner) -> Callable[[], None]:
        """Have `write_rows` ask `planner` for its messages; the result unregisters it."""
        self._planners.append(planner)

        def unregister() -> None:
            with contextlib.suppress(ValueError):
                self._planners.remove(planner)

        return unregister

    async def write_rows(self, *events: object) -> Callable[[], None]:
        """Write the messages every planner makes of `events`, in the caller's transaction (so
        an error rolls them back with the events' own rows); the result wakes their targets and
        is to be called once that transaction has committed."""
        now = time.time()
        messages = [m for planner in list(self._planners) for m in await planner(events, now)]
        await store.enqueue(self.db, messages)
        targets = {(m.target_kind, m.target_id) for m in messages}

        def wake() -> None:
            for kind, target_id in targets:
                self.wake(kind, target_id)

        return wake

    async def start(self) -> None:
        """Resume every target that has pending messages (after a restart or a kill)."""
        for kind, target_id in await store.pending_targets(self.db):
            self.wake(kind, target_id)

    async def stop(self, grace_s: float = 5.0) -> None:
        """Let deliveries in flight finish (up to `grace_s`), then stop every worker."""
        self._stopping = True
        for event in self._wakes.values():
            event.set()
        workers = list(self._workers.values())
        if workers:
            await asyncio.wait(workers, timeout=grace_s)
        for task in workers:
            task.cancel()
        for task in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def enqueue(self, messages: list[NewMessage]) -> None:
        """Store messages (retrying until the database takes them), then wake their targets."""
        if not messages:
            return
        await until_stored(
            f"outbox write of {len(messages)} message(s)",
            lambda: store.enqueue(self.db, messages),
        )
        for target in {(m.target_kind, m.target_id) for m in messages}:
            self.wake(*target)

    async def send_now(self, message: NewMessage) -> Delivery:
        """Queue one message (behind any its target still waits for) and return its row."""
        await self.enqueue([message])
        found = await store.by_event(
            self.db, message.target_kind, message.target_id, message.event_id
        )
        if found is None:
            raise RuntimeError("the message was not stored")
        return found

    async def redeliver(self, kind: str, target_id: str, delivery_id: str) -> Delivery | None:
        """Send a target's message again (same event id, a fresh retry window); None if absent."""
        found = await store.redeliver(self.db, kind, target_id, delivery_id)
        if found is not None:
            self.wake(kind, target_id)
        return found

    def wake(self, kind: str, target_id: str) -> None:
        """Have the target's worker look at its messages now (starting one if none runs)."""
        if self._stopping:
            return
        key = (kind, target_id)
        self._wakes.setdefault(key, asyncio.Event()).set()
        if key not in self._workers:
            self._workers[key] = asyncio.get_running_loop().create_task(
                self._work(key), name=f"outbox:{kind}:{target_id}"
            )

    def busy(self) -> int:
        """Targets with a worker now: messages waiting (maybe for a retry) or in flight."""
        return len(self._workers)

    # One worker per target -------------------------------------------------------------

    async def _work(self, key: tuple[str, str]) -> None:
        kind, target_id = key
        wake = self._wakes.setdefault(key, asyncio.Event())
        try:
            while not self._stopping:
                wake.clear()
                target = self._kinds.get(kind)
                if target is None:
                    return
                delay = await self._round(target, target_id, wake)
                if delay is None:
                    if wake.is_set():
                        continue
                    # Nothing to do: a later `wake` starts a new worker.
                    return
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):
                            await wake.wait()
        except asyncio.CancelledError:
            raise
        except Exception:
            # A broken database or sender must not end deliveries for good: try again later.
            log.exception("outbox worker for %s %s failed; restarting it", kind, target_id)
            await asyncio.sleep(1.0)
            if not self._stopping:
                self._workers.pop(key, None)
                self.wake(kind, target_id)
            return
        finally:
            if self._workers.get(key) is asyncio.current_task():
                del self._workers[key]
                # A later `wake` makes a new event with a new worker.
                self._wakes.pop(key, None)

    async def _round(self, target: TargetKind, target_id: str, wake: asyncio.Event) -> float | None:
        """Send what is due of one target's next messages. The seconds to wait before the next
        round (0: go on now), or None when the target has nothing to send."""
        kind = target.kind
        # One connection for a round: with SQLite every query outside one opens its own, and
        # on PostgreSQL the target's lock belongs to this connection's session.
        async with self.db.connection():
            if not await store.lock_target(self.db, kind, target_id):
                # Another hub process sharing the database is sending to this target.
                return LOCKED_RETRY_S
            try:
                batch = await store.next_pending(self.db, kind, target_id, BATCH)
                if not batch or not await store.target_state(self.db, kind, target_id):
                    return None
                delay = batch[0].next_attempt_at - time.time()
                if delay > 0:
                    return delay
                await self._send_batch(target, batch, wake)
                return 0.0
            finally:
                await store.unlock_target(self.db, kind, target_id)

    async def _send_batch(
        self, target: TargetKind, batch: list[Delivery], wake: asyncio.Event
    ) -> None:
        """Send due messages in order until one is not delivered, one is not due yet, or the
        worker is woken (a change to the target or its messages: read them again)."""
        for delivery in batch:
            if self._stopping or wake.is_set() or delivery.next_attempt_at > time.time():
                return
            async with self._slots:
                delivered = await self._attempt(target, delivery)
            if not delivered:
                return

    async def _attempt(self, target: TargetKind, delivery: Delivery) -> bool:
        settings = self.settings
        self.attempted += 1
        try:
            # The sender has its own timeout; this one bounds a sender that ignores it.
            async with asyncio.timeout(settings.timeout_s + 5.0):
                result = await target.send(delivery)
        except TimeoutError:
            result = Attempt(False, error=f"timed out after {settings.timeout_s:g} s")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("%s delivery %s raised", target.label, delivery.id)
            result = Attempt(False, error=f"{type(exc).__name__}: {exc}")
        now = time.time()
        attempts = delivery.attempts + 1
        if result.ok:
            self.delivered += 1
            await store.record(
                self.db,
                delivery.id,
                state=store.DELIVERED,
                attempts=attempts,
                next_attempt_at=now,
                at=now,
                status=result.status,
                error=None,
            )
            key = (target.kind, delivery.target_id)
            if key not in self._clean:
                # The run of failures (if any) ends; skipped while this process saw no failure.
                await store.target_succeeded(self.db, target.kind, delivery.target_id)
                self._clean.add(key)
            return True
        delay = self.backoff(attempts, result.retry_after)
        exhausted = now + delay - delivery.retry_from > settings.retry_for_s
        final = not result.retry or exhausted
        await store.record(
            self.db,
            delivery.id,
            state=store.FAILED if final else store.PENDING,
            attempts=attempts,
            next_attempt_at=now if final else now + delay,
            at=now,
            status=result.status,
            error=result.error,
        )
        if final:
            self._clean.discard((target.kind, delivery.target_id))
            await self._failed_for_good(target, delivery, result, exhausted)
        return False

    def backoff(self, attempts: int, retry_after: float | None = None) -> float:
        """Seconds before the next try: the receiver's Retry-After when it gave one, else
        exponential from `backoff_initial_s` up to `backoff_max_s`, with jitter (50-100 %)."""
        if retry_after is not None:
            return max(0.0, retry_after)
        settings = self.settings
        base = min(settings.backoff_max_s, settings.backoff_initial_s * 2 ** (attempts - 1))
        return base * (0.5 + 0.5 * self.rng())

    async def _failed_for_good(
        self, target: TargetKind, delivery: Delivery, result: Attempt, exhausted: bool
    ) -> None:
        streak = await store.target_failed(self.db, target.kind, delivery.target_id)
        if not exhausted and streak < self.settings.disable_after_failures:
            return
        why = result.error or (f"HTTP {result.status}" if result.status else "failed")
        if exhausted:
            window = self.settings.retry_for_s
            span = f"{window / 3600:g} h" if window >= 3600 else f"{window:g} s"
            reason = f"deliveries failed for {span}; last error: {why}"
        else:
            reason = f"{streak} deliveries in a row failed; last error: {why}"
        async with self.emitter.batch() as change:
            await store.disable_target(self.db, target.kind, delivery.target_id, reason)
            await change.notify(
                printer_id=None,
                kind=f"{target.kind}_disabled",
                severity="error",
                title=f"{target.label.capitalize()} disabled",
                message=f"{target.label.capitalize()} {delivery.target_id} was disabled: {reason}",
                data={"target_id": delivery.target_id, "target_kind": target.kind},
            )
        log.warning("%s %s disabled: %s", target.label, delivery.target_id, reason)
