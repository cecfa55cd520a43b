"""Klipper/Moonraker front end: JSON-RPC 2.0 over ws://host:7125/websocket, plus HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import WSMsgType, web

from hub.model import PrintState
from integrations.simulator.frontend import PrinterContext
from integrations.simulator.http_common import HttpFrontEnd, file_name, read_upload, truthy
from integrations.simulator.model import PrintLogEntry, SimError, SimJob

log = logging.getLogger(__name__)

MOONRAKER_VERSION = "v0.9.3-52-g3dee5a7"
KLIPPER_VERSION = "v0.12.0-330-g8d6e3c7"
GRAMS_TO_MM = 1.0 / (1.24 * 3.14159 * 0.0875**2) * 10  # PLA, 1.75 mm: ~333 mm per gram
STARTUP_S = 0.3  # real seconds Klippy spends in "startup" after a power cycle
_PRINT_STATE = {
    PrintState.IDLE: "standby",
    PrintState.PREPARING: "printing",
    PrintState.PRINTING: "printing",
    PrintState.PAUSED: "paused",
    PrintState.FINISHED: "complete",
    PrintState.FAILED: "error",
    PrintState.CANCELLED: "cancelled",
    PrintState.ERROR: "error",
}
_STATE_MESSAGES = {
    "ready": "Printer is ready",
    "startup": "Klipper is starting up",
    "shutdown": "Klipper shutdown (simulated)",
    "error": "Klipper reported an error",
    "disconnected": "Klippy disconnected",
}
# The history status Moonraker gives a job, by how the print ended.
_HISTORY_STATUS = {
    "finished": "completed",
    "cancelled": "cancelled",
    "failed": "error",
    "interrupted": "interrupted",
}
HISTORY_KEEP = 200  # jobs a simulated printer remembers
_NOTIFY = {
    "ready": "notify_klippy_ready",
    "shutdown": "notify_klippy_shutdown",
    "disconnected": "notify_klippy_disconnected",
}


class RpcError(Exception):
    """A JSON-RPC error with Moonraker's code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(eq=False)
class _Client:
    """One websocket connection and its object subscription."""

    ws: web.WebSocketResponse
    id: int
    # Moonraker accepts a socket with a wrong key and then refuses every call on it.
    authorized: bool = True
    objects: dict[str, list[str] | None] = field(default_factory=dict)
    sent: dict[str, dict[str, Any]] = field(default_factory=dict)


