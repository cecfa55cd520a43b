"""Every command and upload-and-start, round trip through each protocol to the simulator."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hub.model import Connection, PrintState
from integrations.printers.base import (
    CommandRejected,
    CommandTimeout,
    CommandUnsupported,
    InvalidParams,
    PrintOptions,
)
from integrations.printers.commands import ALL_COMMANDS
from integrations.printers.prusalink.driver import PrusaLinkDriver
from tests.helpers import wait_for
from tests.integrations.printers.conftest import config_for

PROTOCOLS = ["bambu", "moonraker", "prusalink", "octoprint"]
JOB = b"; estimated printing time: 2h\n; total layer number: 60\nG1 X10 Y10\n"


async def _printing(fleet, connect, protocol, **options):
    printer = await fleet.add(protocol, port=0)
    rec = await connect(printer, **options)
    driver = rec.driver
    await wait_for(lambda: driver.state.state is PrintState.IDLE, what="idle")
    await driver.start_print("job.gcode", JOB, PrintOptions())
    assert printer.printer.find_file("job.gcode") is not None, "the upload did not arrive"
    await wait_for(lambda: driver.state.state is PrintState.PRINTING, what="printing")
    return printer, driver


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_upload_start_and_every_supported_command(fleet, connect, protocol):
    printer, driver = await _printing(fleet, connect, protocol)
    sim = printer.printer
    assert driver.state.job is not None and driver.state.job.file in ("job", "job.gcode")
    caps = driver.capabilities

    with pytest.raises(CommandRejected, match="printing"):
        await driver.start_print("other.gcode", JOB, PrintOptions())
    with pytest.raises(CommandRejected, match="not paused"):
        await driver.command("resume", {})
    for name in sorted(ALL_COMMANDS - caps):
        with pytest.raises(CommandUnsupported, match=f"'{name}' is not supported by {protocol}"):
            await driver.command(name, {})

    if "speed" in caps:
        assert await driver.command("speed", {"level": 3}) == {"command": "speed", "accepted": True}
        assert sim.speed_level == 3
        if protocol == "bambu":
            await wait_for(lambda: driver.state.speed_level == 3, what="speed reported")
    if "set_temperature" in caps:
        await driver.command("set_temperature", {"heater": "bed", "target": 65})
        assert sim.bed_target == 65
        await wait_for(lambda: driver.state.temps.bed_target == 65, what="bed target reported")
        await driver.command("set_temperature", {"heater": "nozzle", "target": 230})
        assert sim.nozzle_target == 230
    if "gcode" in caps:
        await driver.command("gcode", {"line": "M106 S255"})
        assert sim.part_fan == 100

    await driver.command("pause", {})
    assert sim.state is PrintState.PAUSED
    await wait_for(lambda: driver.state.state is PrintState.PAUSED, what="paused")
    await driver.command("resume", {})
    await wait_for(lambda: driver.state.state is PrintState.PRINTING, what="resumed")
    await driver.command("stop", {})
    await wait_for(lambda: driver.state.state is PrintState.CANCELLED, what="cancelled")

    with pytest.raises(CommandRejected, match="not printing"):
        await driver.command("pause", {})
    if "home" in caps:
        await driver.command("home", {})
    if "light" in caps:
        await driver.command("light", {"on": False})
        assert sim.lights["chamber_light"] == "off"
        await wait_for(lambda: driver.state.light is False, what="light reported off")
    if "ams_change" in caps:
        await driver.command("ams_change", {"tray": 2})
        assert sim.active_slot == 2
        await wait_for(lambda: driver.state.active_tray == 2, what="active tray reported")


async def test_bambu_start_with_ams_mapping_and_refusals(fleet, connect):
    printer = await fleet.add("bambu", model="X1C", port=0, ams_units=1)
    rec = await connect(printer)
    driver = rec.driver
    await wait_for(lambda: driver.state.state is PrintState.IDLE, what="idle")
    with pytest.raises(CommandRejected, match="refused 'ams_change_filament': no tray 9"):
        await driver.command("ams_change", {"tray": 9})
    with pytest.raises(InvalidParams, match="'level'"):
        await driver.command("speed", {"level": 9})
    with pytest.raises(InvalidParams, match="plain name"):
        await driver.start_print("../etc/passwd", b"", PrintOptions())
    await driver.start_print("plate.gcode", JOB, PrintOptions(ams_mapping=(3,)))
    await wait_for(lambda: driver.state.state is PrintState.PRINTING, what="printing")
    assert driver.state.active_tray == 3
    assert driver.state.job is not None and driver.state.job.key


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_commands_time_out_when_the_printer_does_not_answer(fleet, connect, protocol):
    printer, driver = await _printing(fleet, connect, protocol, command_timeout_s=0.3)
    printer.faults.slow(2.0)
    printer.faults.go_silent(protocol in ("bambu", "moonraker"))
    with pytest.raises(CommandTimeout, match=r"within 0\.3s"):
        await driver.command("pause", {})


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_commands_to_an_offline_printer_are_rejected(fleet, connect, protocol):
    printer = await fleet.add(protocol, port=0)
    await fleet.remove(printer)
    rec = await connect(printer)
    await wait_for(lambda: rec.driver.link.last_error, what="a failed attempt")
    with pytest.raises(
        CommandRejected, match=r"cannot pause printer p1: it is (offline|connecting)"
    ):
        await rec.driver.command("pause", {})
    with pytest.raises(CommandRejected, match="cannot start a print on printer p1"):
        await rec.driver.start_print("a.gcode", b"G28\n", PrintOptions())


async def test_http_409_becomes_a_rejection_with_the_reason(fleet, connect):
    printer = await fleet.add("octoprint", port=0)
    rec = await connect(printer)
    driver = rec.driver
    await wait_for(lambda: driver.link.connection is Connection.ONLINE, what="online")
    body = {"command": "pause", "action": "pause"}
    with pytest.raises(CommandRejected, match="in its current state"):
        await driver._send("POST", "/api/job", "pause", json=body)


async def test_prusalink_accepts_the_api_key_header(fleet):
    printer = await fleet.add("prusalink", port=0)
    digest = config_for(printer)
    assert set(digest.secrets) == {"password"}
    keyed = replace(digest, secrets={"api_key": printer.secret})
    driver = PrusaLinkDriver(keyed, lambda state: None)
    await driver.start()
    try:
        await wait_for(lambda: driver.state.state is PrintState.IDLE, what="idle with X-Api-Key")
    finally:
        await driver.stop()
