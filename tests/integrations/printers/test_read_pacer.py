"""The read pacer: a flood of readable links costs each event-loop turn a bounded number of
reads, so other work (a request) gets through in a bounded number of turns, and no link
starves."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import pytest

from integrations.printers.read_pacer import ReadPacer
from tests.helpers import wait_for

READ_COST_S = 0.001  # each read works at least this long, like a report's TLS, JSON and merge


class FloodLink:
    """One end of a socket pair that its peer keeps readable: every read is answered with
    more data, a printer reporting as fast as it is read."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pacer: ReadPacer) -> None:
        self.loop, self.pacer = loop, pacer
        self.sock, self.peer = socket.socketpair()
        self.sock.setblocking(False)
        self.reads = 0
        self.peer.send(b"r")
        loop.add_reader(self.sock.fileno(), self.readable)

    def readable(self) -> None:
        self.pacer.readable(self)

    def read_now(self) -> None:
        self.sock.recv(4096)
        self.reads += 1
        until = time.perf_counter() + READ_COST_S
        while time.perf_counter() < until:
            pass
        self.peer.send(b"r")  # the next report is already there

    def park(self) -> None:
        self.loop.remove_reader(self.sock.fileno())

    def unpark(self) -> bool:
        if self.sock.fileno() < 0:
            return False
        self.loop.add_reader(self.sock.fileno(), self.readable)
        return True

    def close(self) -> None:
        self.loop.remove_reader(self.sock.fileno())
        self.pacer.discard(self)
        self.sock.close()
        self.peer.close()


@pytest.fixture
async def flood() -> AsyncIterator[tuple[ReadPacer, list[FloodLink]]]:
    loop = asyncio.get_running_loop()
    pacer = ReadPacer(loop, slice_s=0.004)
    links = [FloodLink(loop, pacer) for _ in range(40)]
    yield pacer, links
    for link in links:
        link.close()


async def test_a_request_waits_a_bounded_number_of_reads_per_turn(flood) -> None:
    pacer, _ = flood
    await wait_for(lambda: pacer.reads >= 10, what="the flood under way")
    # A request needing 10 turns of the loop (each await of sleep(0) is one turn).
    before = pacer.reads
    for _ in range(10):
        await asyncio.sleep(0)
    during = pacer.reads - before
    # Per turn: the budget (4 reads of at least 1 ms) and the one that overran it; without the
    # pacer all 40 links are read in every turn, 400 reads.
    per_turn = int(pacer.slice_s / READ_COST_S) + 1
    assert 0 < during <= 10 * per_turn
    assert pacer.deferred > 0 and len(pacer) > 0


async def test_every_link_of_the_flood_is_read_in_turn(flood) -> None:
    _, links = flood
    start = [link.reads for link in links]
    # Parked longest first: every link gets its read within a few rounds of the budget.
    await wait_for(
        lambda: all(link.reads >= s + 2 for link, s in zip(links, start, strict=True)),
        what="every link read twice more",
    )
    reads = [link.reads for link in links]
    assert max(reads) - min(reads) <= 4  # fair: nobody read far more often than the rest


async def test_a_link_closed_while_parked_is_skipped(flood) -> None:
    pacer, links = flood
    await wait_for(lambda: len(pacer) > 10, what="links parked")
    closed = links.pop()
    closed.close()
    reads = closed.reads
    before = pacer.reads
    await wait_for(lambda: pacer.reads > before + 2 * len(links), what="more rounds of reads")
    assert closed.reads == reads


async def test_every_turn_reads_at_least_one_link_whatever_the_budget() -> None:
    loop = asyncio.get_running_loop()
    pacer = ReadPacer(loop, slice_s=0.0)
    links = [FloodLink(loop, pacer) for _ in range(5)]
    try:
        before = pacer.reads
        for _ in range(20):
            await asyncio.sleep(0)
        assert 10 <= pacer.reads - before <= 40  # one a turn, give or take a turn's edge
        assert all(link.reads > 0 for link in links)
    finally:
        for link in links:
            link.close()
