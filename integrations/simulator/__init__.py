"""Simulated printer fleet speaking the real Bambu, Moonraker, PrusaLink and OctoPrint protocols.

Usage::

    async with Fleet(speed=60.0, subnet="127.0.0.0") as fleet:
        p = await fleet.add("bambu", model="X1C")        # or P1S, P1P, A1; "moonraker", ...
        p.host, p.port, p.serial, p.secret, p.ftps_port
        await fleet.load_file(p, "cube.gcode", data)
        p.printer.start_print("cube.gcode")
        p.faults.go_silent(True)
        fleet.describe()                                 # JSON for `printforge printers import`

See docs/simulator.md.
"""

from __future__ import annotations

from integrations.simulator.clock import AcceleratedClock, Clock, ManualClock
from integrations.simulator.faults import Faults
from integrations.simulator.fleet import Fleet, SimPrinter
from integrations.simulator.model import PrintModel, SimError, SimFile, SimJob

__all__ = [
    "AcceleratedClock",
    "Clock",
    "Faults",
    "Fleet",
    "ManualClock",
    "PrintModel",
    "SimError",
    "SimFile",
    "SimJob",
    "SimPrinter",
]
