"""Micro-benchmark: CPU µs per PrinterState report through build_pipelines, 1,000 printers."""

from __future__ import annotations

import argparse
import random
import time

from reactivex.subject import Subject
from reactivex.testing import TestScheduler

from hub.model import AmsTray, AmsUnit, HmsError, Job, PrinterState, PrintState, Temperatures
from streams import StreamSettings, build_pipelines


def synthetic_reports(printers: int, rounds: int, seed: int = 7) -> list[list[PrinterState]]:
    """`rounds` rounds of one report per printer, one second apart, like a busy farm.

    Every report is a fresh object (as a driver builds them): temperatures
    jitter, progress and remaining time creep, and now and then a print
    finishes, an HMS error comes and goes, a tray drains or a link drops.
    """
    rng = random.Random(seed)
    out: list[list[PrinterState]] = []
    progress = [rng.uniform(0, 90) for _ in range(printers)]
    remain = [rng.randint(5, 100) for _ in range(printers)]
    for r in range(rounds):
        at = 1_000.0 + r
        batch = []
        for p in range(printers):
            progress[p] += rng.uniform(0.0, 0.4)
            if progress[p] >= 100:
                progress[p] = 0.0
                remain[p] = rng.randint(5, 100)
            if rng.random() < 0.02:
                remain[p] = max(0, remain[p] - 1)
            pct = progress[p]
            state = PrintState.PRINTING if pct < 99.6 else PrintState.FINISHED
            online = rng.random() > 0.001
            trays = tuple(
                AmsTray(s, "PLA", "FFFFFF", remain[p] if s == 0 else 80) for s in range(4)
            )
            batch.append(
                PrinterState(
                    printer_id=f"printer-{p:04d}",
                    online=online,
                    state=state if online else PrintState.OFFLINE,
                    job=Job(
                        f"part-{p % 17}.gcode",
                        progress=pct,
                        layer=int(pct * 3),
                        total_layers=300,
                        remaining_s=int((100 - pct) * 36) // 60 * 60,
                        key=f"task-{p}-{r // 250}",
                    ),
                    temps=Temperatures(
                        nozzle=220 + rng.uniform(-0.6, 0.6),
                        nozzle_target=220,
                        bed=60 + rng.uniform(-0.3, 0.3),
                        bed_target=60,
                        chamber=35.0,
                    ),
                    fans={"part": 100, "aux": 0},
                    speed_level=2,
                    ams=(AmsUnit(0, humidity=25, temperature=28.0, trays=trays),),
                    active_tray=0,
                    errors=(HmsError("HMS_0300_0100_0001_0007", "nozzle temp"),)
                    if rng.random() < 0.01
                    else (),
                    wifi_signal=-50,
                    updated_at=at,
                )
            )
        out.append(batch)
    return out


def main() -> None:
    """Push the reports through every pipeline and print the cost per report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--printers", type=int, default=1_000)
    parser.add_argument("--reports", type=int, default=100_000)
    args = parser.parse_args()
    rounds = max(1, args.reports // args.printers)
    batches = synthetic_reports(args.printers, rounds)

    scheduler = TestScheduler()
    telemetry: Subject[PrinterState] = Subject()
    pipes = build_pipelines(telemetry, scheduler, StreamSettings(), {})
    counts = dict.fromkeys(("status", "progress", "ams", "lifecycle", "notification"), 0)
    for name in counts:

        def count(_: object, name: str = name) -> None:
            counts[name] += 1

        getattr(pipes, name).subscribe(count)
    connection = pipes.connect()

    def push(batch: list[PrinterState]) -> None:
        scheduler.advance_to(batch[0].updated_at)  # fires any status held for its window's end
        for report in batch:
            telemetry.on_next(report)

    # CPU time of this process, not wall time: the figure is a share of one core,
    # and it stays meaningful on a machine busy with other work.
    started = time.process_time()
    push(batches[0])  # first sight of every printer also builds its pipeline
    first = time.process_time()
    for batch in batches[1:]:
        push(batch)
    scheduler.advance_to(batches[-1][0].updated_at + 1.0)
    done = time.process_time()
    connection.dispose()

    total = rounds * args.printers
    steady = (done - first) / max(1, total - args.printers) * 1e6
    print(f"{total:,} reports from {args.printers:,} printers in {done - started:.2f} s CPU")
    print(f"first round (builds each printer's pipeline): {(first - started) * 1e3:.0f} ms")
    print(f"overall: {(done - started) / total * 1e6:.1f} µs per report")
    print(f"steady state: {steady:.1f} µs per report")
    print(f"1,000 printers x 1 report/s: {steady * 1000 / 1e6 * 100:.1f} % of one core")
    print("events out:", ", ".join(f"{k} {v:,}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
