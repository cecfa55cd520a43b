"""PrusaLink front end, checked with aiohttp (API key and HTTP Digest) from protocols.md."""

from __future__ import annotations

import aiohttp

from integrations.simulator import Fleet, SimPrinter
from tests.helpers import wait_for

from .conftest import gcode


def api(p: SimPrinter) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        base_url=f"http://{p.host}:{p.port}", headers={"X-Api-Key": p.secret}
    )


async def test_auth_by_key_digest_or_401(fleet: Fleet):
    p = await fleet.add("prusalink", port=0)
    base = f"http://{p.host}:{p.port}"
    async with aiohttp.ClientSession(base_url=base) as anonymous:
        async with anonymous.get("/api/version") as r:
            assert r.status == 401
            assert r.headers["WWW-Authenticate"].startswith("Digest ")
    digest = aiohttp.DigestAuthMiddleware("maker", p.secret)
    async with aiohttp.ClientSession(base_url=base, middlewares=(digest,)) as session:
        async with session.get("/api/version") as r:
            assert r.status == 200
            assert (await r.json())["text"] == "PrusaLink"
    wrong = aiohttp.DigestAuthMiddleware("maker", "nope")
    async with aiohttp.ClientSession(base_url=base, middlewares=(wrong,)) as session:
        async with session.get("/api/version") as r:
            assert r.status == 401
    async with api(p) as session:
        async with session.get("/api/v1/info") as r:
            assert r.status == 200 and (await r.json())["serial"] == p.serial
        p.faults.refuse_auth(True)
        async with session.get("/api/v1/info") as r:
            assert r.status == 401


async def test_upload_print_pause_resume_stop(fleet: Fleet):
    p = await fleet.add("prusalink", port=0)
    async with api(p) as session:
        async with session.get("/api/v1/job") as r:
            assert r.status == 204
        async with session.get("/api/v1/status") as r:
            body = await r.json()
            assert body["printer"]["state"] == "IDLE" and "job" not in body
        headers = {"Print-After-Upload": "?1", "Overwrite": "?1", "Content-Type": "text/x.gcode"}
        async with session.put(
            "/api/v1/files/usb/long.gcode", data=gcode(36000), headers=headers
        ) as r:
            assert r.status == 201
        async with session.get("/api/v1/job") as r:
            job = await r.json()
            assert r.status == 200 and job["state"] == "PRINTING"
            assert job["file"]["name"] == "long.gcode"
        job_id = job["id"]
        async with session.put("/api/v1/files/usb/long.gcode", data=b"x") as r:
            assert r.status == 409  # exists and no Overwrite
        async with session.post("/api/v1/files/usb/long.gcode") as r:
            assert r.status == 409  # busy
        async with session.put(f"/api/v1/job/{job_id}/resume") as r:
            assert r.status == 409
        async with session.put(f"/api/v1/job/{job_id}/pause") as r:
            assert r.status == 204
        async with session.get("/api/v1/status") as r:
            assert (await r.json())["printer"]["state"] == "PAUSED"
        async with session.put(f"/api/v1/job/{job_id + 99}/resume") as r:
            assert r.status == 404
        async with session.put(f"/api/v1/job/{job_id}/resume") as r:
            assert r.status == 204
        async with session.delete(f"/api/v1/job/{job_id}") as r:
            assert r.status == 204
        async with session.delete(f"/api/v1/job/{job_id}") as r:
            assert r.status == 409
        async with session.get("/api/v1/status") as r:
            assert (await r.json())["printer"]["state"] == "STOPPED"


async def test_start_existing_file_runs_to_finished(fleet: Fleet):
    p = await fleet.add("prusalink", port=0)
    async with api(p) as session:
        async with session.put("/api/v1/files/usb/cube.gcode", data=gcode(300, layers=5)) as r:
            assert r.status == 201
        async with session.post("/api/v1/files/usb/missing.gcode") as r:
            assert r.status == 404
        async with session.post("/api/v1/files/usb/cube.gcode") as r:
            assert r.status == 204

        async def state() -> str:
            async with session.get("/api/v1/status") as r:
                return str((await r.json())["printer"]["state"])

        await wait_for(lambda: _is(state, "FINISHED"), timeout=20, what="FINISHED")
        async with session.get("/api/v1/job") as r:
            job = await r.json()
            assert job["progress"] == 100 and job["time_remaining"] == 0


async def _is(probe, expected: str) -> bool:
    return await probe() == expected


async def test_faults_slow_silent_fail(fleet: Fleet):
    p = await fleet.add("prusalink", port=0)
    await fleet.load_file(p, "long.gcode", gcode(36000))
    p.printer.start_print("long.gcode")
    timeout = aiohttp.ClientTimeout(total=0.5)
    async with api(p) as session:
        p.faults.go_silent(True)
        try:
            async with session.get("/api/v1/status", timeout=timeout) as r:
                raise AssertionError(f"silent printer answered {r.status}")
        except TimeoutError:
            pass
        p.faults.go_silent(False)
        p.faults.fail_print()
        async with session.get("/api/v1/status") as r:
            assert (await r.json())["printer"]["state"] == "ERROR"
        p.faults.slow(1.0)
        try:
            async with session.get("/api/v1/status", timeout=timeout) as r:
                raise AssertionError(f"slow printer answered in time: {r.status}")
        except TimeoutError:
            pass
