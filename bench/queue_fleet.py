"""Benchmark worker: an idle simulated Bambu fleet that logs when each printer became free and
when it was next asked to print (the print queue's dispatch latency, seen from the printers).

    python bench/queue_fleet.py --printers 1000   # then JSON-line commands on stdin
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import _proc

sys.path.insert(0, str(_proc.ROOT))

from integrations.simulator import Fleet
from integrations.simulator.fleet import SimPrinter
from integrations.simulator.model import PrintLogEntry, SimJob


class Log:
    """Per printer: when it last became free; and (free -> next start) gaps in seconds."""

    def __init__(self) -> None:
        self.free_since: dict[str, float] = {}
        self.gaps: list[float] = []
        self.starts = 0
        self.files: list[str] = []  # every start since launch: a file started twice is a bug

    def watch(self, sim: SimPrinter) -> None:
        """Listen to one printer's job events."""
        serial = sim.serial

        def on_job(what: str, job: SimJob, entry: PrintLogEntry) -> None:
            now = time.monotonic()
            if what == "ended":
                self.free_since[serial] = now
            else:
                self.starts += 1
                self.files.append(job.file)
                since = self.free_since.pop(serial, None)
                if since is not None:
                    self.gaps.append(now - since)

        sim.printer.job_listeners.append(on_job)


async def run(args: argparse.Namespace) -> None:
    """Start the fleet, announce it, serve commands."""
    log = Log()
    async with Fleet(speed=args.speed, subnet=args.subnet) as fleet:
        for i in range(args.printers):
            x1c = i % 5 == 0
            sim = await fleet.add("bambu", model="X1C" if x1c else "P1S", ams_units=1)
            log.watch(sim)

        async def go(_: dict[str, Any]) -> dict[str, Any]:
            # Printers already waiting keep no sighting: a wait that began before the window
            # would be cut short by it, so only waits that begin inside the window count.
            log.free_since.clear()
            log.gaps.clear()
            log.starts = 0
            return {}

        async def stats(_: dict[str, Any]) -> dict[str, Any]:
            return {"starts": log.starts, "gaps": log.gaps, "files": log.files}

        printers = [{**p.describe(), "ftps_port": p.ftps_port} for p in fleet.printers]
        _proc.reply({"printers": printers})
        await _proc.serve_commands({"go": go, "stats": stats}, args.max_seconds)


def main() -> None:
    """Parse arguments and run."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--printers", type=int, default=1000)
    p.add_argument("--subnet", default="127.98.0.0")
    p.add_argument("--speed", type=float, default=30.0)
    p.add_argument("--max-seconds", type=float, default=1800.0, help="safety bound on run time")
    args = p.parse_args()
    _proc.worker_main(lambda: run(args))


if __name__ == "__main__":
    main()
