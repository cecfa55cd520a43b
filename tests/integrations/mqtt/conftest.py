"""A hub publishing to the real Mosquitto through a TCP proxy the test controls, a simulated
Bambu printer, and a watcher client that records what reaches the broker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from hub.runtime import Hub
from integrations.mqtt.bridge import RUNNING, MqttBridge
from integrations.simulator import Fleet, SimPrinter
from tests.api.conftest import make_settings, reset_database
from tests.helpers import wait_for
from tests.integrations.printers.conftest import FAST, random_subnet

BROKER = ("127.0.0.1", 1883)


class TcpProxy:
    """Forwards loopback connections to the broker; `cut` drops them like a dead link, `down`
    refuses new ones (a broker restart, as the hub sees it) until `up`."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls  # terminate TLS here (an `mqtts://` broker, as the hub sees it)
        self.server: asyncio.Server | None = None
        self.port = 0
        self.writers: set[asyncio.StreamWriter] = set()
        self.accepted = 0

    async def up(self) -> None:
        """Listen (on the same port as before, after a `down`)."""
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, ssl=self.tls)
        self.port = self.server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        """Stop listening and drop every connection."""
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        self.cut()

    def cut(self) -> None:
        """Abort every forwarded connection on both sides (no MQTT DISCONNECT is sent)."""
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*BROKER)
        except OSError:
            writer.transport.abort()
            return
        self.writers.update((writer, up_writer))
        await asyncio.gather(
            self._pump(reader, up_writer), self._pump(up_reader, writer), return_exceptions=True
        )

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            self.writers.discard(writer)
            writer.transport.abort()


@dataclass
class Watcher:
    """A client of the real broker recording every message under the test's topics."""

    client: aiomqtt.Client
    messages: list[tuple[str, bytes, bool]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        async for message in self.client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            self.messages.append((str(message.topic), payload, message.retain))

    def last(self, topic: str) -> bytes | None:
        """The newest payload seen on a topic."""
        for seen, payload, _ in reversed(self.messages):
            if seen == topic:
                return payload
        return None

    def json(self, topic: str) -> Any:
        """The newest payload on a topic, parsed (None when absent or empty)."""
        payload = self.last(topic)
        return json.loads(payload) if payload else None

    def count(self, topic: str) -> int:
        """How many messages arrived on a topic."""
        return sum(1 for seen, _, _ in self.messages if seen == topic)


@contextlib.asynccontextmanager
async def watching(*filters: str) -> AsyncIterator[Watcher]:
    """A watcher subscribed to `filters` (retained messages arrive first, flagged retain)."""
    async with aiomqtt.Client(*BROKER, identifier=f"watch-{uuid.uuid4().hex[:10]}") as client:
        watcher = Watcher(client)
        for topic in filters:
            await client.subscribe(topic, qos=1)
        watcher.task = asyncio.create_task(watcher._read())
        try:
            yield watcher
        finally:
            watcher.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher.task


@dataclass
class MqttHub:
    """The running hub, its bridge, the proxy in front of the broker and the test's topics."""

    hub: Hub
    fleet: Fleet
    proxy: TcpProxy
    base: str
    prefix: str
    db_url: str
    tmp_path: Path

    @property
    def bridge(self) -> MqttBridge:
        """The MQTT plug-in's running bridge."""
        assert "mqtt" in self.hub.integrations.names, self.hub.integrations.failed
        (bridge,) = [b for b in RUNNING if b.ctx.hub is self.hub]
        return bridge

    def watch(self) -> contextlib.AbstractAsyncContextManager[Watcher]:
        """A watcher of this test's base topic and discovery prefix."""
        return watching(f"{self.base}/#", f"{self.prefix}/#")

    async def restart(self) -> None:
        """Stop the hub and start a new one on the same database and settings."""
        await self.hub.stop()
        self.hub = Hub(self.hub.settings, driver_options=FAST)
        await self.hub.start()

    async def add_bambu(self, sim: SimPrinter) -> str:
        """Register a simulated Bambu printer and wait until it is online."""
        row = await self.hub.add_printer(
            {
                "name": sim.name,
                "protocol": "bambu",
                "host": sim.host,
                "serial": sim.serial,
                "access_code": sim.secret,
                "model": sim.model_name,
            }
        )
        await wait_for(
            lambda: self.hub.printer_status(row.id)["connection"] == "online",
            what="printer online",
        )
        return row.id


def mqtt_settings(
    db_url: str, tmp_path: Path, port: int, base: str, prefix: str, scheme: str = "mqtt", **env: str
) -> Any:
    """Hub settings with MQTT on, through the proxy, on this test's topics."""
    return make_settings(
        db_url,
        tmp_path,
        PRINTFORGE_MQTT_URL=f"{scheme}://127.0.0.1:{port}",
        PRINTFORGE_MQTT_BASE_TOPIC=base,
        PRINTFORGE_MQTT_DISCOVERY_PREFIX=prefix,
        PRINTFORGE_MQTT_HA_STATUS_TOPIC=f"{prefix}/status",
        PRINTFORGE_MQTT_HUB_URL="https://hub.example.test:3443",
        **env,
    )


@pytest.fixture
async def mqtt_hub(tmp_path: Path) -> AsyncIterator[MqttHub]:
    """A started hub with MQTT on (SQLite: storage is not what is under test)."""
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
    await reset_database(db_url)
    tag = uuid.uuid4().hex[:10]
    base, prefix = f"pftest-{tag}", f"hatest-{tag}"
    proxy = TcpProxy()
    await proxy.up()
    hub = Hub(mqtt_settings(db_url, tmp_path, proxy.port, base, prefix), driver_options=FAST)
    async with Fleet(speed=60.0, subnet=random_subnet()) as fleet:
        await hub.start()
        running = MqttHub(hub, fleet, proxy, base, prefix, db_url, tmp_path)
        try:
            yield running
        finally:
            await running.hub.stop()
            await proxy.down()
            await clear_retained(base, prefix)


async def clear_retained(*prefixes: str) -> None:
    """Remove what the test left retained on the shared broker."""
    async with watching(*(f"{p}/#" for p in prefixes)) as watcher:
        with contextlib.suppress(AssertionError):
            await wait_for(lambda: watcher.messages, timeout=0.5)
        await asyncio.sleep(0)  # let the retained burst be read
        for topic in {t for t, payload, retained in watcher.messages if retained and payload}:
            await watcher.client.publish(topic, b"", qos=1, retain=True)
