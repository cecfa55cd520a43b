"""Moonraker, PrusaLink and OctoPrint payloads mapped to the normalized state."""

from __future__ import annotations

import time

from hub.model import PrintState
from integrations.printers.moonraker.status import KlipperStatus
from integrations.printers.octoprint.status import OctoPrintStatus
from integrations.printers.prusalink.status import PrusaLinkStatus


def _klipper(payload) -> KlipperStatus:
    status = KlipperStatus()
    status.klippy_state = "ready"
    status.replace(payload("moonraker_subscribe.json")["result"]["status"])
    return status


def test_moonraker_subscribe_reply(payload):
    state = _klipper(payload).to_state("k1")
    assert state.online and state.state is PrintState.PRINTING
    assert state.job is not None
    assert (state.job.file, state.job.progress) == ("calib_cube.gcode", 25.0)
    assert (state.job.layer, state.job.total_layers) == (25, 100)
    assert state.job.remaining_s == 900  # 300 s for 25 %: 900 s to go
    assert state.job.started_at is not None
    assert (state.temps.nozzle, state.temps.nozzle_target, state.temps.bed) == (209.7, 210.0, 59.9)
    assert state.errors == ()


def test_moonraker_deltas(payload):
    status = _klipper(payload)
    started = status.to_state("k1").job.started_at
    updates = [n["params"][0] for n in payload("moonraker_notifications.json")]
    assert status.update(updates[0])
    state = status.to_state("k1")
    assert state.job.progress == 50.0 and state.job.layer == 50 and state.temps.nozzle == 210.1
    assert state.temps.bed == 59.9  # untouched object survives
    assert state.job.started_at == started
    assert not status.update(updates[0])
    status.update(updates[1])
    assert status.to_state("k1").state is PrintState.PAUSED
    status.update(updates[2])
    assert status.to_state("k1").state is PrintState.CANCELLED
    status.update(updates[3])
    state = status.to_state("k1")
    assert state.state is PrintState.FAILED
    assert "Move out of range" in state.errors[0].text


def test_moonraker_klippy_not_ready(payload):
    status = _klipper(payload)
    status.update(
        {"webhooks": {"state": "shutdown", "state_message": "MCU 'mcu' shutdown: Timer too close"}}
    )
    state = status.to_state("k1")
    assert state.state is PrintState.ERROR and state.job is None
    assert state.errors[0].code == "KLIPPY_SHUTDOWN" and "Timer too close" in state.errors[0].text
    fresh = KlipperStatus()
    fresh.klippy_state = "startup"
    state = fresh.to_state("k1")
    assert state.state is PrintState.OFFLINE and state.online
    assert state.errors[0].text == "Klipper is startup"


def test_moonraker_same_file_started_again_without_history_gets_a_new_start(payload):
    status = _klipper(payload)
    status.update({"print_stats": {"state": "printing", "total_duration": 600.0}})
    first = status.to_state("k1").job.started_at
    status.update({"print_stats": {"total_duration": 630.0}})
    assert status.to_state("k1").job.started_at == first  # the same print goes on
    # Cancelled and started again between two updates: only the duration tells.
    status.update({"print_stats": {"total_duration": 2.0}})
    again = status.to_state("k1").job.started_at
    assert again is not None and first is not None
    assert again > first + 100 and abs(again - (time.time() - 2.0)) < 5


def test_prusalink_printing(payload):
    status = PrusaLinkStatus()
    body = payload("prusalink_status_printing.json")
    assert status.needs_job_details(body)
    status.note_job(payload("prusalink_job.json"))
    assert not status.needs_job_details(body)
    state = status.to_state("mk4", body)
    assert state.state is PrintState.PRINTING
    assert state.job.file == "shape-box_0.4n_0.2mm_PLA_MK4_1h2m.bgcode"
    assert (state.job.progress, state.job.remaining_s, state.job.key) == (37.0, 1820, "297")
    assert state.temps.nozzle == 214.9 and state.temps.bed_target == 60.0
    assert state.fans == {}  # PrusaLink reports RPM, not percent


