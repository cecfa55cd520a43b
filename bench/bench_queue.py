"""`make bench-queue`: the print queue's dispatcher on a large simulated farm.

1,000 simulated Bambu printers (a separate process, real MQTT + FTPS on loopback) and a hub
(`printforge serve`, SQLite) with 10,000 queued jobs. Measured:
- dispatch latency in the hub: from the dispatcher seeing a printer idle and ready to the start
  command being sent (`printforge_queue_dispatch_latency_seconds`, bucket bounds);
- the same as the printers see it: from a print ending inside the window to the printer
  receiving its next start command (report delay and file upload included), p50/p99/max;
- the dispatcher's CPU: what it spent choosing (`printforge_queue_decision_cpu_seconds`), and the
  hub's whole CPU over the window minus an equally long window of the same farm with an empty
  queue (a first hub run: uploads and claims included), as shares of one core.

    python bench/bench_queue.py [--printers 1000] [--jobs 10000] [--window-s 120]
                                [--db sqlite|postgresql] [--sim-processes 2]
                                [--online-share 0.98] [--print-s 1800] [--print-spread 0]
                                [--warmup-s 30] [--no-empty-run]

By default every print takes the same time and the whole farm starts together, so its prints
end in waves and the farm asks ~15 starts/s at 1,000 printers, more than the hub does: the
latency is then mostly the backlog. `--print-spread` (prints of several lengths) with a longer
`--print-s` and a warm-up past the first prints' ends asks fewer starts per second, spread out
(`starts_per_s` in the output), to show the latency of a dispatch the hub keeps up with, e.g.
`--print-s 3600 --print-spread 2 --warmup-s 150` (prints of 2-6 min real time).

Exactly once is checked after the run from the database (no job with two live runs) and the
printers' own logs (no run's file started twice, none without a run).

With `--db postgresql` the hub runs on a database of its own on the local server
(127.0.0.1:5432, dropped afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from _proc import Worker, percentile, raise_fd_limit
from hub_proc import HubProcess, write_json

from hub.files import FileLibrary
from hub.store import db as store
from hub.store import printers as printers_store
from hub.store import queue as queue_store
from hub.store.queue import JobRow
from integrations.simulator.cli import demo_project

RESULTS = Path(tempfile.gettempdir())
PG_ADMIN = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def store_farm(url: str, data_dir: Path, printers: list[dict[str, Any]]) -> None:
    """The printers, with beds that clear themselves (nobody walks the farm in a benchmark)."""
    database = await store.connect(url)
    try:
        await store.migrate(database)
        async with database.transaction():
            for e in printers:
                await printers_store.create(
                    database,
                    {
                        "name": e["name"], "protocol": "bambu", "host": e["host"],
                        "port": e["port"], "serial": e["serial"], "model": e["model"],
                        "access_code": e["access_code"], "ftps_port": e["ftps_port"],
                        "auto_clear_bed": True,
                    },
                )  # fmt: skip
    finally:
        await database.disconnect()


SPREAD_FILES = 8  # prints of as many lengths with --print-spread


async def store_jobs(
    url: str, data_dir: Path, count: int, print_s: int, spread: float = 0.0
) -> None:
    """`count` queued jobs: 95 % PLA (any colour), 5 % ABS that no printer has, queued first
    (high priority) so that every pass walks past them as a real queue's stuck jobs make it.
    With `spread`, the PLA prints take `print_s` to `print_s * (1 + spread)` (SPREAD_FILES
    lengths, in turn), so the farm's ends spread out instead of coming in waves."""
    database = await store.connect(url)
    try:
        library = FileLibrary(database, data_dir, 1 << 30)
        lengths = [print_s] if spread <= 0 else [
            round(print_s * (1 + spread * k / (SPREAD_FILES - 1))) for k in range(SPREAD_FILES)
        ]  # fmt: skip
        plas = [
            (
                await library.save(
                    f"pla-{s}.gcode.3mf", _chunks(demo_project(s, 100, 10.0)), "bench"
                )
            )[0]
            for s in lengths
        ]
        abs_, _ = await library.save(
            "abs.gcode.3mf", _chunks(demo_project(print_s, 100, 10.0, material="ABS")), "bench"
        )
        now = time.time()
        async with database.transaction():
            for i in range(count):
                stuck = i % 20 == 0
                file = abs_ if stuck else plas[i % len(plas)]
                material = "ABS" if stuck else "PLA"
                await queue_store.insert_job(
                    database,
                    JobRow(
                        id=str(uuid.uuid4()), file_id=file.id, plate=1, copies=1,
                        copies_done=0, priority=1 if stuck else 0, position=float(i + 1),
                        target={}, materials=[{"slot": 1, "material": material,
                                               "color": None, "grams": 10.0}],
                        state="queued", attempts=0, waiting_reason=None, last_error=None,
                        added_by="bench", printer_id=None, run_id=None, created_at=now + i * 1e-6,
                        updated_at=now,
                    ),
                )  # fmt: skip
    finally:
        await database.disconnect()


