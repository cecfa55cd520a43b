"""OctoPrint front end: /api/job, /api/printer, /api/files with X-Api-Key (or Bearer) auth,
and the push socket (`/sockjs/websocket`) with `current` messages and print events."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import secrets
import time
from typing import Any, ClassVar

from aiohttp import WSMsgType, web

from hub.model import PrintState
from integrations.simulator.frontend import PrinterContext
from integrations.simulator.http_common import HttpFrontEnd, file_name, read_upload, truthy
from integrations.simulator.model import PrintLogEntry, SimError, SimJob

VERSION = "1.11.8"
USER = "admin"
# The events OctoPrint pushes when a print ends, by how it ended (a cancel sends both).
_END_EVENTS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "finished": (("PrintDone", None),),
    "cancelled": (("PrintCancelled", None), ("PrintFailed", "cancelled")),
    "failed": (("PrintFailed", "error"),),
}
MM_PER_GRAM = 333.0  # PLA at 1.75 mm
CM3_PER_GRAM = 1 / 1.24


def _conflict(message: str) -> web.Response:
    return web.json_response({"error": message}, status=409)


class OctoPrintFrontEnd(HttpFrontEnd):
    """A simulated printer behind OctoPrint, serially connected and operational."""

    protocol: ClassVar[str] = "octoprint"
    default_port: ClassVar[int] = 5000
    secret_key: ClassVar[str] = "api_key"

    def __init__(self, ctx: PrinterContext) -> None:
        super().__init__(ctx)
        self.connected = True
        self.selected: str | None = None
        self._sessions: set[str] = set()  # from a passive /api/login
        self._sockets: dict[web.WebSocketResponse, bool] = {}  # socket -> authenticated
        ctx.printer.job_listeners.append(self._on_job)

    async def start(self) -> None:
        """Serve; the serial link to the printer comes up with the server."""
        self.connected = True
        self.selected = None
        await super().start()

    def on_tick(self, tick: int) -> None:
        """Push a `current` message to authenticated sockets about twice a second."""
        interval = max(1, self.ctx.ticks_per_second // 2)
        if (tick + self.ctx.index) % interval or self.ctx.faults.silent:
            return
        if any(self._sockets.values()):
            self._push({"current": self._current()})

    # -- push socket -------------------------------------------------------------------------
    def _current(self) -> dict[str, Any]:
        body = self._job_body()
        return {
            "state": {"text": self.state_text(), "flags": self.flags(), "error": ""},
            "job": body["job"],
            "progress": body["progress"],
            "currentZ": None,
            "offsets": {},
            "temps": [],
            "logs": [],
            "messages": [],
            "busyFiles": [],
            "serverTime": time.time(),
        }

    def _push(self, message: dict[str, Any]) -> None:
        text = json.dumps(message)
        for ws, authed in list(self._sockets.items()):
            if authed and not ws.closed:
                task = asyncio.ensure_future(ws.send_str(text))
                task.add_done_callback(_ignore_result)

    def _on_job(self, what: str, job: SimJob, entry: PrintLogEntry) -> None:
        """Print events as OctoPrint sends them over the push socket."""
        if self.ctx.faults.silent:
            return
        size = self.ctx.printer.files[job.file].size if job.file in self.ctx.printer.files else 0
        payload: dict[str, Any] = {"name": job.file, "path": job.file, "origin": "local",
                                   "size": size, "owner": USER, "user": USER}  # fmt: skip
        if what == "started":
            self._push({"event": {"type": "PrintStarted", "payload": payload}})
            return
        for event, reason in _END_EVENTS.get(entry.outcome or "", ()):
            body = {**payload, "time": round(job.elapsed_s, 2)}
            if reason is not None:
                body["reason"] = reason
            self._push({"event": {"type": event, "payload": body}})

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        self.websockets.add(ws)
        self._sockets[ws] = False
        await ws.send_str(json.dumps({"connected": {"version": VERSION, "display_version": VERSION,
                                                     "branch": None, "plugin_hash": "0",
                                                     "config_hash": "0", "debug": False,
                                                     "safe_mode": None, "permissions": []}}))  # fmt: skip
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                with contextlib.suppress(ValueError, AttributeError):
                    auth = str(json.loads(msg.data).get("auth", ""))
                    user, _, session = auth.partition(":")
                    if user == USER and session in self._sessions:
                        self._sockets[ws] = True
                        await ws.send_str(json.dumps({"history": self._current()}))
        finally:
            self._sockets.pop(ws, None)
            self.websockets.discard(ws)
        return ws

    async def _login(self, request: web.Request) -> web.StreamResponse:
        body = await _json_body(request)
        if not body.get("passive"):
            return web.json_response({"error": "only passive logins are simulated"}, status=400)
        session = secrets.token_hex(16)
        self._sessions.add(session)
        return web.json_response({"name": USER, "session": session, "active": True,
                                  "admin": True, "groups": ["admins", "users"],
                                  "permissions": [], "_is_external_client": False})  # fmt: skip

    async def _settings(self, request: web.Request) -> web.StreamResponse:
        host = self.ctx.host
        return web.json_response(
            {
                "api": {"allowCrossOrigin": False},
                "appearance": {"name": self.ctx.name, "color": "default"},
                "feature": {"sdSupport": False},
                "serial": {"port": "VIRTUAL", "baudrate": 115200, "autoconnect": True},
                "webcam": {
                    "webcamEnabled": True,
                    "streamUrl": f"http://{host}:8080/?action=stream",
                    "snapshotUrl": f"http://{host}:8080/?action=snapshot",
                    "flipH": False,
                    "flipV": False,
                    "rotate90": False,
                },
                "plugins": {
                    "discovery": {
                        "upnpUuid": f"00000000-0000-4000-8000-{self.ctx.serial.encode().hex()[-12:]:0>12}",
                        "model": {
                            "name": "OctoPrint",
                            "number": VERSION,
                            "serial": self.ctx.serial,
                        },
                    }
                },
            }
        )

    # -- state -------------------------------------------------------------------------------
    @property
    def operational(self) -> bool:
        """Connected and not in an error state (a failed print takes the link down)."""
        return self.connected and self.ctx.printer.state is not PrintState.FAILED

    def state_text(self) -> str:
        """OctoPrint's state string."""
        p = self.ctx.printer
        if not self.connected:
            return "Offline"
        if p.state is PrintState.FAILED:
            return f"Offline after error: {p.message or 'printer error'}"
        if p.state in (PrintState.PREPARING, PrintState.PRINTING):
            return "Printing"
        if p.state is PrintState.PAUSED:
            return "Paused"
        return "Operational"

    def flags(self) -> dict[str, bool]:
        """The `state.flags` object of /api/printer."""
        p = self.ctx.printer
        printing = p.state in (PrintState.PREPARING, PrintState.PRINTING)
        error = self.connected and p.state is PrintState.FAILED
        return {
            "operational": self.operational,
            "printing": printing,
            "cancelling": False,
            "pausing": False,
            "resuming": False,
            "finishing": False,
            "closedOrError": not self.operational,
            "error": error,
            "paused": p.state is PrintState.PAUSED,
            "ready": self.operational and not p.active,
            "sdReady": False,
        }

    # -- auth --------------------------------------------------------------------------------
    def authorized(self, request: web.Request) -> bool:
        """X-Api-Key header, `Authorization: Bearer`, or `?apikey=`."""
        key = request.headers.get("X-Api-Key") or request.query.get("apikey")
        auth = request.headers.get("Authorization", "")
        if not key and auth.lower().startswith("bearer "):
            key = auth[7:].strip()
        return bool(key) and hmac.compare_digest(str(key), self.ctx.secret)

    def public(self, request: web.Request) -> bool:
        """The push socket opens without a key; it is authenticated by a message."""
        return request.path == "/sockjs/websocket"

    def unauthorized(self, request: web.Request) -> web.StreamResponse:
        """OctoPrint answers 403 Forbidden."""
        return web.json_response(
            {"error": "You don't have the permission to access the requested resource."}, status=403
        )

    # -- routes ------------------------------------------------------------------------------
    def routes(self, app: web.Application) -> None:
        """The OctoPrint REST endpoints the simulator serves."""
        r = app.router
        r.add_get("/api/version", self._version)
        r.add_get("/api/server", self._server)
        r.add_post("/api/login", self._login)
        r.add_get("/api/settings", self._settings)
        r.add_get("/sockjs/websocket", self._socket)
        r.add_get("/api/connection", self._connection)
        r.add_post("/api/connection", self._connection_command)
        r.add_get("/api/job", self._job)
        r.add_post("/api/job", self._job_command)
        r.add_get("/api/printer", self._printer)
        r.add_post("/api/printer/tool", self._tool)
        r.add_post("/api/printer/bed", self._bed)
        r.add_post("/api/printer/command", self._command)
        r.add_get("/api/files", self._files)
        r.add_get("/api/files/local", self._files)
        r.add_post("/api/files/local", self._upload)
        r.add_post("/api/files/local/{path:.+}", self._file_command)
        r.add_delete("/api/files/local/{path:.+}", self._delete)

    async def _version(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"api": "0.1", "server": VERSION, "text": f"OctoPrint {VERSION}"})

    async def _server(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"version": VERSION, "safemode": None})

    async def _connection(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {
                "current": {
                    "state": self.state_text() if self.connected else "Closed",
                    "port": "VIRTUAL" if self.connected else None,
                    "baudrate": 115200 if self.connected else None,
                    "printerProfile": "_default",
                },
                "options": {
                    "ports": ["VIRTUAL"],
                    "baudrates": [115200, 250000],
                    "autoconnect": True,
                },
            }
        )

    async def _connection_command(self, request: web.Request) -> web.StreamResponse:
        body = await _json_body(request)
        command = body.get("command")
        p = self.ctx.printer
        if command == "connect":
            self.connected = True
            if p.state is PrintState.FAILED:
                p.clear_job()  # reconnecting clears the error, as a fresh serial link does
        elif command == "disconnect":
            if p.active:
                p.cancel()
            self.connected = False
        elif command == "fake_ack":
            pass
        else:
            return web.json_response({"error": f"unknown command {command!r}"}, status=400)
        return web.Response(status=204)

    def _job_body(self) -> dict[str, Any]:
        p = self.ctx.printer
        job = p.job
        entry = p.files.get(job.file if job else (self.selected or ""))
        file: dict[str, Any] = {
            "name": None,
            "path": None,
            "display": None,
            "origin": None,
            "size": None,
            "date": None,
        }
        if entry is not None:
            file = {
                "name": entry.name,
                "path": entry.name,
                "display": entry.name,
                "origin": "local",
                "size": entry.size,
                "date": int(entry.uploaded_at),
            }
        meta = job.meta if job else (entry.meta if entry else None)
        progress: dict[str, Any] = {
            "completion": None,
            "filepos": None,
            "printTime": None,
            "printTimeLeft": None,
            "printTimeLeftOrigin": None,
        }
        if job is not None:
            progress = {
                "completion": round(job.progress * 100, 2),
                "filepos": int((entry.size if entry else 0) * job.progress),
                "printTime": int(job.elapsed_s),
                "printTimeLeft": int(job.remaining_s(p.speed_percent)),
                "printTimeLeftOrigin": "estimate",
            }
        body: dict[str, Any] = {
            "job": {
                "file": file,
                "estimatedPrintTime": meta.time_s if meta else None,
                "lastPrintTime": None,
                "filament": (
                    {
                        "tool0": {
                            "length": round(meta.grams * MM_PER_GRAM, 1),
                            "volume": round(meta.grams * CM3_PER_GRAM, 2),
                        }
                    }
                    if meta
                    else None
                ),
                "user": "admin" if job else None,
            },
            "progress": progress,
            "state": self.state_text(),
        }
        if p.state is PrintState.FAILED and p.message:
            body["error"] = p.message
        return body

    async def _job(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self._job_body())

    async def _job_command(self, request: web.Request) -> web.StreamResponse:
        body = await _json_body(request)
        command = body.get("command")
        p = self.ctx.printer
        if not self.operational:
            return _conflict("Printer is not operational")
        try:
            if command == "start":
                if self.selected is None:
                    return _conflict("No file selected")
                if p.active:
                    return _conflict("Printer is already printing")
                p.start_print(self.selected)
            elif command == "cancel":
                if not p.active:
                    return _conflict("Printer is neither printing nor paused")
                p.cancel()
            elif command == "restart":
                if p.state is not PrintState.PAUSED or p.job is None:
                    return _conflict("Printer is not paused")
                name = p.job.file
                p.cancel()
                p.start_print(name)
            elif command == "pause":
                action = body.get("action", "toggle")
                if action == "toggle":
                    action = "resume" if p.state is PrintState.PAUSED else "pause"
                if action == "pause":
                    if p.state not in (PrintState.PRINTING, PrintState.PREPARING):
                        return _conflict("Printer is not printing")
                    p.pause()
                elif action == "resume":
                    if p.state is not PrintState.PAUSED:
                        return _conflict("Printer is not paused")
                    p.resume()
                else:
                    return web.json_response({"error": f"unknown action {action!r}"}, status=400)
            else:
                return web.json_response({"error": f"unknown command {command!r}"}, status=400)
        except SimError as exc:
            return _conflict(str(exc))
        return web.Response(status=204)

    async def _printer(self, request: web.Request) -> web.StreamResponse:
        if not self.operational:
            return _conflict("Printer is not operational")
        p = self.ctx.printer
        return web.json_response(
            {
                "temperature": {
                    "tool0": {
                        "actual": round(p.nozzle, 1),
                        "target": round(p.nozzle_target, 1),
                        "offset": 0,
                    },
                    "bed": {
                        "actual": round(p.bed, 1),
                        "target": round(p.bed_target, 1),
                        "offset": 0,
                    },
                },
                "sd": {"ready": False},
                "state": {"text": self.state_text(), "flags": self.flags(), "error": ""},
            }
        )

    async def _tool(self, request: web.Request) -> web.StreamResponse:
        body = await _json_body(request)
        if not self.operational:
            return _conflict("Printer is not operational")
        targets = body.get("targets") if body.get("command") == "target" else None
        if not isinstance(targets, dict) or "tool0" not in targets:
            return web.json_response(
                {"error": "expected command 'target' with targets.tool0"}, status=400
            )
        self.ctx.printer.gcode(f"M104 S{float(targets['tool0'])}")
        return web.Response(status=204)

    async def _bed(self, request: web.Request) -> web.StreamResponse:
        body = await _json_body(request)
        if not self.operational:
            return _conflict("Printer is not operational")
        if body.get("command") != "target" or not isinstance(body.get("target"), int | float):
            return web.json_response(
                {"error": "expected command 'target' with a number"}, status=400
            )
        self.ctx.printer.gcode(f"M140 S{float(body['target'])}")
        return web.Response(status=204)

    async def _command(self, request: web.Request) -> web.StreamResponse:
        body = await _json_body(request)
        if not self.operational:
            return _conflict("Printer is not operational")
        commands = body.get("commands") or ([body["command"]] if "command" in body else [])
        self.ctx.printer.gcode("\n".join(str(c) for c in commands))
        return web.Response(status=204)

    def _file_entry(self, name: str) -> dict[str, Any]:
        entry = self.ctx.printer.files[name]
        return {
            "name": entry.name,
            "display": entry.name,
            "path": entry.name,
            "origin": "local",
            "type": "machinecode",
            "typePath": ["machinecode", "gcode"],
            "size": entry.size,
            "date": int(entry.uploaded_at),
            "gcodeAnalysis": {
                "estimatedPrintTime": entry.meta.time_s,
                "filament": {"tool0": {"length": round(entry.meta.grams * MM_PER_GRAM, 1)}},
            },
            "refs": {
                "resource": f"http://{self.ctx.host}:{self.ctx.port}/api/files/local/{entry.name}"
            },
        }

    async def _files(self, request: web.Request) -> web.StreamResponse:
        files = [self._file_entry(name) for name in self.ctx.printer.files]
        return web.json_response({"files": files, "free": 30_000_000_000, "total": 60_000_000_000})

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        name, data, fields = await read_upload(request)
        if not name:
            return web.json_response({"error": "No file included"}, status=400)
        p = self.ctx.printer
        start = truthy(fields.get("print"))
        select = start or truthy(fields.get("select"))
        name = file_name(f"{fields.get('path', '')}/{name}")
        if p.active and p.job is not None and p.job.file == name:
            return _conflict("Trying to overwrite the file that is currently being printed")
        if start and (p.active or not self.operational):
            return _conflict("Printer is busy or not operational")
        p.add_file(name, data)
        if select:
            self.selected = name
        if start:
            try:
                p.start_print(name)
            except SimError as exc:
                return _conflict(str(exc))
        body = {
            "files": {"local": self._file_entry(name)},
            "done": True,
            "effectiveSelect": select,
            "effectivePrint": start,
        }
        location = f"http://{self.ctx.host}:{self.ctx.port}/api/files/local/{name}"
        return web.json_response(body, status=201, headers={"Location": location})

    async def _file_command(self, request: web.Request) -> web.StreamResponse:
        p = self.ctx.printer
        entry = p.find_file(request.match_info["path"])
        if entry is None:
            return web.json_response({"error": "File not found"}, status=404)
        body = await _json_body(request)
        if body.get("command") != "select":
            return web.json_response(
                {"error": f"unknown command {body.get('command')!r}"}, status=400
            )
        if p.active:
            return _conflict("Printer is already printing")
        self.selected = entry.name
        if body.get("print"):
            if not self.operational:
                return _conflict("Printer is not operational")
            try:
                p.start_print(entry.name)
            except SimError as exc:
                return _conflict(str(exc))
        return web.Response(status=204)

    async def _delete(self, request: web.Request) -> web.StreamResponse:
        p = self.ctx.printer
        entry = p.find_file(request.match_info["path"])
        if entry is None:
            return web.json_response({"error": "File not found"}, status=404)
        if p.active and p.job is not None and p.job.file == entry.name:
            return _conflict("Trying to delete the file that is currently being printed")
        del p.files[entry.name]
        if self.selected == entry.name:
            self.selected = None
        return web.Response(status=204)


async def _json_body(request: web.Request) -> dict[str, Any]:
    with contextlib.suppress(ValueError):
        body = await request.json()
        if isinstance(body, dict):
            return body
    return {}


def _ignore_result(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so a closed socket is not logged as unhandled
