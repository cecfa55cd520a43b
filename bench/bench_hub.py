"""End-to-end hub benchmark: simulated Bambu fleet → hub (drivers, streams, SQLite, /ws, API).

Every party runs in its own process on loopback: the simulator, the hub (`printforge serve`),
the bare baselines and the load generators. Figures are medians of repeated windows; ratios are
measured side by side in one run. See docs/performance.md.

    .venv/bin/python bench/bench_hub.py all     # make bench: ingest, fan-out, API, memory, start-up
    .venv/bin/python bench/bench_hub.py ws      # make bench-ws: 200 printers → hub → 50 clients
    .venv/bin/python bench/bench_hub.py soak    # make bench-soak: RSS every 10 s for 10 min
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import os
import platform
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _proc
from _proc import Worker, median, percentile
from hub_proc import HubProcess, write_json

sys.path.insert(0, str(_proc.ROOT))

Marker = tuple[str, float, float]  # serial, nozzle target, publish time


BATCH_SUBSCRIBE = '{"type": "subscribe", "batch": true}'


@dataclass
class Fleet:
    """The simulator worker and what it told us."""

    worker: Worker
    entries: list[dict[str, Any]]
    marker_serials: list[str]
    markers: list[Marker] = field(default_factory=list)

    async def stats(self) -> dict[str, Any]:
        """Counters; marker publish times are collected as a side effect."""
        answer = await self.worker.ask("stats")
        self.markers.extend(tuple(m) for m in answer["markers"])  # type: ignore[misc]
        return answer


@contextlib.asynccontextmanager
async def fleet(printers: int, subnet: str, markers: int) -> AsyncIterator[Fleet]:
    """A simulator process with `printers` Bambu printers."""
    worker = Worker(
        "simulator", "sim_fleet.py", "--printers", str(printers), "--subnet", subnet,
        "--markers", str(markers),
    )  # fmt: skip
    try:
        ready = await worker.start(limit_s=300)
        yield Fleet(worker, ready["printers"], ready["markers"])
    finally:
        await worker.stop()


def latencies(markers: list[Marker], seen: list[Any], serial_of: dict[str, str]) -> list[float]:
    """Client receive time minus simulator publish time, in ms, per marker a client saw."""
    by_serial: dict[str, list[tuple[float, float]]] = {}
    for serial, value, at in markers:
        by_serial.setdefault(serial, []).append((at, value))
    for values in by_serial.values():
        values.sort()
    out = []
    for printer_id, value, received in seen:
        published = by_serial.get(serial_of.get(printer_id, ""), [])
        i = bisect.bisect_right(published, (received, float("inf"))) - 1
        while i >= 0 and published[i][1] != value:
            i -= 1
        if i >= 0 and received - published[i][0] < 30:
            out.append((received - published[i][0]) * 1000)
    return out


@dataclass
class Sample:
    """Hub and simulator counters at one instant."""

    at: float
    hub_cpu: float
    metrics: dict[str, float]
    sim: dict[str, Any]

    def get(self, name: str) -> float:
        """A metric's value (0 when absent)."""
        return self.metrics.get(name, 0.0)


async def sample(hub: HubProcess, sim: Fleet) -> Sample:
    """Read every counter once."""
    return Sample(time.monotonic(), hub.cpu(), await hub.metrics(), await sim.stats())


@dataclass
class Window:
    """Rates over one measurement window."""

    seconds: float
    cpu_cores: float
    received: float
    states: float
    offered: float
    published: float
    rss_mib: float

    @property
    def cost_us(self) -> float:
        """Hub CPU per received report."""
        return self.cpu_cores / self.received * 1e6 if self.received else float("nan")


