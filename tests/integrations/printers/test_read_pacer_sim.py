"""Paced reads keep Bambu links alive under a flood: a link's keep-alive answer and its connect
handshake are not held back past their deadlines, against the simulator's real MQTT over TLS."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator

from paho.mqtt.client import MQTTErrorCode

from hub.model import Connection
from integrations.printers.bambu import driver as bambu_driver
from integrations.printers.read_pacer import SHARE, ReadPacer, pacer_of
from tests.helpers import wait_for

# The flood: links whose printers each report once a second, each report costing its read
# this long, and other work in every turn of the loop (telemetry's hand-off, requests). The
# flood's reads need an eighth of the loop; a fixed 4 ms of reads in each 40 ms turn reads
# fewer reports than that, so its waits would grow until a round of the parked links took
# about 3 s (a read a turn): longer than the keep-alive of 1 s and the connect timeout below.
FLOOD_LINKS = 60
REPORT_EVERY_S = 1.0
REPORT_READ_S = 0.002
OTHER_WORK_S = 0.04


class ReportingLink:
    """One end of a socket pair whose peer sends a report every `REPORT_EVERY_S`; reading
    costs `REPORT_READ_S` per report read (TLS, JSON and merge)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pacer: ReadPacer, phase: float) -> None:
        self.loop, self.pacer = loop, pacer
        self.sock, self.peer = socket.socketpair()
        self.sock.setblocking(False)
        self.closed = False
        loop.add_reader(self.sock.fileno(), self.readable)
        loop.call_later(phase, self._report)

    def _report(self) -> None:
        if not self.closed:
            self.peer.send(b"r")
            self.loop.call_later(REPORT_EVERY_S, self._report)

    def readable(self) -> None:
        self.pacer.readable(self)

    def read_now(self) -> None:
        reports = len(self.sock.recv(4096))
        until = time.perf_counter() + reports * REPORT_READ_S
        while time.perf_counter() < until:
            pass

    def park(self) -> None:
        self.loop.remove_reader(self.sock.fileno())

    def unpark(self) -> bool:
        if self.closed:
            return False
        self.loop.add_reader(self.sock.fileno(), self.readable)
        return True

    def close(self) -> None:
        self.closed = True
        self.loop.remove_reader(self.sock.fileno())
        self.pacer.discard(self)
        self.sock.close()
        self.peer.close()


class BusyTurns:
    """`cost_s` of other work in every turn of the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, cost_s: float) -> None:
        self.loop, self.cost_s, self.stopped = loop, cost_s, False
        loop.call_soon(self._turn)

    def _turn(self) -> None:
        until = time.perf_counter() + self.cost_s
        while time.perf_counter() < until:
            pass
        if not self.stopped:
            self.loop.call_soon(self._turn)


@contextlib.asynccontextmanager
async def flooded(max_wait_s: float, share: float = SHARE) -> AsyncIterator[ReadPacer]:
    """The loop's own read pacer (the drivers' links use it) under a flood, with waits bounded
    by `max_wait_s` and reads taking `share` of the other work of a turn."""
    loop = asyncio.get_running_loop()
    pacer = pacer_of(loop)
    pacer.max_wait_s, pacer.share = max_wait_s, share
    links = [
        ReportingLink(loop, pacer, REPORT_EVERY_S * n / FLOOD_LINKS) for n in range(FLOOD_LINKS)
    ]
    busy = BusyTurns(loop, OTHER_WORK_S)
    try:
        await wait_for(lambda: pacer.reads >= 2 * FLOOD_LINKS, what="the flood under way")
        yield pacer
    finally:
        busy.stopped = True
        for link in links:
            link.close()


async def test_a_link_keeps_its_keep_alive_while_its_reads_wait(
    fleet, connect, monkeypatch
) -> None:
    monkeypatch.setattr(bambu_driver, "KEEPALIVE_S", 1)  # paho drops a link 1 s without a byte
    printer = await fleet.add("bambu", model="X1C")
    rec = await connect(printer)
    await wait_for(lambda: rec.driver.link.connection is Connection.ONLINE, what="online")
    link = rec.driver._link
    assert link is not None
    pongs = 0

    def counted() -> MQTTErrorCode:
        nonlocal pongs
        pongs += 1
        return answer()

    answer = link.paho._handle_pingresp
    link.paho._handle_pingresp = counted  # type: ignore[method-assign]
    # Waits bounded by a quarter of the keep-alive, as 1 s is of the real 5 s.
    async with flooded(max_wait_s=0.25) as pacer:
        reads = pacer.reads
        # Four keep-alive rounds while the link's reads share the loop with the flood's.
        await wait_for(lambda: pongs >= 4 or rec.driver._link is not link, timeout=30)
        assert rec.driver._link is link, "the link was dropped and reconnected"
        assert rec.driver.link.connection is Connection.ONLINE
        assert pacer.reads - reads >= FLOOD_LINKS  # the flood was read meanwhile


async def test_a_connect_handshake_is_never_held_back_by_the_flood(fleet, connect) -> None:
    printer = await fleet.add("bambu", model="X1C")
    # A fixed 4 ms of reads a turn and waits unbounded in effect: only the handshake's own
    # exemption can bring it in time.
    async with flooded(max_wait_s=30.0, share=0.0) as pacer:
        # A round of the flood (about 3 s) would be longer than the connect's deadline.
        rec = await connect(printer, connect_timeout_s=1.0)
        await wait_for(
            lambda: rec.driver.link.connection is Connection.ONLINE,
            timeout=20,
            what="online through the flood",
        )
        assert pacer.deferred > 0 and len(pacer) > 0  # the flood's reads still wait their turns
