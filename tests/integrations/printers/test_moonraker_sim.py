"""Moonraker specifics against the simulator: Klipper's own states and re-subscription."""

from __future__ import annotations

import pytest

from hub.model import Connection, PrintState
from integrations.printers.base import CommandRejected, PrintOptions
from tests.helpers import wait_for


def _error_code(driver) -> str | None:
    errors = driver.state.errors
    return errors[0].code if errors else None


async def test_klippy_shutdown_and_recovery(fleet, connect):
    printer = await fleet.add("moonraker", port=0)
    rec = await connect(printer)
    driver = rec.driver
    await wait_for(lambda: driver.state.state is PrintState.IDLE, what="idle")
    await driver.start_print("k.gcode", b"; estimated printing time: 2h\n", PrintOptions())
    await wait_for(lambda: driver.state.state is PrintState.PRINTING, what="printing")

    printer.frontend.set_klippy_state("shutdown")
    await wait_for(lambda: driver.state.state is PrintState.ERROR, what="klippy shutdown")
    assert _error_code(driver) == "KLIPPY_SHUTDOWN"
    assert driver.state.online and driver.link.connection is Connection.ONLINE
    with pytest.raises(CommandRejected, match="not ready"):
        await driver.command("gcode", {"line": "M105"})

    printer.frontend.set_klippy_state("startup")  # becomes ready on its own shortly after
    await wait_for(lambda: driver.state.state is PrintState.FAILED, what="re-subscribed")
    await driver.command("set_temperature", {"heater": "bed", "target": 40})
    await wait_for(lambda: driver.state.temps.bed_target == 40, what="updates flow again")


async def test_klippy_error_and_disconnect_are_seen(fleet, connect):
    printer = await fleet.add("moonraker", port=0)
    rec = await connect(printer)
    driver = rec.driver
    await wait_for(lambda: driver.state.state is PrintState.IDLE, what="idle")
    printer.frontend.set_klippy_state("error")
    await wait_for(lambda: _error_code(driver) == "KLIPPY_ERROR", what="klippy error")
    assert driver.state.state is PrintState.ERROR
    printer.frontend.set_klippy_state("disconnected")
    await wait_for(lambda: _error_code(driver) == "KLIPPY_DISCONNECTED", what="disconnected")
    assert driver.state.state is PrintState.OFFLINE and driver.state.online
    printer.frontend.set_klippy_state("ready")
    await wait_for(lambda: driver.state.state is PrintState.IDLE, what="ready again")
    assert driver.state.errors == ()


async def test_print_failure_message_is_kept(fleet, connect):
    printer = await fleet.add("moonraker", port=0)
    rec = await connect(printer)
    driver = rec.driver
    await wait_for(lambda: driver.state.state is PrintState.IDLE, what="idle")
    await driver.start_print("f.gcode", b"; estimated printing time: 2h\n", PrintOptions())
    await wait_for(lambda: driver.state.state is PrintState.PRINTING, what="printing")
    printer.faults.fail_print(message="Heater extruder not heating at expected rate")
    await wait_for(lambda: driver.state.state is PrintState.FAILED, what="failed")
    assert "not heating" in driver.state.errors[0].text
    assert driver.state.job is not None and driver.state.job.file == "f.gcode"
