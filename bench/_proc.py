"""Benchmark plumbing: worker processes driven by JSON lines, CPU/RSS sampling, statistics."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import signal
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PYTHON = sys.executable
LINE_LIMIT = 256 * 2**20  # describe() of 1,000 printers and marker logs fit in one line


def raise_fd_limit() -> int:
    """Lift the soft open-files limit to the hard one (children inherit it); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def cpu_seconds(proc: psutil.Process) -> float:
    """User + system CPU seconds of a process."""
    t = proc.cpu_times()
    return t.user + t.system


def median(values: Sequence[float]) -> float:
    """Median, NaN for no values."""
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (nearest rank) of values, NaN for none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


# -- the orchestrator's side -------------------------------------------------------------------
class Worker:
    """A child process that prints one JSON line when ready and answers JSON-line commands."""

    def __init__(self, name: str, script: str, *args: str) -> None:
        self.name = name
        self.argv = [PYTHON, str(BENCH / script), *args]
        self.proc: asyncio.subprocess.Process | None = None
        self.ps: psutil.Process | None = None

    async def start(self, limit_s: float = 120.0) -> dict[str, Any]:
        """Spawn and wait for the ready line."""
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv,
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=LINE_LIMIT,
        )
        self.ps = psutil.Process(self.proc.pid)
        return await self._read(limit_s)

    async def _read(self, limit_s: float) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), limit_s)
        if not line:
            raise RuntimeError(f"{self.name} exited (code {await self.proc.wait()})")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"{self.name}: {answer['error']}")
        return answer

    async def ask(self, cmd: str, limit_s: float = 120.0, **args: Any) -> dict[str, Any]:
        """Send one command and wait for its answer."""
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"cmd": cmd, **args}) + "\n").encode())
        await self.proc.stdin.drain()
        return await self._read(limit_s)

    def cpu(self) -> float:
        """CPU seconds used so far."""
        assert self.ps is not None
        return cpu_seconds(self.ps)

    async def stop(self, limit_s: float = 30.0) -> None:
        """Ask it to quit; kill it if it does not."""
        await stop_process(self.proc, limit_s, stdin_eof=True)


async def stop_process(
    proc: asyncio.subprocess.Process | None, limit_s: float = 30.0, *, stdin_eof: bool = False
) -> None:
    """End a child we started: EOF on stdin or SIGTERM, then SIGKILL after `limit_s`."""
    if proc is None or proc.returncode is not None:
        return
    if stdin_eof and proc.stdin is not None:
        with contextlib.suppress(Exception):
            proc.stdin.close()
    else:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), limit_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


# -- the worker's side -------------------------------------------------------------------------
Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def reply(message: dict[str, Any]) -> None:
    """Write one JSON line to the orchestrator."""
    sys.stdout.write(json.dumps(message, separators=(",", ":")) + "\n")
    sys.stdout.flush()


async def serve_commands(handlers: dict[str, Handler], max_seconds: float) -> None:
    """Answer commands from stdin until EOF, `quit`, or `max_seconds` (a safety bound).

    Answers go out through a non-blocking pipe writer: a large answer (a client process's
    latency log) must not freeze the worker's event loop while the orchestrator reads it, or
    the worker's own sockets stop being served and the measurement measures the bench.
    """
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    sys.stdout.flush()
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, sys.stdout
    )
    writer = asyncio.StreamWriter(transport, protocol, None, loop)

    async def answer(message: dict[str, Any]) -> None:
        writer.write((json.dumps(message, separators=(",", ":")) + "\n").encode())
        await writer.drain()

    deadline = time.monotonic() + max_seconds
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        try:
            line = await asyncio.wait_for(reader.readline(), remaining)
        except TimeoutError:
            return
        if not line:
            return
        message = json.loads(line)
        cmd = message.pop("cmd")
        if cmd == "quit":
            return
        handler = handlers.get(cmd)
        if handler is None:
            await answer({"error": f"unknown command {cmd!r}"})
            continue
        try:
            await answer(await handler(message))
        except Exception as exc:
            await answer({"error": f"{cmd}: {exc!r}"})


def worker_main(run: Callable[[], Awaitable[None]]) -> None:
    """Entry point of a worker script: unbuffered, lifted fd limit, SIGINT ignored."""
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise_fd_limit()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the orchestrator ends us
    asyncio.run(run())
