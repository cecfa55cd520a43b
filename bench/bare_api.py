"""Benchmark worker: the bare reference endpoint, plain Quart + Hypercorn serving JSON bodies of
the same shape and size as the hub's (no auth, no rate limit, no validation, no hub).

    python bench/bare_api.py --bodies bodies.json --port 8100   # serves until stdin closes
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

import _proc
from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart


def make_app(bodies: dict[str, Any]) -> Quart:
    """Two JSON routes answering with the given bodies (serialized per request, as the hub does)."""
    app = Quart("bare")
    listing, status = bodies["printers"], bodies["status"]

    @app.get("/api/printers")
    async def printers() -> dict[str, Any]:
        return {"items": [dict(item) for item in listing["items"]], "total": listing["total"]}

    @app.get("/api/printers/<printer_id>/status")
    async def printer_status(printer_id: str) -> dict[str, Any]:
        return {**status, "printer_id": printer_id}

    return app


async def run(args: argparse.Namespace) -> None:
    """Serve until the orchestrator closes stdin."""
    app = make_app(args.bodies)
    config = Config()
    config.bind = [f"127.0.0.1:{args.port}"]
    config.accesslog = None
    config.loglevel = "WARNING"
    config.graceful_timeout = 1
    stop = asyncio.Event()
    server = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    await asyncio.sleep(0.5)
    _proc.reply({"port": args.port})
    await _proc.serve_commands({}, args.max_seconds)
    stop.set()
    await asyncio.wait_for(server, 10)


def main() -> None:
    """Parse arguments and run."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--bodies", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--max-seconds", type=float, default=1800.0)
    args = p.parse_args()
    args.bodies = json.loads(Path(args.bodies).read_text(encoding="utf-8"))
    _proc.worker_main(lambda: run(args))


if __name__ == "__main__":
    main()
