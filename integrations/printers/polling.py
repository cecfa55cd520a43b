"""A driver base for printers whose state is polled over HTTP (PrusaLink, OctoPrint)."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp

from hub.model import PrinterState
from integrations.printers.base import CommandRejected, PrinterDriver
from integrations.printers.http import command_request


class HttpPollingDriver(PrinterDriver):
    """Polls every `poll_interval_s` while the link is up; commands share the session."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._http: aiohttp.ClientSession | None = None

    @property
    def base_url(self) -> str:
        """Where the printer's API lives."""
        return f"http://{self.host}:{self.port}"

    def _session_options(self) -> Mapping[str, Any]:
        """Extra ClientSession arguments (authentication headers or middlewares)."""
        return {}

    @abc.abstractmethod
    async def _poll(self, http: aiohttp.ClientSession) -> PrinterState:
        """Fetch and map the current state; raise AuthFailed / ConnectionError on failure."""

    async def _run_session(self) -> None:
        opts = self.options
        timeout = aiohttp.ClientTimeout(total=max(opts.connect_timeout_s, opts.poll_interval_s))
        async with aiohttp.ClientSession(
            base_url=self.base_url, timeout=timeout, **self._session_options()
        ) as http:
            state = await self._poll(http)
            self._http = http
            try:
                self._set_online()
                self._publish(state)
                while True:
                    await asyncio.sleep(opts.poll_interval_s)
                    state = await self._poll(http)
                    self._mark_seen()
                    self._publish_if_changed(state)
            finally:
                self._http = None

    async def _send(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        """One command request on the live session (CommandRejected when offline)."""
        http = self._http
        if http is None:
            raise CommandRejected(f"printer {self.printer_id} is not connected")
        limit = kwargs.pop("limit_s", self.options.command_timeout_s)
        return await command_request(
            http, method, path, what=what, printer_id=self.printer_id, limit_s=limit, **kwargs
        )
