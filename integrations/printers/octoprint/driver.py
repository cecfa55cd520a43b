"""OctoPrint driver: polls the REST API, hears print events on the push socket, commands and
uploads over HTTP."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import aiohttp

from hub.model import PrinterState
from integrations.printers import commands as cmd
from integrations.printers.base import AuthFailed, CommandRejected, PrintOptions
from integrations.printers.http import poll_json
from integrations.printers.octoprint.status import OctoPrintStatus
from integrations.printers.polling import HttpPollingDriver

log = logging.getLogger(__name__)

PUSH_RETRY_S = 5.0  # after the push socket failed; polling goes on meanwhile


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
        push = asyncio.create_task(self._listen(), name=f"octoprint-push:{self.printer_id}")
        try:
            await super()._run_session()
        finally:
            push.cancel()
            await asyncio.wait({push})

    async def _listen(self) -> None:
        """Hear print events on OctoPrint's push socket for as long as the session lasts."""
        while True:
            http = self._http
            if http is None:
                await asyncio.sleep(self.options.poll_interval_s)
                continue
            try:
                await self._push_session(http)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the socket is a bonus: polling carries on without it
                log.debug("printer %s: push socket: %s", self.printer_id, exc)
            self._status.events = False
            await asyncio.sleep(PUSH_RETRY_S)

    async def _push_session(self, http: aiohttp.ClientSession) -> None:
        # A passive login turns the API key into a session the socket accepts.
        async with http.post("/api/login", json={"passive": True}) as response:
            response.raise_for_status()
            user = await response.json()
        auth = f"{user.get('name')}:{user.get('session')}"
        async with http.ws_connect("/sockjs/websocket", heartbeat=30.0) as ws:
            await ws.send_str(json.dumps({"auth": auth}))
            async for frame in ws:
                if frame.type is not aiohttp.WSMsgType.TEXT:
                    continue
                message = json.loads(frame.data)
                if not isinstance(message, dict):
                    continue
                if "current" in message or "history" in message:
                    self._status.events = True  # only an authenticated socket gets these
                event = message.get("event")
                if isinstance(event, dict) and self._status.events:
                    payload = event.get("payload")
                    if self._status.on_event(
                        str(event.get("type")), payload if isinstance(payload, dict) else {}
                    ):
                        self._publish(self._status.current(self.printer_id))

    async def _poll(self, http: aiohttp.ClientSession) -> PrinterState:
        asked_at = time.monotonic()  # a print event arriving meanwhile makes this poll old news
        code, printer = await poll_json(
            http, "/api/printer", printer_id=self.printer_id, accept=(409,)
        )
        _, job = await poll_json(http, "/api/job", printer_id=self.printer_id)
        return self._status.to_state(
            self.printer_id,
            printer if code == 200 and isinstance(printer, dict) else None,
            job if isinstance(job, dict) else {},
            asked_at,
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

    async def _wait_ready(self) -> None:
        """Wait until OctoPrint can start a print: after an end event it still finishes or
        cancels for a moment, and an upload with `print` then stores the file without printing."""
        deadline = asyncio.get_running_loop().time() + self.options.command_timeout_s
        while True:
            printer = await self._send("GET", "/api/printer", "status")
            flags = printer.get("state", {}).get("flags", {}) if isinstance(printer, dict) else {}
            if flags.get("ready") or not flags:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise CommandRejected(
                    f"cannot start a print on printer {self.printer_id}: OctoPrint is not ready"
                )
            await asyncio.sleep(min(0.2, self.options.poll_interval_s))

    async def _upload_and_start(self, filename: str, data: bytes, options: PrintOptions) -> None:
        await self._wait_ready()
        form = aiohttp.FormData()
        form.add_field("file", data, filename=filename, content_type="application/octet-stream")
        form.add_field("select", "true")
        form.add_field("print", "true")
        await self._send(
            "POST", "/api/files/local", "upload", data=form, limit_s=self.options.upload_timeout_s
        )