async def hub_cpu_over(hub: HubProcess, seconds: float) -> float:
    """The hub's CPU seconds over a window of `seconds`."""
    before = hub.cpu()
    await asyncio.sleep(seconds)
    return hub.cpu() - before


BUCKET = "printforge_queue_dispatch_latency_seconds_bucket"


def window(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    """The hub's own dispatch figures over a window, from two /api/metrics readings."""
    bounds = sorted(
        (float(k.split('le="')[1].rstrip('"}').replace("+Inf", "inf")), k)
        for k in after
        if k.startswith(BUCKET)
    )
    counts = [(bound, after[k] - before.get(k, 0.0)) for bound, k in bounds]
    total = counts[-1][1] if counts else 0.0

    def quantile(q: float) -> float | None:
        for bound, count in counts:
            if total and count >= q * total:
                return bound
        return None

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    return {
        "starts": total,
        "latency_p50_at_most_s": quantile(0.5),
        "latency_p99_at_most_s": quantile(0.99),
        "latency_mean_s": delta("printforge_queue_dispatch_latency_seconds_sum") / total
        if total
        else None,
        "decision_cpu_s": delta("printforge_queue_decision_cpu_seconds_total"),
        "start_slot_s_mean": delta("printforge_queue_start_seconds_total")
        / max(1.0, delta("printforge_queue_starts_total")),
    }


class Fleets:
    """The simulated farm, split over `count` processes (each its own subnet), as one."""

    def __init__(self, args: argparse.Namespace) -> None:
        first = args.subnet.split(".")
        shares = [args.printers // args.sim_processes] * args.sim_processes
        shares[0] += args.printers - sum(shares)
        self.workers = []
        for i, n in enumerate(shares):
            subnet = ".".join([first[0], str(int(first[1]) + i), *first[2:]])
            argv = ["--printers", str(n), "--speed", str(args.speed), "--subnet", subnet]
            self.workers.append(Worker(f"simulator-{i}", "queue_fleet.py", *argv))

    async def start(self, limit_s: float) -> list[dict[str, Any]]:
        """Start every process (together); the printers they announce."""
        ready = await asyncio.gather(*(w.start(limit_s=limit_s) for w in self.workers))
        return [p for r in ready for p in r["printers"]]

    async def ask(self, cmd: str) -> list[dict[str, Any]]:
        """Every process's answer to one command."""
        return list(await asyncio.gather(*(w.ask(cmd) for w in self.workers)))

    def cpu(self) -> float:
        """CPU seconds of all simulator processes."""
        return sum(w.cpu() for w in self.workers)

    async def stop(self) -> None:
        """Stop every process."""
        await asyncio.gather(*(w.stop() for w in self.workers))


async def once_checks(url: str, started_files: list[str]) -> dict[str, Any]:
    """Exactly once, from the database and the printers' own logs: no job with two live runs,
    no run's file started twice or on a printer other than its run's."""
    database = await store.connect(url)
    try:
        runs = await database.fetch_all(
            "SELECT r.job_id, r.filename, r.state, p.serial FROM queue_runs r"
            " JOIN printers p ON p.id = r.printer_id"
        )
    finally:
        await database.disconnect()
    live: dict[str, int] = {}
    for r in runs:
        if r["state"] != "requeued":
            live[r["job_id"]] = live.get(r["job_id"], 0) + 1
    files = {r["filename"] for r in runs}
    seen: dict[str, int] = {}
    for f in started_files:
        seen[f] = seen.get(f, 0) + 1
    return {
        "runs": len(runs),
        "jobs_with_more_than_one_live_run": sum(1 for n in live.values() if n > 1),
        "printer_starts": len(started_files),
        "files_started_more_than_once": sum(1 for n in seen.values() if n > 1),
        "starts_without_a_run": sum(1 for f in seen if f not in files),
    }


async def online_count(hub: HubProcess) -> float:
    """Printers online now, by the hub's /api/metrics."""
    return (await hub.metrics()).get('printforge_printer_links{connection="online"}', 0.0)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Both hub runs; the figures."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-queue-"))
    fleet = Fleets(args)
    printers = await fleet.start(limit_s=900)
    print(f"fleet: {len(printers)} printers in {args.sim_processes} process(es)", flush=True)
    extra = "[queue]\nstart_timeout_s = 900\n"
    data_dir = workdir / "data"
    url = f"sqlite+aiosqlite:///{data_dir / 'printforge.db'}"
    pg_name = ""
    if args.db == "postgresql":
        pg_name = f"bench_queue_{uuid.uuid4().hex[:8]}"
        admin = await store.connect(PG_ADMIN)
        await admin.execute(f"CREATE DATABASE {pg_name}")
        await admin.disconnect()
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{pg_name}"
        extra += f'[database]\nurl = "{url}"\n'
    hub: HubProcess | None = None
    try:
        # Run 1: the same farm, an empty queue: the hub's CPU without dispatching.
        hub = HubProcess(workdir)
        await hub.prepare([], extra)
        await store_farm(url, data_dir, printers)
        want = max(1, int(args.printers * args.online_share))
        idle_cpu = float("nan")
        if not args.no_empty_run:
            health, _ = await hub.start(wait_online=False)
            online = await hub.until_online(want, args.online_limit_s)
            print(f"hub 1: healthy {health:.1f} s, {want} online {online:.1f} s", flush=True)
            await hub.settled(5.0)
            idle_cpu = await hub_cpu_over(hub, args.window_s)
            await hub.stop()
        # Run 2: 10,000 jobs queued; measure a window once every printer has had its first job.
        await store_jobs(url, data_dir, args.jobs, args.print_s, args.print_spread)
        # The queue dispatches while the fleet connects: the window waits for the same share of
        # it (a link lost to the machine's load is no candidate; the online count is reported).
        hub = HubProcess(workdir)
        await hub.prepare([], extra)
        health, _ = await hub.start(wait_online=False)
        online = await hub.until_online(want, args.online_limit_s)
        print(f"hub 2: healthy {health:.1f} s, {want} printers online {online:.1f} s", flush=True)
        await hub.settled(args.warmup_s)
        await fleet.ask("go")
        online_at = [await online_count(hub)]
        before, sim_before = await hub.metrics(), fleet.cpu()
        busy_cpu = await hub_cpu_over(hub, args.window_s)
        after, sim_cpu = await hub.metrics(), fleet.cpu() - sim_before
        online_at.append(await online_count(hub))
        answers = await fleet.ask("stats")
        await hub.stop()
        stats = {
            "starts": sum(a["starts"] for a in answers),
            "gaps": [g for a in answers for g in a["gaps"]],
        }
        once = await once_checks(url, [f for a in answers for f in a["files"]])
    finally:
        if hub is not None:
            await hub.stop()  # a hub that failed to come up is not left running
        await fleet.stop()
        if pg_name:
            admin = await store.connect(PG_ADMIN)
            await admin.execute(f"DROP DATABASE IF EXISTS {pg_name} WITH (FORCE)")
            await admin.disconnect()
    gaps = sorted(stats["gaps"])
    return {
        "db": args.db,
        "printers": args.printers,
        "jobs": args.jobs,
        "speed": args.speed,
        "print_s": args.print_s,
        "print_spread": args.print_spread,
        "warmup_s": args.warmup_s,
        "starts_per_s": stats["starts"] / args.window_s,
        "window_s": args.window_s,
        "sim_processes": args.sim_processes,
        "online_at_window_start_and_end": online_at,
        "starts_in_window": stats["starts"],
        "exactly_once": once,
        "hub_dispatch": window(before, after),
        "simulator_cpu_core_share": sim_cpu / args.window_s,
        "printer_seen_latency_s": {
            "count": len(gaps),
            "p50": percentile(gaps, 50) if gaps else None,
            "p99": percentile(gaps, 99) if gaps else None,
            "max": gaps[-1] if gaps else None,
        },
        "hub_cpu_core_share": {
            "decisions": window(before, after)["decision_cpu_s"] / args.window_s,
            "empty_queue": idle_cpu / args.window_s,
            "dispatching": busy_cpu / args.window_s,
            "dispatcher": (busy_cpu - idle_cpu) / args.window_s,
        },
    }


