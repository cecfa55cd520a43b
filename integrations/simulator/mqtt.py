"""A small asyncio MQTT 3.1.1 broker: one per simulated Bambu printer, over TLS."""

from __future__ import annotations

import asyncio
import logging
import ssl
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from integrations.simulator.faults import FaultState
from integrations.simulator.listener import shut_down

log = logging.getLogger(__name__)

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 10, 11, 12, 13, 14
RC_ACCEPTED, RC_BAD_PROTOCOL, RC_BAD_CREDENTIALS = 0, 1, 5
# A client that reads slower than we publish gets reports dropped, as a busy printer would.
MAX_BUFFERED = 1024 * 1024
MAX_PACKET = 4 * 1024 * 1024


class ProtocolError(Exception):
    """The client sent bytes that are not MQTT 3.1.1."""


def encode_length(n: int) -> bytes:
    """MQTT variable-length 'remaining length' encoding."""
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def packet(kind: int, flags: int, body: bytes) -> bytes:
    """A whole MQTT control packet."""
    return bytes([(kind << 4) | flags]) + encode_length(len(body)) + body


def mqtt_string(text: str | bytes) -> bytes:
    """A length-prefixed MQTT string."""
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("!H", len(raw)) + raw


def publish_packet(topic: str, payload: bytes) -> bytes:
    """A QoS 0 PUBLISH packet."""
    return packet(PUBLISH, 0, mqtt_string(topic) + payload)


def topic_matches(pattern: str, topic: str) -> bool:
    """True if `topic` matches the subscription filter `pattern` (with + and # wildcards)."""
    if pattern == topic:
        return True
    pat, top = pattern.split("/"), topic.split("/")
    for i, part in enumerate(pat):
        if part == "#":
            return True
        if i >= len(top) or (part != "+" and part != top[i]):
            return False
    return len(pat) == len(top)


class _Reader:
    """Cursor over a packet body."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        """The next `n` bytes."""
        if self.pos + n > len(self.data):
            raise ProtocolError("packet shorter than its fields")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u8(self) -> int:
        """One byte."""
        return self.take(1)[0]

    def u16(self) -> int:
        """A big-endian 16-bit integer."""
        return int(struct.unpack("!H", self.take(2))[0])

    def string(self) -> bytes:
        """A length-prefixed MQTT string."""
        return self.take(self.u16())

    def rest(self) -> bytes:
        """Everything not read yet."""
        return self.data[self.pos :]


async def read_packet(reader: asyncio.StreamReader) -> tuple[int, int, bytes]:
    """Read one packet: (type, flags, body)."""
    first = (await reader.readexactly(1))[0]
    length, shift = 0, 0
    for _ in range(4):
        byte = (await reader.readexactly(1))[0]
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
    else:
        raise ProtocolError("remaining length longer than 4 bytes")
    if length > MAX_PACKET:
        raise ProtocolError(f"packet of {length} bytes is too large")
    body = await reader.readexactly(length) if length else b""
    return first >> 4, first & 0x0F, body


@dataclass(eq=False)
class Session:
    """One connected MQTT client."""

    writer: asyncio.StreamWriter
    client_id: str = ""
    subscriptions: list[str] = field(default_factory=list)

    def send(self, data: bytes) -> bool:
        """Queue bytes unless the client is gone or too far behind; True if queued."""
        transport = self.writer.transport
        if transport.is_closing() or transport.get_write_buffer_size() > MAX_BUFFERED:
            return False
        transport.write(data)
        return True

    def wants(self, topic: str) -> bool:
        """True if one of the session's subscriptions matches `topic`."""
        return any(topic_matches(f, topic) for f in self.subscriptions)


Authenticator = Callable[[str | None, bytes | None], bool]
PublishHandler = Callable[[Session, str, bytes], None]


