"""Benchmark worker: WebSocket clients of the hub's /ws that log when latency markers arrive.

A marker is a new nozzle target on a marker printer (see sim_fleet.py). Each client scans every
frame for `printer.status` messages of marker printers without a full JSON parse (clients must
cost less than the hub they measure) and logs (printer_id, nozzle_target, receive time) whenever
a marker printer's target changes.

    python bench/ws_load.py --url ws://127.0.0.1:PORT/ws --token T --clients 25 --markers m.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any

import _proc
import aiohttp

STATUS = '{"type":"printer.status","payload":{"printer_id":"'
TARGET = '"nozzle_target":'
MESSAGE = '{"type":"'


class Log:
    """What all clients of this process saw."""

    def __init__(self, markers: set[str]) -> None:
        self.markers = markers
        self.frames = 0
        self.messages = 0
        self.bytes = 0
        self.connected = 0
        self.closed = 0
        self.errors: list[str] = []
        self.seen: list[tuple[str, float, float]] = []


def scan(text: str, last: dict[str, float], log: Log, now: float) -> None:
    """Log marker printers whose nozzle target changed in this frame."""
    pos = text.find(STATUS)
    while pos >= 0:
        start = pos + len(STATUS)
        end = text.find('"', start)
        printer_id = text[start:end]
        if printer_id in log.markers:
            at = text.find(TARGET, end) + len(TARGET)
            stop = at
            while text[stop] not in ",}":
                stop += 1
            raw = text[at:stop]
            value = float(raw) if raw != "null" else -1.0
            previous = last.get(printer_id)
            last[printer_id] = value
            if previous is not None and previous != value:
                log.seen.append((printer_id, value, now))
        pos = text.find(STATUS, end)


async def client(
    session: aiohttp.ClientSession, args: argparse.Namespace, log: Log, gate: asyncio.Semaphore
) -> None:
    """One dashboard-like client: all printers, all message types."""
    last: dict[str, float] = {}
    try:
        async with gate:
            ws = await session.ws_connect(
                args.url,
                headers={"Authorization": f"Bearer {args.token}"},
                max_msg_size=0,
                heartbeat=None,
            )
        log.connected += 1
        async with ws:
            if args.subscribe:
                await ws.send_str(args.subscribe)
            async for msg in ws:
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    break
                now = time.time()
                text: str = msg.data
                log.frames += 1
                log.bytes += len(text)
                log.messages += max(
                    1, text.count(MESSAGE) - (1 if text.startswith(args.batch_prefix) else 0)
                )
                scan(text, last, log, now)
        log.closed += 1
    except (aiohttp.ClientError, OSError) as exc:
        log.errors.append(repr(exc))


async def run(args: argparse.Namespace) -> None:
    """Connect the clients, announce readiness, answer `stats`."""
    markers = set(args.markers)
    log = Log(markers)
    gate = asyncio.Semaphore(10)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [asyncio.create_task(client(session, args, log, gate)) for _ in range(args.clients)]
        for _ in range(600):
            if log.connected + len(log.errors) >= args.clients:
                break
            await asyncio.sleep(0.05)

        async def stats(_: dict[str, Any]) -> dict[str, Any]:
            seen, log.seen = log.seen, []
            return {
                "frames": log.frames,
                "messages": log.messages,
                "bytes": log.bytes,
                "connected": log.connected,
                "closed": log.closed,
                "errors": log.errors[:5],
                "seen": seen,
            }

        _proc.reply({"connected": log.connected, "errors": log.errors[:5]})
        await _proc.serve_commands({"stats": stats}, args.max_seconds)
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*tasks, return_exceptions=True)


def main() -> None:
    """Parse arguments and run."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--clients", type=int, default=25)
    p.add_argument("--markers", required=True, help="JSON list of marker printer ids")
    p.add_argument("--subscribe", default="", help="a subscribe message to send after connecting")
    p.add_argument("--batch-prefix", default='{"type":"batch"', help="how a batch frame starts")
    p.add_argument("--max-seconds", type=float, default=1800.0)
    args = p.parse_args()
    args.markers = json.loads(Path(args.markers).read_text(encoding="utf-8"))
    _proc.worker_main(lambda: run(args))


if __name__ == "__main__":
    main()
