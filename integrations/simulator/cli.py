"""`printforge simulate`: run a simulated fleet, or send a fault to a running one."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import io
import json
import random
import resource
import signal
import sys
import urllib.parse
import zipfile
from pathlib import Path

from aiohttp import web

from integrations.simulator.control import (
    ACTIONS,
    DEFAULT_CONTROL_PORT,
    control_app,
    send_control,
)
from integrations.simulator.fleet import Fleet, SimPrinter
from integrations.simulator.model import SimError

# The stand-alone simulator's default addresses: away from 127.0.0.x, where the hub's built-in
# demo fleet (`make run`) puts its printers, so both can run side by side.
DEFAULT_SUBNET = "127.0.50.0"

# Demo files: (name, seconds, layers, grams), printed at the fleet's speed.
DEMO_FILES = (
    ("benchy.gcode", 2 * 3600 + 540, 240, 14.7),
    ("calibration_cube.gcode", 1500, 100, 8.9),
    ("phone_stand.gcode", 3 * 3600 + 720, 310, 42.0),
    ("gear_set.gcode", 5 * 3600, 420, 88.5),
    ("cable_clips.gcode", 2400, 40, 6.3),
)


def demo_gcode(seconds: int, layers: int, grams: float) -> bytes:
    """A small G-code file whose header describes a print of the given size."""
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return (
        f"; estimated printing time (normal mode) = {h}h {m}m {s}s\n"
        f"; total layer number: {layers}\n; filament used [g] = {grams}\nG28\nG1 Z0.2 F600\n"
    ).encode()


def demo_project(seconds: int, layers: int, grams: float, material: str = "PLA") -> bytes:
    """A small sliced Bambu Studio style project (`.gcode.3mf`): plate 1 G-code and slice info."""
    buffer = io.BytesIO()
    info = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<config>\n  <plate>\n'
        '    <metadata key="index" value="1"/>\n'
        f'    <metadata key="prediction" value="{seconds}"/>\n'
        f'    <metadata key="weight" value="{grams}"/>\n'
        f'    <filament id="1" type="{material}" used_g="{grams}"/>\n'
        "  </plate>\n</config>\n"
    )
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("Metadata/plate_1.gcode", demo_gcode(seconds, layers, grams))
        archive.writestr("Metadata/slice_info.config", info)
    return buffer.getvalue()


def bambu_models(count: int) -> list[str]:
    """Models for `count` Bambu printers: a typical farm's mix."""
    # A typical farm: mostly P1S, some X1C, a few A1 and P1P.
    cycle = ["P1S", "X1C", "P1S", "A1", "P1S", "P1P"]
    return [cycle[i % len(cycle)] for i in range(count)]


def run_parser() -> argparse.ArgumentParser:
    """Arguments of `printforge simulate` (run a fleet)."""
    p = argparse.ArgumentParser(
        prog="printforge simulate",
        description="Run simulated printers speaking the real protocols on loopback addresses. "
        "`printforge simulate fault PRINTER ACTION [ARGS]` controls a running simulator.",
    )
    p.add_argument("--bambu", type=int, default=0, help="Bambu printers (mix of P1S/X1C/A1/P1P)")
    p.add_argument("--bambu-model", help="one Bambu model for all (X1C, P1S, P1P, A1)")
    p.add_argument("--moonraker", type=int, default=0, help="Klipper printers behind Moonraker")
    p.add_argument("--prusalink", type=int, default=0, help="Prusa printers with PrusaLink")
    p.add_argument("--octoprint", type=int, default=0, help="printers behind OctoPrint")
    p.add_argument("--speed", type=float, default=60.0, help="clock speed-up (60: 1 h in 1 min)")
    p.add_argument(
        "--subnet",
        default=DEFAULT_SUBNET,
        help=f"printers get .2, .3, ... of it (default {DEFAULT_SUBNET}: clear of the hub's "
        "built-in demo fleet on 127.0.0.x)",
    )
    p.add_argument("--ephemeral-ports", action="store_true", help="bind random ports")
    p.add_argument("--write", metavar="FILE", help="write the printers as JSON for import")
    p.add_argument("--demo", action="store_true", help="start prints so the farm looks alive")
    p.add_argument(
        "--control-port",
        type=int,
        default=DEFAULT_CONTROL_PORT,
        help="loopback port of the fault-control endpoint (0 disables)",
    )
    return p


def fault_parser() -> argparse.ArgumentParser:
    """Arguments of `printforge simulate fault`."""
    p = argparse.ArgumentParser(
        prog="printforge simulate fault",
        description="Inject a fault into a running simulator. Actions: drop; silent [on|off]; "
        "refuse-auth [on|off]; restart [DELAY_S]; slow SECONDS; fail [CODE]; "
        "hms HMS_AAAA_AAAA_CCCC_CCCC | hms ATTR CODE; clear-hms; runout; "
        "klippy ready|shutdown|disconnected|error; print FILE. "
        "`printforge simulate status` lists the printers.",
    )
    p.add_argument("--control-port", type=int, default=DEFAULT_CONTROL_PORT)
    p.add_argument("printer", help="name, serial or host")
    p.add_argument("action", choices=ACTIONS)
    p.add_argument("args", nargs="*")
    return p


