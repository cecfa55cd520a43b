"""Bambu driver against the simulated X1C (full reports) and P1S (partial reports)."""

from __future__ import annotations

import asyncio
import ssl

import pytest

from hub.model import Connection, PrintState
from integrations.printers.bambu.driver import BambuDriver
from integrations.printers.base import CommandRejected, PrintOptions
from integrations.printers.read_pacer import pacer_of
from integrations.simulator import SimPrinter
from tests.helpers import wait_for
from tests.integrations.printers.conftest import config_for


def _matches_sim(driver: BambuDriver, printer: SimPrinter) -> bool:
    state, sim = driver.state, printer.printer
    units = [u for u in state.ams if u.unit != 254]
    if len(units) != len(sim.ams):
        return False
    for unit, sim_unit in zip(units, sim.ams, strict=True):
        seen = [(t.slot, t.material, t.color, t.remain) for t in unit.trays]
        want = [(t.slot, t.material, t.color, t.remain) for t in sim_unit.trays]
        if seen != want or unit.humidity != sim_unit.humidity_raw:
            return False
    return (
        state.active_tray == sim.active_slot
        and state.temps.bed == pytest.approx(sim.bed, abs=1.0)
        and state.light == (sim.lights["chamber_light"] == "on")
    )


@pytest.mark.parametrize(("model", "full"), [("X1C", True), ("P1S", False), ("A1", False)])
async def test_state_matches_the_printer_for_each_model(fleet, connect, model, full):
    printer = await fleet.add("bambu", model=model, port=0)
    rec = await connect(printer)
    driver = rec.driver
    assert isinstance(driver, BambuDriver) and driver.full_reporter is full
    await wait_for(lambda: _matches_sim(driver, printer), what=f"{model} state mirrored")
    assert driver.firmware
    assert driver.state.wifi_signal is not None and driver.state.wifi_signal < 0
    # Partial reports keep the AMS (sent once) while temperatures move during a print.
    await driver.start_print("cube.gcode", b"; estimated printing time: 2h\n", PrintOptions())
    await wait_for(lambda: driver.state.state is PrintState.PRINTING, what="printing")
    await wait_for(lambda: (driver.state.job.progress or 0) > 0, what="progress")
    assert _matches_sim(driver, printer) or driver.state.ams
    job = driver.state.job
    assert job.file == "cube" and job.total_layers and job.remaining_s and job.started_at


async def test_hms_errors_failures_and_runout(fleet, connect):
    printer = await fleet.add("bambu", model="P1S", port=0)
    rec = await connect(printer)
    driver = rec.driver
    await wait_for(lambda: driver.state.state is PrintState.IDLE, what="idle")
    printer.faults.raise_hms(0x07008000, 0x00030002)
    await wait_for(
        lambda: [e.code for e in driver.state.errors] == ["HMS_0700_8000_0003_0002"],
        what="HMS error",
    )
    assert driver.state.errors[0].severity == "warning"
    printer.faults.clear_hms()
    await wait_for(lambda: driver.state.errors == (), what="HMS cleared")

    await driver.start_print("a.gcode", b"; estimated printing time: 2h\n", PrintOptions())
    await wait_for(lambda: driver.state.state is PrintState.PRINTING, what="printing")
    printer.faults.fail_print()
    await wait_for(lambda: driver.state.state is PrintState.FAILED, what="failed")
    assert any(e.code.startswith("PRINT_") for e in driver.state.errors)

    printer.printer.clear_job()
    await driver.start_print("b.gcode", b"; estimated printing time: 2h\n", PrintOptions())
    await wait_for(lambda: driver.state.state is PrintState.PRINTING, what="printing again")
    printer.faults.runout()
    await wait_for(
        lambda: driver.state.state is PrintState.PAUSED and driver.state.errors, what="runout"
    )


async def test_pushall_is_rate_limited_for_p1_but_not_x1(fleet, connect):
    counts: dict[str, int] = {}
    drivers = {}
    printers = {}
    for model in ("P1S", "X1C"):
        printers[model] = await fleet.add("bambu", model=model, port=0)
        drivers[model] = (await connect(printers[model], printer_id=model)).driver
        original = drivers[model]._pushall

        async def counted(model=model, original=original) -> None:
            counts[model] = counts.get(model, 0) + 1
            await original()

        drivers[model]._pushall = counted  # type: ignore[method-assign]
    for model in ("P1S", "X1C"):
        await wait_for(lambda m=model: drivers[m].state.online, what=f"{model} online")
        assert counts[model] == 1
    for model in ("P1S", "X1C"):
        printers[model].faults.drop_connection()
    for model in ("P1S", "X1C"):
        await wait_for(
            lambda m=model: drivers[m].state.online and drivers[m]._client is not None,
            what=f"{model} back",
        )
    await wait_for(lambda: counts["X1C"] == 2, what="X1C asked again")
    assert counts["P1S"] == 1  # deferred: the last pushall was moments ago
    assert drivers["P1S"].state.ams  # the cached full state is shown meanwhile


