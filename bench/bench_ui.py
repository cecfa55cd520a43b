"""Dashboard benchmark: the farm overview in Debian's Chromium following a busy simulated fleet.

The simulator (200 Bambu printers at 60x, 80 % printing) and the hub run in their own processes,
as in `make bench`; Chromium (headless, driven by Playwright) logs in, opens the overview and
keeps it open for the measured window. Reported: /ws frames and messages received, the page's
long tasks (PerformanceObserver `longtask`, over 50 ms), JS heap after a forced GC at the start
and end of the window, and the CPU of every Chromium process. See docs/performance.md.

    .venv/bin/python bench/bench_ui.py      # make bench-ui
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _proc
import psutil
from bench_hub import live_hub, machine, progress
from hub_proc import ADMIN_PASSWORD

sys.path.insert(0, str(_proc.ROOT))

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

# Runs before the page's own scripts (Playwright injects it; the page's CSP does not apply).
OBSERVE_LONG_TASKS = """
window.__bench = {longTasks: []};
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__bench.longTasks.push([e.startTime, e.duration]);
}).observe({type: "longtask", buffered: true});
"""


def chromium_processes() -> list[psutil.Process]:
    """Every Chromium process started below this one."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "chrom" in child.name():
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def cpu_by_pid(procs: list[psutil.Process]) -> dict[int, tuple[str, float]]:
    """CPU seconds of each process, with its Chromium role (browser, renderer, gpu, utility)."""
    out: dict[int, tuple[str, float]] = {}
    for p in procs:
        try:
            role = next(
                (a.split("=", 1)[1] for a in p.cmdline() if a.startswith("--type=")), "browser"
            )
            out[p.pid] = (role, _proc.cpu_seconds(p))
        except psutil.NoSuchProcess:
            continue
    return out


async def heap_mib(cdp: Any) -> float:
    """JS heap in use after a full garbage collection."""
    await cdp.send("HeapProfiler.collectGarbage")
    metrics = await cdp.send("Performance.getMetrics")
    used = next(m["value"] for m in metrics["metrics"] if m["name"] == "JSHeapUsedSize")
    return float(used) / 2**20


TIMINGS = ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration")


async def timings(cdp: Any) -> dict[str, float]:
    """The renderer main thread's cumulative seconds per kind of work (CDP Performance)."""
    metrics = await cdp.send("Performance.getMetrics")
    return {m["name"]: float(m["value"]) for m in metrics["metrics"] if m["name"] in TIMINGS}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Open the overview on a live farm and measure one window."""
    from playwright.async_api import async_playwright

    with tempfile.TemporaryDirectory(prefix="printforge-bench-ui-") as tmp:
        async with live_hub(args.printers, "127.96.0.0", 0, Path(tmp)) as live:
            _sim, hub, _serial_of, _markers, _workdir = live
            await hub.settled(args.warmup)
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
                page = await browser.new_page(viewport={"width": 1600, "height": 1000})
                await page.add_init_script(OBSERVE_LONG_TASKS)
                frames = {"frames": 0, "messages": 0, "bytes": 0}

                def on_frame(payload: str | bytes) -> None:
                    frames["frames"] += 1
                    frames["bytes"] += len(payload)
                    msg = json.loads(payload)
                    frames["messages"] += len(msg["payload"]) if msg["type"] == "batch" else 1

                page.on("websocket", lambda ws: ws.on("framereceived", on_frame))
                cdp = await page.context.new_cdp_session(page)
                await cdp.send("Performance.enable")
                progress("chromium: logging in and opening the overview")
                await page.goto(hub.base + "/")
                await page.get_by_label("Username", exact=True).fill("admin")
                await page.get_by_label("Password", exact=True).fill(ADMIN_PASSWORD)
                await page.get_by_role("button", name="Log in").click()
                cards = page.locator(".grid > li")
                deadline = time.monotonic() + 60
                while await cards.count() < args.printers:
                    if time.monotonic() > deadline:
                        raise RuntimeError("the overview did not show every printer in 60 s")
                    await asyncio.sleep(0.2)
                first_paint_long = await page.evaluate("window.__bench.longTasks.length")
                await asyncio.sleep(2)  # the first snapshot's rendering is behind us
                heap0 = await heap_mib(cdp)
                cpu0 = cpu_by_pid(chromium_processes())
                t0 = await timings(cdp)
                load0 = psutil.cpu_times()
                start_ms = await page.evaluate("performance.now()")
                f0 = dict(frames)
                progress(f"measuring {args.seconds:g} s with {args.printers} printers")
                await asyncio.sleep(args.seconds)
                f1 = dict(frames)
                end_ms = await page.evaluate("performance.now()")
                cpu1 = cpu_by_pid(chromium_processes())
                t1 = await timings(cdp)
                load1 = psutil.cpu_times()
                heap1 = await heap_mib(cdp)
                tasks = await page.evaluate("window.__bench.longTasks")
                shown = await page.locator(".grid .badge").count()
                await browser.close()
    window = [d for s, d in tasks if start_ms <= s <= end_ms]
    roles: dict[str, float] = {}
    for pid, (role, after) in cpu1.items():
        before = cpu0.get(pid, (role, 0.0))[1]
        roles[role] = roles.get(role, 0.0) + (after - before)
    elapsed = (end_ms - start_ms) / 1000
    return {
        "printers": args.printers,
        "seconds": round(elapsed, 1),
        "frames": f1["frames"] - f0["frames"],
        "messages": f1["messages"] - f0["messages"],
        "kib": round((f1["bytes"] - f0["bytes"]) / 1024),
        "long_tasks": len(window),
        "long_task_max_ms": round(max(window), 1) if window else 0.0,
        "long_tasks_while_loading": first_paint_long,
        "heap_start_mib": round(heap0, 2),
        "heap_end_mib": round(heap1, 2),
        "cpu_cores": {k: round(v / elapsed, 3) for k, v in sorted(roles.items())},
        "cards": shown,
        # Main-thread busy share by kind of work, and how busy the whole machine was.
        "main_thread": {k: round((t1[k] - t0[k]) / elapsed, 3) for k in TIMINGS},
        "machine_busy": round(
            1 - (load1.idle - load0.idle) / max(1e-9, sum(load1) - sum(load0)), 2
        ),
    }


def main() -> int:
    """Parse arguments, run once, print a Markdown table row and the raw figures."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--printers", type=int, default=200)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument("--chromium", default="/usr/bin/chromium")
    args = p.parse_args()
    _proc.raise_fd_limit()
    started = time.monotonic()
    r = asyncio.run(run(args))
    cores = r["cpu_cores"]
    print(
        f"3DPrintForge bench-ui: {machine()}; one {r['seconds']:g} s window; "
        f"{time.monotonic() - started:.0f} s in all\n"
    )
    print(
        "| printers | frames | messages | messages/s | KiB | long tasks (max ms) "
        "| JS heap start → end (MiB) | renderer CPU (cores) | all Chromium CPU (cores) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {r['printers']} | {r['frames']:,} | {r['messages']:,} "
        f"| {r['messages'] / r['seconds']:,.0f} | {r['kib']:,} "
        f"| {r['long_tasks']} ({r['long_task_max_ms']}) "
        f"| {r['heap_start_mib']} → {r['heap_end_mib']} | {cores.get('renderer', 0.0):.2f} "
        f"| {sum(cores.values()):.2f} |"
    )
    print("\n" + json.dumps(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
