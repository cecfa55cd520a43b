"""Bench worker: a webhook receiver on loopback recording when each message arrived."""

from __future__ import annotations

import json
import time
from typing import Any

from _proc import reply, serve_commands, worker_main
from aiohttp import web

arrivals: list[tuple[str, str, float]] = []


async def hook(request: web.Request) -> web.Response:
    """Record (endpoint path, job key, arrival time) and answer 204."""
    body = await request.read()
    at = time.time()
    arrivals.append((request.path, json.loads(body)["data"]["job_key"], at))
    return web.Response(status=204)


async def run() -> None:
    """Serve until the orchestrator ends us."""
    app = web.Application()
    app.router.add_post("/{tail:.*}", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server: Any = site._server
    reply({"port": server.sockets[0].getsockname()[1]})

    async def stats(_: dict[str, Any]) -> dict[str, Any]:
        return {"count": len(arrivals)}

    async def dump(_: dict[str, Any]) -> dict[str, Any]:
        found = list(arrivals)
        arrivals.clear()
        return {"arrivals": found}

    await serve_commands({"stats": stats, "dump": dump}, max_seconds=1800)
    await runner.cleanup()


if __name__ == "__main__":
    worker_main(run)