def window(a: Sample, b: Sample, rss: float) -> Window:
    """Rates between two samples."""
    dt = b.at - a.at
    return Window(
        dt,
        (b.hub_cpu - a.hub_cpu) / dt,
        (b.get("printforge_printer_messages_total") - a.get("printforge_printer_messages_total"))
        / dt,
        (b.get("printforge_telemetry_reports_total") - a.get("printforge_telemetry_reports_total"))
        / dt,
        (b.sim["offered"] - a.sim["offered"]) / dt,
        (
            b.get("printforge_ws_messages_published_total")
            - a.get("printforge_ws_messages_published_total")
        )
        / dt,
        rss,
    )


async def measure(hub: HubProcess, sim: Fleet, seconds: float, count: int) -> list[Window]:
    """`count` back-to-back windows of `seconds`."""
    out = []
    a = await sample(hub, sim)
    for _ in range(count):
        await asyncio.sleep(seconds)
        b = await sample(hub, sim)
        out.append(window(a, b, hub.rss_mib()))
        a = b
    return out


async def side_by_side(
    hub: HubProcess, sim: Fleet, workdir: Path, seconds: float, count: int
) -> tuple[float, float]:
    """CPU µs per report of the hub and of a bare aiomqtt + json.loads subscriber on the same
    fleet, measured over the same windows (so machine noise hits both alike): medians."""
    fleet_file = write_json(workdir / "fleet.json", sim.entries)
    worker = Worker("baseline", "mqtt_baseline.py", "--fleet", str(fleet_file))
    try:
        ready = await worker.start(limit_s=300)
        if ready["errors"]:
            raise RuntimeError(f"baseline connect errors: {ready['errors']}")
        await asyncio.sleep(3)

        async def read() -> tuple[float, float, float, float]:
            rx = (await worker.ask("stats"))["received"]
            metrics = await hub.metrics()
            return (
                worker.cpu(), rx, hub.cpu(), metrics["printforge_printer_messages_total"]
            )  # fmt: skip

        hub_costs, base_costs = [], []
        a = await read()
        for _ in range(count):
            await asyncio.sleep(seconds)
            b = await read()
            base_costs.append((b[0] - a[0]) / max(1, b[1] - a[1]) * 1e6)
            hub_costs.append((b[2] - a[2]) / max(1, b[3] - a[3]) * 1e6)
            a = b
        return median(hub_costs), median(base_costs)
    finally:
        await worker.stop()


async def ws_clients(
    hub: HubProcess, processes: int, per_process: int, marker_ids: list[str], workdir: Path,
    subscribe: str = "",
) -> list[Worker]:  # fmt: skip
    """Start WebSocket client processes and wait until every client is connected."""
    markers_file = write_json(workdir / "markers.json", marker_ids)
    workers = []
    for i in range(processes):
        args = ["--url", hub.ws_url, "--token", hub.token, "--clients", str(per_process),
                "--markers", str(markers_file)]  # fmt: skip
        if subscribe:
            args += ["--subscribe", subscribe]
        workers.append(Worker(f"ws-clients-{i}", "ws_load.py", *args))
    readies = await asyncio.gather(*(w.start(limit_s=120) for w in workers))
    for ready in readies:
        if ready["errors"]:
            raise RuntimeError(f"WebSocket connect errors: {ready['errors']}")
    return workers


async def drain(workers: list[Worker]) -> tuple[list[Any], int]:
    """Marker sightings and total messages received so far by every client process."""
    answers = await asyncio.gather(*(w.ask("stats") for w in workers))
    seen = [s for a in answers for s in a["seen"]]
    return seen, sum(a["messages"] for a in answers)


@dataclass
class FanOut:
    """Telemetry-to-client figures."""

    clients: int
    cpu_cores: float
    messages_per_s: float
    p50: float
    p99: float
    samples: int
    coverage: float
    client_cores: float
    batch: bool = False