async def test_certificate_verification_with_the_serial_as_server_name(fleet, connect, tmp_path):
    printer = await fleet.add("bambu", model="X1C", port=0)
    other = await fleet.add("bambu", model="X1C", port=0)
    # Pin each printer's self-signed certificate, as an operator would on first use.
    pinned, wrong = tmp_path / "printer.pem", tmp_path / "other.pem"
    for path, sim in ((pinned, printer), (wrong, other)):
        pem = await asyncio.to_thread(ssl.get_server_certificate, (sim.host, sim.port))
        path.write_text(pem)
    rec = await connect(printer, verify_tls=True, ca_file=str(pinned))
    await wait_for(lambda: rec.driver.state.online, what="verified TLS link")
    await rec.driver.start_print("v.gcode", b"; estimated printing time: 2h\n", PrintOptions())

    bad = await connect(printer, printer_id="p2", verify_tls=True, ca_file=str(wrong))
    await wait_for(lambda: bad.driver.link.last_error, what="a refused certificate")
    assert "certificate verify failed" in bad.driver.link.last_error
    assert bad.driver.link.connection is Connection.OFFLINE


async def test_upload_refused_access_code(fleet, connect):
    printer = await fleet.add("bambu", model="P1S", port=0)
    rec = await connect(printer)
    await wait_for(lambda: rec.driver.state.state is PrintState.IDLE, what="idle")
    printer.faults.refuse_auth(True)  # the open MQTT link stays; new FTPS logins fail
    with pytest.raises(CommandRejected, match="access code refused"):
        await rec.driver.start_print("x.gcode", b"G28\n", PrintOptions())


async def test_missing_serial_or_code_is_an_auth_problem(fleet, connect):
    printer = await fleet.add("bambu", model="P1S", port=0)
    config = config_for(printer, secret="")
    driver = BambuDriver(config, lambda state: None)
    await driver.start()
    try:
        await wait_for(lambda: driver.link.connection is Connection.AUTH_FAILED, what="no code")
        assert "no access code" in (driver.link.last_error or "")
    finally:
        await driver.stop()


async def test_reconnects_reuse_one_tls_context(fleet, connect, tmp_path):
    printer = await fleet.add("bambu", model="X1C", port=0)
    pem = tmp_path / "printer.pem"
    pem.write_text(
        await asyncio.to_thread(ssl.get_server_certificate, (printer.host, printer.port))
    )
    rec = await connect(printer, verify_tls=True, ca_file=str(pem))
    contexts: list[ssl.SSLContext] = []  # held, so that identities cannot be reused
    for drop in range(4):
        await wait_for(
            lambda: rec.driver.link.connection is Connection.ONLINE and rec.driver._link,
            what=f"online after {drop} drop(s)",
        )
        link = rec.driver._link
        contexts.append(link.paho._ssl_context)
        if drop < 3:
            printer.faults.drop_connection()
            await wait_for(lambda link=link: rec.driver._link is not link, what="the link replaced")
    assert len({id(c) for c in contexts}) == 1  # one context built, four sessions over it
    assert contexts[0].verify_mode is ssl.CERT_REQUIRED


async def test_unverified_printers_share_the_hubs_one_tls_context(fleet, connect):
    recs = []
    for n in range(2):
        printer = await fleet.add("bambu", model="P1S", port=0)
        recs.append((printer, await connect(printer, printer_id=f"p{n + 1}")))
    contexts: list[ssl.SSLContext] = []
    for printer, rec in recs:
        for drop in range(2):
            await wait_for(
                lambda rec=rec: (
                    rec.driver.link.connection is Connection.ONLINE and rec.driver._link
                ),
                what=f"online after {drop} drop(s)",
            )
            link = rec.driver._link
            contexts.append(link.paho._ssl_context)
            if drop == 0:
                printer.faults.drop_connection()
                await wait_for(lambda rec=rec, link=link: rec.driver._link is not link)
    assert len({id(c) for c in contexts}) == 1  # two printers, four sessions, one context
    assert contexts[0].verify_mode is ssl.CERT_NONE


async def test_links_read_one_per_turn_still_mirror_state_and_answer_commands(fleet, connect):
    pacer = pacer_of(asyncio.get_running_loop())
    pacer.slice_s = 0.0  # every turn reads one link: the others wait, parked, for theirs
    printers = [await fleet.add("bambu", model="X1C", port=0) for _ in range(6)]
    recs = [await connect(p, printer_id=f"p{n + 1}") for n, p in enumerate(printers)]
    for rec, printer in zip(recs, printers, strict=True):
        await wait_for(lambda r=rec, p=printer: _matches_sim(r.driver, p), what="state mirrored")
    await wait_for(lambda: pacer.deferred > 0, what="reads put off to a later turn")
    driver = recs[0].driver
    await driver.start_print("paced.gcode", b"; estimated printing time: 2h\n", PrintOptions())
    await wait_for(lambda: driver.state.state is PrintState.PRINTING, what="printing")
    await driver.command("pause", {})
    await wait_for(lambda: driver.state.state is PrintState.PAUSED, what="paused")
