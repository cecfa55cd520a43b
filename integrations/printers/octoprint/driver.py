"""OctoPrint driver: polls the REST API, commands and uploads over HTTP."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from hub.model import PrinterState
from integrations.printers import commands as cmd
from integrations.printers.base import AuthFailed, PrintOptions
from integrations.printers.http import poll_json
from integrations.printers.octoprint.status import OctoPrintStatus
from integrations.printers.polling import HttpPollingDriver


class OctoPrintDriver(HttpPollingDriver):
    """Any printer connected to an OctoPrint server."""

    protocol = "octoprint"
    default_port = 80
    capabilities = frozenset(
        {cmd.PAUSE, cmd.RESUME, cmd.STOP, cmd.GCODE, cmd.HOME, cmd.SET_TEMPERATURE, cmd.SPEED}
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._status = OctoPrintStatus()

    def _session_options(self) -> Mapping[str, Any]:
        key = self.config.secrets.get("api_key")
        if not key:
            raise AuthFailed(f"no OctoPrint API key configured for printer {self.printer_id}")
        return {"headers": {"X-Api-Key": str(key)}}

    async def _run_session(self) -> None:
        self._status.link_lost()
        await super()._run_session()

    async def _poll(self, http: aiohttp.ClientSession) -> PrinterState:
        code, printer = await poll_json(
            http, "/api/printer", printer_id=self.printer_id, accept=(409,)
        )
        _, job = await poll_json(http, "/api/job", printer_id=self.printer_id)
        return self._status.to_state(
            self.printer_id,
            printer if code == 200 and isinstance(printer, dict) else None,
            job if isinstance(job, dict) else {},
        )

    def _request_for(self, name: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if name == cmd.PAUSE:
            return "/api/job", {"command": "pause", "action": "pause"}
        if name == cmd.RESUME:
            return "/api/job", {"command": "pause", "action": "resume"}
        if name == cmd.STOP:
            return "/api/job", {"command": "cancel"}
        # Homing and feed rate go as G-code: OctoPrint's printhead endpoint sends the same
        # G28 / M220, and the command endpoint is served by every OctoPrint-compatible API.
        if name == cmd.HOME:
            return "/api/printer/command", {"commands": ["G28"]}
        if name == cmd.SPEED:
            factor = cmd.SPEED_PERCENT[params["level"]]
            return "/api/printer/command", {"commands": [f"M220 S{factor}"]}
        if name == cmd.SET_TEMPERATURE:
            if params["heater"] == "nozzle":
                return "/api/printer/tool", {
                    "command": "target",
                    "targets": {"tool0": params["target"]},
                }
            return "/api/printer/bed", {"command": "target", "target": params["target"]}
        return "/api/printer/command", {"commands": params["line"].splitlines()}

    async def _execute(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        path, body = self._request_for(name, params)
        await self._send("POST", path, name, json=body)
        return {}

    async def _upload_and_start(self, filename: str, data: bytes, options: PrintOptions) -> None:
        form = aiohttp.FormData()
        form.add_field("file", data, filename=filename, content_type="application/octet-stream")
        form.add_field("select", "true")
        form.add_field("print", "true")
        await self._send(
            "POST", "/api/files/local", "upload", data=form, limit_s=self.options.upload_timeout_s
        )
