"""The Bambu driver's MQTT client: aiomqtt whose socket handling survives links dropping at once.

aiomqtt registers paho's socket with the event loop from the thread that connects, by file
number, through `call_soon_threadsafe`. When the link drops before the loop runs that
registration (a broker or switch restart drops hundreds of links in the same instant), the
loop logs an `add_writer`/`add_reader` "Bad file descriptor" traceback, or, worse, registers a
number the kernel has meanwhile given to another printer's socket. Here every registration
runs on the loop, only for the socket paho still holds open, and a closed socket is always
unregistered for reading and writing. paho's own complaints about a lost link are demoted to
debug: the driver says once, as a warning, that the link dropped and why.

What a link costs while it is up is kept small, since a hub holds thousands: aiomqtt runs a
task per client that wakes every second for paho's keep-alive bookkeeping (`loop_misc`), and
registers the socket for writing (two `epoll_ctl` calls) for every packet sent, a ping every
5 s per printer included. Here one timer per event loop does the bookkeeping of every link,
and a packet is written on the loop's next turn, the socket being watched for writing only
when the kernel's buffer is full. Reads are paced per turn of the loop
(integrations/printers/read_pacer.py): a fleet reporting at once cannot make the turn long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Coroutine
from typing import Any, TypeVar

import aiomqtt
import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from integrations.printers.read_pacer import pacer_of

log = logging.getLogger(__name__)

# paho's messages for a link that went away; the driver's supervisor reports the drop itself.
_LINK_LOSS = (
    "failed to receive on socket",
    "timeout on socket",
    "failed to send on socket",
)


_PAHO_LOG = logging.getLogger(f"{__name__}.paho")
T = TypeVar("T")
# How often paho's keep-alive bookkeeping runs for each link (aiomqtt's own loop: 1 s).
MISC_INTERVAL_S = 1.0
# Seconds of that bookkeeping per turn of the loop ...
SLICE_S = 0.004
# ... until a walk over every link is this old: then it finishes at once.
WALK_WITHIN_S = 0.5
# Seconds one read of a link may go on reading packets that are already there.
READ_S = 0.002


class _LinkLog(logging.Logger):
    """One client's logger for paho and aiomqtt: keeps the reason a link was lost, at debug."""

    def __init__(self) -> None:
        super().__init__(_PAHO_LOG.name)
        self.parent = _PAHO_LOG
        self.loss: str | None = None

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        """paho's lost-link errors become the reason the driver reports, logged at debug."""
        if isinstance(msg, str) and msg.startswith(_LINK_LOSS):
            text = msg % args if args else msg
            self.loss = text.split(": ", 1)[-1]
            level = logging.DEBUG
        super().log(level, msg, *args, **kwargs)


def _on_loop(loop: asyncio.AbstractEventLoop, func: Any, *args: Any) -> None:
    """Run `func(*args)` now when on `loop`'s thread, else as soon as the loop gets to it."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        func(*args)
    else:
        loop.call_soon_threadsafe(func, *args)


class _KeepAlive:
    """One timer per event loop running paho's keep-alive bookkeeping for every open link.

    It replaces aiomqtt's task per client (a timer, a future and a task step per printer
    every second) with one callback a second that walks the links.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Weakly: the loop keys the registry of timers, which must not keep it alive.
        self._loop = weakref.ref(loop)
        self._links: dict[LinkClient, None] = {}  # insertion-ordered set
        self._timer: asyncio.TimerHandle | None = None

    def add(self, link: LinkClient) -> None:
        """Start the bookkeeping of `link` (its socket is open)."""
        self._links[link] = None
        self._schedule()

    def _schedule(self) -> None:
        loop = self._loop()
        if self._timer is None and self._links and loop is not None and not loop.is_closed():
            self._timer = loop.call_later(MISC_INTERVAL_S, self._tick)

    def discard(self, link: LinkClient) -> None:
        """Stop the bookkeeping of `link` (its socket closed)."""
        self._links.pop(link, None)

    def __contains__(self, link: object) -> bool:
        return link in self._links

    def _tick(self) -> None:
        self._timer = None
        self._walk(list(self._links), time.perf_counter() + WALK_WITHIN_S)

    def _walk(self, links: list[LinkClient], due: float) -> None:
        """Keep-alive bookkeeping of `links` for at most `SLICE_S`; the rest in the next turn,
        so that thousands of links do not make one long turn of the loop. Once the walk is
        `WALK_WITHIN_S` old it finishes in this turn: when turns are long (a loop that cannot
        read what the fleet sends), slices alone would send the last links' pings so late
        that their brokers drop them (no packet within 1.5 x the keep-alive)."""
        now = time.perf_counter()
        deadline = now + SLICE_S if now < due else float("inf")
        for n, link in enumerate(links):
            if link in self._links and not link._keep_alive():
                self._links.pop(link, None)
            if time.perf_counter() >= deadline and n + 1 < len(links):
                loop = self._loop()
                if loop is not None and not loop.is_closed():
                    loop.call_soon(self._walk, links[n + 1 :], due)
                    return
        self._schedule()


