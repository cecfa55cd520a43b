"""PrusaLink driver: polls the REST API, commands and uploads over HTTP."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any

import aiohttp

from hub.model import PrinterState
from integrations.printers import commands as cmd
from integrations.printers.base import AuthFailed, CommandRejected, PrintOptions
from integrations.printers.http import poll_json
from integrations.printers.polling import HttpPollingDriver
from integrations.printers.prusalink.status import PrusaLinkStatus

DEFAULT_USER = "maker"
STORAGE = "usb"


class PrusaLinkDriver(HttpPollingDriver):
    """Prusa MK4 / XL / MINI / Core One over PrusaLink."""

    protocol = "prusalink"
    default_port = 80
    capabilities = frozenset({cmd.PAUSE, cmd.RESUME, cmd.STOP})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._status = PrusaLinkStatus()

    def _session_options(self) -> Mapping[str, Any]:
        secrets = self.config.secrets
        if secrets.get("api_key"):
            return {"headers": {"X-Api-Key": str(secrets["api_key"])}}
        if secrets.get("password"):
            user = str(secrets.get("username") or DEFAULT_USER)
            return {"middlewares": (aiohttp.DigestAuthMiddleware(user, str(secrets["password"])),)}
        raise AuthFailed(
            f"no PrusaLink API key or password configured for printer {self.printer_id}"
        )

    async def _poll(self, http: aiohttp.ClientSession) -> PrinterState:
        _, status = await poll_json(http, "/api/v1/status", printer_id=self.printer_id)
        if not isinstance(status, dict):
            raise ConnectionError("empty /api/v1/status")
        if self._status.needs_job_details(status):
            # The file name is only in /api/v1/job: fetched once per job, not every poll.
            code, job = await poll_json(
                http, "/api/v1/job", printer_id=self.printer_id, accept=(204, 409)
            )
            self._status.note_job(job if code == 200 else None)
        return self._status.to_state(self.printer_id, status)

    async def _execute(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        job_id = self._status.job_id
        if job_id is None:
            raise CommandRejected(f"cannot {name} printer {self.printer_id}: no job is running")
        if name == cmd.STOP:
            await self._send("DELETE", f"/api/v1/job/{job_id}", name)
        else:
            await self._send("PUT", f"/api/v1/job/{job_id}/{name}", name)
        return {}

    async def _upload_and_start(self, filename: str, data: bytes, options: PrintOptions) -> None:
        await self._send(
            "PUT",
            f"/api/v1/files/{STORAGE}/{urllib.parse.quote(filename)}",
            "upload",
            data=data,
            headers={
                "Print-After-Upload": "?1",
                "Overwrite": "?1",
                "Content-Type": "application/octet-stream",
            },
            limit_s=self.options.upload_timeout_s,
        )