async def fan_out(
    hub: HubProcess, sim: Fleet, clients: int, processes: int, seconds: float, count: int,
    workdir: Path, serial_of: dict[str, str], marker_ids: list[str], batch: bool = False,
) -> FanOut:  # fmt: skip
    """Connect `clients` WebSocket clients and measure latency and delivered messages."""
    subscribe = BATCH_SUBSCRIBE if batch else ""
    workers = await ws_clients(hub, processes, clients // processes, marker_ids, workdir, subscribe)
    try:
        await asyncio.sleep(3)
        await drain(workers)
        await sim.stats()
        first = len(sim.markers)
        seen: list[Any] = []
        rates, cpus, client_cpus = [], [], []
        _, m0 = await drain(workers)
        t0, c0, k0 = time.monotonic(), hub.cpu(), sum(w.cpu() for w in workers)
        for _ in range(count):
            await asyncio.sleep(seconds)
            s, m1 = await drain(workers)
            t1, c1, k1 = time.monotonic(), hub.cpu(), sum(w.cpu() for w in workers)
            seen += s
            rates.append((m1 - m0) / (t1 - t0))
            cpus.append((c1 - c0) / (t1 - t0))
            client_cpus.append((k1 - k0) / (t1 - t0))
            m0, t0, c0, k0 = m1, t1, c1, k1
        await asyncio.sleep(1)  # markers published at the very end still arrive
        s, _ = await drain(workers)
        seen += s
        await sim.stats()
        published = sim.markers[first:]
        lat = latencies(published, seen, serial_of)
        expected = len(published) * clients
        return FanOut(
            clients, median(cpus), median(rates), percentile(lat, 50), percentile(lat, 99),
            len(lat), len(lat) / expected if expected else 0.0, median(client_cpus), batch,
        )  # fmt: skip
    finally:
        await asyncio.gather(*(w.stop() for w in workers))


@dataclass
class ApiResult:
    """Requests/s and latency of one endpoint on the hub and on the bare server."""

    name: str
    hub_rps: float
    hub_p50: float
    hub_p99: float
    bare_rps: float
    bare_p99: float
    errors: int


async def api(
    hub: HubProcess, workdir: Path, connections: int, processes: int, seconds: float, count: int
) -> list[ApiResult]:
    """GET /api/printers and /api/printers/:id/status, hub and bare server alternating."""
    from hub_proc import free_port

    printers = await hub.printers()
    listing = await hub.get("/api/printers")
    status = await hub.get(f"/api/printers/{printers[0]['id']}/status")
    bodies = write_json(workdir / "bodies.json", {"printers": listing, "status": status})
    bare_port = free_port()
    bare = Worker("bare", "bare_api.py", "--bodies", str(bodies), "--port", str(bare_port))
    loaders = [Worker(f"http-load-{i}", "http_load.py") for i in range(processes)]
    try:
        await bare.start()
        await asyncio.gather(*(w.start() for w in loaders))
        cases = {
            "GET /api/printers": ["/api/printers"],
            "GET /api/printers/:id/status": [f"/api/printers/{p['id']}/status" for p in printers],
        }
        results = []
        for name, paths in cases.items():
            runs: dict[str, list[tuple[float, float, float, int]]] = {"hub": [], "bare": []}
            for _ in range(count):
                for target, port, token in (("hub", hub.port, hub.token), ("bare", bare_port, "")):
                    answers = await asyncio.gather(
                        *(
                            w.ask(
                                "run", host="127.0.0.1", port=port, paths=paths, token=token,
                                seconds=seconds, connections=connections // processes,
                            )
                            for w in loaders
                        )
                    )  # fmt: skip
                    lat = [x for a in answers for x in a["latencies_ms"]]
                    ok = sum(a["statuses"].get("200", 0) for a in answers)
                    elapsed = max(a["elapsed"] for a in answers)
                    runs[target].append(
                        (ok / elapsed, percentile(lat, 50), percentile(lat, 99), len(lat) - ok)
                    )
            results.append(
                ApiResult(
                    name,
                    median([r[0] for r in runs["hub"]]),
                    median([r[1] for r in runs["hub"]]),
                    median([r[2] for r in runs["hub"]]),
                    median([r[0] for r in runs["bare"]]),
                    median([r[2] for r in runs["bare"]]),
                    sum(r[3] for r in runs["hub"] + runs["bare"]),
                )
            )
        return results
    finally:
        await asyncio.gather(bare.stop(), *(w.stop() for w in loaders))


@dataclass
class Ingest:
    """One fleet size's ingest figures."""

    printers: int
    health_s: float
    online_s: float
    windows: list[Window]
    hub_us: float
    baseline_us: float
    dropped: int
    offered_total: int
    monitor_p50: float
    monitor_p99: float
    fanout: list[FanOut] = field(default_factory=list)
    api: list[ApiResult] = field(default_factory=list)

    def m(self, attr: str) -> float:
        """Median of a window attribute."""
        return median([getattr(w, attr) for w in self.windows])


async def settle_drops(hub: HubProcess, sim: Fleet, offered_before: int) -> tuple[int, int]:
    """Stop the fleet's reports, let the hub catch up, compare totals: (dropped, offered)."""
    paused = await sim.worker.ask("pause")
    offered = int(paused["offered"]) - offered_before
    received = -1.0
    for _ in range(50):  # up to 10 s for the backlog to drain
        await asyncio.sleep(0.2)
        now = (await hub.metrics()).get("printforge_printer_messages_total", 0.0)
        if now == received:
            break
        received = now
    await sim.worker.ask("resume")
    return offered - int(received), offered


async def run_size(args: argparse.Namespace, printers: int, subnet: str, root: Path) -> Ingest:
    """The hub on one fleet of `printers`: alone, then beside the bare baseline."""
    workdir = Path(tempfile.mkdtemp(prefix=f"n{printers}-", dir=root))
    progress(f"{printers} printers: simulator")
    async with fleet(printers, subnet, args.markers) as sim:
        hub = HubProcess(workdir)
        await hub.prepare(sim.entries)
        before = int((await sim.stats())["offered"])
        try:
            progress(f"{printers} printers: hub start-up")
            health_s, online_s = await hub.start()
            listing = await hub.printers()
            serial_of = {p["id"]: p["serial"] for p in listing}
            id_of = {p["serial"]: p["id"] for p in listing}
            marker_ids = [id_of[s] for s in sim.marker_serials]
            # A dashboard following the whole farm, subscribed as docs/websocket.md advises.
            monitor = await ws_clients(hub, 1, 1, marker_ids, workdir, BATCH_SUBSCRIBE)
            try:
                await hub.settled(args.warmup)
                await drain(monitor)
                first = len(sim.markers)
                progress(f"{printers} printers: ingest windows")
                windows = await measure(hub, sim, args.window, args.windows)
                await asyncio.sleep(1)
                seen, _ = await drain(monitor)
                await sim.stats()
                lat = latencies(sim.markers[first:], seen, serial_of)
                result = Ingest(
                    printers, health_s, online_s, windows, 0.0, 0.0, 0, 0,
                    percentile(lat, 50), percentile(lat, 99),
                )  # fmt: skip
                if printers == args.fanout_printers:
                    progress(f"{printers} printers: fan-out to {args.fanout_clients} clients")
                    for batch in (False, True):
                        result.fanout.append(
                            await fan_out(
                                hub, sim, args.fanout_clients, args.fanout_processes,
                                args.window, args.windows, workdir, serial_of, marker_ids, batch,
                            )
                        )  # fmt: skip
                if printers == args.api_printers:
                    progress(f"{printers} printers: API, hub vs bare Quart")
                    result.api = await api(
                        hub, workdir, args.connections, args.load_processes, args.api_seconds,
                        args.windows,
                    )  # fmt: skip
                result.dropped, result.offered_total = await settle_drops(hub, sim, before)
                progress(f"{printers} printers: hub beside the bare aiomqtt baseline")
                result.hub_us, result.baseline_us = await side_by_side(
                    hub, sim, workdir, args.window, args.windows
                )
            finally:
                await asyncio.gather(*(w.stop() for w in monitor))
            return result
        finally:
            await hub.stop()


def progress(text: str) -> None:
    """A progress line on stderr (stdout carries only the table)."""
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def machine() -> str:
    """CPU model, cores, Python."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def ms(value: float) -> str:
    """Milliseconds for the table."""
    return "n/a" if value != value else f"{value:.1f}"


def table(results: list[Ingest], args: argparse.Namespace) -> str:
    """The one table `make bench` prints."""
    rows = [
        "| scenario | hub CPU (cores) | hub RSS (MiB) | throughput | dropped | latency p50 / p99 (ms) | cost vs bare | target | met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for r in results:
        ratio = r.hub_us / r.baseline_us
        cores = r.m("cpu_cores")
        ok = r.dropped <= 0 and ratio <= 3 and (r.printers < 1000 or cores <= 1.0)
        rows.append(
            f"| ingest {r.printers} printers, 1 WS client (batch frames) | {cores:.2f} | {r.m('rss_mib'):.0f} "
            f"| {r.m('received'):.0f} reports/s ({r.m('states'):.0f} states/s) "
            f"| {r.dropped} of {r.offered_total} "
            f"| {ms(r.monitor_p50)} / {ms(r.monitor_p99)} "
            f"| {ratio:.2f}x ({r.hub_us:.0f} vs {r.baseline_us:.0f} µs/report, side by side) "
            f"| 0 dropped, ≤ 3x{', ≤ 1 core' if r.printers >= 1000 else ''} | {'yes' if ok else 'NO'} |"
        )  # fmt: skip
    for r in results:
        for f in r.fanout:
            mode = "batch frames" if f.batch else "a frame per message"
            rows.append(
                f"| fan-out {r.printers} printers → {f.clients} WS clients, {mode} "
                f"| {f.cpu_cores:.2f} | | {f.messages_per_s:,.0f} messages/s delivered | "
                f"| {ms(f.p50)} / {ms(f.p99)} ({f.samples} samples, {f.coverage:.0%} seen; "
                f"clients {f.client_cores:.2f} cores) | | p99 ≤ 50 ms "
                f"| {'yes' if f.p99 <= 50 and f.coverage > 0.9 else 'NO'} |"
            )
    for r in results:
        for a in r.api:
            ratio = a.hub_rps / a.bare_rps
            ok = ratio >= 0.7 and a.hub_p99 < 50 and a.errors == 0
            rows.append(
                f"| {a.name}, {args.connections} connections, {r.printers} printers | | "
                f"| {a.hub_rps:,.0f} req/s (bare {a.bare_rps:,.0f}) | {a.errors} errors "
                f"| {ms(a.hub_p50)} / {ms(a.hub_p99)} (bare p99 {ms(a.bare_p99)}) "
                f"| {ratio:.2f}x bare req/s | ≥ 0.7x, p99 < 50 ms | {'yes' if ok else 'NO'} |"
            )  # fmt: skip
    if len(results) >= 2:
        lo, hi = results[0], results[-1]
        per = (hi.m("rss_mib") - lo.m("rss_mib")) * 1024 / (hi.printers - lo.printers)
        rows.append(
            f"| memory per printer ({lo.printers}→{hi.printers}) | | {per:.0f} KiB | | | | | | |"
        )
    for r in results:
        if r.printers == max(x.printers for x in results):
            rows.append(
                f"| start-up, {r.printers} printers configured | | | /api/health 200 after "
                f"{r.health_s:.1f} s, all online after {r.online_s:.1f} s | | | | | |"
            )
    return "\n".join(rows)


async def cmd_all(args: argparse.Namespace) -> None:
    """`make bench`."""
    started = time.monotonic()
    sizes = [int(x) for x in args.printers.split(",")]
    with tempfile.TemporaryDirectory(prefix="printforge-bench-") as tmp:
        results = []
        for i, n in enumerate(sizes):
            results.append(await run_size(args, n, f"127.{90 + i}.0.0", Path(tmp)))
    print(
        f"3DPrintForge bench: {machine()}; medians of {args.windows} x {args.window:g} s windows; "
        f"{time.monotonic() - started:.0f} s in all\n"
    )
    print(table(results, args))


@contextlib.asynccontextmanager
async def live_hub(
    printers: int, subnet: str, markers: int, root: Path
) -> AsyncIterator[tuple[Fleet, HubProcess, dict[str, str], list[str], Path]]:
    """A fleet and a hub serving it: (fleet, hub, serial by printer id, marker ids, workdir)."""
    workdir = Path(tempfile.mkdtemp(prefix=f"n{printers}-", dir=root))
    async with fleet(printers, subnet, markers) as sim:
        hub = HubProcess(workdir)
        await hub.prepare(sim.entries)
        try:
            await hub.start()
            listing = await hub.printers()
            serial_of = {p["id"]: p["serial"] for p in listing}
            id_of = {p["serial"]: p["id"] for p in listing}
            yield sim, hub, serial_of, [id_of[s] for s in sim.marker_serials], workdir
        finally:
            await hub.stop()


async def cmd_ws(args: argparse.Namespace) -> None:
    """`make bench-ws`: telemetry-to-client latency, messages/s and hub CPU."""
    started = time.monotonic()
    printers, clients = args.ws_printers, args.ws_clients
    with tempfile.TemporaryDirectory(prefix="printforge-bench-") as tmp:
        async with live_hub(printers, "127.95.0.0", args.markers, Path(tmp)) as live:
            sim, hub, serial_of, marker_ids, workdir = live
            await hub.settled(args.warmup)
            progress(f"{printers} printers: fan-out to {clients} clients")
            f = await fan_out(
                hub, sim, clients, args.ws_processes, args.window, args.windows, workdir,
                serial_of, marker_ids, args.batch,
            )  # fmt: skip
            rss = hub.rss_mib()
    print(
        f"3DPrintForge bench-ws: {machine()}; medians of {args.windows} x {args.window:g} s "
        f"windows; {time.monotonic() - started:.0f} s in all\n"
    )
    print("| printers | WS clients | hub CPU (cores) | hub RSS (MiB) | messages/s delivered "
          "| latency p50 (ms) | latency p99 (ms) | samples | client CPU (cores) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {printers} | {clients} | {f.cpu_cores:.2f} | {rss:.0f} | {f.messages_per_s:,.0f} "
        f"| {ms(f.p50)} | {ms(f.p99)} | {f.samples} ({f.coverage:.0%} of markers x clients) "
        f"| {f.client_cores:.2f} |"
    )


async def cmd_api(args: argparse.Namespace) -> None:
    """The API comparison alone (for iterating on the request path)."""
    with tempfile.TemporaryDirectory(prefix="printforge-bench-") as tmp:
        async with live_hub(args.api_printers, "127.97.0.0", 0, Path(tmp)) as live:
            _, hub, _, _, workdir = live
            await hub.settled(args.warmup)
            results = await api(
                hub, workdir, args.connections, args.load_processes, args.api_seconds, args.windows
            )
    print("| endpoint | hub req/s | hub p50 / p99 (ms) | bare req/s | bare p99 (ms) | ratio |")
    print("|---|---|---|---|---|---|")
    for a in results:
        print(
            f"| {a.name} | {a.hub_rps:,.0f} | {ms(a.hub_p50)} / {ms(a.hub_p99)} "
            f"| {a.bare_rps:,.0f} | {ms(a.bare_p99)} | {a.hub_rps / a.bare_rps:.2f} |"
        )


async def cmd_soak(args: argparse.Namespace) -> None:
    """`make bench-soak`: hub RSS every `--every` s for `--minutes` at `--soak-printers`."""
    printers = args.soak_printers
    with tempfile.TemporaryDirectory(prefix="printforge-bench-") as tmp:
        async with live_hub(printers, "127.96.0.0", args.markers, Path(tmp)) as live:
            sim, hub, _, marker_ids, workdir = live
            # A dashboard following the whole farm, subscribed as docs/websocket.md advises.
            monitor = await ws_clients(hub, 1, 1, marker_ids, workdir, BATCH_SUBSCRIBE)
            try:
                progress(f"{printers} printers: warm-up {args.soak_warmup:g} s")
                await asyncio.sleep(args.soak_warmup)
                samples: list[tuple[float, float]] = []
                t0, c0 = time.monotonic(), hub.cpu()
                steps = int(args.minutes * 60 / args.every)
                for i in range(steps + 1):
                    if i:
                        await asyncio.sleep(args.every)
                    samples.append((time.monotonic() - t0, hub.rss_mib()))
                    await drain(monitor)  # keep the client's log from growing
                    await sim.stats()
                    sim.markers.clear()
                    progress(f"  t={samples[-1][0]:5.0f} s  RSS {samples[-1][1]:.1f} MiB")
                cores = (hub.cpu() - c0) / (time.monotonic() - t0)
                metrics = await hub.metrics()
            finally:
                await asyncio.gather(*(w.stop() for w in monitor))
    first = median([r for _, r in samples[:3]])
    last = median([r for _, r in samples[-3:]])
    growth = (last - first) / first
    print(
        f"3DPrintForge bench-soak: {machine()}; {printers} printers, 1 WS client (batch frames), RSS every "
        f"{args.every:g} s for {args.minutes:g} min after {args.soak_warmup:g} s of warm-up\n"
    )
    print("| printers | minutes | hub CPU (cores) | RSS start (MiB) | RSS end (MiB) | growth "
          "| reports received | target | met |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {printers} | {args.minutes:g} | {cores:.2f} | {first:.1f} | {last:.1f} "
        f"| {growth:+.1%} | {metrics.get('printforge_printer_messages_total', 0):,.0f} "
        f"| < 5% | {'yes' if growth < 0.05 else 'NO'} |"
    )
    print("\nRSS samples (s, MiB): " + ", ".join(f"{t:.0f}:{r:.1f}" for t, r in samples))


def main() -> int:
    """Parse arguments and run a scenario."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("scenario", choices=("all", "ws", "soak", "api"))
    p.add_argument("--printers", default="100,250,500,1000", help="fleet sizes (all)")
    p.add_argument("--window", type=float, default=8.0, help="seconds per measurement window")
    p.add_argument("--windows", type=int, default=3, help="windows (medians are taken)")
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument("--markers", type=int, default=50, help="latency marker printers")
    p.add_argument("--fanout-printers", type=int, default=500)
    p.add_argument("--fanout-clients", type=int, default=100)
    p.add_argument("--fanout-processes", type=int, default=4)
    p.add_argument("--api-printers", type=int, default=100)
    p.add_argument("--api-seconds", type=float, default=5.0)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--load-processes", type=int, default=2)
    p.add_argument("--ws-printers", type=int, default=200, help="printers (ws)")
    p.add_argument("--ws-clients", type=int, default=50, help="WebSocket clients (ws)")
    p.add_argument("--ws-processes", type=int, default=2, help="client processes (ws)")
    p.add_argument("--batch", action="store_true", help="clients subscribe with batch frames (ws)")
    p.add_argument("--soak-printers", type=int, default=500, help="printers (soak)")
    p.add_argument("--minutes", type=float, default=10.0, help="soak duration")
    p.add_argument("--every", type=float, default=10.0, help="seconds between RSS samples")
    p.add_argument("--soak-warmup", type=float, default=30.0)
    args = p.parse_args()
    _proc.raise_fd_limit()
    scenario = {"all": cmd_all, "ws": cmd_ws, "soak": cmd_soak, "api": cmd_api}[args.scenario]
    asyncio.run(scenario(args))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
