"""Adding printers through the API: seconds per batch of 100 as the fleet grows.

A real `printforge serve` in its own process starts with no printers; the bench POSTs
/api/printers one after another (as a provisioning script would) and prints the time each
batch of `--batch` took. With `--simulate` the printers are a simulated Bambu fleet (its own
process) that comes online and reports as they are added; without it they point at loopback
addresses where nothing listens (the drivers retry with backoff); with `--disabled` they are
added disabled, so no driver runs and only the cost of adding is measured.

    .venv/bin/python bench/bench_add_printers.py --printers 2000
    .venv/bin/python bench/bench_add_printers.py --printers 1000 --simulate
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _proc
from _proc import Worker
from hub_proc import HubProcess

sys.path.insert(0, str(_proc.ROOT))


def progress(text: str) -> None:
    """A progress line on stderr (stdout carries only the results)."""
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def unreachable(count: int) -> list[dict[str, Any]]:
    """Bambu printers at loopback addresses where nothing listens."""
    return [
        {
            "name": f"bench-{i:05d}",
            "protocol": "bambu",
            "host": f"127.93.{i // 250}.{i % 250 + 1}",
            "port": 8883,
            "serial": f"01S00A{i:09d}",
            "model": "P1S",
            "access_code": "12345678",
        }
        for i in range(count)
    ]


async def run(args: argparse.Namespace) -> None:
    """Start the hub (and the fleet), add the printers, print the figures."""
    root = Path(tempfile.mkdtemp(prefix="printforge-add-"))
    worker: Worker | None = None
    if args.simulate:
        progress(f"simulator: {args.printers} Bambu printers")
        worker = Worker(
            "simulator", "sim_fleet.py", "--printers", str(args.printers), "--subnet",
            "127.93.0.0", "--markers", "0",
        )  # fmt: skip
        entries = (await worker.start(limit_s=900))["printers"]
    else:
        entries = unreachable(args.printers)
    hub = HubProcess(root, args.root)
    batches: list[float] = []
    cpu: list[float] = []  # the hub process's CPU seconds per batch (robust to a shared machine)
    try:
        await hub.prepare([])
        await hub.start(wait_online=False)
        assert hub.session is not None and hub.ps is not None
        progress(f"adding {len(entries)} printers")
        for first in range(0, len(entries), args.batch):
            started = time.monotonic()
            cpu_started = sum(hub.ps.cpu_times()[:2])
            for e in entries[first : first + args.batch]:
                body = {k: e[k] for k in ("name", "protocol", "host", "port", "serial", "model")}
                body["access_code"] = e["access_code"]
                if args.disabled:
                    body["enabled"] = False
                async with hub.session.post(
                    hub.base + "/api/printers", json=body, headers=hub.headers
                ) as r:
                    if r.status != 201:
                        raise RuntimeError(f"POST /api/printers: {r.status} {await r.text()}")
            batches.append(time.monotonic() - started)
            cpu.append(sum(hub.ps.cpu_times()[:2]) - cpu_started)
            progress(
                f"  {first + args.batch:5d} printers: batch took {batches[-1]:.2f} s, "
                f"hub CPU {cpu[-1]:.2f} s"
            )
    finally:
        await hub.stop()
        if worker is not None:
            await worker.stop()
    load = os.getloadavg()
    kind = "simulated Bambu printers, online" if args.simulate else "unreachable Bambu printers"
    if args.disabled:
        kind = "Bambu printers added disabled (no drivers)"
    print(
        f"3DPrintForge bench-add-printers ({args.root}): {len(entries)} {kind}, POSTed one at a "
        "time; "
        f"{os.cpu_count()} cores, load average {load[0]:.1f} at the end (shared machine)\n"
    )
    print(f"| printers after the batch | seconds for the batch of {args.batch} | hub CPU seconds |")
    print("|---|---|---|")
    for i, (seconds, used) in enumerate(zip(batches, cpu, strict=True)):
        print(f"| {(i + 1) * args.batch:,} | {seconds:.2f} | {used:.2f} |")
    print(
        f"\ntotal {sum(batches):.1f} s, hub CPU {sum(cpu):.1f} s; first batch {batches[0]:.2f} s,"
        f" last {batches[-1]:.2f} s"
    )


def main() -> int:
    """Parse arguments and run."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--printers", type=int, default=2000)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--root", type=Path, default=_proc.ROOT, help="source tree to run the hub from")
    p.add_argument("--disabled", action="store_true", help="add them disabled (no drivers)")
    p.add_argument("--simulate", action="store_true", help="a simulated fleet behind the printers")
    args = p.parse_args()
    _proc.raise_fd_limit()
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