_KEEP_ALIVE: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _KeepAlive] = (
    weakref.WeakKeyDictionary()
)


def _keep_alive_of(loop: asyncio.AbstractEventLoop) -> _KeepAlive:
    """The loop's keep-alive timer (made on first use)."""
    keeper = _KEEP_ALIVE.get(loop)
    if keeper is None:
        keeper = _KEEP_ALIVE[loop] = _KeepAlive(loop)
    return keeper


class LinkClient(aiomqtt.Client):
    """An aiomqtt client that registers its socket safely and can be aborted without a goodbye."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._link_log = _LinkLog()
        kwargs.setdefault("logger", self._link_log)
        super().__init__(*args, **kwargs)
        self._keeper = _keep_alive_of(self._loop)
        self._pacer = pacer_of(self._loop)
        self._flush_due = False
        self._behind = False  # parked since the socket was last read empty

    async def publish(self, *args: Any, **kwargs: Any) -> None:
        """Publish; a link lost before the acknowledgement ends the wait at once."""
        await _until_lost(self._disconnected, super().publish(*args, **kwargs))

    async def subscribe(self, *args: Any, **kwargs: Any) -> Any:
        """Subscribe; a link lost before the acknowledgement ends the wait at once."""
        return await _until_lost(self._disconnected, super().subscribe(*args, **kwargs))

    @property
    def paho(self) -> mqtt.Client:
        """The paho client underneath."""
        return self._client

    # paho's socket callbacks (aiomqtt's own register by file number from the connect thread).

    def _on_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        _on_loop(self._loop, self._watch, sock, False)

    def _on_socket_register_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        _on_loop(self._loop, self._flush_soon, sock)

    def _on_socket_unregister_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        _on_loop(self._loop, self._unwatch, sock, False)

    def _on_socket_close(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        # Unregister before paho closes the socket (it does right after this returns): the
        # file number must not stay registered once the kernel may hand it out again.
        _on_loop(self._loop, self._unwatch, sock, True)

    def _watch(self, sock: Any, write: bool) -> None:
        """On the loop: register paho's socket, unless it closed since paho asked."""
        fileno = sock.fileno()
        if self._client.socket() is not sock or fileno < 0:
            return  # the link dropped before the loop got here
        try:
            if write:
                self._loop.add_writer(fileno, self._write_ready)
            else:
                self._loop.add_reader(fileno, self._read_ready)
                self._keeper.add(self)
        except (OSError, ValueError) as exc:  # closed under us: the link is gone
            log.debug("MQTT socket %s closed before it was watched: %s", fileno, exc)
            self._lost(exc)

    def _flush_soon(self, sock: Any) -> None:
        """On the loop: paho has packets to send; write them on the loop's next turn.

        paho asks from inside its own calls (a publish, a ping, a packet just read), where it
        must not be re-entered; one deferred write is far cheaper than watching the socket
        for writing and unwatching it again, packet after packet.
        """
        if not self._flush_due:
            self._flush_due = True
            self._loop.call_soon(self._flush, sock)

    def _flush(self, sock: Any) -> None:
        """Write what paho holds; watch the socket for writing only if some of it is left."""
        self._flush_due = False
        client = self._client
        current = client.socket()
        if current is None or current is not sock or current.fileno() < 0:
            return  # the link dropped meanwhile
        try:
            client.loop_write()
        except Exception as exc:  # the connection broke under paho
            self._lost(exc)
            return
        if client.want_write() and client.socket() is sock:
            self._watch(sock, True)  # the kernel's buffer is full: wait until it drains

    def _keep_alive(self) -> bool:
        """paho's keep-alive bookkeeping (ping when due, drop a link whose ping went
        unanswered); False once the link is closed."""
        try:
            return self._client.loop_misc() == mqtt.MQTT_ERR_SUCCESS
        except Exception as exc:  # the connection broke under paho
            self._lost(exc)
            return False

    def _unwatch(self, sock: Any, closing: bool) -> None:
        """On the loop: stop watching paho's socket for writing (and reading when it closes)."""
        fileno = sock.fileno()
        if fileno >= 0:
            self._loop.remove_writer(fileno)
            if closing:
                self._loop.remove_reader(fileno)
        if closing:
            self._keeper.discard(self)
            self._pacer.discard(self)

    def _read_ready(self) -> None:
        self._pacer.readable(self, urgent=self._handshaking())

    def _handshaking(self) -> bool:
        """Is the link waiting for its broker to accept its connect or subscription? Such a
        read is never put off: the connect's deadline runs and it holds a connect turn."""
        return not self._connected.done() or bool(self._pending_subscribes)

    def park(self) -> None:
        """Stop watching the socket for reading for now (the loop's read budget is spent)."""
        self._behind = True
        sock = self._client.socket()
        fileno = -1 if sock is None else sock.fileno()
        if fileno >= 0:
            self._loop.remove_reader(fileno)

    def unpark(self) -> bool:
        """Watch the socket for reading again; False when the link closed while parked."""
        sock = self._client.socket()
        fileno = -1 if sock is None else sock.fileno()
        if fileno < 0:
            return False
        try:
            self._loop.add_reader(fileno, self._read_ready)
        except (OSError, ValueError) as exc:  # closed under us: the link is gone
            self._lost(exc)
            return False
        return True

    def read_now(self) -> None:
        """Read the packets paho's socket holds, passing each message on: those already
        decoded, and once the link has been parked (it fell behind) whatever else the socket
        holds, for about `READ_S` at most.

        paho's `loop_read` reads one packet; a link that fell behind would need a turn of the
        loop (and a park and an unpark) per report, so its keep-alive answer, behind the
        reports in the stream, would come late. A link that keeps up stops at the end of
        what TLS decoded (one more read would only find the socket empty, a wasted call).
        """
        client = self._client
        deadline = time.perf_counter() + READ_S
        try:
            while client.socket() is not None:
                rc = client._packet_read()  # what loop_read does for one packet
                if rc == mqtt.MQTT_ERR_AGAIN:
                    self._behind = False  # the socket is empty: caught up
                    break
                if rc != mqtt.MQTT_ERR_SUCCESS:
                    client._loop_rc_handle(rc)  # what loop_read does with a broken link
                    break
                # An SSL socket may hold decoded bytes that select() does not announce: stop
                # only once they are read.
                sock = client.socket()
                pending = getattr(sock, "pending", None)
                if (pending is None or pending() <= 0) and (
                    not self._behind or time.perf_counter() >= deadline
                ):
                    break
        except Exception as exc:  # the connection broke under paho
            self._lost(exc)

    def _write_ready(self) -> None:
        try:
            self._client.loop_write()
        except Exception as exc:  # the connection broke under paho
            self._lost(exc)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None = None,
    ) -> None:
        connected = self._connected.done() and not self._connected.cancelled()
        if connected and not flags.is_disconnect_packet_from_server and reason_code.value == 128:
            # paho calls a lost connection "Unspecified error": say what happened instead.
            loss, self._link_log.loss = self._link_log.loss, None
            if self._connected.exception() is None:
                _fail(self._disconnected, loss or "the connection was closed")
        super()._on_disconnect(client, userdata, flags, reason_code, properties)
        # A link that dropped while no one iterated messages leaves the reason unread: asyncio
        # would log it as "Future exception was never retrieved" (with a traceback) at exit.
        if self._disconnected.done() and not self._disconnected.cancelled():
            self._disconnected.exception()

    def _lost(self, exc: BaseException) -> None:
        if self._connected.done():
            _fail(self._disconnected, f"link lost: {exc}")

    def abort(self) -> None:
        """Close the socket now, without a DISCONNECT; message iteration then ends."""
        with contextlib.suppress(Exception):
            self._client._sock_close()  # unregisters through the callbacks above, then closes
        self._keeper.discard(self)
        self._pacer.discard(self)
        _fail(self._disconnected, "link closed")


async def _until_lost(disconnected: asyncio.Future[None], call: Coroutine[Any, Any, T]) -> T:
    """Await `call` unless the link is lost first (aiomqtt waits for an ack until its timeout)."""
    if not disconnected.done():
        task = asyncio.ensure_future(call)
        either: set[asyncio.Future[Any]] = {task, disconnected}
        try:
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not task.done():
                task.cancel()
        if task.done() and not task.cancelled():
            return task.result()
    else:
        call.close()
    reason = disconnected.exception() if not disconnected.cancelled() else None
    raise aiomqtt.MqttError(str(reason or "the connection was closed"))


def _fail(future: asyncio.Future[Any], reason: str) -> None:
    """End `future` with an MqttError, marked as seen (nobody may be waiting for it any more)."""
    if not future.done():
        future.set_exception(aiomqtt.MqttError(reason))
        future.exception()
