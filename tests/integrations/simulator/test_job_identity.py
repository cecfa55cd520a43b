"""The simulator's job identities and its own log of physical prints, per protocol."""

from __future__ import annotations

import asyncio
import json
import ssl
from typing import Any

import aiohttp
import pytest

from hub.model import PrintState
from integrations.simulator import Fleet, SimPrinter
from tests.helpers import wait_for

from .bambu_client import BambuClient
from .conftest import gcode


async def test_the_log_records_every_physical_print_and_how_it_ended(fleet: Fleet):
    p = await fleet.add("prusalink", port=0)
    await fleet.load_file(p, "a.gcode", gcode(time_s=60))
    await fleet.load_file(p, "long.gcode", gcode(time_s=36000))
    p.printer.start_print("a.gcode")
    await wait_for(lambda: p.printer.state is PrintState.FINISHED, what="finished")
    p.printer.start_print("a.gcode")
    await wait_for(lambda: p.printer.state is PrintState.FINISHED, what="finished again")
    p.printer.start_print("long.gcode")
    p.printer.cancel()
    p.printer.start_print("long.gcode")
    p.printer.fail()
    p.printer.start_print("long.gcode")
    await p.faults.restart(delay=0.05)
    log = p.printer.log
    assert [e.outcome for e in log] == [
        "finished", "finished", "cancelled", "failed", "interrupted",
    ]  # fmt: skip
    assert [e.file for e in log] == ["a.gcode"] * 2 + ["long.gcode"] * 3
    assert len({e.task_id for e in log}) == 5
    assert all(e.ended_at is not None and e.ended_at >= e.started_at for e in log)
    assert log[0].percent == 100 and log[2].percent < 100
    assert [entry for _, entry in fleet.print_log()] == log


def _api(p: SimPrinter) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        base_url=f"http://{p.host}:{p.port}", headers={"X-Api-Key": p.secret}
    )


async def test_octoprint_pushes_print_events_over_its_socket(fleet: Fleet):
    p = await fleet.add("octoprint", port=0)
    await fleet.load_file(p, "a.gcode", gcode(time_s=60))
    await fleet.load_file(p, "long.gcode", gcode(time_s=36000))
    messages: list[dict[str, Any]] = []
    async with _api(p) as session:
        async with session.post("/api/login", json={"passive": True}) as r:
            assert r.status == 200
            login = await r.json()
        async with session.get("/api/settings") as r:
            settings = await r.json()
            assert settings["webcam"]["streamUrl"] and settings["plugins"]["discovery"]["upnpUuid"]
        async with aiohttp.ClientSession() as anonymous:
            ws = await anonymous.ws_connect(f"http://{p.host}:{p.port}/sockjs/websocket")

            async def read() -> None:
                async for msg in ws:
                    messages.append(json.loads(msg.data))

            reader = asyncio.create_task(read())
            await wait_for(lambda: messages, what="connected")
            assert "connected" in messages[0]
            p.printer.start_print("long.gcode")  # before auth: nobody hears it
            p.printer.cancel()
            await ws.send_str(json.dumps({"auth": f"{login['name']}:{login['session']}"}))
            await wait_for(lambda: any("current" in m for m in messages), what="current")
            for _ in range(2):
                p.printer.start_print("a.gcode")
                await wait_for(lambda: p.printer.state is PrintState.FINISHED, what="done")
            p.printer.start_print("long.gcode")
            p.printer.cancel()

            def events() -> list[tuple[str, str | None]]:
                return [(m["event"]["type"], m["event"]["payload"].get("reason"))
                        for m in messages if "event" in m]  # fmt: skip

            await wait_for(lambda: len(events()) == 7, what="seven events")
            reader.cancel()
            await ws.close()
    assert events() == [
        ("PrintStarted", None), ("PrintDone", None),
        ("PrintStarted", None), ("PrintDone", None),
        ("PrintStarted", None), ("PrintCancelled", None), ("PrintFailed", "cancelled"),
    ]  # fmt: skip
    current = next(m["current"] for m in messages if "current" in m)
    assert {"state", "job", "progress"} <= set(current)


async def test_octoprint_socket_without_a_session_hears_nothing(fleet: Fleet):
    p = await fleet.add("octoprint", port=0)
    await fleet.load_file(p, "a.gcode", gcode(time_s=60))
    async with aiohttp.ClientSession() as anonymous:
        ws = await anonymous.ws_connect(f"http://{p.host}:{p.port}/sockjs/websocket")
        await ws.receive(timeout=2)  # "connected"
        await ws.send_str(json.dumps({"auth": "admin:not-a-session"}))
        p.printer.start_print("a.gcode")
        with pytest.raises(TimeoutError):
            await ws.receive(timeout=0.5)
        await ws.close()


async def test_prusalink_job_ids_and_legacy_printer(fleet: Fleet):
    p = await fleet.add("prusalink", port=0)
    await fleet.load_file(p, "a.gcode", gcode(time_s=60))
    ids = []
    async with _api(p) as session:
        for _ in range(2):
            p.printer.start_print("a.gcode")
            async with session.get("/api/v1/job") as r:
                ids.append((await r.json())["id"])
            await wait_for(lambda: p.printer.state is PrintState.FINISHED, what="finished")
        async with session.get("/api/printer") as r:
            legacy = await r.json()
    assert ids[0] != ids[1]
    assert legacy["telemetry"]["material"] == p.printer.active_tray.material  # type: ignore[union-attr]
    assert legacy["state"]["flags"]["operational"] is True


async def test_bambu_reports_job_ids_start_time_and_an_unset_spool(
    fleet: Fleet, tls_client: ssl.SSLContext
):
    p = await fleet.add("bambu", model="X1C", port=0)
    p.printer.external.empty = True
    await fleet.load_file(p, "cube.gcode", gcode(time_s=36000))
    job = p.printer.start_print("cube.gcode")
    async with BambuClient(p, tls_client) as client:
        await wait_for(
            lambda: client.state.get("gcode_state") in ("PREPARE", "RUNNING"), what="a job report"
        )
        state = client.state
        assert state["task_id"] == state["subtask_id"] == state["job_id"] == job.task_id
        assert int(state["gcode_start_time"]) == int(job.started_at)
        assert state["vt_tray"]["tray_type"] == "" and state["vt_tray"]["id"] == "254"
        p.faults.freeze(True)  # the firmware hangs; the broker still answers
        count = len(client.reports)
        await asyncio.sleep(0.5)
        assert len(client.reports) == count
        p.faults.freeze(False)
        await wait_for(lambda: len(client.reports) > count, what="reports again")
