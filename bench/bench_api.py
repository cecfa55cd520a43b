"""Micro-benchmark: the hub app's CPU per API request, in process, without Hypercorn or sockets.

A real hub (SQLite, auth, rate limiter on) with `--printers` Bambu printers whose drivers are fed
pre-built reports by hand, one report per printer per round, and between rounds `--requests`
GET requests through the ASGI app (bearer token, as the load generator sends them). Prints CPU
µs per request for the listing and for status (reports are fed outside the measured spans). A
quick, low-noise A/B for the request path; `bench_hub.py api` measures the real thing.

    .venv/bin/python bench/bench_api.py --printers 100 --rounds 10 --requests 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import _proc

sys.path.insert(0, str(_proc.ROOT))

from bare_api import make_app
from bench_ingest import _entry, payloads

from api.app import create_app
from config.loader import load
from hub.model import Connection
from hub.printer_manager import PrinterRecord
from hub.runtime import Hub
from hub.store import printers as printers_store
from hub.store import users as users_store
from integrations.printers.bambu.driver import BambuDriver
from integrations.printers.base import DriverConfig

Send = Callable[[dict[str, Any]], Awaitable[None]]


def scope(path: str, token: str) -> dict[str, Any]:
    """An ASGI HTTP scope like the load generator's requests."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"accept", b"application/json"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "extensions": {},
    }


async def request(app: Any, path: str, token: str) -> tuple[int, bytes]:
    """One request through the ASGI app: (status, body)."""
    out: dict[str, Any] = {"status": 0, "body": b""}
    messages = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # as a server does until the client goes away
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    await app(scope(path, token), receive, send)
    return out["status"], out["body"]


async def run(args: argparse.Namespace) -> None:
    """Build the hub and app, alternate report rounds and measured request batches."""
    rounds = payloads(args.printers, args.rounds + 1, 60.0)
    with tempfile.TemporaryDirectory() as tmp:
        settings = load(
            None,
            env={
                "PRINTFORGE_DATA_DIR": tmp,
                "PRINTFORGE_ADMIN_PASSWORD": "bench-password",
                "PRINTFORGE_SERVER_LOG_LEVEL": "warning",
                "PRINTFORGE_RATE_LIMIT_ENABLED": "true",
                "PRINTFORGE_RATE_LIMIT_PER_MINUTE": "100000000",
                "PRINTFORGE_RATE_LIMIT_PER_SECOND": "10000000",
            },
        )
        hub = Hub(settings)
        app = create_app(hub)
        async with app.test_app():
            drivers = []
            for i in range(args.printers):
                row = await printers_store.create(
                    hub.db,
                    {"name": f"printer {i:05d}", "protocol": "bambu", "host": f"127.0.9.{i}",
                     "port": 8883, "serial": f"S{i:05d}", "access_code": "12345678",
                     "enabled": False},
                )  # fmt: skip
                hub.printers[row.id] = row
                record = PrinterRecord(row.id, row.name, "bambu", row.host, serial=row.serial or "")
                entry = hub.manager._entries.setdefault(row.id, _entry(record))
                model = "X1C" if i % 5 == 0 else "P1S"
                driver = BambuDriver(
                    DriverConfig(row.id, row.host, serial=record.serial, model=model),
                    hub.manager._forwarder(entry),
                )
                entry.driver = driver
                driver._connection = Connection.ONLINE
                drivers.append(driver)
            admin = await users_store.by_username(hub.db, "admin")
            assert admin is not None
            token = hub.auth.issue(admin)
            ids = sorted(hub.printers)
            cases = {
                "list": ["/api/printers"],
                "status": [f"/api/printers/{pid}/status" for pid in ids],
            }
            if args.only:
                cases = {args.only: cases[args.only]}
            _, listing = await request(app, "/api/printers", token)
            first = json.loads(listing)["items"][0]["id"]  # as bench_hub.py picks it
            _, status = await request(app, f"/api/printers/{first}/status", token)
            bare = make_app({"printers": json.loads(listing), "status": json.loads(status)})
            async with bare.test_app():
                await run_rounds(args, app, bare, token, cases, drivers, rounds)
            hub.manager._entries.clear()


async def run_rounds(
    args: argparse.Namespace, app: Any, bare: Any, token: str, cases: dict[str, list[str]],
    drivers: list[BambuDriver], rounds: list[list[bytes]],
) -> None:  # fmt: skip
    """Alternate report rounds and measured batches on the hub app and on the bare app."""
    results: dict[str, list[float]] = {name: [] for name in cases}
    bare_results: dict[str, list[float]] = {name: [] for name in cases}
    for n, batch in enumerate(rounds):
        for driver, payload in zip(drivers, batch, strict=True):
            driver._mark_seen()
            driver._handle(payload)
        await asyncio.sleep(0)
        if n == 0:
            for paths in cases.values():
                for path in paths:
                    status, _ = await request(app, path, token)
                    assert status == 200, (path, status)
            continue
        for name, paths in cases.items():
            for target, out in ((app, results), (bare, bare_results)):
                cpu0 = time.process_time()
                for k in range(args.requests):
                    await request(target, paths[k % len(paths)], token)
                out[name].append((time.process_time() - cpu0) / args.requests * 1e6)
    for name, values in results.items():
        base = bare_results[name]
        ratios = [b / h for h, b in zip(values, base, strict=True)]
        print(
            f"{name}: hub {statistics.median(values):.0f} µs CPU per request "
            f"(min {min(values):.0f}), bare {statistics.median(base):.0f} "
            f"(min {min(base):.0f}); bare/hub {statistics.median(ratios):.2f} "
            f"(req/s ratio if CPU-bound; {len(values)} batches)"
        )


def main() -> None:
    """Parse arguments and run."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--printers", type=int, default=100)
    p.add_argument("--rounds", type=int, default=10, help="report rounds (a batch after each)")
    p.add_argument("--requests", type=int, default=1000, help="requests per endpoint per batch")
    p.add_argument("--only", choices=("list", "status"), help="measure one endpoint only")
    args = p.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
