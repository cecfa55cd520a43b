"""The queue end to end on simulated printers: tray mapping, copies, history links, notifications."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.helpers import wait_for
from tests.hub.queue.conftest import Farm, FarmFactory, set_tray
from tests.slicer_files import bambu_3mf, prusaslicer_gcode


async def test_bambu_and_moonraker_jobs_print_with_the_right_filament(
    farm_factory: FarmFactory,
) -> None:
    farm: Farm = await farm_factory()
    x1c = await farm.fleet.add("bambu", model="X1C")
    voron = await farm.fleet.add("moonraker")
    for slot in range(4):
        set_tray(x1c, slot, "PLA", "FFFFFF")
    set_tray(x1c, 2, "PETG", "1E90FF", grams=500.0)
    bambu_id = await farm.add(x1c, auto_clear_bed=True)
    voron_id = await farm.add(voron, auto_clear_bed=True)
    await farm.spool(voron_id, 254, "PLA", "#FF0000", 600.0)
    await farm.online(bambu_id, voron_id)

    project = await farm.upload(
        "boat.gcode.3mf",
        bambu_3mf(plates=((("PETG", "#1E90FF", 20.0),),), model_id="BL-P001", prediction=60),
    )
    gcode = await farm.upload(
        "hook.gcode",
        prusaslicer_gcode(
            materials=("PLA",), colours=("#FF0000",), grams=(5.0,), model="Voron 2.4",
            time_text="1m 0s",
        ),
    )  # fmt: skip
    updates: list[dict[str, Any]] = []
    ws = await farm.session.ws_connect(
        farm.base.replace("http", "ws") + "/ws", headers={"Authorization": f"Bearer {farm.token}"}
    )
    await ws.send_json({"type": "subscribe", "types": ["queue.update"]})

    subscribed = asyncio.Event()

    async def read() -> None:
        async for message in ws:
            data = message.json()
            if data["type"] == "subscribed":
                subscribed.set()
            if data["type"] == "queue.update":
                updates.append(data["payload"])

    reader = asyncio.create_task(read())
    await wait_for(subscribed.is_set, timeout=30, what="/ws subscription confirmed")
    blue = await farm.ok("POST", "/api/queue", {"file_id": project["id"], "copies": 2})
    red = await farm.ok("POST", "/api/queue", {"file_id": gcode["id"]})
    assert blue["materials"] == [{"slot": 1, "material": "PETG", "color": "#1E90FF", "grams": 20.0}]

    async def finished() -> bool:
        states = [(await farm.job(j["id"]))["state"] for j in (blue, red)]
        return states == ["done", "done"]

    await wait_for(finished, timeout=90, interval=0.1, what="both jobs done")
    # Every change went out on /ws: the red job's whole life, in order.
    await wait_for(
        lambda: [u["state"] for u in updates if u["id"] == red["id"]][-1:] == ["done"],
        timeout=30,
        what="the last queue.update",
    )
    assert [u["state"] for u in updates if u["id"] == red["id"]] == [
        "queued", "dispatching", "printing", "done",
    ]  # fmt: skip
    await ws.close()
    reader.cancel()

    # A copy is done once the printer shows it finished; its history record is linked when
    # the history pipeline has written it, which may come just after.
    async def linked() -> bool:
        jobs = [await farm.job(j["id"]) for j in (blue, red)]
        return [len(j["prints"]) for j in jobs] == [2, 1]

    await wait_for(linked, timeout=30, what="history records linked to both jobs")
    blue_job = await farm.job(blue["id"])
    red_job = await farm.job(red["id"])
    assert blue_job["copies_done"] == 2
    assert [r["printer_id"] for r in blue_job["runs"]] == [bambu_id, bambu_id]
    assert all(r["ams_mapping"] == [2] for r in blue_job["runs"])
    assert [r["printer_id"] for r in red_job["runs"]] == [voron_id]
    # The simulated printers lived exactly these prints, the Bambu one from tray 2 (PETG).
    x1c_prints = [e for e in x1c.printer.log if "boat" in e.file]
    assert len(x1c_prints) == 2 and all(e.outcome == "finished" for e in x1c_prints)
    assert [e.file for e in voron.printer.log] == [red_job["runs"][0]["filename"]]
    # Each print's history record links back to its job.
    assert len(blue_job["prints"]) == 2 and len(red_job["prints"]) == 1
    rows = await farm.hub.db.fetch_all("SELECT id, queue_job_id, started_by FROM prints")
    linked = {r["id"]: r["queue_job_id"] for r in rows}
    for job in (blue_job, red_job):
        assert all(linked[p] == job["id"] for p in job["prints"])
    # Whoever queued a job started its prints.
    assert {r["started_by"] for r in rows if r["queue_job_id"]} == {blue_job["added_by"]}
    assert blue_job["added_by"] == red_job["added_by"] is not None

    async def kinds() -> list[str]:
        notes = await farm.ok("GET", "/api/notifications?per_page=200")
        return [n["kind"] for n in notes["items"]]

    # Notifications follow the job's last change.
    await wait_for(
        lambda: _has(kinds(), "queue_empty"), timeout=30, what="queue empty notification"
    )
    kinds_seen = await kinds()
    assert kinds_seen.count("queue_job_started") == 3
    assert kinds_seen.count("queue_job_completed") == 2
    assert kinds_seen.count("queue_empty") == 1


async def test_material_nobody_has_waits_with_reason_and_bed_gate(
    farm_factory: FarmFactory,
) -> None:
    farm = await farm_factory()
    x1c = await farm.fleet.add("bambu", model="X1C")
    for slot in range(4):
        set_tray(x1c, slot, "PLA", "FFFFFF")
    printer_id = await farm.add(x1c)  # no auto bed clear: a person confirms
    await farm.online(printer_id)
    abs_file = await farm.upload(
        "abs.gcode.3mf", bambu_3mf(plates=((("ABS", "#000000", 5.0),),), prediction=60)
    )
    pla_file = await farm.upload(
        "pla.gcode.3mf", bambu_3mf(plates=((("PLA", "#FFFFFF", 5.0),),), prediction=60)
    )
    abs_job = await farm.ok("POST", "/api/queue", {"file_id": abs_file["id"], "priority": 5})
    pla_job = await farm.ok("POST", "/api/queue", {"file_id": pla_file["id"]})

    async def reason(job: dict[str, Any]) -> str:
        listing = await farm.ok("GET", "/api/queue")
        found = next(j for j in listing["items"] if j["id"] == job["id"])
        return str(found["waiting_reason"])

    await wait_for(
        lambda: _contains(reason(pla_job), "bed not cleared"), timeout=30, what="bed reason"
    )
    assert "ABS #000000" in await reason(abs_job)
    assert (await farm.job(pla_job["id"]))["state"] == "queued"
    await farm.ok("POST", f"/api/printers/{printer_id}/bed-cleared")
    await wait_for(
        lambda: _state_is(farm, pla_job["id"], "done"), timeout=60, what="PLA job printed"
    )
    # The finished print occupies the bed again; the ABS job still has no printer.
    assert (await farm.ok("GET", f"/api/printers/{printer_id}"))["bed_clear"] is False
    assert (await farm.job(abs_job["id"]))["state"] == "queued"
    assert "no printer with ABS #000000" in await reason(abs_job)


async def _contains(text: Any, part: str) -> bool:
    return part in await text


async def _state_is(farm: Farm, job_id: str, state: str) -> bool:
    return bool((await farm.job(job_id))["state"] == state)


async def _has(kinds: Any, kind: str) -> bool:
    return kind in await kinds
