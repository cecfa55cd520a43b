"""Micro-benchmark: the hub's in-process cost per Bambu report, without network, TLS or MQTT.

Recorded-style payloads (20 % X1C full reports with four AMS units, 80 % P1S partial reports,
80 % printing, made by the simulator's own report builder on a manual clock) go straight into
real `BambuDriver._handle` calls of a real printer manager, hub, telemetry pipelines (SQLite
writers included) and broadcaster with WebSocket client buffers drained by writer tasks, paced
at one report per printer per second as on a live farm. Prints CPU µs per report of the whole
process (every thread). A quick, low-noise A/B for changes on the ingest path; `make bench`
measures the real thing.

    .venv/bin/python bench/bench_ingest.py --printers 500 --seconds 10 --clients 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from typing import Any

import _proc

sys.path.insert(0, str(_proc.ROOT))

from config.loader import load
from hub.broadcast import Client
from hub.model import Connection
from hub.printer_manager import PrinterRecord
from hub.runtime import Hub
from integrations.printers.bambu.driver import BambuDriver
from integrations.printers.base import DriverConfig
from integrations.simulator.bambu_report import PROFILES, partial, print_object
from integrations.simulator.cli import demo_gcode
from integrations.simulator.clock import ManualClock
from integrations.simulator.model import PrintModel


def payloads(printers: int, seconds: int, speed: float) -> list[list[bytes]]:
    """One MQTT payload per printer per second, as the simulated fleet would publish them."""
    clock = ManualClock()
    gcode = demo_gcode(40 * 3600, 1600, 400.0)
    models, profiles = [], []
    for i in range(printers):
        x1c = i % 5 == 0
        model = PrintModel(clock, serial=f"S{i:05d}", ams_units=4 if x1c else 1)
        if i % 10 < 8:
            model.add_file("long.gcode", gcode)
            model.start_print("long.gcode")
        models.append(model)
        profiles.append(PROFILES["X1C" if x1c else "P1S"])
    last: list[dict[str, Any] | None] = [None] * printers
    rounds = []
    for second in range(seconds + 2):  # a full report first, as after a pushall
        for _ in range(10):
            clock.advance(speed / 10)
            for model in models:
                model.tick()
        batch = []
        for i, (model, profile) in enumerate(zip(models, profiles, strict=True)):
            obj = print_object(model, profile, f"127.0.{i // 250}.{i % 250 + 2}", second, 44, 1)
            body = obj if profile.full_reports or last[i] is None else partial(last[i], obj, second)
            last[i] = obj
            batch.append(json.dumps({"print": body}, separators=(",", ":")).encode())
        rounds.append(batch)
    return rounds


async def run(args: argparse.Namespace) -> None:
    """Build the hub around drivers fed by hand, pace the reports, print the cost."""
    rounds = payloads(args.printers, args.warmup + args.seconds, args.speed)
    with tempfile.TemporaryDirectory() as tmp:
        settings = load(
            None,
            env={
                "PRINTFORGE_DATA_DIR": tmp,
                "PRINTFORGE_ADMIN_PASSWORD": "bench-password",
                "PRINTFORGE_SERVER_LOG_LEVEL": "warning",
            },
        )
        hub = Hub(settings)
        await hub.start()
        manager = hub.manager
        drivers = []
        for i in range(args.printers):
            pid = f"printer-{i:05d}"
            record = PrinterRecord(pid, pid, "bambu", f"127.0.0.{i % 250 + 2}", serial=f"S{i:05d}")
            entry = manager._entries.setdefault(pid, _entry(record))
            driver = BambuDriver(
                DriverConfig(
                    pid, record.host, serial=record.serial, model="X1C" if i % 5 == 0 else "P1S"
                ),
                manager._forwarder(entry),
            )
            entry.driver = driver
            driver._connection = Connection.ONLINE
            drivers.append(driver)
            hub.printers[pid] = None  # type: ignore[assignment]
        clients = [Client() for _ in range(args.clients)]
        sent = [0]

        async def writer(client: Client) -> None:
            while True:
                await client.ready.wait()
                for message in client.drain():
                    sent[0] += len(message.text)

        for client in clients:
            hub.broadcaster.register(client)
        tasks = [asyncio.create_task(writer(c)) for c in clients]
        slices = 10
        per_slice = (args.printers + slices - 1) // slices
        # Warm-up: the first round creates every printer's pipelines and starts the prints.
        tick = time.monotonic()
        for n, batch in enumerate(rounds):
            if n == args.warmup + 1:
                cpu0, wall0 = time.process_time(), time.monotonic()
                reports0 = hub.telemetry.reports
            for s in range(slices):
                for i in range(s * per_slice, min(len(batch), (s + 1) * per_slice)):
                    drivers[i]._handle(batch[i])
                tick += 1 / slices
                await asyncio.sleep(max(0.0, tick - time.monotonic()))
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        rounds_measured = len(rounds) - args.warmup - 1
        reports = args.printers * rounds_measured
        print(
            f"{args.printers} printers, {rounds_measured} s, {args.clients} client(s): "
            f"{cpu / reports * 1e6:.0f} µs CPU per report, {cpu / wall:.2f} cores, "
            f"{(hub.telemetry.reports - reports0) / wall:.0f} telemetry reports/s, "
            f"{sent[0] / wall / 2**20:.2f} MiB/s per client"
        )
        for task in tasks:
            task.cancel()
        hub.printers.clear()
        await hub.stop()


def _entry(record: PrinterRecord) -> Any:
    from hub.printer_manager import _Entry

    return _Entry(record)


def main() -> None:
    """Parse arguments and run."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--printers", type=int, default=500)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--warmup", type=int, default=5, help="seconds of reports before measuring")
    p.add_argument("--clients", type=int, default=1, help="WebSocket client buffers")
    p.add_argument("--speed", type=float, default=60.0)
    args = p.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
