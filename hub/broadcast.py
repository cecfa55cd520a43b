"""Fan-out of live messages to WebSocket clients with bounded, latest-wins per-client buffers."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

MESSAGE_TYPES = (
    "printer.status",
    "print.progress",
    "ams.update",
    "notification",
    "print.lifecycle",
    "printer.connection",
    "queue.update",
)
# For these a newer message about the same printer replaces an older unsent one.
COALESCED = frozenset({"printer.status", "print.progress", "ams.update", "printer.connection"})


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
        {"type": type_, "payload": payload, "ts": time.time() if ts is None else ts},
        separators=(",", ":"),
        default=str,
    )


def encode_batch(texts: list[str], ts: float | None = None) -> str:
    """One `batch` frame `{"type": "batch", "payload": [message, ...], "ts"}` of encoded messages."""
    stamp = json.dumps(time.time() if ts is None else ts)
    return '{"type":"batch","payload":[' + ",".join(texts) + '],"ts":' + stamp + "}"


@dataclass(eq=False)
class Client:
    """One connected client: its filter and its bounded outbox."""

    max_events: int = 1000
    printers: frozenset[str] | None = None
    types: frozenset[str] | None = None
    # Opted in to `batch` frames: everything queued goes out in one frame (see api/ws.py).
    batch: bool = False
    latest: OrderedDict[tuple[str, str | None], Message] = field(default_factory=OrderedDict)
    events: deque[Message] = field(default_factory=deque)
    dropped: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False

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
        return len(self.events) + len(self.latest)


class Broadcaster:
    """Holds the connected clients; publishing never waits for any of them."""

    def __init__(self) -> None:
        self.clients: set[Client] = set()
        self.published = 0

    def register(self, client: Client) -> None:
        """Start delivering to a client."""
        self.clients.add(client)

    def unregister(self, client: Client) -> None:
        """Stop delivering to a client."""
        client.closed = True
        self.clients.discard(client)

    def publish(self, type_: str, payload: Any, printer_id: str | None = None) -> None:
        """Encode once and offer to every interested client."""
        self.published += 1
        if not self.clients:
            return
        now = time.time()
        message = Message(type_, printer_id, encode(type_, payload, now), now)
        for client in self.clients:
            if client.wants(message):
                client.offer(message)

    def publish_many(self, items: Iterable[tuple[str, Any, str | None]]) -> None:
        """Publish several messages."""
        for type_, payload, printer_id in items:
            self.publish(type_, payload, printer_id)