def main() -> None:
    """Parse arguments, run, print and save the figures."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--printers", type=int, default=1000)
    p.add_argument("--jobs", type=int, default=10_000)
    p.add_argument("--speed", type=float, default=30.0, help="simulated seconds per second")
    p.add_argument("--print-s", type=int, default=1800, help="simulated length of each print")
    p.add_argument(
        "--print-spread", type=float, default=0.0,
        help="prints take --print-s to --print-s x (1 + this): ends spread out, not in waves",
    )  # fmt: skip
    p.add_argument(
        "--no-empty-run", action="store_true",
        help="skip the first hub run (empty queue; its CPU figure is then NaN)",
    )  # fmt: skip
    p.add_argument("--window-s", type=float, default=120.0)
    p.add_argument("--warmup-s", type=float, default=30.0)
    p.add_argument("--subnet", default="127.98.0.0")
    p.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--online-limit-s", type=float, default=600.0)
    p.add_argument(
        "--online-share", type=float, default=1.0,
        help="share of the fleet online before each run's warm-up begins",
    )  # fmt: skip
    p.add_argument(
        "--sim-processes", type=int, default=1,
        help="simulator processes the fleet is split over (each on its own subnet)",
    )  # fmt: skip
    args = p.parse_args()
    raise_fd_limit()
    result = asyncio.run(run(args))
    print(json.dumps(result, indent=2))
    path = write_json(RESULTS / "bench_queue.json", result)
    print(f"written to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
