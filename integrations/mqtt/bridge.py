"""The MQTT bridge: one broker connection fed by the hub's bus, reconnecting with backoff.

The bus gives each of the two subscriptions here its own buffer and task, so a slow or absent
broker delays neither telemetry nor another integration; state, progress and AMS updates are
latest-wins per printer in that buffer. On every (re)connect the bridge announces `online`,
then re-publishes discovery and the retained state of every printer from the hub's live view.
Non-retained events (lifecycle steps, notifications, spool and queue changes, command results)
go through a bounded FIFO backlog (`backlog.py`) and out in order, each dropped from it
once handed to the client: while the broker is away they wait there and go out in order after
the retained state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import ssl
import weakref
from typing import Any
from urllib.parse import urlsplit

import aiomqtt

from config.loader import MqttSettings
from hub.context import Context
from hub.errors import HubError
from hub.events import (
    AmsEvent,
    LifecycleEvent,
    NotificationStored,
    PrinterConfigured,
    PrinterRemoved,
    PrinterState,
    ProgressEvent,
    QueueJobChanged,
    SpoolChanged,
)
from hub.model import AmsUnit, plain
from hub.store.printers import PrinterRow
from hub.telemetry import ams_payload, lifecycle_payload
from integrations.mqtt.backlog import Backlog
from integrations.mqtt.discovery import Discovery
from integrations.mqtt.payloads import (
    COMMANDS,
    OFFLINE,
    ONLINE,
    state_message,
    tray_message,
    trays,
)

log = logging.getLogger(__name__)

#: Waits between reconnect attempts (each with ±20 % jitter); the last one repeats.
RECONNECT_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
KEEPALIVE_S = 30
#: Messages handed to the client and not yet confirmed; past this the handlers wait (and the
#: bus's latest-wins buffers absorb the rest), so a stalled broker cannot grow memory.
MAX_IN_FLIGHT = 1000
#: Event messages handed to the client at once when draining the backlog.
EVENT_WINDOW = 100
Payload = str | dict[str, Any]
#: The bridges running in this process (for metrics and tests).
RUNNING: weakref.WeakSet[MqttBridge] = weakref.WeakSet()


def client_options(settings: MqttSettings, client_id: str, will_topic: str) -> dict[str, Any]:
    """Keyword arguments of `aiomqtt.Client` for the configured broker."""
    url = urlsplit(settings.url or "")
    secure = url.scheme == "mqtts"
    tls_context = None
    if secure:
        tls_context = ssl.create_default_context(cafile=settings.tls_ca)
        if settings.tls_insecure:
            tls_context.check_hostname = False
            tls_context.verify_mode = ssl.CERT_NONE
    return {
        "hostname": url.hostname or "localhost",
        "port": url.port or (8883 if secure else 1883),
        "username": settings.username,
        "password": settings.password,
        "identifier": client_id,
        "will": aiomqtt.Will(will_topic, OFFLINE, qos=1, retain=True),
        "tls_context": tls_context,
        "keepalive": KEEPALIVE_S,
        "timeout": 10,
    }


class MqttBridge:
    """Publishes the hub's printers to one broker and takes commands from it."""

    def __init__(self, ctx: Context, settings: MqttSettings, discovery: Discovery) -> None:
        self.ctx = ctx
        self.settings = settings
        self.topics = discovery.topics
        self.discovery = discovery
        self.client_id = settings.client_id or f"printforge-{discovery.hub_id[:12]}"
        self.client: aiomqtt.Client | None = None
        self.connected = asyncio.Event()
        self.connects = 0
        self.published = 0
        self._online: dict[str, bool] = {}
        self._trays: dict[str, dict[int, dict[str, Any]]] = {}
        self._unsubscribe: list[Any] = []
        self._task: asyncio.Task[None] | None = None
        self._jobs: set[asyncio.Task[None]] = set()
        self._sending: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self.backlog = Backlog(settings.event_backlog)
        self._events = asyncio.Event()  # set when the backlog has something new

    # Lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Subscribe to the bus and start connecting."""
        bus = self.ctx.bus
        self._unsubscribe = [
            bus.subscribe(
                (PrinterState, ProgressEvent, AmsEvent), self._on_telemetry, name="mqtt.telemetry"
            ),
            bus.subscribe(
                (
                    LifecycleEvent,
                    NotificationStored,
                    PrinterConfigured,
                    PrinterRemoved,
                    QueueJobChanged,
                    SpoolChanged,
                ),
                self._on_event,
                name="mqtt.events",
            ),
        ]
        self._task = asyncio.create_task(self._run(), name="mqtt-bridge")
        RUNNING.add(self)

    async def stop(self) -> None:
        """Say `offline`, disconnect cleanly and leave the bus."""
        RUNNING.discard(self)
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        if self.client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._publish(self.topics.hub_status, OFFLINE, True), 2)
                if self._sending:
                    await asyncio.wait(self._sending, timeout=2)
        tasks = [t for t in (self._task, *self._jobs, *self._sending) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self) -> None:
        attempt = 0
        options = client_options(self.settings, self.client_id, self.topics.hub_status)
        where = f"{options['hostname']}:{options['port']}"
        while True:
            try:
                client = aiomqtt.Client(**options)
                # Messages are handed over without waiting (see _publish): not a backlog.
                client.pending_calls_threshold = MAX_IN_FLIGHT
                async with client:
                    self.client = client
                    attempt = 0
                    await self._subscribe(client)
                    # Announced beside the message loop, so a link that dies half-way through
                    # is noticed at once, not after a publish has timed out.
                    announce = asyncio.create_task(self._announce(where))
                    try:
                        async for message in client.messages:
                            self._on_message(message)
                    finally:
                        announce.cancel()
            except aiomqtt.MqttError as exc:
                log.warning("MQTT broker %s: %s", where, exc)
            except Exception:  # never let one bad message end the bridge
                log.exception("MQTT bridge failed; reconnecting")
            finally:
                self.client = None
                self.connected.clear()
                # What the dead link never confirmed is re-published after the reconnect.
                for task in list(self._sending):
                    task.cancel()
            delay = RECONNECT_S[min(attempt, len(RECONNECT_S) - 1)] * random.uniform(0.8, 1.2)
            attempt += 1
            await asyncio.sleep(delay)

    async def _announce(self, where: str) -> None:
        client = self.client
        await self._publish_all()
        self.connects += 1
        self.connected.set()
        log.info("MQTT connected to %s as %s", where, self.client_id)
        if client is not None:
            await self._drain(client)

    async def _drain(self, client: aiomqtt.Client) -> None:
        """Until the link goes: publish the backlog's events in order, oldest first, up to
        EVENT_WINDOW at a time, each dropped once the client has taken it."""
        while self.client is client:
            batch = self.backlog.first(EVENT_WINDOW)
            if not batch:
                self._events.clear()
                await self._events.wait()
                continue
            # Each publish hands its message to the client as its task starts, and tasks start
            # in creation order: the broker gets them in backlog order.
            results = await asyncio.gather(
                *(client.publish(i.topic, i.data, qos=0, retain=False) for i in batch),
                return_exceptions=True,
            )
            for item, result in zip(batch, results, strict=True):
                if isinstance(result, BaseException):
                    return  # the link is gone: the rest waits for the next connection
                self.backlog.done(item)
                self.published += 1

    def _event(self, topic: str, payload: Payload) -> None:
        """Queue a non-retained event message (see the module docstring)."""
        data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
        self.backlog.push(topic, data)
        self._events.set()

    async def _subscribe(self, client: aiomqtt.Client) -> None:
        if self.settings.discovery:
            await client.subscribe(self.discovery.ha_status, qos=1)
        if self.settings.commands:
            await client.subscribe(self.topics.commands, qos=1)

    # Publishing ---------------------------------------------------------------------------

    async def _publish(self, topic: str, payload: Payload, retain: bool = False) -> None:
        """Hand one message to the client without waiting for it to go out: waiting for each
        would make every message cost an event-loop round trip. Dropped while disconnected
        (the reconnect re-publishes); waits only while MAX_IN_FLIGHT are unconfirmed."""
        client = self.client
        if client is None:
            return
        await self._slots.acquire()
        if self.client is not client:
            self._slots.release()
            return
        data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
        # Tasks start in creation order, so messages reach the client in publishing order.
        task = asyncio.create_task(self._send(client, topic, data, retain))
        self._sending.add(task)
        task.add_done_callback(self._sent)

    async def _send(self, client: aiomqtt.Client, topic: str, data: str, retain: bool) -> None:
        try:
            # QoS 0: with a clean session QoS 1 would buy nothing (unconfirmed messages are not
            # resent after a reconnect; the reconnect re-publishes everything retained instead),
            # and at most 20 unconfirmed QoS 1 messages would throttle a farm to the broker's
            # round trip.
            await client.publish(topic, data, qos=0, retain=retain)
            self.published += 1
        except aiomqtt.MqttError:
            pass  # the link is gone: the reconnect re-publishes

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        self._slots.release()

    async def _publish_all(self) -> None:
        """After a (re)connect: `online`, discovery, then every printer's retained state."""
        await self._publish(self.topics.hub_status, ONLINE, True)
        await self._publish_discovery()
        for row in list(self.ctx.hub.printers.values()):
            await self._publish_printer(row)

    async def _publish_discovery(self) -> None:
        if not self.settings.discovery:
            return
        topic, config = self.discovery.hub()
        await self._publish(topic, config, True)
        for row in list(self.ctx.hub.printers.values()):
            await self._publish_printer_discovery(row)

    async def _publish_printer_discovery(self, row: PrinterRow) -> None:
        if not self.settings.discovery:
            return
        for topic, config in self.discovery.printer(row, self._capabilities(row.protocol)):
            await self._publish(topic, config, True)

    def _capabilities(self, protocol: str) -> frozenset[str]:
        """The commands a protocol's driver declares in its manifest (all when unknown)."""
        try:
            return self.ctx.hub.drivers.manifest(protocol).capabilities
        except Exception:  # an unknown or broken driver: let the command path say no
            return frozenset(COMMANDS)

    async def _publish_printer(self, row: PrinterRow) -> None:
        """A printer's retained state, availability and AMS trays, from the hub's live view."""
        try:
            state, link = self.ctx.hub.live(row.id)
        except (HubError, KeyError, RuntimeError):
            return
        self._online.pop(row.id, None)
        self._trays.pop(row.id, None)
        await self._state(state, link)
        if state.ams:
            event = AmsEvent(row.id, state.ams, state.active_tray)
            await self._publish(self.topics.printer(row.id, "ams"), ams_payload(event), True)
        await self._ams(row.id, state.ams, state.active_tray)

    async def _state(self, state: PrinterState, link: Any) -> None:
        row = self.ctx.hub.printers.get(state.printer_id)
        if row is None:
            return
        await self._publish(
            self.topics.printer(row.id, "state"), state_message(state, link, row.name), True
        )
        if self._online.get(row.id) is not state.online:
            self._online[row.id] = state.online
            availability = ONLINE if state.online else OFFLINE
            await self._publish(self.topics.printer(row.id, "availability"), availability, True)

    async def _ams(self, printer_id: str, units: tuple[AmsUnit, ...], active: int | None) -> None:
        row = self.ctx.hub.printers.get(printer_id)
        if row is None:
            return
        known = self._trays.setdefault(printer_id, {})
        for unit, tray in trays(units):
            message = tray_message(unit, tray, active)
            if known.get(tray.slot) == message:
                continue
            if tray.slot not in known and self.settings.discovery:
                topic, config = self.discovery.tray(row, unit, tray)
                await self._publish(topic, config, True)
            known[tray.slot] = message
            await self._publish(self.topics.tray(printer_id, tray.slot), message, True)

    # Bus handlers -------------------------------------------------------------------------

    async def _on_telemetry(self, event: PrinterState | ProgressEvent | AmsEvent) -> None:
        if self.client is None:
            return  # the reconnect publishes the latest of everything
        if isinstance(event, PrinterState):
            try:
                _, link = self.ctx.hub.live(event.printer_id)
            except (HubError, KeyError, RuntimeError):
                return
            await self._state(event, link)
        elif isinstance(event, ProgressEvent):
            await self._publish(self.topics.printer(event.printer_id, "progress"), plain(event))
        else:
            await self._publish(
                self.topics.printer(event.printer_id, "ams"), ams_payload(event), True
            )
            await self._ams(event.printer_id, event.units, event.active_tray)

    async def _on_event(self, event: object) -> None:
        if isinstance(event, LifecycleEvent):
            topic = self.topics.printer(event.printer_id, "lifecycle")
            self._event(topic, lifecycle_payload(event))
        elif isinstance(event, NotificationStored):
            topic = (
                self.topics.printer(event.printer_id, "notification")
                if event.printer_id
                else self.topics.notifications
            )
            self._event(topic, event.note)
        elif isinstance(event, SpoolChanged):
            self._event(
                self.topics.filament,
                {
                    "reason": event.reason,
                    "spool_id": event.spool_id,
                    "printer_id": event.printer_id,
                    "tray": event.tray,
                    "remaining_g": event.remaining_g,
                    "spool": event.spool,
                },
            )
        elif isinstance(event, QueueJobChanged):
            self._event(self.topics.queue, event.job)
        elif isinstance(event, PrinterConfigured):
            row = self.ctx.hub.printers.get(event.printer_id)
            if row is not None:
                await self._publish_printer_discovery(row)
                await self._publish_printer(row)
        elif isinstance(event, PrinterRemoved):
            await self._remove(event.printer_id)

    async def _remove(self, printer_id: str) -> None:
        """Empty retained messages: Home Assistant drops the entities, the broker the state."""
        slots = set(self._trays.pop(printer_id, {}))
        self._online.pop(printer_id, None)
        topics = self.discovery.removals(printer_id, slots) if self.settings.discovery else []
        topics += [
            self.topics.printer(printer_id, leaf) for leaf in ("state", "availability", "ams")
        ]
        topics += [self.topics.tray(printer_id, slot) for slot in sorted(slots)]
        for topic in topics:
            await self._publish(topic, "", True)

    # Incoming -----------------------------------------------------------------------------

    def _on_message(self, message: aiomqtt.Message) -> None:
        topic = str(message.topic)
        payload = message.payload if isinstance(message.payload, bytes) else b""
        if topic == self.discovery.ha_status:
            if payload.strip() == b"online":
                # Home Assistant (re)started: it forgets non-retained configs, so send them again.
                self._spawn(self._publish_discovery())
            return
        parsed = self.topics.parse_command(topic)
        if parsed is not None and self.settings.commands:
            self._spawn(self._command(*parsed, payload))

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)

    async def _command(self, printer_id: str, name: str, payload: bytes) -> None:
        """A button or the light switch: the same command path as the REST API's, as an
        operator may use it."""
        answer: dict[str, Any] = {"command": name}
        params: dict[str, Any] = {}
        text = payload.decode(errors="replace").strip().upper()
        if name not in COMMANDS:
            answer.update(result="error", code="invalid", detail=f"unknown command {name!r}")
        elif name == "light" and text not in ("ON", "OFF"):
            answer.update(result="error", code="invalid", detail="light takes ON or OFF")
        else:
            if name == "light":
                params = {"on": text == "ON"}
            try:
                await self.ctx.hub.command(printer_id, name, params)
                answer["result"] = "ok"
                log.info("MQTT command %s on printer %s done", name, printer_id)
            except HubError as exc:
                answer.update(result="error", code=exc.code, detail=exc.detail)
                log.warning("MQTT command %s on printer %s: %s", name, printer_id, exc.detail)
        self._event(self.topics.printer(printer_id, "command_result"), answer)
