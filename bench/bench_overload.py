"""Overload benchmark: a Bambu fleet larger than the hub can take, and how the hub degrades.

The simulator (its own process, open-files limit lifted) runs N Bambu printers against a real
`printforge serve` in another process. Every `--every` seconds for `--seconds` it prints the
reports/s the fleet offered and the hub took in, the reports shed per stage (from
/api/metrics), and the hub's RSS; all along, a prober asks /api/health and the latencies go
into p50/p99; at the end the hub gets SIGTERM and the time to its exit is measured.

    .venv/bin/python bench/bench_overload.py                  # make bench-overload: 4,000
    .venv/bin/python bench/bench_overload.py --printers 2000
    .venv/bin/python bench/bench_overload.py --pin              # hub on CPU 0, the rest on 1

`--pin` keeps the simulators (and this script's prober) off the hub's core, so that on a small
machine the figures measure the hub rather than how the OS shares cores between the hub and
the fleet it is measured against; `--profile S` records S seconds of the hub with py-spy.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _proc
import aiohttp
from _proc import Worker, median, percentile
from hub_proc import HubProcess

sys.path.insert(0, str(_proc.ROOT))

SHED = "printforge_reports_shed_total"
RECEIVED = "printforge_printer_messages_total"
FED = "printforge_telemetry_reports_total"
SIM_ARGS = ("--markers", "0", "--max-seconds", "7200")


def progress(text: str) -> None:
    """A progress line on stderr (stdout carries only the results)."""
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def pin(pid: int, cpus: set[int]) -> None:
    """Restrict every thread of process `pid` (and the threads it starts later) to `cpus`."""
    tasks = Path(f"/proc/{pid}/task")
    for tid in [int(t.name) for t in tasks.iterdir()] if tasks.is_dir() else [pid]:
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(tid, cpus)


def split_cores() -> tuple[set[int], set[int]]:
    """(the hub's cores, everyone else's): the first usable core for the hub, the rest others."""
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) < 2:
        raise SystemExit("--pin needs at least two usable cores")
    return {usable[0]}, set(usable[1:])


async def profile(pid: int, seconds: float, out: Path) -> None:
    """Record `seconds` of process `pid` with py-spy (raw collapsed stacks) into `out`."""
    spy = Path(sys.executable).with_name("py-spy")
    proc = await asyncio.create_subprocess_exec(
        str(spy), "record", "--nonblocking", "--format", "raw", "--duration", f"{seconds:g}",
        "--pid", str(pid), "--output", str(out),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await proc.wait()
    progress(f"py-spy profile of the hub: {out}")


def shed(metrics: dict[str, float]) -> dict[str, float]:
    """Reports shed so far, per stage label."""
    out = {}
    for name, value in metrics.items():
        if name.startswith(SHED + "{"):
            out[name[len(SHED) + 1 : -1]] = value
    return out


async def probe_health(
    base: str, every_s: float, latencies: list[float], stop: asyncio.Event
) -> None:
    """GET /api/health every `every_s` (one at a time) and record each answer's latency in ms."""
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while not stop.is_set():
            started = time.monotonic()
            try:
                async with session.get(base + "/api/health") as r:
                    await r.read()
                latencies.append((time.monotonic() - started) * 1000)
            except (aiohttp.ClientError, TimeoutError):
                latencies.append(float("inf"))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)


