"""The toy driver: online at once, printing, and it obeys pause/resume/stop."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any, ClassVar

from hub.model import Job, PrinterState, PrintState
from integrations.printers.base import PrinterDriver, PrintOptions

_AFTER = {"pause": PrintState.PAUSED, "resume": PrintState.PRINTING, "stop": PrintState.CANCELLED}


class ToyDriver(PrinterDriver):
    """A printer that is always reachable and always halfway through `toy.gcode`."""

    protocol: ClassVar[str] = "toy"
    default_port: ClassVar[int] = 4242
    capabilities: ClassVar[frozenset[str]] = frozenset({"pause", "resume", "stop"})

    async def _run_session(self) -> None:
        self._set_online()
        self._publish(
            PrinterState(
                self.printer_id, online=True, state=PrintState.PRINTING,
                job=Job("toy.gcode", progress=50.0),
            )
        )  # fmt: skip
        await asyncio.Event().wait()  # the link lasts until the driver is stopped

    async def _execute(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        self._mark_seen()
        self._publish(replace(self.state, state=_AFTER[name]))
        return {"key": self.config.secrets.get("api_key")}

    async def _upload_and_start(self, filename: str, data: bytes, options: PrintOptions) -> None:
        raise NotImplementedError("the toy printer takes no files")