class MqttServer:
    """Accepts MQTT clients on one address and hands their PUBLISHes to `on_publish`."""

    def __init__(
        self,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
        authenticate: Authenticator,
        on_publish: PublishHandler,
        faults: FaultState,
    ) -> None:
        self.host, self.port = host, port
        self._ssl = ssl_context
        self._authenticate = authenticate
        self._on_publish = on_publish
        self._faults = faults
        self._server: asyncio.Server | None = None
        self.sessions: set[Session] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen; when the port is 0 the bound port is stored back into `port`."""
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, ssl=self._ssl, backlog=64
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and drop every client."""
        server, self._server = self._server, None
        await shut_down(server, self._tasks, self.drop_all)

    def drop_all(self) -> None:
        """Close every client connection without a goodbye, as a network failure would."""
        for session in list(self.sessions):
            session.writer.transport.abort()
        self.sessions.clear()

    def publish(self, topic: str, payload: bytes) -> int:
        """Send a QoS 0 message to every subscribed client; the number it was queued for."""
        if not self.sessions:
            return 0
        data = publish_packet(topic, payload)
        sent = 0
        for session in self.sessions:
            if session.wants(topic) and session.send(data):
                sent += 1
        return sent

    @property
    def subscribers(self) -> int:
        """How many connected clients have at least one subscription."""
        return sum(1 for s in self.sessions if s.subscriptions)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        session = Session(writer)
        try:
            await self._run(session, reader)
        except (
            asyncio.IncompleteReadError,
            ConnectionError,
            ProtocolError,
            ssl.SSLError,
            TimeoutError,
            OSError,
        ) as exc:
            log.debug("mqtt client on %s:%s closed: %r", self.host, self.port, exc)
        except asyncio.CancelledError:
            # The printer is shutting down (stop/restart). Ending quietly: on Python 3.11 the
            # stream protocol would log a cancelled handler as an "Exception in callback".
            pass
        finally:
            self.sessions.discard(session)
            writer.transport.abort()
            if task is not None:
                self._tasks.discard(task)

    async def _respond(self, session: Session, data: bytes) -> None:
        # A slow printer answers late; a silent one never answers.
        if self._faults.delay > 0:
            await asyncio.sleep(self._faults.delay)
        if not self._faults.silent:
            session.send(data)

    async def _run(self, session: Session, reader: asyncio.StreamReader) -> None:
        kind, _, body = await asyncio.wait_for(read_packet(reader), 30.0)
        if kind != CONNECT:
            raise ProtocolError("first packet was not CONNECT")
        keepalive = await self._connect(session, body)
        if keepalive is None:
            return
        self.sessions.add(session)
        # MQTT 3.1.1 §3.1.2.10: no packet within 1.5 x keepalive means the client is gone.
        timeout = keepalive * 1.5 if keepalive else None
        while True:
            kind, flags, body = await asyncio.wait_for(read_packet(reader), timeout)
            if kind == PUBLISH:
                await self._publish(session, flags, body)
            elif kind == SUBSCRIBE:
                r = _Reader(body)
                packet_id = r.u16()
                granted = bytearray()
                while r.pos < len(r.data):
                    topic = r.string().decode("utf-8", errors="replace")
                    qos = r.u8() & 0x03
                    session.subscriptions.append(topic)
                    granted.append(min(qos, 1))
                if not granted:
                    raise ProtocolError("SUBSCRIBE without topics")
                await self._respond(
                    session, packet(SUBACK, 0, struct.pack("!H", packet_id) + bytes(granted))
                )
            elif kind == UNSUBSCRIBE:
                r = _Reader(body)
                packet_id = r.u16()
                while r.pos < len(r.data):
                    topic = r.string().decode("utf-8", errors="replace")
                    if topic in session.subscriptions:
                        session.subscriptions.remove(topic)
                await self._respond(session, packet(UNSUBACK, 0, struct.pack("!H", packet_id)))
            elif kind == PINGREQ:
                await self._respond(session, packet(PINGRESP, 0, b""))
            elif kind == PUBREL:
                await self._respond(session, packet(PUBCOMP, 0, body[:2]))
            elif kind in (PUBACK, PUBREC, PUBCOMP):
                continue  # we only publish at QoS 0; nothing to track
            elif kind == DISCONNECT:
                return
            else:
                raise ProtocolError(f"unexpected packet type {kind}")

    async def _connect(self, session: Session, body: bytes) -> int | None:
        r = _Reader(body)
        name = r.string()
        level = r.u8()
        if (name, level) not in ((b"MQTT", 4), (b"MQIsdp", 3)):
            await self._respond(session, packet(CONNACK, 0, bytes([0, RC_BAD_PROTOCOL])))
            return None
        flags = r.u8()
        keepalive = r.u16()
        session.client_id = r.string().decode("utf-8", errors="replace")
        if flags & 0x04:  # will flag: topic and message follow
            r.string()
            r.string()
        username = r.string().decode("utf-8", errors="replace") if flags & 0x80 else None
        password = r.string() if flags & 0x40 else None
        if self._faults.refuse_auth or not self._authenticate(username, password):
            await self._respond(session, packet(CONNACK, 0, bytes([0, RC_BAD_CREDENTIALS])))
            return None
        await self._respond(session, packet(CONNACK, 0, bytes([0, RC_ACCEPTED])))
        return keepalive

    async def _publish(self, session: Session, flags: int, body: bytes) -> None:
        qos = (flags >> 1) & 0x03
        r = _Reader(body)
        topic = r.string().decode("utf-8", errors="replace")
        packet_id = r.u16() if qos else 0
        payload = r.rest()
        if qos == 1:
            await self._respond(session, packet(PUBACK, 0, struct.pack("!H", packet_id)))
        elif qos == 2:
            await self._respond(session, packet(PUBREC, 0, struct.pack("!H", packet_id)))
        if not self._faults.silent:
            self._on_publish(session, topic, payload)
