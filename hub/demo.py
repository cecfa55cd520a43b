"""The embedded simulated fleet: started with the hub when `simulator.enabled`, registered as printers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any

from config.loader import SimulatorSettings
from hub.runtime import Hub
from integrations.simulator import Fleet, SimPrinter
from integrations.simulator.cli import bambu_models, keep_busy
from integrations.simulator.fleet import FRONT_ENDS

log = logging.getLogger(__name__)

# Unprivileged stand-ins for ports below 1024 when the hub does not run as root.
UNPRIVILEGED = {"prusalink": 8080}
UNPRIVILEGED_FTPS = 8990


class Demo:
    """Runs a simulated fleet inside the hub process and keeps prints going."""

    def __init__(self, hub: Hub, settings: SimulatorSettings) -> None:
        self.hub = hub
        self.settings = settings
        self.fleet = Fleet(speed=settings.speed, subnet=settings.subnet)
        self.stop_event = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def _plan(self) -> list[tuple[str, str | None]]:
        s = self.settings
        plan: list[tuple[str, str | None]] = [("bambu", m) for m in bambu_models(s.bambu)]
        for protocol in FRONT_ENDS:
            if protocol != "bambu":  # per model, above
                plan += [(protocol, None)] * getattr(s, protocol, 0)
        return plan

    async def start(self) -> None:
        """Start the simulated printers (reusing stored identities) and register new ones."""
        await self.fleet.start()
        privileged = os.geteuid() == 0
        by_host = {p.host: p for p in self.hub.printers.values()}
        for protocol, model in self._plan():
            host = self.fleet.allocate_host()
            known = by_host.get(host)
            kwargs: dict[str, Any] = {"host": host}
            if known is not None and known.protocol == protocol:
                kwargs.update(
                    serial=known.serial, secret=known.secrets.get(FRONT_ENDS[protocol].secret_key)
                )
            if not privileged:
                if protocol in UNPRIVILEGED:
                    kwargs["port"] = UNPRIVILEGED[protocol]
                if protocol == "bambu":
                    kwargs["ftps_port"] = UNPRIVILEGED_FTPS
            try:
                sim = await self.fleet.add(protocol, model=model, **kwargs)
            except OSError as exc:
                log.warning("simulated %s printer on %s not started: %s", protocol, host, exc)
                continue
            if known is None:
                await self._register(sim)
        self.task = asyncio.create_task(keep_busy(self.fleet, self.stop_event), name="demo")
        print(
            f"Simulated fleet: {len(self.fleet.printers)} printers at {self.settings.speed}x speed",
            flush=True,
        )

    async def _register(self, sim: SimPrinter) -> None:
        entry = sim.describe()
        data = {
            key: entry[key]
            for key in (
                "name",
                "protocol",
                "host",
                "port",
                "serial",
                "model",
                sim.frontend.secret_key,
            )
            if entry.get(key) is not None
        }
        if sim.protocol == "prusalink":
            data["username"] = "maker"
        await self.hub.add_printer(data)

    async def stop(self) -> None:
        """Stop the prints loop and the simulated printers."""
        self.stop_event.set()
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self.task, 5)
        await self.fleet.close()
