"""Benchmark: N simulated Bambu printers (20% X1C, 80% P1S), one MQTT/TLS client each.

The simulator runs in a child process; this process connects one raw asyncio MQTT client per
printer over TLS, counts the reports delivered, and samples the simulator's CPU and RSS.

    .venv/bin/python bench/bench_simulator.py --printers 500 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import ssl
import struct
import sys
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# -- simulator side ----------------------------------------------------------------------------
async def run_simulator(args: argparse.Namespace) -> None:
    """Start the fleet, print half of it, write describe() as one stdout line, run until SIGTERM."""
    from integrations.simulator import Fleet
    from integrations.simulator.cli import demo_gcode

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Fleet(speed=args.speed, subnet=args.subnet) as fleet:
        for i in range(args.printers):
            model = "X1C" if i % 5 == 0 else "P1S"
            p = await fleet.add("bambu", model=model)
            if i % 2 == 0:
                # Printing printers change every second; idle ones send small deltas.
                await fleet.load_file(p, "long.gcode", demo_gcode(20 * 3600, 800, 250.0))
                p.printer.start_print("long.gcode")
        sys.stdout.write(json.dumps(fleet.describe()) + "\n")
        sys.stdout.flush()
        await stop.wait()


# -- client side -------------------------------------------------------------------------------
def _packet(kind: int, body: bytes) -> bytes:
    length, out = len(body), bytearray([kind])
    while True:
        byte, length = length % 128, length // 128
        out.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(out) + body


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


class Counter:
    """Reports and bytes received, total and per printer."""

    def __init__(self, printers: int) -> None:
        self.reports = 0
        self.bytes = 0
        self.per_printer = [0] * printers


Link = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def connect(entry: dict[str, Any], index: int, tls: ssl.SSLContext) -> Link:
    """TLS, CONNECT as bblp with the access code, SUBSCRIBE to the report topic."""
    reader, writer = await asyncio.open_connection(entry["host"], entry["port"], ssl=tls)
    flags = 0x80 | 0x40 | 0x02  # username, password, clean session
    body = (
        _string("MQTT")
        + bytes([4, flags])
        + struct.pack("!H", 30)
        + _string(f"bench-{index}")
        + _string("bblp")
        + _string(entry["access_code"])
    )
    writer.write(_packet(0x10, body))
    connack = await reader.readexactly(4)
    if connack[3] != 0:
        raise RuntimeError(f"{entry['name']}: CONNACK return code {connack[3]}")
    topic = f"device/{entry['serial']}/report"
    writer.write(_packet(0x82, struct.pack("!H", 1) + _string(topic) + b"\x00"))
    return reader, writer


async def consume(link: Link, index: int, counter: Counter) -> None:
    """Count PUBLISH packets (reports and replies) until cancelled."""
    reader, writer = link
    last_ping = time.monotonic()
    try:
        while True:
            first = (await reader.readexactly(1))[0]
            length, shift = 0, 0
            while True:
                byte = (await reader.readexactly(1))[0]
                length |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            body = await reader.readexactly(length)
            if first >> 4 == 3:
                counter.reports += 1
                counter.bytes += len(body)
                counter.per_printer[index] += 1
            if time.monotonic() - last_ping > 15:
                writer.write(b"\xc0\x00")  # PINGREQ within the 30 s keepalive
                last_ping = time.monotonic()
    finally:
        writer.close()


def cpu_seconds(proc: psutil.Process) -> float:
    """User + system CPU seconds of a process."""
    times = proc.cpu_times()
    return times.user + times.system


async def run_clients(args: argparse.Namespace) -> int:
    """Start the simulator process, connect the clients, measure, print the figures."""
    started = time.monotonic()
    sim = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--role", "sim", "--printers", str(args.printers),
        "--subnet", args.subnet, "--speed", str(args.speed),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, limit=64 * 2**20,
    )  # fmt: skip
    proc = psutil.Process(sim.pid)
    try:
        assert sim.stdout is not None
        line = await sim.stdout.readline()
        if not line:
            print("the simulator exited before it was ready", file=sys.stderr)
            return 1
        startup = time.monotonic() - started
        entries = json.loads(line)
        counter = Counter(len(entries))
        tls = ssl.create_default_context()
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
        limit = asyncio.Semaphore(50)  # connect in waves so TLS handshakes do not pile up

        async def limited(i: int, entry: dict[str, Any]) -> Link:
            async with limit:
                return await connect(entry, i, tls)

        t0 = time.monotonic()
        links = await asyncio.gather(
            *(limited(i, e) for i, e in enumerate(entries)), return_exceptions=True
        )
        connect_s = time.monotonic() - t0
        errors = [f"{e['name']}: {r!r}" for e, r in zip(entries, links, strict=True)
                  if isinstance(r, BaseException)]  # fmt: skip
        tasks = [
            asyncio.create_task(consume(link, i, counter))
            for i, link in enumerate(links)
            if not isinstance(link, BaseException)
        ]
        await asyncio.sleep(args.warmup)
        reports0, bytes0, per0 = counter.reports, counter.bytes, list(counter.per_printer)
        me = psutil.Process()
        cpu0, mine0, wall0 = cpu_seconds(proc), cpu_seconds(me), time.monotonic()
        await asyncio.sleep(args.seconds)
        wall = time.monotonic() - wall0
        sim_cpu = (cpu_seconds(proc) - cpu0) / wall * 100
        client_cpu = (cpu_seconds(me) - mine0) / wall * 100
        rss = proc.memory_info().rss / 2**20
        reports, size = counter.reports - reports0, counter.bytes - bytes0
        rates = sorted((c - b) / wall for c, b in zip(counter.per_printer, per0, strict=True))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        if sim.returncode is None:
            sim.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(sim.wait(), 30)
            except TimeoutError:
                sim.kill()
    print(f"printers              {len(entries)} (20% X1C, 80% P1S; half of them printing)")
    print(f"simulator start-up    {startup:.1f} s; clients connected in {connect_s:.1f} s")
    print(f"connect errors        {len(errors)}")
    print(
        f"reports delivered     {reports / wall:.0f} /s over {wall:.0f} s "
        f"({size / wall / 2**20:.2f} MiB/s, mean {size / max(1, reports) / 1024:.1f} KiB)"
    )
    print(f"per-printer rate      min {rates[0]:.2f} /s, median {rates[len(rates) // 2]:.2f} /s")
    print(f"simulator CPU         {sim_cpu:.0f}% of one core")
    print(f"simulator RSS         {rss:.0f} MiB")
    print(f"client process CPU    {client_cpu:.0f}% of one core")
    for error in errors[:5]:
        print(f"  error: {error}")
    return 0 if not errors else 1


def main() -> int:
    """Parse arguments and run either role."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--printers", type=int, default=500)
    p.add_argument("--seconds", type=float, default=30.0, help="measurement window")
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument("--speed", type=float, default=60.0)
    p.add_argument("--subnet", default="127.99.0.0")
    p.add_argument("--role", choices=("client", "sim"), default="client")
    args = p.parse_args()
    from integrations.simulator.cli import raise_fd_limit

    raise_fd_limit()
    if args.role == "sim":
        asyncio.run(run_simulator(args))
        return 0
    return asyncio.run(run_clients(args))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
