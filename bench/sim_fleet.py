"""Benchmark worker: a simulated Bambu fleet that counts what it publishes and sets latency markers.

20 % X1C (full reports, four AMS units: ~12 KB a report), 80 % P1S (partial reports), most of
them printing, each reporting once a second. Markers: every few seconds a marker printer's
periodic report carries a new nozzle target (220.1, 220.2, ...); the publish time of each is
logged, and clients that see the value arrive compute telemetry-to-client latency from it.

    python bench/sim_fleet.py --printers 500   # then JSON-line commands on stdin
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import _proc

sys.path.insert(0, str(_proc.ROOT))

from integrations.simulator import Fleet
from integrations.simulator.bambu import BambuFrontEnd
from integrations.simulator.cli import demo_gcode
from integrations.simulator.fleet import SimPrinter


class Counters:
    """Messages offered to subscribed MQTT sessions, and those queued (the rest were refused)."""

    def __init__(self) -> None:
        self.offered = 0
        self.sent = 0
        self.paused = False
        self.markers: list[tuple[str, float, float]] = []


def count_publishes(frontend: BambuFrontEnd, counters: Counters) -> None:
    """Wrap the printer's broker so every message for a subscriber is counted."""
    mqtt = frontend.mqtt
    assert mqtt is not None
    original = mqtt.publish

    def publish(topic: str, payload: bytes) -> int:
        wanted = sum(1 for s in mqtt.sessions if s.wants(topic))
        queued = original(topic, payload)
        counters.offered += wanted
        counters.sent += queued
        return queued

    mqtt.publish = publish  # type: ignore[method-assign]


def add_markers(sim: SimPrinter, counters: Counters, every_s: float, phase: float) -> None:
    """Every `every_s` the next periodic report of `sim` carries a new nozzle target."""
    frontend = sim.frontend
    assert isinstance(frontend, BambuFrontEnd)
    original = frontend.send_report
    state = {"next": time.monotonic() + phase, "k": 0}

    def send_report(full: bool) -> None:
        if counters.paused:
            return
        printer = sim.printer
        now = time.monotonic()
        mark = now >= state["next"] and printer.nozzle_target > 0
        if mark:
            state["k"] += 1
            state["next"] = now + every_s
            base = float(int(printer.nozzle_target))
            printer.nozzle_target = base + (state["k"] % 9 + 1) / 10
        before = frontend.reports_sent
        original(full)
        if mark and frontend.reports_sent > before:
            counters.markers.append((sim.serial, round(printer.nozzle_target, 1), time.time()))

    frontend.send_report = send_report  # type: ignore[method-assign]


def pausable(sim: SimPrinter, counters: Counters) -> None:
    """Let the orchestrator stop all reports (to settle the drop count)."""
    frontend = sim.frontend
    assert isinstance(frontend, BambuFrontEnd)
    original = frontend.send_report

    def send_report(full: bool) -> None:
        if not counters.paused:
            original(full)

    frontend.send_report = send_report  # type: ignore[method-assign]


async def run(args: argparse.Namespace) -> None:
    """Start the fleet, announce it, serve commands."""
    counters = Counters()
    gcode = demo_gcode(40 * 3600, 1600, 400.0)
    async with Fleet(speed=args.speed, subnet=args.subnet) as fleet:
        printing: list[SimPrinter] = []
        for i in range(args.printers):
            x1c = i % 5 == 0
            p = await fleet.add(
                "bambu", model="X1C" if x1c else "P1S", ams_units=args.x1c_ams if x1c else None
            )
            count_publishes(p.frontend, counters)  # type: ignore[arg-type]
            if i % 10 < round(args.printing * 10):
                await fleet.load_file(p, "long.gcode", gcode)
                p.printer.start_print("long.gcode")
                printing.append(p)
        # Marker printers: spread evenly over the second by when each one reports, so the
        # markers sample telemetry all through the second (and X1C and P1S alike), not one slot.
        count = min(args.markers, len(printing))
        by_instant = sorted(printing, key=fleet.report_instant)
        chosen = (
            {id(by_instant[j * len(by_instant) // count]) for j in range(count)} if count else set()
        )
        markers: list[str] = []
        for p in fleet.printers:
            if id(p) in chosen:
                phase = args.marker_every_s * len(markers) / count
                add_markers(p, counters, args.marker_every_s, 3.0 + phase)
                markers.append(p.serial)
            else:
                pausable(p, counters)

        async def stats(_: dict[str, Any]) -> dict[str, Any]:
            found, counters.markers = counters.markers, []
            return {"offered": counters.offered, "sent": counters.sent, "markers": found}

        async def pause(_: dict[str, Any]) -> dict[str, Any]:
            counters.paused = True
            return {"offered": counters.offered, "sent": counters.sent}

        async def resume(_: dict[str, Any]) -> dict[str, Any]:
            counters.paused = False
            return {}

        _proc.reply({"printers": fleet.describe(), "markers": markers})
        await _proc.serve_commands(
            {"stats": stats, "pause": pause, "resume": resume}, args.max_seconds
        )


def main() -> None:
    """Parse arguments and run."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--printers", type=int, default=100)
    p.add_argument("--subnet", default="127.99.0.0")
    p.add_argument("--speed", type=float, default=60.0)
    p.add_argument("--x1c-ams", type=int, default=4, help="AMS units on each X1C")
    p.add_argument("--printing", type=float, default=0.8, help="share of printers printing")
    p.add_argument("--markers", type=int, default=50, help="printers carrying latency markers")
    p.add_argument("--marker-every-s", type=float, default=3.0)
    p.add_argument("--max-seconds", type=float, default=3600.0, help="safety bound on run time")
    args = p.parse_args()
    _proc.worker_main(lambda: run(args))


if __name__ == "__main__":
    main()
