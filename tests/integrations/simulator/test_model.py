"""The print model on a manual clock: heat-up, progress, filament, run-out, errors."""

from __future__ import annotations

import pytest

from hub.model import PrintState
from integrations.simulator import ManualClock, PrintModel, SimError
from integrations.simulator.model import CANCELLED_BY_USER, RUNOUT_CODE, runout_hms_attr

from .conftest import gcode


def make(ams_units: int = 1, prepare_s: float = 10.0) -> tuple[ManualClock, PrintModel]:
    clock = ManualClock()
    model = PrintModel(clock, serial="TEST", ams_units=ams_units, prepare_s=prepare_s)
    model.add_file("cube.gcode", gcode(time_s=1000, layers=50, grams=20.0))
    return clock, model


def step(clock: ManualClock, model: PrintModel, seconds: float, dt: float = 1.0) -> None:
    elapsed = 0.0
    while elapsed < seconds:
        clock.advance(dt)
        model.tick()
        elapsed += dt


def heat_up(clock: ManualClock, model: PrintModel) -> None:
    for _ in range(1000):
        if model.state is not PrintState.PREPARING:
            return
        step(clock, model, 1)
    raise AssertionError("never finished preparing")


def test_idle_at_start_and_ambient() -> None:
    _, model = make()
    assert model.state is PrintState.IDLE
    assert model.job is None
    assert model.nozzle == pytest.approx(24.0)


def test_heat_up_then_print_follows_the_estimate() -> None:
    clock, model = make()
    model.start_print("cube.gcode")
    assert model.state is PrintState.PREPARING
    assert (model.nozzle_target, model.bed_target) == (215, 60)  # from the file's M104/M140
    step(clock, model, 5)
    assert model.state is PrintState.PREPARING
    assert 24 < model.nozzle < 215
    heat_up(clock, model)
    assert model.state is PrintState.PRINTING
    assert model.nozzle == pytest.approx(215, abs=2)
    job = model.job
    assert job is not None and job.progress == 0
    step(clock, model, 500)
    assert job.progress == pytest.approx(0.5, abs=0.01)
    assert job.layer == 26
    assert job.remaining_s() == pytest.approx(500, abs=10)
    step(clock, model, 501)
    assert model.state is PrintState.FINISHED
    assert job.percent == 100 and job.layer == 50
    assert model.nozzle_target == 0


def test_filament_is_drawn_from_the_active_tray() -> None:
    clock, model = make()
    tray = model.active_tray
    assert tray is not None
    before = tray.grams
    model.start_print("cube.gcode")
    heat_up(clock, model)
    step(clock, model, 1100)
    assert model.state is PrintState.FINISHED
    assert before - tray.grams == pytest.approx(20.0, abs=0.01)
    assert model.job is not None and model.job.grams_used == pytest.approx(20.0, abs=0.01)


def test_remain_percent_follows_grams() -> None:
    _, model = make()
    tray = model.tray(1)
    assert tray is not None
    tray.grams = 333
    assert tray.remain == 33
    tray.empty = True
    assert tray.remain == 0 and not tray.has_filament


def test_speed_level_changes_rate_and_remaining() -> None:
    clock, model = make()
    model.start_print("cube.gcode")
    heat_up(clock, model)
    model.set_speed_level(4)
    step(clock, model, 100)
    job = model.job
    assert job is not None
    assert job.progress == pytest.approx(0.166, abs=0.01)
    assert job.remaining_s(model.speed_percent) == pytest.approx((1000 - 166) / 1.66, abs=10)
    with pytest.raises(SimError):
        model.set_speed_level(5)


def test_pause_resume_and_wrong_states() -> None:
    clock, model = make()
    with pytest.raises(SimError):
        model.pause()
    model.start_print("cube.gcode")
    heat_up(clock, model)
    step(clock, model, 100)
    model.pause()
    job = model.job
    assert job is not None
    done = job.work_s
    step(clock, model, 100)
    assert job.work_s == done
    with pytest.raises(SimError):
        model.start_print("cube.gcode")
    model.resume()
    assert model.state is PrintState.PRINTING
    with pytest.raises(SimError):
        model.resume()