async def keep_busy(fleet: Fleet, stop: asyncio.Event) -> None:
    """Load demo files and keep starting prints until `stop` is set, so the farm looks alive."""
    rng = random.Random()
    for printer in fleet.printers:
        for name, seconds, layers, grams in DEMO_FILES:
            await fleet.load_file(printer, name, demo_gcode(seconds, layers, grams))
    for printer in fleet.printers:
        if rng.random() < 0.7:
            _start_random(printer, rng)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 5.0)
        for printer in fleet.printers:
            # An operator clears the bed and starts the next job now and then.
            if not printer.printer.active and rng.random() < 0.15:
                _start_random(printer, rng)


def _start_random(printer: SimPrinter, rng: random.Random) -> None:
    with contextlib.suppress(SimError):
        printer.printer.start_print(rng.choice(DEMO_FILES)[0])


def raise_fd_limit() -> None:
    """Lift the soft open-files limit to the hard one: each printer takes 2-3 descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _run(args: argparse.Namespace) -> int:
    port = 0 if args.ephemeral_ports else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Fleet(speed=args.speed, subnet=args.subnet) as fleet:
        models = [args.bambu_model] * args.bambu if args.bambu_model else bambu_models(args.bambu)
        for model in models:
            await fleet.add("bambu", model=model, port=port)
        for protocol in ("moonraker", "prusalink", "octoprint"):
            for _ in range(getattr(args, protocol)):
                await fleet.add(protocol, port=port)
        for entry in fleet.describe():
            secret_key = next(k for k in ("access_code", "api_key", "password") if k in entry)
            extra = f" ftps {entry['ftps_port']}" if "ftps_port" in entry else ""
            print(
                f"{entry['name']:<20} {entry['protocol']:<10} {entry['model']:<11} "
                f"{entry['host']}:{entry['port']}{extra}  serial {entry['serial']}  "
                f"{secret_key} {entry[secret_key]}",
                flush=True,
            )
        if args.write:
            text = json.dumps(fleet.describe(), indent=2) + "\n"
            await asyncio.to_thread(Path(args.write).write_text, text)
            print(f"wrote {len(fleet.printers)} printers to {args.write}", flush=True)
        runner: web.AppRunner | None = None
        if args.control_port:
            runner = web.AppRunner(control_app(fleet), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", args.control_port).start()
            print(f"fault control on http://127.0.0.1:{args.control_port}/printers", flush=True)
        demo = asyncio.create_task(keep_busy(fleet, stop)) if args.demo else None
        print(f"{len(fleet.printers)} printers at speed {args.speed:g}x; Ctrl-C stops", flush=True)
        await stop.wait()
        if demo is not None:
            demo.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await demo
        if runner is not None:
            await runner.cleanup()
    return 0


def _fault(argv: list[str]) -> int:
    args = fault_parser().parse_args(argv)
    try:
        status, body = send_control(
            args.control_port,
            f"/printers/{urllib.parse.quote(args.printer, safe='')}/{args.action}",
            {"args": args.args},
        )
    except OSError as exc:
        print(f"no simulator on control port {args.control_port}: {exc}", file=sys.stderr)
        return 2
    if status != 200:
        print(f"error: {body.get('error') if isinstance(body, dict) else body}", file=sys.stderr)
        return 1
    print(body["message"])
    return 0


def _status(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="printforge simulate status")
    p.add_argument("--control-port", type=int, default=DEFAULT_CONTROL_PORT)
    args = p.parse_args(argv)
    try:
        _, rows = send_control(args.control_port, "/printers")
    except OSError as exc:
        print(f"no simulator on control port {args.control_port}: {exc}", file=sys.stderr)
        return 2
    for row in rows:
        progress = f"{row['progress']}%" if row["progress"] is not None else ""
        print(
            f"{row['name']:<20} {row['host']:<15} {row['state']:<10} {progress:>5} {' '.join(row['hms'])}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: `simulate [options]`, `simulate fault ...` or `simulate status`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["simulate"]:
        args = args[1:]
    if args[:1] == ["fault"]:
        return _fault(args[1:])
    if args[:1] == ["status"]:
        return _status(args[1:])
    options = run_parser().parse_args(args)
    if options.bambu + options.moonraker + options.prusalink + options.octoprint == 0:
        options.bambu = 4
    raise_fd_limit()
    try:
        return asyncio.run(_run(options))
    except OSError as exc:
        hint = ""
        if exc.errno == errno.EADDRINUSE:
            hint = (
                f"; another simulator or hub uses these addresses: choose others with"
                f" --subnet (e.g. --subnet 127.0.{random.randint(51, 250)}.0)"
                " or --ephemeral-ports"
            )
        print(f"cannot start the simulator: {exc}{hint}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