def _filter(
    status: dict[str, dict[str, Any]], wanted: dict[str, list[str] | None]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, fields in wanted.items():
        obj = status.get(name)
        if obj is None:
            continue
        out[name] = dict(obj) if fields is None else {k: obj[k] for k in fields if k in obj}
    return out


class MoonrakerFrontEnd(HttpFrontEnd):
    """A simulated Klipper printer behind Moonraker."""

    protocol: ClassVar[str] = "moonraker"
    default_port: ClassVar[int] = 7125
    secret_key: ClassVar[str] = "api_key"

    def __init__(self, ctx: PrinterContext) -> None:
        super().__init__(ctx)
        self.klippy_state = "ready"
        self.clients: set[_Client] = set()
        self._ids = itertools.count(1000)
        self._tokens: dict[str, float] = {}
        self._startup_until = 0.0
        # Moonraker's job history, oldest first; it lives in Moonraker's database, so a
        # power cycle keeps it (a job in progress then is marked "interrupted").
        self.history: list[dict[str, Any]] = []
        self._job_ids = itertools.count(1)
        ctx.printer.job_listeners.append(self._on_job)
        self._methods: dict[str, Callable[[dict[str, Any], _Client | None], Any]] = {
            "server.info": self._server_info,
            "server.connection.identify": self._identify,
            "server.files.list": self._files_list,
            "server.history.list": self._history_list,
            "server.history.get_job": self._history_job,
            "server.files.metadata": self._files_metadata,
            "printer.info": self._printer_info,
            "printer.objects.list": lambda p, c: {"objects": sorted(self.status())},
            "printer.objects.query": self._query,
            "printer.objects.subscribe": self._subscribe,
            "printer.print.start": self._print_start,
            "printer.print.pause": lambda p, c: self._control(self.ctx.printer.pause),
            "printer.print.resume": lambda p, c: self._control(self.ctx.printer.resume),
            "printer.print.cancel": lambda p, c: self._control(self.ctx.printer.cancel),
            "printer.gcode.script": self._gcode,
            "printer.emergency_stop": lambda p, c: self._set_and_ok("shutdown"),
            "printer.restart": lambda p, c: self._restart_klippy(),
            "printer.firmware_restart": lambda p, c: self._restart_klippy(),
        }

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Serve, with Klippy starting up as after a power cycle."""
        self.klippy_state = "startup"
        self._startup_until = time.monotonic() + STARTUP_S
        await super().start()

    async def stop(self) -> None:
        """Close the server and every websocket."""
        self.clients.clear()
        await super().stop()

    def disable_history(self) -> None:
        """Run as a Moonraker without the optional `[history]` component: no job history."""
        for method in ("server.history.list", "server.history.get_job"):
            self._methods.pop(method, None)
        if self._on_job in self.ctx.printer.job_listeners:
            self.ctx.printer.job_listeners.remove(self._on_job)
        self.history.clear()

    def set_klippy_state(self, state: str) -> None:
        """Move Klippy to ready/startup/shutdown/error/disconnected and notify clients."""
        if state not in _STATE_MESSAGES:
            raise ValueError(f"unknown klippy state {state!r}")
        self.klippy_state = state
        if state in ("shutdown", "error", "disconnected") and self.ctx.printer.active:
            self.ctx.printer.fail(message=_STATE_MESSAGES[state])
        if state == "startup":
            self._startup_until = time.monotonic() + STARTUP_S
        if state in _NOTIFY:
            self._broadcast(_NOTIFY[state], None)

    def _set_and_ok(self, state: str) -> str:
        self.set_klippy_state(state)
        return "ok"

    def _restart_klippy(self) -> str:
        if self.ctx.printer.active:
            self.ctx.printer.cancel()
        self.set_klippy_state("startup")
        return "ok"

    def on_tick(self, tick: int) -> None:
        """Finish Klippy start-up; send status diffs to subscribers every ~250 ms."""
        if self.klippy_state == "startup" and time.monotonic() >= self._startup_until:
            self.set_klippy_state("ready")
        interval = max(1, round(self.ctx.ticks_per_second / 4))
        if (tick + self.ctx.index) % interval or self.ctx.faults.silent:
            return
        subscribed = [c for c in self.clients if c.objects and c.authorized]
        if not subscribed:
            return
        status = self.status()
        eventtime = round(asyncio.get_running_loop().time(), 3)
        for client in subscribed:
            changes: dict[str, Any] = {}
            for name, current in _filter(status, client.objects).items():
                before = client.sent.setdefault(name, {})
                delta = {k: v for k, v in current.items() if before.get(k, _MISSING) != v}
                if delta:
                    changes[name] = delta
                    before.update(delta)
            if changes:
                self._send(
                    client, {"method": "notify_status_update", "params": [changes, eventtime]}
                )

    # -- model → Klipper objects -------------------------------------------------------------
    def status(self) -> dict[str, dict[str, Any]]:
        """Every Klipper object the simulator serves, with current values."""
        p = self.ctx.printer
        job = p.job
        state = _PRINT_STATE.get(p.state, "standby")
        progress = round(job.progress, 4) if job else 0.0
        filament_mm = round(job.grams_used * GRAMS_TO_MM, 2) if job else 0.0
        file_size = p.files[job.file].size if job and job.file in p.files else 0
        printing = p.state in (PrintState.PRINTING, PrintState.PREPARING)
        return {
            "webhooks": {
                "state": self.klippy_state,
                "state_message": _STATE_MESSAGES[self.klippy_state],
            },
            "print_stats": {
                "filename": job.file if job else "",
                "total_duration": round(job.elapsed_s, 2) if job else 0.0,
                "print_duration": round(job.printing_s, 2) if job else 0.0,
                "filament_used": filament_mm,
                "state": state,
                "message": p.message,
                "info": {
                    "total_layer": job.meta.layers if job else None,
                    "current_layer": job.layer if job else None,
                },
            },
            "virtual_sdcard": {
                "file_path": f"/home/pi/printer_data/gcodes/{job.file}" if job else None,
                "progress": progress,
                "is_active": p.state is PrintState.PRINTING,
                "file_position": int(file_size * progress),
                "file_size": file_size,
            },
            "display_status": {"progress": progress, "message": None},
            "extruder": _heater(p.nozzle, p.nozzle_target)
            | {
                "can_extrude": p.nozzle >= 170,
                "pressure_advance": 0.04,
                "smooth_time": 0.04,
            },
            "heater_bed": _heater(p.bed, p.bed_target),
            "fan": {"speed": round(p.part_fan / 100, 2), "rpm": None},
            "gcode_move": {
                "speed_factor": p.speed_percent / 100,
                "extrude_factor": 1.0,
                "absolute_coordinates": True,
            },
            "toolhead": {
                "homed_axes": "xyz" if job else "",
                "print_time": round(job.printing_s, 2) if job else 0.0,
                "estimated_print_time": round(job.elapsed_s, 2) if job else 0.0,
                "max_velocity": 500.0,
                "max_accel": 10000.0,
            },
            "idle_timeout": {
                "state": "Printing" if printing else ("Ready" if job else "Idle"),
                "printing_time": round(job.printing_s, 2) if job else 0.0,
            },
            "pause_resume": {"is_paused": p.state is PrintState.PAUSED},
        }

    # -- JSON-RPC methods --------------------------------------------------------------------
    def _server_info(self, params: dict[str, Any], client: _Client | None) -> dict[str, Any]:
        return {
            "klippy_connected": self.klippy_state != "disconnected",
            "klippy_state": self.klippy_state,
            "components": ["klippy_connection", "file_manager", "websockets"]
            + (["history"] if "server.history.list" in self._methods else []),
            "failed_components": [],
            "registered_directories": ["config", "logs", "gcodes"],
            "warnings": [],
            "websocket_count": len(self.clients),
            "moonraker_version": MOONRAKER_VERSION,
            "missing_klippy_requirements": [],
            "api_version": [1, 5, 0],
            "api_version_string": "1.5.0",
        }

    def _identify(self, params: dict[str, Any], client: _Client | None) -> dict[str, Any]:
        if client is None:
            raise RpcError(400, "identify is only available over a websocket")
        return {"connection_id": client.id}

    def _printer_info(self, params: dict[str, Any], client: _Client | None) -> dict[str, Any]:
        self._need_klippy(connected_only=True)
        return {
            "state": self.klippy_state,
            "state_message": _STATE_MESSAGES[self.klippy_state],
            "hostname": self.ctx.name,
            "software_version": KLIPPER_VERSION,
            "cpu_info": "4 core ARMv7 Processor rev 4 (v7l)",
            "klipper_path": "/home/pi/klipper",
            "python_path": "/home/pi/klippy-env/bin/python",
            "log_file": "/home/pi/printer_data/logs/klippy.log",
            "config_file": "/home/pi/printer_data/config/printer.cfg",
        }

    def _files_list(self, params: dict[str, Any], client: _Client | None) -> list[dict[str, Any]]:
        return [
            {"path": f.name, "modified": f.uploaded_at, "size": f.size, "permissions": "rw"}
            for f in self.ctx.printer.files.values()
        ]

    def _files_metadata(self, params: dict[str, Any], client: _Client | None) -> dict[str, Any]:
        entry = self.ctx.printer.find_file(str(params.get("filename", "")))
        if entry is None:
            raise RpcError(404, f"Metadata not available for <{params.get('filename')}>")
        return {
            "filename": entry.name,
            "size": entry.size,
            "modified": entry.uploaded_at,
            "estimated_time": entry.meta.time_s,
            "layer_count": entry.meta.layers,
            "filament_weight_total": entry.meta.grams,
            "first_layer_extr_temp": entry.meta.nozzle_temp,
            "first_layer_bed_temp": entry.meta.bed_temp,
        }

    # -- job history -------------------------------------------------------------------------
    def _on_job(self, what: str, job: SimJob, entry: PrintLogEntry) -> None:
        """Keep the history as Moonraker does and announce each change to every client."""
        if what == "started":
            record: dict[str, Any] = {
                "job_id": f"{next(self._job_ids):06X}",
                "exists": True,
                "filename": job.file,
                "status": "in_progress",
                "start_time": entry.started_at,
                "end_time": None,
                "print_duration": 0.0,
                "total_duration": 0.0,
                "filament_used": 0.0,
                "metadata": {
                    "estimated_time": job.meta.time_s,
                    "layer_count": job.meta.layers,
                    "filament_weight_total": job.meta.grams,
                },
                "auxiliary_data": [],
                "user": "_TRUSTED_USER_",
                "_task": job.task_id,
            }
            self.history.append(record)
            del self.history[:-HISTORY_KEEP]
            self._broadcast("notify_history_changed", [{"action": "added", "job": _public(record)}])
            return
        for record in reversed(self.history):
            if record["_task"] == job.task_id and record["status"] == "in_progress":
                record.update(
                    status=_HISTORY_STATUS.get(entry.outcome or "", "error"),
                    end_time=entry.ended_at,
                    print_duration=round(job.printing_s, 2),
                    total_duration=round(job.elapsed_s, 2),
                    filament_used=round(job.grams_used * GRAMS_TO_MM, 2),
                )
                self._broadcast(
                    "notify_history_changed", [{"action": "finished", "job": _public(record)}]
                )
                return

    def _history_list(self, params: dict[str, Any], client: _Client | None) -> dict[str, Any]:
        jobs = list(self.history)
        since, before = params.get("since"), params.get("before")
        if isinstance(since, int | float | str) and str(since):
            jobs = [j for j in jobs if j["start_time"] > float(since)]
        if isinstance(before, int | float | str) and str(before):
            jobs = [j for j in jobs if j["start_time"] < float(before)]
        if str(params.get("order", "desc")) != "asc":
            jobs.reverse()
        count = len(jobs)
        start = int(params.get("start", 0) or 0)
        limit = int(params.get("limit", 50) or 50)
        return {"count": count, "jobs": [_public(j) for j in jobs[start : start + limit]]}

    def _history_job(self, params: dict[str, Any], client: _Client | None) -> dict[str, Any]:
        uid = str(params.get("uid", ""))
        for record in self.history:
            if record["job_id"] == uid:
                return {"job": _public(record)}
        raise RpcError(404, f"Invalid job uid: {uid}")

    def _need_klippy(self, connected_only: bool = False) -> None:
        if self.klippy_state == "disconnected":
            raise RpcError(-32601, "Method not found")  # Klippy's endpoints are gone
        if not connected_only and self.klippy_state != "ready":
            raise RpcError(400, f"Klippy not ready: {_STATE_MESSAGES[self.klippy_state]}")

    def _objects_param(self, params: dict[str, Any]) -> dict[str, list[str] | None]:
        objects = params.get("objects")
        if not isinstance(objects, dict):
            raise RpcError(-32602, "Invalid params: 'objects' must be an object")
        return {str(k): (list(v) if isinstance(v, list) else None) for k, v in objects.items()}

    def _query(self, params: dict[str, Any], client: _Client | None) -> dict[str, Any]:
        self._need_klippy(connected_only=True)
        wanted = self._objects_param(params)
        eventtime = round(asyncio.get_running_loop().time(), 3)
        return {"eventtime": eventtime, "status": _filter(self.status(), wanted)}

    def _subscribe(self, params: dict[str, Any], client: _Client | None) -> dict[str, Any]:
        self._need_klippy(connected_only=True)
        if client is None:
            raise RpcError(400, "subscriptions need a websocket connection")
        client.objects = self._objects_param(params)
        reply = self._query(params, client)
        client.sent = {name: dict(obj) for name, obj in reply["status"].items()}
        return reply

    def _control(self, action: Callable[[], None]) -> str:
        self._need_klippy()
        try:
            action()
        except SimError as exc:
            raise RpcError(400, str(exc)) from exc
        return "ok"

    def _print_start(self, params: dict[str, Any], client: _Client | None) -> str:
        if self.klippy_state == "disconnected":
            raise RpcError(503, "Klippy Disconnected")
        filename = str(params.get("filename", ""))
        if not filename:
            raise RpcError(-32602, "Invalid params: 'filename' is required")
        return self._control(lambda: self._start(filename))

    def _start(self, filename: str) -> None:
        self.ctx.printer.start_print(filename)

    def _gcode(self, params: dict[str, Any], client: _Client | None) -> str:
        self._need_klippy()
        script = str(params.get("script", ""))
        self.ctx.printer.gcode(script)
        for line in script.splitlines():
            if line.strip():
                self._broadcast("notify_gcode_response", [f"// {line.strip()}"])
        return "ok"

    def call(self, method: str, params: dict[str, Any], client: _Client | None) -> Any:
        """Run a JSON-RPC method (shared by the websocket and HTTP)."""
        handler = self._methods.get(method)
        if handler is None:
            raise RpcError(-32601, "Method not found")
        return handler(params, client)

    # -- transport ---------------------------------------------------------------------------
    def _send(self, client: _Client, message: dict[str, Any]) -> None:
        if client.ws.closed:
            return
        message = {"jsonrpc": "2.0", **message}
        task = asyncio.ensure_future(client.ws.send_str(json.dumps(message)))
        task.add_done_callback(_ignore_result)

    def _broadcast(self, method: str, params: list[Any] | None) -> None:
        message: dict[str, Any] = {"method": method}
        if params is not None:
            message["params"] = params
        for client in list(self.clients):
            if client.authorized:
                self._send(client, message)

    def authorized(self, request: web.Request) -> bool:
        """X-Api-Key, or a one-shot token in `?token=`; no key configured means trusted."""
        if not self.ctx.secret:
            return True
        key = request.headers.get("X-Api-Key", "")
        if key and hmac.compare_digest(key, self.ctx.secret):
            return True
        token = request.query.get("token", "")
        expiry = self._tokens.pop(token, 0.0) if token else 0.0
        return expiry > time.monotonic()

    def public(self, request: web.Request) -> bool:
        """The websocket opens whatever the key; the calls on it are then refused."""
        return request.path == "/websocket"

    def unauthorized(self, request: web.Request) -> web.StreamResponse:
        """Moonraker answers 401 with an error object."""
        return web.json_response({"error": {"code": 401, "message": "Unauthorized"}}, status=401)

    def routes(self, app: web.Application) -> None:
        """The websocket, file upload, one-shot tokens and HTTP forms of the RPC methods."""
        app.router.add_get("/websocket", self._websocket)
        app.router.add_post("/server/files/upload", self._upload)
        app.router.add_get("/access/oneshot_token", self._oneshot)
        app.router.add_route("*", "/{a}/{b}", self._http_rpc)
        app.router.add_route("*", "/{a}/{b}/{c}", self._http_rpc)

    async def _oneshot(self, request: web.Request) -> web.StreamResponse:
        token = secrets.token_urlsafe(24)
        self._tokens[token] = time.monotonic() + 5.0
        return web.json_response({"result": token})

    async def _http_rpc(self, request: web.Request) -> web.StreamResponse:
        parts = [request.match_info.get(k) for k in ("a", "b", "c")]
        method = ".".join(p for p in parts if p)
        params: dict[str, Any] = {}
        if method == "printer.objects.query":
            params["objects"] = {k: (v.split(",") if v else None) for k, v in request.query.items()}
        else:
            params.update(request.query)
            if request.can_read_body and request.content_type == "application/json":
                with contextlib.suppress(ValueError):
                    body = await request.json()
                    if isinstance(body, dict):
                        params.update(body)
        try:
            result = self.call(method, params, None)
        except RpcError as exc:
            status = exc.code if 400 <= exc.code < 600 else (404 if exc.code == -32601 else 400)
            return web.json_response(
                {"error": {"code": status, "message": str(exc)}}, status=status
            )
        return web.json_response({"result": result})

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        name, data, fields = await read_upload(request)
        if not name:
            return web.json_response(
                {"error": {"code": 400, "message": "No file in the 'file' field"}}, status=400
            )
        path = file_name(f"{fields.get('path', '')}/{name}")
        entry = self.ctx.printer.add_file(path, data)
        started = False
        if truthy(fields.get("print")) and self.klippy_state == "ready":
            with contextlib.suppress(SimError):
                self.ctx.printer.start_print(entry.name)
                started = True
        item = {
            "path": entry.name,
            "root": fields.get("root", "gcodes"),
            "modified": entry.uploaded_at,
            "size": entry.size,
            "permissions": "rw",
        }
        body = {
            "item": item,
            "print_started": started,
            "print_queued": False,
            "action": "create_file",
        }
        return web.json_response(body, status=201)

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=None, max_msg_size=16 * 1024 * 1024)
        await ws.prepare(request)
        allowed = not self.ctx.faults.refuse_auth and self.authorized(request)
        client = _Client(ws=ws, id=next(self._ids), authorized=allowed)
        self.clients.add(client)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT or self.ctx.faults.silent:
                    continue  # a hung Moonraker swallows requests
                if self.ctx.faults.delay > 0:
                    await asyncio.sleep(self.ctx.faults.delay)
                reply = self._handle_rpc(msg.data, client)
                if reply is not None:
                    await ws.send_str(json.dumps(reply))
        finally:
            self.clients.discard(client)
        return ws

    def _handle_rpc(self, text: str, client: _Client) -> dict[str, Any] | None:
        try:
            request = json.loads(text)
        except ValueError:
            return {
                "jsonrpc": "2.0",
                "error": {"code": -32700, "message": "Parse error"},
                "id": None,
            }
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            return {
                "jsonrpc": "2.0",
                "error": {"code": -32600, "message": "Invalid Request"},
                "id": request.get("id") if isinstance(request, dict) else None,
            }
        params = request.get("params") or {}
        req_id = request.get("id")
        try:
            if not client.authorized:
                raise RpcError(-32602, "Unauthorized")
            if not isinstance(params, dict):
                raise RpcError(-32602, "Invalid params: expected an object")
            result = self.call(request["method"], params, client)
        except RpcError as exc:
            response: dict[str, Any] = {
                "jsonrpc": "2.0",
                "error": {"code": exc.code, "message": str(exc)},
            }
        else:
            response = {"jsonrpc": "2.0", "result": result}
        if req_id is None:
            return None  # a notification gets no answer
        response["id"] = req_id
        return response


_MISSING = object()


def _public(record: dict[str, Any]) -> dict[str, Any]:
    """A history record without the simulator's own bookkeeping."""
    return {k: v for k, v in record.items() if not k.startswith("_")}


def _heater(temperature: float, target: float) -> dict[str, Any]:
    if target <= 0:
        power = 0.0
    elif temperature < target - 2:
        power = 1.0
    else:
        power = 0.35
    return {"temperature": round(temperature, 2), "target": round(target, 1), "power": power}


def _ignore_result(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so a closed socket is not logged as unhandled
