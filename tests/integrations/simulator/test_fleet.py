"""Fleet API: address allocation, default ports, describe(), remove, the shared ticker."""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Callable

import pytest

from integrations.simulator import Fleet, ManualClock
from integrations.simulator.fleet import SPREAD_PARTS
from tests.helpers import wait_for

from .conftest import gcode


async def test_defaults_ports_addresses_and_describe(subnet: str):
    async with Fleet(speed=60.0, subnet=subnet) as fleet:
        bambu = await fleet.add("bambu", model="P1S")
        klipper = await fleet.add("moonraker")
        prusa = await fleet.add("prusalink", name="MK4 left")
        octo = await fleet.add("octoprint")
        base = ipaddress.IPv4Address(subnet)
        assert [p.host for p in fleet.printers] == [str(base + i) for i in (2, 3, 4, 5)]
        assert (bambu.port, bambu.ftps_port, klipper.port, prusa.port, octo.port) == (
            8883,
            990,
            7125,
            80,
            5000,
        )
        for p in fleet.printers:
            with socket.create_connection((p.host, p.port), timeout=2):
                pass
        entries = json.loads(json.dumps(fleet.describe()))
        assert entries[0] == {
            "name": bambu.name,
            "protocol": "bambu",
            "host": bambu.host,
            "port": 8883,
            "serial": bambu.serial,
            "model": "P1S",
            "access_code": bambu.secret,
            "ftps_port": 990,
        }
        assert entries[1]["api_key"] == klipper.secret
        assert entries[2]["password"] == prusa.secret and entries[2]["name"] == "MK4 left"
        assert entries[2]["username"] == "maker"
        assert entries[3]["api_key"] == octo.secret and entries[3]["protocol"] == "octoprint"
        assert len(bambu.secret) == 8 and bambu.secret.isdigit()
        assert len({p.serial for p in fleet.printers}) == 4
        assert fleet.get(bambu.serial) is bambu
        await fleet.remove(bambu)
        assert bambu not in fleet.printers
        with pytest.raises(OSError):
            socket.create_connection((bambu.host, 8883), timeout=2).close()


async def test_rejects_bad_arguments(subnet: str):
    with pytest.raises(ValueError):
        Fleet(subnet="10.0.0.0")
    async with Fleet(subnet=subnet) as fleet:
        with pytest.raises(ValueError):
            await fleet.add("makerbot")
        with pytest.raises(ValueError):
            await fleet.add("bambu", model="Z9")


async def test_manual_clock_fleet_steps_without_a_ticker(subnet: str):
    clock = ManualClock()
    async with Fleet(subnet=subnet, clock=clock, run_ticker=False) as fleet:
        p = await fleet.add("moonraker", port=0)
        await fleet.load_file(p, "cube.gcode", gcode(time_s=600, layers=10))
        p.printer.start_print("cube.gcode")
        for _ in range(200):
            clock.advance(10)
            fleet.step()
        assert p.printer.state.value == "finished"


async def test_allocation_skips_broadcast_and_network_addresses(subnet: str):
    async with Fleet(subnet=subnet, run_ticker=False) as fleet:
        hosts = [fleet.allocate_host() for _ in range(260)]
        assert all(int(h.rsplit(".", 1)[1]) not in (0, 1, 255) for h in hosts)
        assert len(set(hosts)) == 260


async def test_ticker_advances_the_accelerated_clock(subnet: str):
    async with Fleet(speed=600.0, subnet=subnet) as fleet:
        p = await fleet.add("prusalink", port=0)
        await fleet.load_file(p, "cube.gcode", gcode(time_s=120))
        p.printer.start_print("cube.gcode")
        await wait_for(lambda: p.printer.state.value == "finished", what="finished by the ticker")


async def test_report_instant_names_the_tick_and_slot_each_bambu_printer_reports_in(subnet: str):
    async with Fleet(subnet=subnet, clock=ManualClock(), run_ticker=False) as fleet:
        sims = [await fleet.add("bambu", model="P1S", port=0) for _ in range(25)]
        ticks = fleet.ticks_per_second
        for sim in sims:
            sim.frontend.on_tick(0)  # the first tick pushes at once (state seen for the first time)
        sent: dict[str, list[tuple[int, int]]] = {sim.serial: [] for sim in sims}
        at: list[tuple[int, int]] = [(0, 0)]

        def recorder(serial: str) -> Callable[[bool], None]:
            return lambda full: sent[serial].append(at[0])

        for sim in sims:
            sim.frontend.send_report = recorder(sim.serial)  # type: ignore[attr-defined]
        for tick in range(1, 2 * ticks + 1):
            for part in range(SPREAD_PARTS):
                at[0] = (tick % ticks, part)
                for sim in fleet._slot(part):
                    sim.frontend.on_tick(tick)
        for sim in sims:
            assert sent[sim.serial] == [fleet.report_instant(sim)] * 2  # once a second, there
        assert len({fleet.report_instant(sim) for sim in sims}) == 25  # spread, none shared
