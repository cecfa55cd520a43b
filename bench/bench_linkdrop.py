"""Benchmark: every printer link dropping at once (a broker or switch restart), counted in log lines.

A simulated fleet and the hub's printer manager run in this one process; once every link is
online, all printers drop their connections in the same instant (`--fault drop`) or power-cycle
(`--fault restart`: nothing listens for `--down` seconds; `--fault none` only stops). Prints the warning lines per printer,
lines naming no printer, tracebacks, the time until every link is back, and how long
`PrinterManager.stop_all()` takes for the whole fleet.

    python bench/bench_linkdrop.py --bambu 500 --moonraker 500 --fault restart
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Callable

import _proc

sys.path.insert(0, str(_proc.ROOT))

from hub.model import Connection
from hub.printer_manager import PrinterManager, PrinterRecord
from integrations.simulator import Fleet, SimPrinter

SECRET_KEYS = {"bambu": "access_code", "moonraker": "api_key"}
_PRINTER = re.compile(r"\bprinter (\S+) ")


class Collect(logging.Handler):
    """Keeps every record of WARNING and above (the simulator's own excepted)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

        self.keepalive_drops = 0  # links the simulated brokers closed for a missed keepalive

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the record."""
        if record.name == "integrations.simulator.mqtt":
            self.keepalive_drops += "TimeoutError" in record.getMessage()
        elif record.levelno >= logging.WARNING and not record.name.startswith(
            "integrations.simulator"
        ):
            self.records.append(record)

    def summary(self, ids: set[str]) -> dict[str, int]:
        """Lines per printer, lines naming none, tracebacks."""
        per_printer: Counter[str] = Counter()
        stray = tracebacks = 0
        for record in self.records:
            message = record.getMessage()
            if record.exc_info or "Traceback" in message:
                tracebacks += 1
            match = _PRINTER.search(message)
            if match and match.group(1) in ids:
                per_printer[match.group(1)] += 1
            else:
                stray += 1
        return {
            "lines": len(self.records),
            "printers_warned": len(per_printer),
            "max_per_printer": max(per_printer.values(), default=0),
            "lines_naming_no_printer": stray,
            "tracebacks": tracebacks,
        }


def show(collect: Collect, ids: set[str], count: int) -> None:
    """Print the first `count` lines, and every line of a printer that logged more than one."""
    per_printer = Counter(
        m.group(1) for r in collect.records if (m := _PRINTER.search(r.getMessage()))
    )
    form = logging.Formatter("%(levelname)s %(name)s %(message)s")
    for index, record in enumerate(collect.records):
        match = _PRINTER.search(record.getMessage())
        if index < count or match is None or per_printer[match.group(1)] > 1:
            print("  ", form.format(record))


def record_for(index: int, sim: SimPrinter) -> PrinterRecord:
    """The manager's record of one simulated printer."""
    return PrinterRecord(
        id=f"p{index}",
        name=sim.name,
        protocol=sim.protocol,
        host=sim.host,
        port=sim.port,
        serial=sim.serial,
        model=sim.model_name,
        secrets={SECRET_KEYS[sim.protocol]: sim.secret},
        options={"ftps_port": sim.ftps_port} if sim.ftps_port else {},
    )


async def wait_until(predicate: object, within_s: float, what: str) -> float:
    """Seconds until `predicate()` held; exits the benchmark after `within_s`."""
    started = time.monotonic()
    while not predicate():  # type: ignore[operator]
        if time.monotonic() - started > within_s:
            raise SystemExit(f"timed out after {within_s:.0f}s waiting for {what}")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def apply_fault(
    args: argparse.Namespace,
    sims: list[SimPrinter],
    collect: Collect,
    ids: set[str],
    online: Callable[[], int],
) -> None:
    """Drop or power-cycle every printer at once; report the log lines and the recovery."""
    started = time.monotonic()
    if args.fault == "drop":
        for sim in sims:
            sim.faults.drop_connection()
    else:
        await asyncio.gather(*(s.faults.restart(delay=args.down) for s in sims))
    warned = await wait_until(
        lambda: collect.summary(ids)["printers_warned"] == len(ids), 60, "a warning each"
    )
    print(f"every printer had logged its drop {warned:.1f}s after the fault")
    await wait_until(lambda: online() == len(ids), args.timeout, "every link back")
    print(f"fault {args.fault}: every link back {time.monotonic() - started:.1f}s after it")
    print(f"log lines at WARNING and above: {collect.summary(ids)}")
    print(f"links the simulated brokers closed for a missed keepalive: {collect.keepalive_drops}")
    show(collect, ids, args.show)


async def run(args: argparse.Namespace) -> None:
    """Bring the fleet online, drop every link at once, count, stop."""
    collect = Collect()
    logging.getLogger().addHandler(collect)
    logging.getLogger("integrations.simulator.mqtt").setLevel(logging.DEBUG)
    subnet = args.subnet or f"127.{random.randint(40, 250)}.{random.randint(0, 255)}.0"
    async with Fleet(speed=60.0, subnet=subnet) as fleet:
        sims = [await fleet.add("bambu") for _ in range(args.bambu)]
        sims += [await fleet.add("moonraker") for _ in range(args.moonraker)]
        manager = PrinterManager(lambda state: None, {"backoff_max_s": args.backoff_max})
        for index, sim in enumerate(sims):
            await manager.apply(record_for(index, sim))
        ids = set(manager.printer_ids())

        def online() -> int:
            return sum(manager.link(i).connection == Connection.ONLINE for i in ids)

        started = time.monotonic()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(args.timeout):
                await wait_until(lambda: online() == len(ids), math.inf, "every link online")
        print(
            f"{online()} of {len(ids)} printers online after {time.monotonic() - started:.1f}s; "
            f"before the fault: {collect.summary(ids)}"
        )
        if online() < len(ids) and args.fault != "none":
            raise SystemExit("not every link came online: no fault applied")
        collect.records.clear()
        if args.fault != "none":
            await apply_fault(args, sims, collect, ids, online)
        collect.records.clear()
        started = time.monotonic()
        await manager.stop_all()
        print(
            f"stop_all of {len(ids)} drivers: {time.monotonic() - started:.2f}s; "
            f"log lines: {collect.summary(ids)}"
        )
        show(collect, ids, args.show)


def main() -> int:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bambu", type=int, default=500)
    parser.add_argument("--moonraker", type=int, default=500)
    parser.add_argument("--fault", choices=("drop", "restart", "none"), default="restart")
    parser.add_argument("--down", type=float, default=2.0, help="restart: seconds down")
    parser.add_argument("--backoff-max", type=float, default=30.0)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--show", type=int, default=3, help="log lines to print as samples")
    parser.add_argument("--subnet", default="")
    args = parser.parse_args()
    _proc.raise_fd_limit()
    logging.basicConfig(level=logging.WARNING, handlers=[logging.NullHandler()])
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
