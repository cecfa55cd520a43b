"""PrusaLink front end (MK4, XL, MINI): /api/v1 REST with X-Api-Key or HTTP Digest auth."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections import OrderedDict
from typing import Any, ClassVar

from aiohttp import web

from hub.model import PrintState
from integrations.simulator.frontend import PrinterContext
from integrations.simulator.http_common import HttpFrontEnd, file_name
from integrations.simulator.model import SimError, SimJob

REALM = "Printer API"
USER = "maker"
STORAGES = ("usb", "local")
_STATE = {
    PrintState.IDLE: "IDLE",
    PrintState.PREPARING: "PRINTING",
    PrintState.PRINTING: "PRINTING",
    PrintState.PAUSED: "PAUSED",
    PrintState.FINISHED: "FINISHED",
    PrintState.FAILED: "ERROR",
    PrintState.CANCELLED: "STOPPED",
    PrintState.ERROR: "ERROR",
}
_DIGEST_FIELD = re.compile(r'(\w+)=(?:"([^"]*)"|([^,\s]*))')


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _flag(value: str | None) -> bool:
    """Structured-header booleans as PrusaLink uses them: `?1` true, `?0` false."""
    return (value or "").strip() in ("?1", "1", "true")


class PrusaLinkFrontEnd(HttpFrontEnd):
    """A simulated Prusa printer running PrusaLink."""

    protocol: ClassVar[str] = "prusalink"
    default_port: ClassVar[int] = 80
    secret_key: ClassVar[str] = "password"

    def __init__(self, ctx: PrinterContext) -> None:
        super().__init__(ctx)
        self._nonces: OrderedDict[str, None] = OrderedDict()
        self._job_ids: dict[str, int] = {}

    def on_tick(self, tick: int) -> None:
        """PrusaLink is polled; nothing is pushed."""

    def describe(self) -> dict[str, Any]:
        """PrusaLink's digest user name."""
        return {"username": USER}

    # -- auth --------------------------------------------------------------------------------
    def authorized(self, request: web.Request) -> bool:
        """X-Api-Key equal to the password, or a valid Digest response for user `maker`."""
        secret = self.ctx.secret
        key = request.headers.get("X-Api-Key")
        if key is not None:
            return hmac.compare_digest(key, secret)
        header = request.headers.get("Authorization", "")
        if not header.lower().startswith("digest "):
            return False
        fields = {
            m.group(1).lower(): m.group(2) or m.group(3) for m in _DIGEST_FIELD.finditer(header[7:])
        }
        if fields.get("username") != USER or fields.get("realm") != REALM:
            return False
        nonce = fields.get("nonce", "")
        if nonce not in self._nonces:
            return False
        ha1 = _md5(f"{USER}:{REALM}:{secret}")
        ha2 = _md5(f"{request.method}:{fields.get('uri', '')}")
        if fields.get("qop"):
            expected = _md5(
                f"{ha1}:{nonce}:{fields.get('nc')}:{fields.get('cnonce')}:{fields['qop']}:{ha2}"
            )
        else:
            expected = _md5(f"{ha1}:{nonce}:{ha2}")
        return hmac.compare_digest(expected, fields.get("response", ""))

    def unauthorized(self, request: web.Request) -> web.StreamResponse:
        """401 with a fresh Digest challenge."""
        nonce = secrets.token_hex(16)
        self._nonces[nonce] = None
        while len(self._nonces) > 256:
            self._nonces.popitem(last=False)
        challenge = f'Digest realm="{REALM}", nonce="{nonce}", qop="auth", algorithm=MD5'
        return web.json_response(
            {"title": "Unauthorized", "message": "Authentication required"},
            status=401,
            headers={"WWW-Authenticate": challenge},
        )

    # -- views -------------------------------------------------------------------------------
    def routes(self, app: web.Application) -> None:
        """The PrusaLink v1 endpoints the simulator serves."""
        r = app.router
        r.add_get("/api/version", self._version)
        r.add_get("/api/v1/info", self._info)
        r.add_get("/api/v1/status", self._status)
        r.add_get("/api/printer", self._legacy_printer)
        r.add_get("/api/v1/storage", self._storage)
        r.add_get("/api/v1/job", self._job)
        r.add_put("/api/v1/job/{id}/pause", self._pause)
        r.add_put("/api/v1/job/{id}/resume", self._resume)
        r.add_put("/api/v1/job/{id}/continue", self._continue)
        r.add_delete("/api/v1/job/{id}", self._stop)
        r.add_put("/api/v1/files/{storage}/{path:.+}", self._upload)
        r.add_post("/api/v1/files/{storage}/{path:.+}", self._start)
        r.add_get("/api/v1/files/{storage}/{path:.+}", self._file)
        r.add_delete("/api/v1/files/{storage}/{path:.+}", self._delete)

    def _job_id(self, job: SimJob) -> int:
        if job.task_id not in self._job_ids:
            self._job_ids[job.task_id] = len(self._job_ids) + 1
        return self._job_ids[job.task_id]

    def _job_body(self, job: SimJob) -> dict[str, Any]:
        p = self.ctx.printer
        entry = p.files.get(job.file)
        return {
            "id": self._job_id(job),
            "state": _STATE.get(p.state, "IDLE"),
            "progress": round(job.progress * 100, 2),
            "time_remaining": int(job.remaining_s(p.speed_percent)),
            "time_printing": int(job.elapsed_s),
            "inaccurate_estimates": False,
            "serial_print": False,
            "file": {
                "name": job.file,
                "display_name": job.file,
                "path": "/usb",
                "size": entry.size if entry else 0,
                "m_timestamp": int(entry.uploaded_at) if entry else 0,
                "meta": {
                    "estimated printing time (normal mode)": int(job.meta.time_s),
                    "filament used [g]": job.meta.grams,
                    "layer_count": job.meta.layers,
                },
            },
        }

    async def _version(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {
                "api": "2.0.0",
                "server": "2.1.2",
                "nozzle_diameter": 0.4,
                "text": "PrusaLink",
                "hostname": self.ctx.name,
                "capabilities": {"upload-by-put": True},
            }
        )

    async def _info(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {
                "nozzle_diameter": 0.4,
                "mmu": False,
                "serial": self.ctx.serial,
                "hostname": self.ctx.name,
                "min_extrusion_temp": 170,
            }
        )

    async def _legacy_printer(self, request: web.Request) -> web.StreamResponse:
        """The OctoPrint-style `/api/printer` older clients (Home Assistant's) still read."""
        p = self.ctx.printer
        tray = p.active_tray
        state = _STATE.get(p.state, "IDLE")
        printing = state == "PRINTING"
        return web.json_response(
            {
                "telemetry": {
                    "temp-bed": round(p.bed, 1),
                    "temp-nozzle": round(p.nozzle, 1),
                    "print-speed": p.speed_percent,
                    "z-height": round(0.2 * p.job.layer, 2) if p.job else 0.0,
                    "material": tray.material if tray is not None and not tray.empty else "---",
                },
                "temperature": {
                    "tool0": {
                        "actual": round(p.nozzle, 1),
                        "target": round(p.nozzle_target, 1),
                        "display": round(p.nozzle_target, 1),
                        "offset": 0,
                    },
                    "bed": {
                        "actual": round(p.bed, 1),
                        "target": round(p.bed_target, 1),
                        "offset": 0,
                    },
                },
                "state": {
                    "text": state.capitalize() if state != "IDLE" else "Operational",
                    "flags": {
                        "operational": state in ("IDLE", "FINISHED", "STOPPED"),
                        "paused": state == "PAUSED",
                        "printing": printing,
                        "cancelling": False,
                        "pausing": False,
                        "error": state == "ERROR",
                        "sdReady": True,
                        "closedOnError": False,
                        "ready": not p.active,
                        "busy": p.active,
                    },
                },
            }
        )

    async def _status(self, request: web.Request) -> web.StreamResponse:
        p = self.ctx.printer
        body: dict[str, Any] = {
            "storage": {"path": "/usb/", "name": "usb", "read_only": False},
            "printer": {
                "state": _STATE.get(p.state, "IDLE"),
                "temp_nozzle": round(p.nozzle, 1),
                "target_nozzle": round(p.nozzle_target, 1),
                "temp_bed": round(p.bed, 1),
                "target_bed": round(p.bed_target, 1),
                "axis_z": round(0.2 * p.job.layer, 2) if p.job else 0.0,
                "flow": 100,
                "speed": p.speed_percent,
                "fan_hotend": 3000 if p.nozzle > 50 else 0,
                "fan_print": p.part_fan * 60,
            },
        }
        if p.job is not None:
            body["job"] = {
                "id": self._job_id(p.job),
                "progress": round(p.job.progress * 100, 2),
                "time_remaining": int(p.job.remaining_s(p.speed_percent)),
                "time_printing": int(p.job.elapsed_s),
            }
        return web.json_response(body)

    async def _storage(self, request: web.Request) -> web.StreamResponse:
        files = self.ctx.printer.files.values()
        return web.json_response(
            {
                "storage_list": [
                    {
                        "type": "USB",
                        "path": "/usb",
                        "name": "usb",
                        "available": True,
                        "read_only": False,
                        "free_space": 30_000_000_000,
                        "print_files": len(files),
                    }
                ]
            }
        )

    async def _job(self, request: web.Request) -> web.StreamResponse:
        job = self.ctx.printer.job
        if job is None:
            return web.Response(status=204)
        return web.json_response(self._job_body(job))

    def _current(self, request: web.Request) -> SimJob | web.Response:
        job = self.ctx.printer.job
        if job is None or str(self._job_id(job)) != request.match_info["id"]:
            return web.json_response({"title": "Not Found", "message": "No such job"}, status=404)
        return job

    def _act(self, request: web.Request, action: str) -> web.Response:
        found = self._current(request)
        if isinstance(found, web.Response):
            return found
        p = self.ctx.printer
        try:
            if action == "pause":
                p.pause()
            elif action == "resume":
                p.resume()
            elif action == "stop":
                p.cancel()
        except SimError as exc:
            return web.json_response({"title": "Conflict", "message": str(exc)}, status=409)
        return web.Response(status=204)

    async def _pause(self, request: web.Request) -> web.StreamResponse:
        return self._act(request, "pause")

    async def _resume(self, request: web.Request) -> web.StreamResponse:
        return self._act(request, "resume")

    async def _stop(self, request: web.Request) -> web.StreamResponse:
        return self._act(request, "stop")

    async def _continue(self, request: web.Request) -> web.StreamResponse:
        # Only a printer waiting for attention (a run-out) can be told to continue.
        p = self.ctx.printer
        if p.state is PrintState.PAUSED and p.hms:
            return self._act(request, "resume")
        return web.json_response(
            {"title": "Conflict", "message": "Nothing to continue"}, status=409
        )

    def _storage_ok(self, request: web.Request) -> web.Response | None:
        if request.match_info["storage"] not in STORAGES:
            return web.json_response(
                {"title": "Not Found", "message": "No such storage"}, status=404
            )
        return None

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        bad = self._storage_ok(request)
        if bad is not None:
            return bad
        p = self.ctx.printer
        name = file_name(request.match_info["path"])
        start = _flag(request.headers.get("Print-After-Upload"))
        if name in p.files and not _flag(request.headers.get("Overwrite")):
            return web.json_response(
                {"title": "Conflict", "message": "File already exists"}, status=409
            )
        if start and p.active:
            return web.json_response(
                {"title": "Conflict", "message": "Printer is busy"}, status=409
            )
        data = await request.read()
        p.add_file(name, data)
        if start:
            try:
                p.start_print(name)
            except SimError as exc:
                return web.json_response({"title": "Conflict", "message": str(exc)}, status=409)
        return web.Response(status=201, headers={"Location": f"/api/v1/files/usb/{name}"})

    async def _start(self, request: web.Request) -> web.StreamResponse:
        bad = self._storage_ok(request)
        if bad is not None:
            return bad
        p = self.ctx.printer
        entry = p.find_file(request.match_info["path"])
        if entry is None:
            return web.json_response({"title": "Not Found", "message": "No such file"}, status=404)
        try:
            p.start_print(entry.name)
        except SimError as exc:
            return web.json_response({"title": "Conflict", "message": str(exc)}, status=409)
        return web.Response(status=204)

    async def _file(self, request: web.Request) -> web.StreamResponse:
        entry = self.ctx.printer.find_file(request.match_info["path"])
        if entry is None or self._storage_ok(request) is not None:
            return web.json_response({"title": "Not Found", "message": "No such file"}, status=404)
        return web.json_response(
            {
                "name": entry.name,
                "display_name": entry.name,
                "type": "PRINT_FILE",
                "size": entry.size,
                "m_timestamp": int(entry.uploaded_at),
                "read_only": False,
                "meta": {
                    "estimated printing time (normal mode)": int(entry.meta.time_s),
                    "filament used [g]": entry.meta.grams,
                },
            }
        )

    async def _delete(self, request: web.Request) -> web.StreamResponse:
        p = self.ctx.printer
        entry = p.find_file(request.match_info["path"])
        if entry is None:
            return web.json_response({"title": "Not Found", "message": "No such file"}, status=404)
        if p.active and p.job is not None and p.job.file == entry.name:
            return web.json_response(
                {"title": "Conflict", "message": "File is printing"}, status=409
            )
        del p.files[entry.name]
        return web.Response(status=204)
