"""Fan-out of live messages to WebSocket clients: shared batch frames, bounded per-client buffers.

Clients that take messages one frame each get every message offered into their own buffer
(latest-wins per printer for status-like kinds, bounded FIFO for events). Clients that opted in to
`batch` frames are served by one flush per `batch_interval`: the messages of that interval are
filtered and encoded into a frame once per distinct subscription, and that one text goes to every
client of the subscription whose writer is idle. A client still busy sending gets the messages
into its own buffer instead, so a slow client costs only itself and never delays the others.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hub.model import rfc3339

log = logging.getLogger(__name__)

MESSAGE_TYPES = (
    "printer.status",
    "print.progress",
    "ams.update",
    "notification",
    "print.lifecycle",
    "printer.connection",
    "queue.update",
    "filament.update",
)
# For these a newer message about the same printer replaces an older unsent one.
COALESCED = frozenset({"printer.status", "print.progress", "ams.update", "printer.connection"})
BATCH_INTERVAL_S = 0.025  # least time between two shared batch flushes
# Shared frames a client may fall behind by before its messages go to its own bounded buffer.
MAX_FRAMES = 10

Filter = tuple[frozenset[str] | None, frozenset[str] | None]


@dataclass(frozen=True, slots=True)
class Message:
    """One encoded message, shared by every client it goes to (encoded once)."""

    type: str
    printer_id: str | None
    text: str
    created: float


def encode(type_: str, payload: Any, ts: float | None = None) -> str:
    """The wire form `{"type", "payload", "ts"}`."""
    return json.dumps(
        {"type": type_, "payload": payload, "ts": rfc3339(time.time() if ts is None else ts)},
        separators=(",", ":"),
        default=str,
    )


def encode_batch(texts: list[str], ts: float | None = None) -> str:
    """One `batch` frame `{"type": "batch", "payload": [message, ...], "ts"}` of encoded messages."""
    stamp = rfc3339(time.time() if ts is None else ts)
    return '{"type":"batch","payload":[' + ",".join(texts) + '],"ts":"' + str(stamp) + '"}'


@dataclass(frozen=True, slots=True)
class Frame:
    """One shared batch frame: the messages of a flush that a subscription covers, encoded once."""

    filter: Filter
    messages: tuple[Message, ...]
    inner: str  # the encoded messages joined by commas: frames concatenate without re-encoding
    text: str  # the whole `batch` frame
    at: float  # event-loop time of the flush that made it


def make_frame(filter_: Filter, messages: list[Message], at: float) -> Frame:
    """Encode the messages of one flush for one subscription."""
    inner = ",".join([m.text for m in messages])
    return Frame(filter_, tuple(messages), inner, encode_batch([inner]), at)


def select(messages: list[Message], printers: frozenset[str] | None, types: frozenset[str] | None
           ) -> list[Message]:  # fmt: skip
    """The messages a subscription covers, oldest first, only the newest per printer and kind."""
    seen: set[tuple[str, str | None]] = set()
    chosen: list[Message] = []
    for message in reversed(messages):
        if types is not None and message.type not in types:
            continue
        if printers is not None and message.printer_id is not None:
            if message.printer_id not in printers:
                continue
        if message.type in COALESCED:
            key = (message.type, message.printer_id)
            if key in seen:
                continue
            seen.add(key)
        chosen.append(message)
    chosen.reverse()
    return chosen


@dataclass(eq=False)
class Client:
    """One connected client: its filter and its bounded outbox."""

    max_events: int = 1000
    printers: frozenset[str] | None = None
    types: frozenset[str] | None = None
    # Opted in to `batch` frames: everything queued goes out in one frame (see api/ws.py).
    batch: bool = False
    # Its own buffer: latest-wins per (type, printer) for status kinds, bounded FIFO for events.
    latest: OrderedDict[tuple[str, str | None], Message] = field(default_factory=OrderedDict)
    events: deque[Message] = field(default_factory=deque)
    dropped: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False
    # Shared batch frames handed over by flushes and not yet sent, oldest first; all of them
    # are older than anything in the client's own buffer.
    frames: list[Frame] = field(default_factory=list)

    @property
    def filter(self) -> Filter:
        """The subscription as a hashable key (clients with equal keys share batch frames)."""
        return (self.printers, self.types)

    def own_buffer_used(self) -> bool:
        """True when messages wait in the client's own buffer."""
        return bool(self.events or self.latest)

    def take(self) -> list[Message]:
        """Everything queued, oldest first, as messages."""
        frames, self.frames = self.frames, []
        shared = [m for f in frames for m in f.messages if self.wants(m)]
        return shared + self.drain()

    def take_batch(self, dropped: str | None = None) -> tuple[str | None, float | None]:
        """Everything queued as one `batch` frame text, and the flush time when it is shared.

        A single pending shared frame is sent as it is; several are concatenated without
        decoding; the client's own (newer) messages follow them.
        """
        frames, self.frames = self.frames, []
        own = self.drain()
        if len(frames) == 1 and not own and dropped is None and frames[0].filter == self.filter:
            return frames[0].text, frames[0].at
        texts = [] if dropped is None else [dropped]
        for frame in frames:
            if frame.filter == self.filter:
                texts.append(frame.inner)
            else:  # the subscription changed after the flush
                texts += [m.text for m in frame.messages if self.wants(m)]
        texts += [m.text for m in own if self.wants(m)]
        return (encode_batch(texts), None) if texts else (None, None)

    def wants(self, message: Message) -> bool:
        """True when the client's subscription covers the message."""
        if self.types is not None and message.type not in self.types:
            return False
        if self.printers is not None and message.printer_id is not None:
            return message.printer_id in self.printers
        return True

    def offer(self, message: Message) -> None:
        """Queue a message: coalesced kinds replace older ones, the rest are bounded FIFO."""
        if message.type in COALESCED:
            key = (message.type, message.printer_id)
            self.latest.pop(key, None)
            self.latest[key] = message
        else:
            if len(self.events) >= self.max_events:
                self.events.popleft()
                self.dropped += 1
            self.events.append(message)
        self.ready.set()

    def requeue(self, messages: list[Message]) -> None:
        """Put back taken, unsent messages; a newer queued one of the same printer and kind wins."""
        for message in reversed(messages):
            if message.type in COALESCED:
                key = (message.type, message.printer_id)
                if key not in self.latest:
                    self.latest[key] = message
            else:
                self.events.appendleft(message)
        while len(self.events) > self.max_events:  # the oldest go first, as in offer()
            self.events.popleft()
            self.dropped += 1
        if messages:
            self.ready.set()

    def drain(self) -> list[Message]:
        """Take everything queued, oldest first."""
        items = list(self.events) + list(self.latest.values())
        self.events.clear()
        self.latest.clear()
        self.ready.clear()
        items.sort(key=lambda m: m.created)
        return items

    def pending(self) -> int:
        """How many messages wait to be sent."""
        shared = sum(len(f.messages) for f in self.frames)
        return shared + len(self.events) + len(self.latest)


