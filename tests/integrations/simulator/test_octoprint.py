"""OctoPrint front end, checked with aiohttp from protocols.md."""

from __future__ import annotations

import aiohttp

from integrations.simulator import Fleet, SimPrinter
from tests.helpers import wait_for

from .conftest import gcode


def api(p: SimPrinter, bearer: bool = False) -> aiohttp.ClientSession:
    headers = {"Authorization": f"Bearer {p.secret}"} if bearer else {"X-Api-Key": p.secret}
    return aiohttp.ClientSession(base_url=f"http://{p.host}:{p.port}", headers=headers)


async def upload(session: aiohttp.ClientSession, name: str, data: bytes, start: bool) -> int:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name)
    form.add_field("print", "true" if start else "false")
    async with session.post("/api/files/local", data=form) as r:
        return r.status


async def job_state(session: aiohttp.ClientSession) -> str:
    async with session.get("/api/job") as r:
        return str((await r.json())["state"])


async def test_auth_403_and_version(fleet: Fleet):
    p = await fleet.add("octoprint", port=0)
    async with aiohttp.ClientSession(base_url=f"http://{p.host}:{p.port}") as anonymous:
        async with anonymous.get("/api/version") as r:
            assert r.status == 403
        async with anonymous.get("/api/version", headers={"X-Api-Key": "wrong"}) as r:
            assert r.status == 403
    async with api(p, bearer=True) as session:
        async with session.get("/api/version") as r:
            assert r.status == 200 and (await r.json())["text"].startswith("OctoPrint")
        p.faults.refuse_auth(True)
        async with session.get("/api/version") as r:
            assert r.status == 403


async def test_upload_print_lifecycle_and_job_commands(fleet: Fleet):
    p = await fleet.add("octoprint", port=0)
    async with api(p) as session:
        async with session.post("/api/job", json={"command": "start"}) as r:
            assert r.status == 409  # nothing selected
        assert await upload(session, "long.gcode", gcode(36000), True) == 201
        async with session.get("/api/job") as r:
            body = await r.json()
            assert body["state"] == "Printing"
            assert body["job"]["file"]["name"] == "long.gcode"
            assert body["job"]["estimatedPrintTime"] == 36000
            assert body["progress"]["printTimeLeft"] > 0
        async with session.get("/api/printer") as r:
            printer = await r.json()
            assert printer["state"]["flags"]["printing"] is True
            assert {"actual", "target"} <= set(printer["temperature"]["tool0"])
        async with session.post("/api/job", json={"command": "pause", "action": "resume"}) as r:
            assert r.status == 409
        async with session.post("/api/job", json={"command": "pause", "action": "pause"}) as r:
            assert r.status == 204
        assert await job_state(session) == "Paused"
        async with session.post("/api/job", json={"command": "pause", "action": "toggle"}) as r:
            assert r.status == 204
        assert await job_state(session) == "Printing"
        async with session.post("/api/job", json={"command": "pause"}) as r:
            assert r.status == 204  # default action toggles
        async with session.post("/api/job", json={"command": "restart"}) as r:
            assert r.status == 204
        assert await job_state(session) == "Printing"
        async with session.post("/api/job", json={"command": "cancel"}) as r:
            assert r.status == 204
        assert await job_state(session) == "Operational"
        async with session.post("/api/job", json={"command": "cancel"}) as r:
            assert r.status == 409
        assert await upload(session, "cube.gcode", gcode(300, layers=5), True) == 201

        async def finished() -> bool:
            async with session.get("/api/job") as r:
                body = await r.json()
                return body["state"] == "Operational" and body["progress"]["completion"] == 100

        await wait_for(finished, timeout=20, what="print completed")


async def test_failed_print_makes_printer_not_operational(fleet: Fleet):
    p = await fleet.add("octoprint", port=0)
    async with api(p) as session:
        assert await upload(session, "long.gcode", gcode(36000), True) == 201
        p.faults.fail_print(message="thermal runaway")
        async with session.get("/api/printer") as r:
            assert r.status == 409
        async with session.get("/api/job") as r:
            assert (await r.json())["state"].startswith("Offline after error")
        async with session.post("/api/job", json={"command": "start"}) as r:
            assert r.status == 409
        async with session.post("/api/connection", json={"command": "connect"}) as r:
            assert r.status == 204
        async with session.get("/api/printer") as r:
            assert r.status == 200 and (await r.json())["state"]["flags"]["ready"] is True


async def test_restart_and_drop(fleet: Fleet):
    p = await fleet.add("octoprint", port=0)
    async with api(p) as session:
        assert await upload(session, "long.gcode", gcode(36000), True) == 201
        p.faults.drop_connection()
        await p.faults.restart(delay=0.1)
        assert await job_state(session) == "Operational"
        async with session.get("/api/files") as r:
            assert [f["name"] for f in (await r.json())["files"]] == ["long.gcode"]
