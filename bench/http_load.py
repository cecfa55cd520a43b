"""Benchmark worker: a closed-loop HTTP/1.1 keep-alive load generator on raw asyncio protocols.

Each connection sends a request, waits for the whole response, records the latency and sends the
next, for a fixed time. Requests are pre-built bytes and responses are framed by Content-Length
only, so a request costs the generator a few microseconds, far less than any server it measures.

    python bench/http_load.py --connections 32   # then {"cmd": "run", ...} on stdin
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import _proc


class Conn(asyncio.Protocol):
    """One keep-alive connection cycling through its requests until the deadline."""

    def __init__(self, requests: list[bytes], deadline: float, done: asyncio.Future[None]) -> None:
        self.requests = requests
        self.deadline = deadline
        self.done = done
        self.index = 0
        self.buffer = b""
        self.sent_at = 0.0
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Send the first request."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        request = self.requests[self.index % len(self.requests)]
        self.index += 1
        self.sent_at = time.perf_counter()
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        """Complete responses end one cycle and start the next."""
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
                    break
            total = head_end + 4 + length
            if len(self.buffer) < total:
                return
            self.buffer = self.buffer[total:]
            now = time.perf_counter()
            self.latencies.append(now - self.sent_at)
            status = int(head[9:12])
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if now >= self.deadline:
                assert self.transport is not None
                self.transport.close()
                return
            self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        """The cycle is over (deadline, or the server closed)."""
        if not self.done.done():
            self.done.set_result(None)


def build_requests(host: str, port: int, paths: list[str], token: str) -> list[bytes]:
    """GET requests for each path with the bearer token."""
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return [
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{auth}Accept: application/json\r\n\r\n".encode()
        for path in paths
    ]


async def load(args: dict[str, Any]) -> dict[str, Any]:
    """Run `connections` connections for `seconds`; return counts and latencies in ms."""
    loop = asyncio.get_running_loop()
    host, port = args["host"], int(args["port"])
    requests = build_requests(host, port, list(args["paths"]), str(args.get("token", "")))
    start = time.perf_counter()
    deadline = start + float(args["seconds"])
    conns: list[Conn] = []
    waits: list[asyncio.Future[None]] = []
    for i in range(int(args["connections"])):
        done: asyncio.Future[None] = loop.create_future()
        # Stagger the start of each connection's request cycle over the paths.
        rotated = requests[i % len(requests) :] + requests[: i % len(requests)]
        conn = Conn(rotated, deadline, done)
        await loop.create_connection(lambda c=conn: c, host, port)  # type: ignore[misc]
        conns.append(conn)
        waits.append(done)
    await asyncio.wait(waits, timeout=float(args["seconds"]) + 30)
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()
    elapsed = time.perf_counter() - start
    statuses: dict[str, int] = {}
    for conn in conns:
        for status, count in conn.statuses.items():
            statuses[str(status)] = statuses.get(str(status), 0) + count
    latencies = [round(x * 1000, 3) for conn in conns for x in conn.latencies]
    return {"elapsed": elapsed, "statuses": statuses, "latencies_ms": latencies}


async def run(args: argparse.Namespace) -> None:
    """Announce readiness, then run loads on command."""
    _proc.reply({"ready": True})
    await _proc.serve_commands({"run": load}, args.max_seconds)


def main() -> None:
    """Parse arguments and run."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--max-seconds", type=float, default=1800.0)
    args = p.parse_args()
    _proc.worker_main(lambda: run(args))


if __name__ == "__main__":
    main()
