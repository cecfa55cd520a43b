"""The hub's event bus: typed events, `publish`, and `subscribe(kind, handler) -> unsubscribe`.

Every consumer of printer events (WebSocket fan-out, history writer, filament ledger, queue
dispatcher, MQTT, webhooks, notification channels) subscribes here instead of being wired by
hand into telemetry. Two ways to listen:

- `inline=True`: the (plain, not async) handler runs inside `publish`. Only for cheap handlers
  that never block and keep their own bounded buffers (the WebSocket broadcaster).
- default: the subscriber gets its own buffer and task, so a slow or failing handler delays
  neither telemetry nor another subscriber. Events of a *coalescing* kind (status, progress,
  AMS: the newest is all that matters) are latest-wins per printer inside that buffer; other
  events keep their order and are only shed past `max_pending`, counted in `dropped`.

A handler's exception is logged (rate-limited) and stays its own. Handlers may be plain or
`async` functions. Nothing here assumes the publisher and the subscriber share a process: an
event is a frozen dataclass with plain data, so a multi-process bus can carry the same types.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from streams.failures import FailureLog

log = logging.getLogger(__name__)

E = TypeVar("E")
Handler = Callable[[E], Awaitable[None] | None]
Unsubscribe = Callable[[], None]

#: Events past this many waiting in one subscriber's buffer are shed (oldest first).
DEFAULT_MAX_PENDING = 10_000

_coalescing: set[type] = set()


def coalescing(cls: type[E]) -> type[E]:
    """Mark an event type as latest-wins per printer in subscriber buffers (class decorator)."""
    _coalescing.add(cls)
    return cls


class Bus(Protocol):
    """What every event bus offers; the in-process one below is the first implementation."""

    def publish(self, event: object) -> None:
        """Hand one event to every subscriber of its type; never waits for any of them."""

    def subscribe(
        self,
        kind: type[E] | tuple[type, ...],
        handler: Handler[Any],
        *,
        name: str,
        inline: bool = False,
        max_pending: int | None = DEFAULT_MAX_PENDING,
    ) -> Unsubscribe:
        """Call `handler` with every event of `kind`; the result stops the subscription."""
        ...


@dataclass(eq=False)
class _Subscriber:
    """One subscription: its handler, and (unless inline) its buffer and delivery task."""

    name: str
    handler: Handler[Any]
    inline: bool
    max_pending: int | None
    failures: FailureLog
    pending: OrderedDict[Any, Any] = field(default_factory=OrderedDict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    delivered: int = 0
    dropped: int = 0
    coalesced: int = 0  # events replaced by a newer one of the same printer while waiting


class EventBus:
    """The in-process event bus."""

    def __init__(self) -> None:
        self._by_kind: dict[type, list[_Subscriber]] = {}
        self._subscribers: list[_Subscriber] = []
        self._serial = itertools.count()
        self._routes: dict[type, tuple[_Subscriber, ...]] = {}
        self.published = 0

    # Publishing -------------------------------------------------------------------------

    def publish(self, event: object) -> None:
        """Hand one event to every subscriber of its type; never waits for any of them."""
        self.published += 1
        kind = type(event)
        route = self._routes.get(kind)
        if route is None:
            route = self._routes[kind] = self._route(kind)
        if not route:
            return
        key: Any = None
        if kind in _coalescing:
            key = (kind, getattr(event, "printer_id", None))
        for sub in route:
            if sub.inline:
                try:
                    sub.handler(event)
                except Exception as error:
                    sub.failures.failed(error, f" on {kind.__name__}")
                continue
            self._offer(sub, event, key)

    def publish_many(self, events: Iterable[object]) -> None:
        """Publish several events in order."""
        for event in events:
            self.publish(event)

    def _route(self, kind: type) -> tuple[_Subscriber, ...]:
        found: list[_Subscriber] = []
        for base in kind.__mro__:
            found.extend(s for s in self._by_kind.get(base, ()) if s not in found)
        return tuple(found)

    def _offer(self, sub: _Subscriber, event: object, key: Any) -> None:
        pending = sub.pending
        if key is not None and key in pending:
            pending[key] = event  # latest wins, in the place the first one took
            sub.coalesced += 1
        else:
            if sub.max_pending is not None and len(pending) >= sub.max_pending:
                pending.popitem(last=False)
                sub.dropped += 1
                if sub.dropped == 1 or sub.dropped % 1000 == 0:
                    log.warning(
                        "bus subscriber %s is behind: %d event(s) shed", sub.name, sub.dropped
                    )
            pending[key if key is not None else next(self._serial)] = event
        sub.idle.clear()
        sub.wake.set()

    # Subscribing ------------------------------------------------------------------------

    def subscribe(
        self,
        kind: type[E] | tuple[type, ...],
        handler: Handler[Any],
        *,
        name: str,
        inline: bool = False,
        max_pending: int | None = DEFAULT_MAX_PENDING,
    ) -> Unsubscribe:
        """Call `handler` with every event of `kind` (a type, its subclasses, or a tuple of types).

        Must be called on the running event loop unless `inline`. The returned callable stops
        the subscription; events still buffered for it are dropped.
        """
        kinds = kind if isinstance(kind, tuple) else (kind,)
        sub = _Subscriber(
            name, handler, inline, max_pending, FailureLog(log, f"bus handler {name}")
        )
        sub.idle.set()
        for k in kinds:
            self._by_kind.setdefault(k, []).append(sub)
        self._subscribers.append(sub)
        self._routes.clear()
        if not inline:
            sub.task = asyncio.get_running_loop().create_task(
                self._deliver(sub), name=f"bus:{name}"
            )

        def unsubscribe() -> None:
            for k in kinds:
                with contextlib.suppress(KeyError, ValueError):
                    self._by_kind[k].remove(sub)
            with contextlib.suppress(ValueError):
                self._subscribers.remove(sub)
            self._routes.clear()
            sub.pending.clear()
            sub.idle.set()
            if sub.task is not None:
                sub.task.cancel()

        return unsubscribe

    async def _deliver(self, sub: _Subscriber) -> None:
        while True:
            await sub.wake.wait()
            sub.wake.clear()
            while sub.pending:
                _, event = sub.pending.popitem(last=False)
                try:
                    result = sub.handler(event)
                    if inspect.isawaitable(result):
                        await result
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    sub.failures.failed(error, f" on {type(event).__name__}")
                sub.delivered += 1
            sub.idle.set()

    # Lifecycle and inspection -----------------------------------------------------------

    async def drain(self, within: float = 10.0) -> bool:
        """Wait until every buffered subscriber has handled what it was given; False if `within`
        seconds passed first."""
        try:
            async with asyncio.timeout(within):
                for sub in list(self._subscribers):
                    await sub.idle.wait()
            return True
        except TimeoutError:
            return False

    async def close(self) -> None:
        """Stop every subscriber's task (after `drain`, to let them finish)."""
        subs, self._subscribers = self._subscribers, []
        self._by_kind.clear()
        self._routes.clear()
        for sub in subs:
            if sub.task is not None:
                sub.task.cancel()
        for sub in subs:
            if sub.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await sub.task

    def stats(self) -> dict[str, dict[str, int]]:
        """Per subscriber: events delivered, waiting, shed past the bound, and replaced by a
        newer one of the same printer (for metrics and tests)."""
        return {
            s.name: {
                "delivered": s.delivered,
                "pending": len(s.pending),
                "dropped": s.dropped,
                "coalesced": s.coalesced,
            }
            for s in self._subscribers
        }
