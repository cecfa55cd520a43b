"""The embedded simulated fleet: started by the composition root (hub/runtime.py) when `[simulator]`
is enabled for `serve`, its printers registered through the printers service."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from config.loader import SimulatorSettings
from integrations.simulator import Fleet, SimPrinter
from integrations.simulator.cli import DEMO_FILES, bambu_models, demo_gcode, demo_project
from integrations.simulator.fleet import FRONT_ENDS

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger(__name__)

# Copies queued of each demo file at first start: hours of work for the farm at demo speed.
DEMO_COPIES = 25
# Unprivileged stand-ins for ports below 1024 when the hub does not run as root.
UNPRIVILEGED = {"prusalink": 8080}
UNPRIVILEGED_FTPS = 8990


class Demo:
    """Runs a simulated fleet inside the hub process, fed by the print queue."""

    def __init__(self, hub: Hub, settings: SimulatorSettings) -> None:
        self.hub = hub
        self.settings = settings
        self.fleet = Fleet(speed=settings.speed, subnet=settings.subnet)

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
            elif sim.ftps_port and known.ftps_port != sim.ftps_port:
                await self.hub.update_printer(known.id, {"ftps_port": sim.ftps_port})
        if self.settings.demo:
            await self._seed_queue()
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
        if sim.ftps_port:
            data["ftps_port"] = sim.ftps_port
        # A demo farm trusts its (imaginary) operators to clear the beds.
        data["auto_clear_bed"] = True
        await self.hub.add_printer(data)

    async def _seed_queue(self) -> None:
        """At first start: the demo files in the library and jobs for them in the queue (a G-code
        and a Bambu project of each, so every protocol has work)."""
        if await self.hub.db.fetch_val("SELECT COUNT(*) FROM queue_jobs"):
            return
        hosts = {sim.host for sim in self.fleet.printers}
        for row in list(self.hub.printers.values()):
            if row.host in hosts and not row.auto_clear_bed:
                await self.hub.update_printer(row.id, {"auto_clear_bed": True})
        for name, seconds, layers, grams in DEMO_FILES:
            project = name.replace(".gcode", ".gcode.3mf")
            for file_name, data in (
                (name, demo_gcode(seconds, layers, grams)),
                (project, demo_project(seconds, layers, grams)),
            ):
                file, _ = await self.hub.files.save(file_name, _one_chunk(data), "demo")
                await self.hub.queue.create({"file_id": file.id, "copies": DEMO_COPIES}, "demo")
        self.hub.dispatcher.wake()

    async def stop(self) -> None:
        """Stop the simulated printers."""
        await self.fleet.close()


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data
