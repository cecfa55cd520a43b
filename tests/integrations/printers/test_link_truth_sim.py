"""Link state and print identity tell the truth: drivers against the simulator."""

from __future__ import annotations

import asyncio
import time

from hub.model import Connection, PrintState
from integrations.printers.bambu.report import BambuReport
from tests.helpers import wait_for
from tests.integrations.simulator.conftest import gcode


async def test_bambu_frozen_behind_a_live_broker_stays_stale_until_it_reports(fleet, connect):
    printer = await fleet.add("bambu", model="X1C", port=0)
    rec = await connect(printer, stale_after_s=1.5)
    await wait_for(lambda: rec.driver.link.connection is Connection.ONLINE, what="online")
    await wait_for(lambda: rec.driver.state.online, what="a report")
    printer.faults.freeze(True)
    await wait_for(lambda: rec.driver.link.connection is Connection.STALE, what="stale")
    # The broker takes the reconnect, but no report comes: a reconnect is no proof of life.
    stale_since = time.monotonic()
    while time.monotonic() - stale_since < 2.5:
        assert rec.driver.link.connection is Connection.STALE
        assert not rec.driver.state.online
        await asyncio.sleep(0.05)
    printer.faults.freeze(False)
    await wait_for(lambda: rec.driver.link.connection is Connection.ONLINE, what="back online")
    assert rec.driver.state.online


def test_bambu_unset_external_spool_is_empty() -> None:
    report = BambuReport()
    report.apply({"msg": 0, "gcode_state": "IDLE",
                  "vt_tray": {"id": "254", "tray_type": "", "tray_color": "00000000",
                              "remain": 0, "tag_uid": "0000000000000000"}})  # fmt: skip
    (spool,) = report.to_state("p1").ams
    assert spool.unit == 254 and spool.trays[0].empty
    report.apply({"vt_tray": {"id": "254", "tray_type": "PETG", "tray_color": "00FF00FF"}})
    (spool,) = report.to_state("p1").ams
    assert not spool.trays[0].empty and spool.trays[0].material == "PETG"


def test_bambu_job_key_falls_back_to_the_start_time_for_prints_without_ids() -> None:
    report = BambuReport()
    report.apply({"msg": 0, "gcode_state": "RUNNING", "task_id": "0", "subtask_id": "0",
                  "job_id": "", "gcode_start_time": "1700000123", "subtask_name": "cube"})  # fmt: skip
    job = report.to_state("p1").job
    assert job is not None and job.key == "start-1700000123" and job.started_at == 1700000123
    report.apply({"msg": 1, "job_id": "77"})
    assert report.to_state("p1").job.key == "77"  # type: ignore[union-attr]


async def test_moonraker_unreachable_drops_the_old_klipper_error(fleet, connect):
    printer = await fleet.add("moonraker", port=0)
    rec = await connect(printer)
    await wait_for(lambda: rec.driver.state.state is PrintState.IDLE, what="ready")
    printer.frontend.set_klippy_state("disconnected")  # type: ignore[attr-defined]
    await wait_for(lambda: rec.driver.state.errors, what="Klipper disconnected")
    await fleet.remove(printer)  # Moonraker itself gone
    await wait_for(lambda: rec.driver.link.connection is Connection.OFFLINE, what="offline")
    assert rec.driver.state.errors == ()
    assert rec.driver.link.last_error


async def test_octoprint_reconnect_shows_no_old_outcome_when_there_is_no_job(fleet, connect):
    printer = await fleet.add("octoprint", port=0)
    await fleet.load_file(printer, "long.gcode", gcode(time_s=36000))
    rec = await connect(printer)
    await wait_for(lambda: rec.driver.state.state is PrintState.IDLE, what="idle")
    printer.printer.start_print("long.gcode")
    await wait_for(lambda: rec.driver.state.state is PrintState.PRINTING, what="printing")
    printer.printer.cancel()
    await wait_for(lambda: rec.driver.state.state is PrintState.CANCELLED, what="cancelled")
    printer.printer.clear_job()  # OctoPrint now has no job
    await printer.faults.restart(delay=0.1)
    await wait_for(
        lambda: rec.driver.link.connection is Connection.ONLINE and rec.driver.state.online,
        what="reconnected",
    )
    await wait_for(lambda: rec.driver.state.state is PrintState.IDLE, what="idle again")
    assert rec.driver.state.job is None


async def test_moonraker_prints_of_one_file_get_their_history_ids(fleet, connect):
    printer = await fleet.add("moonraker", port=0)
    await fleet.load_file(printer, "cube.gcode", gcode(time_s=30))
    rec = await connect(printer)
    await wait_for(lambda: rec.driver.state.state is PrintState.IDLE, what="ready")
    for _ in range(2):
        printer.printer.start_print("cube.gcode")
        await wait_for(lambda: printer.printer.state is PrintState.FINISHED, what="finished")
    history = printer.frontend.history  # type: ignore[attr-defined]
    ids = [job["job_id"] for job in history]
    await wait_for(
        lambda: {e.job.key for s in rec.states for e in s.ended} >= set(ids), what="both ended"
    )
    keys = {s.job.key for s in rec.states if s.job is not None and s.job.key}
    assert keys == set(ids) and len(ids) == 2
    outcomes = {e.job.key: e.outcome for s in rec.states for e in s.ended}
    assert outcomes == dict.fromkeys(ids, "finished")


async def test_moonraker_reports_what_ended_while_the_link_was_down(fleet, connect):
    printer = await fleet.add("moonraker", port=0)
    await fleet.load_file(printer, "long.gcode", gcode(time_s=36000))
    rec = await connect(printer, auth_retry_s=0.3)
    await wait_for(lambda: rec.driver.state.state is PrintState.IDLE, what="ready")
    printer.printer.start_print("long.gcode")
    await wait_for(lambda: rec.driver.state.state is PrintState.PRINTING, what="printing")
    first = rec.driver.state.job
    assert first is not None and first.key
    # The link goes and stays away while the print is cancelled and the next one starts.
    printer.faults.refuse_auth(True)
    printer.faults.drop_connection()
    await wait_for(lambda: rec.driver.link.connection is Connection.AUTH_FAILED, what="away")
    seen = len(rec.states)
    printer.printer.cancel()
    printer.printer.start_print("long.gcode")  # the same file again
    printer.faults.refuse_auth(False)
    await wait_for(lambda: rec.driver.state.state is PrintState.PRINTING and rec.driver.state.online,
                   what="back, printing the next one")  # fmt: skip
    ended = [e for s in rec.states[seen:] for e in s.ended]
    assert [(e.job.key, e.outcome) for e in ended if e.job.key == first.key] == [
        (first.key, "cancelled")
    ]
    current = rec.driver.state.job
    assert current is not None and current.file == "long.gcode" and current.key != first.key
