"""Loopback HTTP control endpoint of a running simulator: list printers, inject faults."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.error
import urllib.request
from typing import Any

from aiohttp import web

from integrations.simulator.fleet import Fleet, SimPrinter
from integrations.simulator.model import SimError

DEFAULT_CONTROL_PORT = 7190
ACTIONS = (
    "drop",
    "silent",
    "refuse-auth",
    "restart",
    "slow",
    "fail",
    "hms",
    "clear-hms",
    "runout",
    "klippy",
    "print",
)
_HMS_TEXT = re.compile(r"^HMS_([0-9A-F]{4})_([0-9A-F]{4})_([0-9A-F]{4})_([0-9A-F]{4})$", re.I)


def parse_hms(values: list[str]) -> tuple[int, int]:
    """HMS attr and code from `HMS_0300_0100_0001_0007` or two integers (hex with 0x)."""
    if len(values) == 1:
        match = _HMS_TEXT.match(values[0])
        if not match:
            raise ValueError(f"expected HMS_AAAA_AAAA_CCCC_CCCC, got {values[0]!r}")
        a1, a2, c1, c2 = match.groups()
        return int(a1 + a2, 16), int(c1 + c2, 16)
    if len(values) == 2:
        return int(values[0], 0), int(values[1], 0)
    raise ValueError("hms takes HMS_AAAA_AAAA_CCCC_CCCC or ATTR CODE")


def _on(value: Any) -> bool:
    return str(value).lower() not in ("off", "false", "0", "no")


async def apply_fault(printer: SimPrinter, action: str, args: list[str]) -> str:
    """Run one control action on a printer; returns a short confirmation."""
    faults = printer.faults
    if action == "drop":
        faults.drop_connection()
    elif action == "silent":
        faults.go_silent(_on(args[0]) if args else True)
    elif action == "refuse-auth":
        faults.refuse_auth(_on(args[0]) if args else True)
    elif action == "restart":
        asyncio.get_running_loop().create_task(faults.restart(float(args[0]) if args else 3.0))
    elif action == "slow":
        faults.slow(float(args[0]) if args else 2.0)
    elif action == "fail":
        if args:
            faults.fail_print(int(args[0], 0))
        else:
            faults.fail_print()
    elif action == "hms":
        faults.raise_hms(*parse_hms(args))
    elif action == "clear-hms":
        faults.clear_hms()
    elif action == "runout":
        faults.runout()
    elif action == "klippy":
        setter = getattr(printer.frontend, "set_klippy_state", None)
        if setter is None:
            raise ValueError(f"{printer.name} is not a Klipper printer")
        setter(args[0] if args else "shutdown")
    elif action == "print":
        if not args:
            raise ValueError("print needs a file name")
        printer.printer.start_print(args[0])
    else:
        raise ValueError(f"unknown action {action!r}; choose from {', '.join(ACTIONS)}")
    return f"{printer.name}: {action} {' '.join(args)}".strip()


def control_app(fleet: Fleet) -> web.Application:
    """GET /printers lists the fleet; POST /printers/{key}/{action} with {"args": [...]}."""

    async def listing(request: web.Request) -> web.StreamResponse:
        """Every printer with its state, progress and HMS errors."""
        rows = []
        for p in fleet.printers:
            job = p.printer.job
            rows.append(
                p.describe()
                | {
                    "state": p.printer.state.value,
                    "progress": job.percent if job else None,
                    "hms": [f"{a:08X}_{c:08X}" for a, c in p.printer.hms],
                }
            )
        return web.json_response(rows)

    async def act(request: web.Request) -> web.StreamResponse:
        """Apply one action to one printer."""
        try:
            printer = fleet.get(request.match_info["key"])
        except KeyError as exc:
            return web.json_response({"error": str(exc.args[0])}, status=404)
        body = await request.json() if request.can_read_body else {}
        args = [str(a) for a in body.get("args", [])] if isinstance(body, dict) else []
        try:
            message = await apply_fault(printer, request.match_info["action"], args)
        except (ValueError, SimError, IndexError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"ok": True, "message": message})

    app = web.Application()
    app.router.add_get("/printers", listing)
    app.router.add_post("/printers/{key}/{action}", act)
    return app


def send_control(port: int, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """Call a running simulator's control endpoint on 127.0.0.1:`port`."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=data,
        method="POST" if data is not None else "GET",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")
