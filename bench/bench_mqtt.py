"""MQTT integration benchmark: the same simulated fleet served by the hub with `[mqtt]` off, then
on (publishing to the local Mosquitto); messages/s reaching the broker and the hub's CPU.

A subscriber in this process counts every message under the run's own base topic (a unique
one, so other users of the broker are neither counted nor disturbed). See docs/performance.md.

    .venv/bin/python bench/bench_mqtt.py --printers 500
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import _proc
import aiomqtt
from _proc import median
from bench_hub import fleet, machine, progress
from hub_proc import HubProcess

BROKER = ("127.0.0.1", 1883)


class Counter:
    """Messages under the run's base topic, and discovery configs, counted as they arrive."""

    def __init__(self, expected_configs: int) -> None:
        self.messages = 0
        self.configs = 0
        self.first_at = 0.0
        self.expected_configs = expected_configs
        self.announced = asyncio.Event()

    async def run(self, base: str, prefix: str, ready: asyncio.Event) -> None:
        """Subscribe and count until cancelled."""
        async with aiomqtt.Client(*BROKER, identifier=f"bench-{uuid.uuid4().hex[:8]}") as client:
            await client.subscribe(f"{base}/#")
            await client.subscribe(f"{prefix}/#")
            ready.set()
            async for message in client.messages:
                if not self.first_at:
                    self.first_at = time.monotonic()
                if str(message.topic).startswith(base + "/"):
                    self.messages += 1
                else:
                    self.configs += 1
                    if self.configs >= self.expected_configs:
                        self.announced.set()


async def clear_retained(prefixes: list[str]) -> None:
    """Remove what the run left retained on the broker."""
    async with aiomqtt.Client(*BROKER, identifier=f"bench-clear-{uuid.uuid4().hex[:8]}") as c:
        for prefix in prefixes:
            await c.subscribe(f"{prefix}/#")
        topics: set[str] = set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(3.0):
                async for message in c.messages:
                    if message.retain and message.payload:
                        topics.add(str(message.topic))
        for topic in topics:
            await c.publish(topic, b"", retain=True)


async def run_mode(
    args: argparse.Namespace, entries: list[dict[str, Any]], root: Path, mqtt: bool
) -> dict[str, float]:
    """One hub process over the fleet: CPU and ingest per window, and MQTT messages/s if on."""
    tag = uuid.uuid4().hex[:8]
    base, prefix = f"pfbench-{tag}", f"habench-{tag}"
    extra = (
        f'[mqtt]\nurl = "mqtt://{BROKER[0]}:{BROKER[1]}"\n'
        f'base_topic = "{base}"\ndiscovery_prefix = "{prefix}"\n'
        if mqtt
        else ""
    )
    workdir = Path(tempfile.mkdtemp(prefix=f"mqtt-{'on' if mqtt else 'off'}-", dir=root))
    hub = HubProcess(workdir)
    await hub.prepare(entries, extra)
    # Every printer's 14 entity configs (plus its AMS trays): the start-up announce.
    counter = Counter(14 * len(entries))
    ready = asyncio.Event()
    listener = asyncio.create_task(counter.run(base, prefix, ready))
    await ready.wait()
    try:
        progress(f"MQTT {'on' if mqtt else 'off'}: hub start-up")
        _, online_s = await hub.start()
        announce_s = 0.0
        if mqtt:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(counter.announced.wait(), 180)
            announce_s = time.monotonic() - counter.first_at
        await hub.settled(args.warmup)
        cpu, reports, rates = [], [], []
        for _ in range(args.windows):
            c0, m0, t0 = hub.cpu(), counter.messages, time.monotonic()
            r0 = (await hub.metrics())["printforge_telemetry_reports_total"]
            await asyncio.sleep(args.window)
            elapsed = time.monotonic() - t0
            r1 = (await hub.metrics())["printforge_telemetry_reports_total"]
            cpu.append((hub.cpu() - c0) / elapsed * 100)
            reports.append((r1 - r0) / elapsed)
            rates.append((counter.messages - m0) / elapsed)
        return {
            "online_s": online_s,
            "cpu": median(cpu),
            "reports": median(reports),
            "mqtt": median(rates),
            "announce_s": announce_s,
        }
    finally:
        await hub.stop()
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
            await listener
        if mqtt:
            await clear_retained([base, prefix])


async def main_async(args: argparse.Namespace) -> None:
    """Both modes on one simulator fleet; print a Markdown table."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="printforge-bench-mqtt-") as tmp:
        progress(f"{args.printers} printers: simulator")
        async with fleet(args.printers, args.subnet, 1) as sim:
            off = await run_mode(args, sim.entries, Path(tmp), mqtt=False)
            on = await run_mode(args, sim.entries, Path(tmp), mqtt=True)
    print(
        f"3DPrintForge MQTT bench: {machine()}; {args.printers} simulated Bambu printers; "
        f"medians of {args.windows} x {args.window:g} s windows; "
        f"{time.monotonic() - started:.0f} s in all\n"
    )
    print("| `[mqtt]` | reports/s into the hub | hub CPU | MQTT messages/s at the broker |")
    print("|---|---|---|---|")
    for name, r in (("off", off), ("on", on)):
        print(f"| {name} | {r['reports']:.0f} | {r['cpu']:.0f} % | {r['mqtt']:.0f} |")
    extra = on["cpu"] - off["cpu"]
    per_message = extra / 100 / on["mqtt"] * 1e6 if on["mqtt"] else float("nan")
    print(
        f"\nMQTT costs {extra:+.0f} points of one core, about {per_message:.0f} µs of hub CPU "
        f"per message published. Start-up announce (discovery and retained state of every "
        f"printer): {on['announce_s']:.1f} s from the first message."
    )


def main() -> int:
    """Parse arguments and run."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--printers", type=int, default=500)
    p.add_argument("--subnet", default="127.95.0.0")
    p.add_argument("--window", type=float, default=8.0, help="seconds per measurement window")
    p.add_argument("--windows", type=int, default=3, help="windows (medians are taken)")
    p.add_argument("--warmup", type=float, default=5.0)
    args = p.parse_args()
    _proc.raise_fd_limit()
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.path.insert(0, str(_proc.ROOT))
    sys.exit(main())
