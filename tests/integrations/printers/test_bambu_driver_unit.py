"""Bambu driver message handling without a network: replies, per-report cost."""

from __future__ import annotations

import asyncio
import copy
import json
import time

from integrations.printers.bambu.driver import BambuDriver
from integrations.printers.base import DriverConfig
from integrations.printers.connect_gate import ConnectGate
from tests.helpers import wait_for


def _driver(states: list | None = None) -> BambuDriver:
    config = DriverConfig(printer_id="b", host="127.0.0.1", serial="00M0", model="X1C",
                          secrets={"access_code": "1"})  # fmt: skip
    return BambuDriver(config, (states if states is not None else []).append)


async def test_replies_resolve_only_the_matching_command():
    driver = _driver()
    future: asyncio.Future = asyncio.get_running_loop().create_future()
    driver._pending["7"] = ("pause", future)
    # Another client's request with the same sequence id must not acknowledge ours.
    driver._handle(json.dumps({"print": {"command": "resume", "sequence_id": "7"}}).encode())
    assert not future.done()
    driver._handle(b"not json")
    driver._handle(b"[1, 2]")
    reply = {"print": {"command": "pause", "sequence_id": "7", "result": "success"}}
    driver._handle(json.dumps(reply).encode())
    assert future.result()["result"] == "success" and driver._pending == {}


def test_a_thousand_full_reports_stay_cheap(payload):
    states: list = []
    driver = _driver(states)
    full = payload("bambu_x1c_full.json")
    reports = []
    for i in range(1000):
        body = copy.deepcopy(full)
        body["print"]["nozzle_temper"] = 219.0 + (i % 7) / 10
        reports.append(json.dumps(body).encode())
    start = time.perf_counter()
    for report in reports:
        driver._handle(report)
    elapsed = time.perf_counter() - start
    # About 0.1 ms each on the reference machine; the bound leaves room for slow CI.
    assert elapsed < 1.5, f"{elapsed:.2f}s for 1000 reports"
    assert 0 < len(states) <= 1000  # published only when something changed
    unchanged = len(states)
    driver._handle(reports[-1])
    assert len(states) == unchanged


async def test_a_cancelled_connect_is_closed_rather_than_leaked():
    class SlowClient:
        """Stands in for aiomqtt.Client, whose connect runs on in a thread when cancelled."""

        def __init__(self) -> None:
            self.release = asyncio.Event()
            self.entered = asyncio.Event()
            self.closed = False

        async def __aenter__(self) -> SlowClient:
            self.entered.set()
            await self.release.wait()
            return self

        def abort(self) -> None:
            self.closed = True

    client = SlowClient()
    gate = ConnectGate(1)
    driver = _driver()
    driver._connect_turn = await gate.enter()
    connecting = asyncio.create_task(driver._enter(client))  # type: ignore[arg-type]
    await client.entered.wait()
    connecting.cancel()
    await asyncio.wait({connecting})
    assert connecting.cancelled()  # at once, without waiting for the connect
    assert not client.closed
    driver._connected()  # the session ends: its connect still holds the turn
    assert gate.in_progress == 1
    client.release.set()  # the connection completes after all
    await wait_for(lambda: client.closed, timeout=5, what="the late connection closed")
    assert gate.in_progress == 0  # and with it the connect's turn at the gate
