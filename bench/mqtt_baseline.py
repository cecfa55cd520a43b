"""Benchmark worker: the bare ingest baseline, one aiomqtt client over TLS per printer that only
parses each report's JSON (what any Python consumer of the fleet must at least spend).

    python bench/mqtt_baseline.py --fleet fleet.json   # then JSON-line commands on stdin
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import ssl
from pathlib import Path
from typing import Any

import _proc
import aiomqtt


class Stats:
    """Reports received and parsed."""

    def __init__(self) -> None:
        self.received = 0
        self.connected = 0
        self.errors: list[str] = []


async def subscriber(entry: dict[str, Any], tls: ssl.SSLContext, stats: Stats, gate: Any) -> None:
    """Connect, subscribe to the printer's report topic, parse every message until cancelled."""
    client = aiomqtt.Client(
        entry["host"],
        entry["port"],
        username="bblp",
        password=entry["access_code"],
        protocol=aiomqtt.ProtocolVersion.V311,
        keepalive=30,
        tls_context=tls,
        tls_insecure=True,
    )
    try:
        async with gate:
            await client.__aenter__()
        try:
            await client.subscribe(f"device/{entry['serial']}/report")
            stats.connected += 1
            async for message in client.messages:
                json.loads(message.payload)  # type: ignore[arg-type]
                stats.received += 1
        finally:
            with contextlib.suppress(Exception):
                await client.__aexit__(None, None, None)
    except aiomqtt.MqttError as exc:
        stats.errors.append(f"{entry['name']}: {exc}")


async def run(args: argparse.Namespace) -> None:
    """Connect every subscriber, announce readiness, answer `stats`."""
    entries = args.fleet
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    tls.check_hostname = False
    tls.verify_mode = ssl.CERT_NONE
    stats = Stats()
    gate = asyncio.Semaphore(50)  # connect in waves
    tasks = [asyncio.create_task(subscriber(e, tls, stats, gate)) for e in entries]
    for _ in range(600):
        if stats.connected + len(stats.errors) >= len(entries):
            break
        await asyncio.sleep(0.1)

    async def report(_: dict[str, Any]) -> dict[str, Any]:
        return {"received": stats.received, "connected": stats.connected, "errors": stats.errors}

    _proc.reply({"connected": stats.connected, "errors": stats.errors[:5]})
    await _proc.serve_commands({"stats": report}, args.max_seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def main() -> None:
    """Parse arguments and run."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--fleet", required=True, help="the simulator's describe() as a JSON file")
    p.add_argument("--max-seconds", type=float, default=1800.0)
    args = p.parse_args()
    args.fleet = json.loads(Path(args.fleet).read_text(encoding="utf-8"))
    _proc.worker_main(lambda: run(args))


if __name__ == "__main__":
    main()
