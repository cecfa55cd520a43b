"""The queue when things go wrong: a printer that never starts, forced dispatch, a hub restart."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from hub.events import QueueJobChanged
from hub.store import queue as store
from streams.events import LifecycleKind
from tests.helpers import wait_for
from tests.hub.queue.conftest import Farm, FarmFactory, set_tray
from tests.slicer_files import bambu_3mf


async def _job_state(farm: Farm, job_id: str, *states: str) -> dict[str, Any] | None:
    job = await farm.job(job_id)
    return job if job["state"] in states else None


async def _bambu(farm: Farm, **settings: Any) -> tuple[Any, str]:
    sim = await farm.fleet.add("bambu", model="X1C")
    for slot in range(4):
        set_tray(sim, slot, "PLA", "FFFFFF")
    printer_id = await farm.add(sim, **settings)
    await farm.online(printer_id)
    return sim, printer_id


async def _pla_job(farm: Farm, prediction: int = 60, **fields: Any) -> dict[str, Any]:
    file = await farm.upload(
        f"pla-{prediction}.gcode.3mf",
        bambu_3mf(plates=((("PLA", "#FFFFFF", 5.0),),), prediction=prediction),
    )
    body: dict[str, Any] = await farm.ok("POST", "/api/queue", {"file_id": file["id"], **fields})
    return body


async def test_watchdog_requeues_then_fails_a_start_that_never_happens(
    farm_factory: FarmFactory,
) -> None:
    farm = await farm_factory(
        PRINTFORGE_QUEUE_START_TIMEOUT_S="1",
        PRINTFORGE_QUEUE_MAX_ATTEMPTS="2",
        PRINTFORGE_QUEUE_COOLDOWN_S="0",
    )
    sim, _ = await _bambu(farm, auto_clear_bed=True)
    sim.faults.ignore_starts(True)
    job = await _pla_job(farm)
    failed = await wait_for(
        lambda: _job_state(farm, job["id"], "failed"), timeout=20, what="job failed"
    )
    assert failed["attempts"] == 2
    assert "did not start printing within 1 s" in failed["last_error"]
    assert [r["state"] for r in failed["runs"]] == ["requeued", "requeued"]
    assert sim.printer.ignored_starts == 2 and sim.printer.log == []

    async def failed_note() -> bool:
        notes = await farm.ok("GET", "/api/notifications?per_page=100")
        return any(n["kind"] == "queue_job_failed" for n in notes["items"])

    await wait_for(failed_note, timeout=5, what="queue_job_failed notification")


async def test_a_printer_that_refuses_starts_cools_down_and_a_start_it_takes_ends_that(
    farm_factory: FarmFactory,
) -> None:
    farm = await farm_factory(
        PRINTFORGE_QUEUE_START_TIMEOUT_S="2",
        PRINTFORGE_QUEUE_MAX_ATTEMPTS="5",
        PRINTFORGE_QUEUE_COOLDOWN_S="30",
        PRINTFORGE_QUEUE_COOLDOWN_MAX_S="100",
    )
    sim, printer_id = await _bambu(farm, auto_clear_bed=True)
    sim.faults.ignore_starts(True)
    job = await _pla_job(farm)

    async def waiting(pattern: str) -> re.Match[str] | None:
        listing = await farm.ok("GET", "/api/queue")
        found = next(j for j in listing["items"] if j["id"] == job["id"])
        if found["state"] != "queued":
            return None
        return re.search(pattern, found["waiting_reason"] or "")

    # 1. The printer did not begin the start: the job is back, the printer is left alone.
    name = sim.describe()["name"]
    first = await wait_for(
        lambda: waiting(rf"{name} refused its last start: next try in (\d+) s"),
        timeout=15, what="cooldown after one refusal",
    )  # fmt: skip
    assert 0 < int(first.group(1)) <= 30
    assert sim.printer.ignored_starts == 1  # not hammered with the same job again
    # 2. A person forces another try (a forced dispatch skips the cooldown); refused again,
    # the cooldown doubles.
    await farm.ok("POST", "/api/queue/dispatch", {"job_id": job["id"], "printer_id": printer_id})
    second = await wait_for(
        lambda: waiting(rf"{name} refused its last 2 starts in a row: next try in (\d+) s"),
        timeout=15, what="cooldown after two refusals",
    )  # fmt: skip
    assert 30 < int(second.group(1)) <= 60
    assert sim.printer.ignored_starts == 2
    # 3. The printer takes a start: its cooldown is over, the next job goes out at once.
    sim.faults.ignore_starts(False)
    await farm.ok("POST", "/api/queue/dispatch", {"job_id": job["id"], "printer_id": printer_id})
    await wait_for(lambda: _job_state(farm, job["id"], "done"), timeout=20, what="printed")
    following = await _pla_job(farm)
    await wait_for(lambda: _job_state(farm, following["id"], "done"), timeout=20, what="next")
    assert len(sim.printer.log) == 2


async def test_forced_dispatch_checks_fit_and_skips_the_bed_gate(farm_factory: FarmFactory) -> None:
    farm = await farm_factory()
    sim, printer_id = await _bambu(farm)  # bed never confirmed
    abs_file = await farm.upload(
        "abs.gcode.3mf", bambu_3mf(plates=((("ABS", "#000000", 5.0),),), prediction=60)
    )
    abs_job = await farm.ok("POST", "/api/queue", {"file_id": abs_file["id"]})
    pla_job = await _pla_job(farm)
    status, body = await farm.call(
        "POST", "/api/queue/dispatch", {"job_id": abs_job["id"], "printer_id": printer_id}
    )
    assert status == 409 and "no ABS #000000 loaded" in body["detail"], body
    # A plain pass respects the bed gate: nothing goes out.
    assert (await farm.ok("POST", "/api/queue/dispatch"))["dispatched"] == []
    # Forced by an operator (not who queued the job): that operator started the print.
    await farm.ok("POST", "/api/users", {"username": "olga", "password": "olga-password", "role": "operator"})  # fmt: skip
    async with farm.session.post(
        f"{farm.base}/api/auth/login", json={"username": "olga", "password": "olga-password"}
    ) as r:
        olga = {"Authorization": f"Bearer {(await r.json())['token']}"}
    async with farm.session.post(
        f"{farm.base}/api/queue/dispatch", headers=olga,
        json={"job_id": pla_job["id"], "printer_id": printer_id},
    ) as r:  # fmt: skip
        assert r.status == 200, await r.text()
        result = await r.json()
    assert [d["job_id"] for d in result["dispatched"]] == [pla_job["id"]]
    (tray,) = result["dispatched"][0]["ams_mapping"]
    loaded = sim.printer.tray(tray)
    assert (loaded.material, loaded.color) == ("PLA", "FFFFFFFF")
    status, body = await farm.call("POST", "/api/queue/dispatch", {"job_id": pla_job["id"]})
    assert status == 409, body
    await wait_for(lambda: _job_state(farm, pla_job["id"], "done"), timeout=20, what="printed")
    assert len(sim.printer.log) == 1
    status, body = await farm.call("DELETE", f"/api/queue/{abs_job['id']}")
    assert status == 204
    assert (await farm.job(abs_job["id"]))["state"] == "cancelled"
    (queued,) = (await farm.ok("GET", f"/api/history?printer={printer_id}"))["items"]
    assert queued["queue_job_id"] == pla_job["id"] and pla_job["added_by"] == "admin"
    assert queued["started_by"] == "olga"
    # A print started at the printer itself: nobody the hub knows started it.
    sim.printer.add_file("by-hand.gcode.3mf", bambu_3mf(plates=((("PLA", "#FFFFFF", 5.0),),),
                                                          prediction=60))  # fmt: skip
    sim.printer.start_print("by-hand.gcode.3mf")

    async def by_hand() -> dict[str, Any] | None:
        items = (await farm.ok("GET", f"/api/history?printer={printer_id}&file=by-hand"))["items"]
        return items[0] if items else None

    record = await wait_for(by_hand, timeout=20, what="the print started at the printer")
    assert record["queue_job_id"] is None
    assert record["started_by"] is None


async def test_restart_mid_dispatch_never_sends_twice(farm_factory: FarmFactory) -> None:
    farm = await farm_factory(PRINTFORGE_QUEUE_START_TIMEOUT_S="2")
    sim, _ = await _bambu(farm, auto_clear_bed=True)
    # 1. The hub goes away while the start is on its way (the printer answers slowly): the
    # start never reached the printer, so the next hub finds it idle and dispatches again.
    sim.faults.slow(3.0)
    first = await _pla_job(farm)
    await wait_for(lambda: _job_state(farm, first["id"], "dispatching"), timeout=10, what="sent")
    await farm.stop_hub()
    sim.faults.slow(0)
    await farm.start_hub()
    done = await wait_for(
        lambda: _job_state(farm, first["id"], "done"), timeout=30, what="first job done"
    )
    assert "did not start it" in (done["runs"][0]["error"] or "")
    assert [e.outcome for e in sim.printer.log] == ["finished"]
    # 2. The printer started the job but the hub died before it noticed: the next hub sees
    # the print on the printer and follows it; it is never sent again.
    second = await _pla_job(farm, prediction=3000)
    printing = await wait_for(
        lambda: _job_state(farm, second["id"], "printing"), timeout=10, what="printing"
    )
    await farm.stop_hub()
    database = await _reopen(farm)
    await database.execute(
        "UPDATE queue_jobs SET state = 'dispatching' WHERE id = :j", {"j": second["id"]}
    )
    await database.execute(
        "UPDATE queue_runs SET state = 'sent' WHERE id = :r", {"r": printing["runs"][-1]["id"]}
    )
    await database.disconnect()
    await farm.start_hub()
    again = await wait_for(
        lambda: _job_state(farm, second["id"], "printing", "done"), timeout=15, what="followed"
    )
    assert len(again["runs"]) == 1
    assert [e.file for e in sim.printer.log].count(again["runs"][0]["filename"]) == 1


async def _reopen(farm: Farm) -> Any:
    from hub.store import db as store

    return await store.connect(farm.settings.database_url)


async def test_a_job_read_back_is_news_only_when_another_process_changed_it(
    farm_factory: FarmFactory,
) -> None:
    farm = await farm_factory()
    job = await _pla_job(farm)  # no printer: it stays queued
    queue = farm.hub.queue
    own = await store.get_job(farm.hub.db, job["id"])
    assert own is not None
    # This hub made (and announced) that version: reading it back is not a second change.
    assert not queue.is_news(own)
    heard: list[QueueJobChanged] = []
    farm.hub.bus.subscribe(QueueJobChanged, heard.append, name="test.heard", inline=True)
    queue.remember(own, announce=queue.is_news(own))
    assert heard == []
    # Another hub process sharing the database holds the job: that version is news, once.
    other = await store.save_job(farm.hub.db, replace(own, state="held", waiting_reason="x"))
    assert queue.is_news(other)
    queue.remember(other, announce=queue.is_news(other))
    assert [(e.job_id, e.state, e.outboxed) for e in heard] == [(own.id, "held", True)]
    assert not queue.is_news(other)


async def test_who_forced_a_dispatch_survives_a_restart_before_the_print_is_linked(
    farm_factory: FarmFactory,
) -> None:
    """The forced dispatch is acknowledged, the printer starts, the hub goes away before it
    hears of the print: the next hub still records the user who forced it."""
    farm = await farm_factory()
    sim, printer_id = await _bambu(farm)  # bed never confirmed: only a forced dispatch sends
    job = await _pla_job(farm)
    await farm.ok("POST", "/api/users", {"username": "olga", "password": "olga-password", "role": "operator"})  # fmt: skip
    async with farm.session.post(
        f"{farm.base}/api/auth/login", json={"username": "olga", "password": "olga-password"}
    ) as r:
        olga = {"Authorization": f"Bearer {(await r.json())['token']}"}

    def on_job(what: str, *_: Any) -> None:
        # The printer takes the start, then hangs before its first report of the print and
        # holds the print (paused) until the next hub is up.
        if what == "started":
            sim.faults.freeze(True)
            sim.printer.pause()

    sim.printer.job_listeners.append(on_job)
    async with farm.session.post(
        f"{farm.base}/api/queue/dispatch", headers=olga,
        json={"job_id": job["id"], "printer_id": printer_id},
    ) as r:  # fmt: skip
        assert r.status == 200, await r.text()
    await wait_for(lambda: len(sim.printer.log) == 1, timeout=10, what="the printer started")
    await farm.stop_hub()
    assert await _history(farm, printer_id) == []  # nothing linked before the restart
    sim.printer.job_listeners.remove(on_job)
    sim.faults.freeze(False)
    await farm.start_hub()
    await wait_for(lambda: _job_state(farm, job["id"], "printing"), timeout=15, what="followed")
    sim.printer.resume()
    await wait_for(lambda: _job_state(farm, job["id"], "done"), timeout=20, what="printed")

    async def linked() -> list[dict[str, Any]] | None:
        items = await _history(farm, printer_id)
        return items if items and items[0]["queue_job_id"] else None

    (record,) = await wait_for(linked, timeout=10, what="the record linked to its job")
    assert record["queue_job_id"] == job["id"] and job["added_by"] == "admin"
    assert record["started_by"] == "olga"
    assert [e.outcome for e in sim.printer.log] == ["finished"]


async def _history(farm: Farm, printer_id: str) -> list[dict[str, Any]]:
    database = await _reopen(farm)
    try:
        rows = await database.fetch_all(
            "SELECT queue_job_id, started_by FROM prints WHERE printer_id = :p", {"p": printer_id}
        )
    finally:
        await database.disconnect()
    return [dict(r._mapping) for r in rows]


async def test_a_second_report_of_one_print_end_changes_nothing(farm_factory: FarmFactory) -> None:
    farm = await farm_factory()
    _sim, _printer_id = await _bambu(farm, auto_clear_bed=True)
    queue, dispatcher = farm.hub.queue, farm.hub.dispatcher
    printing: list[tuple[Any, Any]] = []

    def capture(event: QueueJobChanged) -> None:
        job = queue.jobs.get(event.job_id)
        if event.state == "printing" and job is not None and job.run_id in dispatcher.runs:
            printing.append((job, dispatcher.runs[job.run_id]))

    farm.hub.bus.subscribe(QueueJobChanged, capture, name="test.printing", inline=True)
    job = await _pla_job(farm)
    done = await wait_for(lambda: _job_state(farm, job["id"], "done"), timeout=30, what="done")
    assert len(printing) == 1
    heard: list[QueueJobChanged] = []
    farm.hub.bus.subscribe(QueueJobChanged, heard.append, name="test.heard", inline=True)
    # The end is reported again (printer status and lifecycle stream both carry it) by a
    # caller holding the job as it was while printing: the settled job stays as it is.
    stale_job, stale_run = printing[0]
    await dispatcher.print_ended(stale_job, stale_run, LifecycleKind.FINISHED)
    await dispatcher.mark_printing(replace(stale_job, state="dispatching"), stale_run)
    assert heard == []
    after = await farm.job(job["id"])
    assert (after["state"], after["copies_done"]) == ("done", done["copies_done"]) == ("done", 1)
    assert after["updated_at"] == done["updated_at"]


async def test_a_job_caught_by_a_restart_on_a_printer_that_stays_offline_says_so(
    farm_factory: FarmFactory,
) -> None:
    farm = await farm_factory(PRINTFORGE_QUEUE_START_TIMEOUT_S="2")
    sim, _ = await _bambu(farm, auto_clear_bed=True)
    sim.faults.slow(3.0)  # the start is on its way when the hub goes away
    job = await _pla_job(farm)
    await wait_for(lambda: _job_state(farm, job["id"], "dispatching"), timeout=10, what="sent")
    await farm.stop_hub()
    await farm.fleet.remove(sim)  # switched off: the next hub cannot ask it what it printed
    await farm.start_hub()
    requeued = await wait_for(
        lambda: _job_state(farm, job["id"], "queued"), timeout=20, what="job requeued"
    )
    assert "restarted during the dispatch" in requeued["last_error"]
    assert "stayed offline for 2 s after the restart" in requeued["last_error"]
    assert [r["state"] for r in requeued["runs"]] == ["requeued"]
    assert sim.printer.log == []