async def until_online(hub: HubProcess, count: int, limit_s: float) -> float:
    """Seconds from the hub's spawn until `count` printers are online (inf after `limit_s`)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            metrics = await hub.metrics()
            if metrics.get('printforge_printer_links{connection="online"}', 0) >= count:
                return time.monotonic() - hub.spawned_at
        await asyncio.sleep(1.0)
    return float("inf")


async def sigterm_exit_s(hub: HubProcess, limit_s: float) -> float:
    """SIGTERM the hub and return the seconds until it exited (inf if killed after `limit_s`)."""
    proc = hub.proc
    assert proc is not None
    if hub.session is not None:
        await hub.session.close()
        hub.session = None
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), limit_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return float("inf")
    return time.monotonic() - started


class Fleet:
    """The simulator processes; their counters summed."""

    def __init__(self, workers: list[Worker]) -> None:
        self.workers = workers

    async def ask(self, cmd: str) -> dict[str, Any]:
        """Send `cmd` to every simulator; numbers in the answers are summed."""
        answers = await asyncio.gather(*(w.ask(cmd) for w in self.workers))
        return {"offered": sum(a["offered"] for a in answers)}


async def measure(args: argparse.Namespace, worker: Fleet, entries: list[Any], root: Path) -> None:
    """One hub (the source tree at `root`) against the running fleet: sample, SIGTERM, print."""
    hub = HubProcess(Path(tempfile.mkdtemp(prefix="printforge-overload-")), root)
    try:
        await hub.prepare(entries)
        progress(f"hub start-up ({root})")
        health_s, _ = await hub.start(wait_online=False, health_limit_s=900)
        if args.pin:
            assert hub.proc is not None
            pin(hub.proc.pid, args.cores[0])
        progress(f"/api/health 200 after {health_s:.1f} s; waiting for the fleet to be online")
        online_s = await until_online(hub, int(0.95 * len(entries)), args.online_limit)
        progress(f"{online_s:.0f} s to 95 % online; warm-up {args.warmup:g} s")
        await asyncio.sleep(args.warmup)
        latencies: list[float] = []
        stop = asyncio.Event()
        prober = asyncio.create_task(probe_health(hub.base, args.probe_every, latencies, stop))
        spy = None
        if args.profile and hub.proc is not None:
            out = Path(tempfile.gettempdir()) / f"overload-{hub.proc.pid}.txt"
            spy = asyncio.create_task(profile(hub.proc.pid, args.profile, out))
        rows = []
        sim = await worker.ask("stats")
        metrics = await hub.metrics()
        at = time.monotonic()
        t0 = at
        for _ in range(int(args.seconds / args.every)):
            await asyncio.sleep(args.every)
            sim2, metrics2 = await worker.ask("stats"), await hub.metrics()
            now = time.monotonic()
            dt = now - at
            row = {
                "t": now - t0,
                "offered": (sim2["offered"] - sim["offered"]) / dt,
                "received": (metrics2.get(RECEIVED, 0) - metrics.get(RECEIVED, 0)) / dt,
                "fed": (metrics2.get(FED, 0) - metrics.get(FED, 0)) / dt,
                "shed": shed(metrics2),
                "online": metrics2.get('printforge_printer_links{connection="online"}', 0),
                "rss": hub.rss_mib(),
                "cpu": hub.cpu(),
            }
            rows.append(row)
            progress(
                f"t={row['t']:4.0f} s offered {row['offered']:6.0f}/s taken in "
                f"{row['received']:6.0f}/s fed {row['fed']:6.0f}/s online {row['online']:.0f} "
                f"RSS {row['rss']:7.1f} MiB"
            )
            sim, metrics, at = sim2, metrics2, now
        stop.set()
        await prober
        if spy is not None:
            await spy
        progress("SIGTERM")
        exit_s = await sigterm_exit_s(hub, args.stop_limit)
    finally:
        await hub.stop()
    report(args, root, (health_s, online_s), rows, latencies, exit_s)


def report(
    args: argparse.Namespace,
    root: Path,
    started: tuple[float, float],
    rows: list[dict[str, Any]],
    latencies: list[float],
    exit_s: float,
) -> None:
    """Print one hub's figures as Markdown."""
    cores = (rows[-1]["cpu"] - rows[0]["cpu"]) / (rows[-1]["t"] - rows[0]["t"]) if rows else 0.0
    load = os.getloadavg()
    pinned = ", hub pinned to its own core" if args.pin else ""
    print(
        f"\n3DPrintForge bench-overload ({root}): {args.printers} simulated Bambu printers, "
        f"{os.cpu_count()} cores{pinned}, load average {load[0]:.1f} at the end; "
        f"/api/health 200 {started[0]:.0f} s after start, 95 % online after {started[1]:.0f} s\n"
    )
    print("| t (s) | offered/s | taken in/s | fed to streams/s | online | RSS (MiB) | shed |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        stages = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(r["shed"].items()) if v)
        print(
            f"| {r['t']:.0f} | {r['offered']:,.0f} | {r['received']:,.0f} | {r['fed']:,.0f} "
            f"| {r['online']:.0f} | {r['rss']:.1f} | {stages or '-'} |"
        )
    finite = [x for x in latencies if x != float("inf")]
    print(
        f"\nmedians: offered {median([r['offered'] for r in rows]):,.0f}/s, taken in "
        f"{median([r['received'] for r in rows]):,.0f}/s, fed to the streams "
        f"{median([r['fed'] for r in rows]):,.0f}/s; hub CPU {cores:.2f} cores"
    )
    print(
        f"/api/health during saturation: p50 {percentile(finite, 50):.0f} ms, p99 "
        f"{percentile(finite, 99):.0f} ms, max {max(finite, default=float('nan')):.0f} ms "
        f"({len(latencies)} probes, {len(latencies) - len(finite)} failed)"
    )
    print(f"SIGTERM to exit: {exit_s:.2f} s" + (" (killed)" if exit_s == float("inf") else ""))
    rss = [r["rss"] for r in rows]
    if len(rss) >= 3:
        third = len(rss) // 3
        print(f"RSS first/last third medians: {median(rss[:third]):.0f} / "
              f"{median(rss[-third:]):.0f} MiB")  # fmt: skip
    sys.stdout.flush()


async def run(args: argparse.Namespace) -> None:
    """Start the fleet once, then measure each hub against it in turn."""
    k = args.sim_processes
    progress(f"simulator: {args.printers} Bambu printers in {k} process(es)")
    a, b, _, _ = (int(x) for x in args.subnet.split("."))
    sizes = [args.printers // k + (i < args.printers % k) for i in range(k)]
    subnets = [f"{a}.{b + i}.0.0" for i in range(k)]
    workers = [
        Worker("simulator", "sim_fleet.py", "--printers", str(n), "--subnet", net, *SIM_ARGS)
        for n, net in zip(sizes, subnets, strict=True)
    ]
    try:
        ready = await asyncio.gather(*(w.start(limit_s=1800) for w in workers))
        if args.pin:
            others = args.cores[1]
            pin(os.getpid(), others)
            for w in workers:
                assert w.proc is not None
                pin(w.proc.pid, others)
        entries = [e for r in ready for e in r["printers"]]
        for root in args.roots:
            await measure(args, Fleet(workers), entries, root)
    finally:
        await asyncio.gather(*(w.stop() for w in workers))


def main() -> int:
    """Parse arguments and run."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--printers", type=int, default=4000)
    p.add_argument("--subnet", default="127.94.0.0")
    p.add_argument(
        "--sim-processes", type=int, default=1, help="simulator processes sharing the fleet"
    )
    p.add_argument("--seconds", type=float, default=90.0, help="measured time")
    p.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    p.add_argument("--warmup", type=float, default=10.0, help="seconds once 95 %% are online")
    p.add_argument("--online-limit", type=float, default=300.0, help="longest wait for 95 %%")
    p.add_argument("--probe-every", type=float, default=0.25, help="seconds between health probes")
    p.add_argument("--stop-limit", type=float, default=60.0, help="SIGKILL after this long")
    p.add_argument(
        "--pin", action="store_true", help="the hub on one core, simulators and prober on the rest"
    )
    p.add_argument("--profile", type=float, default=0.0, help="seconds of py-spy on the hub")
    p.add_argument(
        "--roots", nargs="*", help="source trees to run the hub from, in turn (default: this one)"
    )
    args = p.parse_args()
    args.roots = [Path(r).resolve() for r in args.roots or [_proc.ROOT]]
    args.cores = split_cores() if args.pin else None
    _proc.raise_fd_limit()
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