def test_cancel_sets_the_user_cancel_code() -> None:
    clock, model = make()
    model.start_print("cube.gcode")
    step(clock, model, 3)
    model.cancel()
    assert model.state is PrintState.CANCELLED
    assert model.print_error == CANCELLED_BY_USER
    with pytest.raises(SimError):
        model.cancel()
    model.start_print("cube.gcode")  # a finished/cancelled printer takes a new job
    assert model.print_error == 0


def test_fail_print() -> None:
    clock, model = make()
    model.start_print("cube.gcode")
    heat_up(clock, model)
    model.fail(1234, "nozzle clog")
    assert model.state is PrintState.FAILED
    assert (model.print_error, model.message) == (1234, "nozzle clog")


def test_runout_pauses_raises_hms_and_tray_switch_resumes() -> None:
    clock, model = make()
    model.start_print("cube.gcode", slot=2)
    heat_up(clock, model)
    step(clock, model, 100)
    model.runout()
    assert model.state is PrintState.PAUSED
    assert (runout_hms_attr(2), RUNOUT_CODE) in model.hms
    assert runout_hms_attr(2) == 0x07002200
    with pytest.raises(SimError):
        model.resume()  # tray 2 is empty
    with pytest.raises(SimError):
        model.change_tray(2)
    model.change_tray(3)
    model.resume()
    assert model.state is PrintState.PRINTING
    assert model.hms == []
    assert model.job is not None and model.job.slot == 3


def test_natural_runout_when_the_spool_is_used_up() -> None:
    clock, model = make()
    tray = model.active_tray
    assert tray is not None
    tray.grams = 5.0  # a quarter of what the file needs
    model.start_print("cube.gcode")
    heat_up(clock, model)
    step(clock, model, 600)
    assert model.state is PrintState.PAUSED
    assert tray.grams == 0
    job = model.job
    assert job is not None
    assert job.progress == pytest.approx(0.25, abs=0.01)
    assert model.hms


def test_external_spool_without_ams() -> None:
    clock, model = make(ams_units=0)
    assert model.active_slot == 254
    model.start_print("cube.gcode")
    heat_up(clock, model)
    model.runout()
    assert (0x07FF2000, RUNOUT_CODE) in model.hms


def test_gcode_sets_heaters_and_fan() -> None:
    clock, model = make()
    model.gcode("M104 S200\nM140 S55 ; bed\nM106 S255\nG28")
    assert (model.nozzle_target, model.bed_target, model.part_fan) == (200, 55, 100)
    step(clock, model, 200)
    assert model.nozzle == pytest.approx(200)


def test_hms_raise_and_clear_without_duplicates() -> None:
    _, model = make()
    model.raise_hms(0x0300_0100, 0x0001_0007)
    model.raise_hms(0x0300_0100, 0x0001_0007)
    assert model.hms == [(0x0300_0100, 0x0001_0007)]
    model.clear_hms()
    assert model.hms == []


def test_power_cycle_loses_the_job_but_keeps_files() -> None:
    clock, model = make()
    model.start_print("cube.gcode")
    step(clock, model, 20)
    model.raise_hms(1, 2)
    model.power_cycle()
    assert model.state is PrintState.IDLE and model.job is None and model.hms == []
    assert "cube.gcode" in model.files


def test_unknown_file_and_tray() -> None:
    _, model = make()
    with pytest.raises(SimError):
        model.start_print("nope.gcode")
    with pytest.raises(SimError):
        model.start_print("cube.gcode", slot=9)


def test_four_ams_units_limit() -> None:
    clock = ManualClock()
    assert len(PrintModel(clock, ams_units=4).ams) == 4
    with pytest.raises(ValueError):
        PrintModel(clock, ams_units=5)