class Broadcaster:
    """Holds the connected clients; publishing never waits for any of them."""

    def __init__(self, batch_interval: float = BATCH_INTERVAL_S) -> None:
        self.clients: set[Client] = set()
        self.batch_interval = batch_interval
        self.published = 0
        self.flushes = 0
        self.frames_shared = 0  # shared frames handed to clients (one per client per flush)
        self._direct: set[Client] = set()
        self._batched: set[Client] = set()
        self._pending: list[Message] = []
        self._flush_at: asyncio.TimerHandle | asyncio.Handle | None = None
        self._flush_loop: asyncio.AbstractEventLoop | None = None
        self._last_flush = float("-inf")
        # The last `printer.status` published per printer: the snapshot a connecting client gets.
        self.last_status: dict[str, Message] = {}

    def register(self, client: Client) -> None:
        """Start delivering to a client."""
        self.clients.add(client)
        (self._batched if client.batch else self._direct).add(client)

    def unregister(self, client: Client) -> None:
        """Stop delivering to a client and let go of what it had queued."""
        client.closed = True
        self.clients.discard(client)
        self._direct.discard(client)
        self._batched.discard(client)
        # A closed socket's handler task usually ends in a reference cycle (its cancellation's
        # traceback holds its frames); emptied here, the buffers are freed at once instead of
        # waiting in that cycle for a full collection (a busy client holds thousands of entries).
        client.latest.clear()
        client.events.clear()
        client.frames.clear()

    def forget(self, printer_id: str) -> None:
        """Drop what is kept about a removed printer."""
        self.last_status.pop(printer_id, None)

    def subscribe(
        self,
        client: Client,
        printers: frozenset[str] | None,
        types: frozenset[str] | None,
        batch: bool,
    ) -> None:
        """Change a client's filter and mode; messages published meanwhile are not lost."""
        client.printers, client.types = printers, types
        if client.batch == batch:
            return
        client.batch = batch
        if client not in self.clients:
            return
        if batch:
            self._direct.discard(client)
            self._batched.add(client)
        else:
            self._batched.discard(client)
            self._direct.add(client)
            for message in self._pending:  # published for the next flush, which skips it now
                if client.wants(message):
                    client.offer(message)

    def publish(self, type_: str, payload: Any, printer_id: str | None = None) -> None:
        """Encode once; offer to every direct client, keep for the next batch flush."""
        self.published += 1
        status_of = printer_id if type_ == "printer.status" else None
        if not self.clients:
            if status_of is not None:  # not encoded for nobody: a later snapshot computes it
                self.last_status.pop(status_of, None)
            return
        now = time.time()
        message = Message(type_, printer_id, encode(type_, payload, now), now)
        if status_of is not None:
            self.last_status[status_of] = message
        for client in self._direct:
            if client.wants(message):
                client.offer(message)
        if self._batched:
            self._pending.append(message)
            self._schedule()

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (scripts, tests): deliver at once
            self.flush()
            return
        if self._flush_at is not None and self._flush_loop is loop:
            return
        self._flush_loop = loop
        delay = self._last_flush + self.batch_interval - loop.time()
        if delay > 0:
            self._flush_at = loop.call_later(delay, self.flush)
        else:  # a quiet farm: go out at once, with whatever this loop iteration publishes
            self._flush_at = loop.call_soon(self.flush)

    def flush(self) -> None:
        """Hand the pending messages to the batch clients: one frame per subscription."""
        self._flush_at = None
        loop = self._flush_loop
        now = loop.time() if loop is not None and not loop.is_closed() else time.monotonic()
        self._last_flush = now
        pending, self._pending = self._pending, []
        if not pending or not self._batched:
            return
        self.flushes += 1
        groups: dict[Filter, list[Client]] = {}
        for client in self._batched:
            groups.setdefault(client.filter, []).append(client)
        for filter_, members in groups.items():
            chosen = select(pending, *filter_)
            if not chosen:
                continue
            frame: Frame | None = None
            for client in members:
                if client.own_buffer_used():  # keep order: newer messages follow the older
                    for message in chosen:
                        client.offer(message)
                elif len(client.frames) >= MAX_FRAMES:
                    # Far behind: fold into its own buffer, latest-wins and bounded.
                    for message in client.take():
                        client.offer(message)
                    for message in chosen:
                        client.offer(message)
                else:
                    if frame is None:
                        frame = make_frame(filter_, chosen, now)
                    client.frames.append(frame)
                    client.ready.set()
                    self.frames_shared += 1

    def publish_many(self, items: Iterable[tuple[str, Any, str | None]]) -> None:
        """Publish several messages."""
        for type_, payload, printer_id in items:
            self.publish(type_, payload, printer_id)