def test_prusalink_end_states_keep_the_job(payload):
    status = PrusaLinkStatus()
    body = payload("prusalink_status_printing.json")
    status.note_job(payload("prusalink_job.json"))
    status.to_state("mk4", body)
    finished = {"printer": {"state": "FINISHED"}}
    state = status.to_state("mk4", finished)
    assert state.state is PrintState.FINISHED and state.job.progress == 100.0
    assert state.job.file.startswith("shape-box")
    assert status.to_state("mk4", {"printer": {"state": "STOPPED"}}).state is PrintState.CANCELLED
    assert status.to_state("mk4", {"printer": {"state": "IDLE"}}).job is None
    attention = status.to_state("mk4", {**body, "printer": {"state": "ATTENTION"}})
    assert attention.state is PrintState.PAUSED and attention.errors[0].code == "PRUSA_ATTENTION"
    assert status.to_state("mk4", {"printer": {"state": "BUSY"}}).state is PrintState.IDLE
    assert status.to_state("mk4", {"printer": {"state": "ERROR"}}).state is PrintState.ERROR


def _flags(**on: bool) -> dict:
    return {"state": {"flags": {"operational": True, **on}}, "temperature": {}}


def test_octoprint_printing(payload):
    status = OctoPrintStatus()
    state = status.to_state("op", payload("octoprint_printer.json"), payload("octoprint_job.json"))
    assert state.state is PrintState.PRINTING
    assert state.job.file == "whistle_v2.gcode" and state.job.progress == 0.23
    assert state.job.remaining_s == 912
    assert state.temps.nozzle == 214.8 and state.temps.bed_target == 60.0


def test_octoprint_outcomes(payload):
    job = payload("octoprint_job.json")
    status = OctoPrintStatus()
    assert status.to_state("op", _flags(ready=True), job).state is PrintState.IDLE
    status.to_state("op", _flags(printing=True), job)
    # While OctoPrint is still pausing it drops a resume: not paused yet.
    assert (
        status.to_state("op", _flags(paused=True, pausing=True), job).state is PrintState.PRINTING
    )
    assert status.to_state("op", _flags(paused=True), job).state is PrintState.PAUSED
    done = {**job, "progress": {"completion": 100.0}, "state": "Operational"}
    state = status.to_state("op", _flags(ready=True), done)
    assert state.state is PrintState.FINISHED and state.job.progress == 100.0
    assert status.to_state("op", _flags(ready=True), done).state is PrintState.FINISHED
    status.to_state("op", _flags(printing=True), {**job, "state": "Starting"})
    status.to_state("op", _flags(cancelling=True), job)
    assert status.to_state("op", _flags(ready=True), job).state is PrintState.CANCELLED
    status.to_state("op", _flags(printing=True), job)
    assert status.to_state("op", _flags(ready=True), job).state is PrintState.CANCELLED
    starting = status.to_state("op", _flags(printing=True), {**job, "state": "Starting"})
    assert starting.state is PrintState.PREPARING
    failed = status.to_state("op", _flags(error=True), job)
    assert failed.state is PrintState.ERROR


def test_octoprint_not_operational():
    state = OctoPrintStatus().to_state("op", None, {"state": "Offline"})
    assert state.online and state.state is PrintState.OFFLINE
    assert state.errors[0].code == "OCTOPRINT_NOT_OPERATIONAL"


def test_octoprint_offline_after_error_is_an_error_that_ends_the_print():
    status = OctoPrintStatus()
    status.to_state("op", _flags(printing=True), {"state": "Printing"})
    state = status.to_state("op", None, {"state": "Offline after error: thermal runaway"})
    assert state.online and state.state is PrintState.ERROR
    assert state.errors[0].code == "OCTOPRINT_ERROR" and "thermal runaway" in state.errors[0].text
    # Once the error is cleared, the print is remembered as failed, not cancelled.
    assert status.to_state("op", _flags(ready=True), {"state": "Operational"}).state is (
        PrintState.FAILED
    )
