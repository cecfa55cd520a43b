"""Webhook delivery benchmark: the hub's outbox sending signed messages to a loopback receiver.

The hub runs in this process (SQLite file, the embedded default); the receiver is its own
process (`webhook_receiver.py`). Events are synthetic print lifecycle steps published on the
hub's bus, as the history writer publishes them. Three phases:

- burst, 1 endpoint: 1,000 events at once; one endpoint has one delivery in flight, so this is
  the sequential rate (write row, sign, POST, record).
- burst, 20 endpoints: 300 events to each of 20 endpoints (6,000 deliveries) in parallel.
- farm rate: 500 simulated printers each raising one outbound event a minute (8.3 events/s,
  a busy farm: a print's start, pauses, end and its notifications) for 30 s, to 5 endpoints;
  outbox latency = arrival at the receiver - publication on the bus. The rate is below the
  burst capacity, so this is the latency of the path, not of a queue that only grows.

    .venv/bin/python bench/bench_outbox.py
"""

from __future__ import annotations

import asyncio
import resource
import sys
import tempfile
import time
from typing import Any

import _proc
from _proc import Worker, median, percentile

sys.path.insert(0, str(_proc.ROOT))

from config.loader import load
from hub.events import PrintRecorded
from hub.model import Job
from hub.runtime import Hub
from hub.store import webhooks as webhooks_store
from streams.events import LifecycleEvent, LifecycleKind

published: dict[str, float] = {}


def event(key: str) -> PrintRecorded:
    """One synthetic print start, remembered with its publication time."""
    now = time.time()
    published[key] = now
    step = LifecycleEvent("bench", LifecycleKind.STARTED, Job(file=f"{key}.gcode"), key, now, 0.0)
    return PrintRecorded("bench", key, key, step)


def cpu_s() -> float:
    """CPU seconds of this (the hub's) process."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def drain(receiver: Worker, expected: int, limit_s: float = 300.0) -> list[list[Any]]:
    """Wait until the receiver has `expected` messages; return and clear its log."""
    deadline = time.monotonic() + limit_s
    while (await receiver.ask("stats"))["count"] < expected:
        if time.monotonic() > deadline:
            raise RuntimeError("deliveries did not all arrive in time")
        await asyncio.sleep(0.1)
    arrivals: list[list[Any]] = (await receiver.ask("dump"))["arrivals"]
    return arrivals


async def endpoints(hub: Hub, port: int, count: int) -> None:
    """Replace the hub's endpoints with `count` pointing at the receiver."""
    for hook in (await webhooks_store.list_page(hub.db, 1000, 0))[0]:
        await webhooks_store.delete(hub.db, hook.id)
    for n in range(count):
        url = f"http://127.0.0.1:{port}/e{n}"
        await webhooks_store.create(hub.db, {"url": url, "events": ["print.*"]})


async def burst(hub: Hub, receiver: Worker, name: str, hooks: int, events: int) -> dict[str, Any]:
    """Publish `events` at once to `hooks` endpoints; deliveries per second until the last."""
    await endpoints(hub, receiver_port[0], hooks)
    cpu0, t0 = cpu_s(), time.time()
    for n in range(events):
        hub.bus.publish(event(f"{name}-{n}"))
    arrivals = await drain(receiver, events * hooks)
    elapsed = max(a[2] for a in arrivals) - t0
    return {
        "phase": name,
        "endpoints": hooks,
        "deliveries": len(arrivals),
        "deliveries_per_s": round(len(arrivals) / elapsed, 1),
        "hub_cpu_s": round(cpu_s() - cpu0, 2),
        "seconds": round(elapsed, 2),
    }


async def farm(hub: Hub, receiver: Worker, printers: int, every_s: float, seconds: float) -> Any:
    """Events at a farm's rate to 5 endpoints; outbox latency percentiles."""
    hooks = 5
    await endpoints(hub, receiver_port[0], hooks)
    rate = printers / every_s
    total = int(rate * seconds)
    cpu0, start = cpu_s(), time.monotonic()
    for n in range(total):
        # Paced by the clock, not by sleeps adding up.
        delay = start + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        hub.bus.publish(event(f"farm-{n}"))
    arrivals = await drain(receiver, total * hooks)
    cpu = cpu_s() - cpu0
    latencies = [(at - published[key]) * 1000 for _, key, at in arrivals]
    return {
        "phase": "farm",
        "printers": printers,
        "events_per_s": round(rate, 1),
        "endpoints": hooks,
        "deliveries": len(arrivals),
        "latency_ms_p50": round(median(latencies), 1),
        "latency_ms_p99": round(percentile(latencies, 99), 1),
        "latency_ms_max": round(max(latencies), 1),
        "hub_cpu_percent": round(100 * cpu / (time.monotonic() - start), 1),
    }


receiver_port = [0]


async def main() -> None:
    """Run the three phases once and print one JSON line per phase."""
    receiver = Worker("receiver", "webhook_receiver.py")
    receiver_port[0] = (await receiver.start())["port"]
    with tempfile.TemporaryDirectory() as tmp:
        settings = load(
            None,
            env={
                "PRINTFORGE_DATA_DIR": tmp,
                "PRINTFORGE_ADMIN_PASSWORD": "bench-password-1",
                "PRINTFORGE_WEBHOOKS_ALLOW_NETWORKS": "127.0.0.0/8",
            },
        )
        hub = Hub(settings)
        await hub.start(drivers=False)
        try:
            results = [
                await burst(hub, receiver, "burst-1", 1, 1000),
                await burst(hub, receiver, "burst-20", 20, 300),
                await farm(hub, receiver, printers=500, every_s=60.0, seconds=30.0),
            ]
        finally:
            await hub.stop()
            await receiver.stop()
    for result in results:
        print(result, flush=True)


if __name__ == "__main__":
    asyncio.run(main())
