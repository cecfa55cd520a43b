"""The embedded simulated fleet registers its printers once, comes online and is fed by the queue."""

from __future__ import annotations

from pathlib import Path

from config.loader import SimulatorSettings
from hub.demo import Demo
from hub.runtime import Hub
from integrations.simulator.cli import DEMO_FILES
from tests.api.conftest import make_settings
from tests.helpers import wait_for
from tests.integrations.printers.conftest import FAST, random_subnet


async def test_demo_fleet_registers_once_and_comes_online(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"
    sim = SimulatorSettings(
        enabled=True,
        bambu=2,
        moonraker=1,
        prusalink=1,
        octoprint=1,
        speed=60,
        subnet=random_subnet(),
    )
    identities: dict[str, tuple[str, str | None]] = {}
    for run in range(2):
        hub = Hub(make_settings(url, tmp_path), driver_options=FAST)
        await hub.start()
        demo = Demo(hub, sim)
        try:
            await demo.start()
            assert len(hub.printers) == 5
            await wait_for(
                lambda h=hub: all(
                    h.printer_status(pid)["connection"] == "online" for pid in h.printers
                ),
                timeout=20,
                what="every demo printer online",
            )
            now = {p.host: (p.protocol, p.serial) for p in hub.printers.values()}
            if run == 0:
                identities = now
            else:
                assert now == identities, "a restart reuses the stored printers"
            # The queue, not the simulator, starts the prints: G-code jobs on the G-code
            # printers, projects on the Bambu ones, each run's tag in the printed file name.
            # After the restart the fleet is new: the prints the old one ran are gone, the queue
            # holds their jobs (outcome unknown) and goes on with the others.
            want = {"bambu", "moonraker", "prusalink", "octoprint"} if run == 0 else {"bambu"}
            await wait_for(
                lambda d=demo, w=want: (
                    w <= {s.protocol for s in d.fleet.printers if s.printer.active}
                ),
                timeout=30,
                what="the queue starting prints",
            )
            for printer in demo.fleet.printers:
                assert all("-q" in entry.file for entry in printer.printer.log)
            jobs = await hub.db.fetch_val("SELECT COUNT(*) FROM queue_jobs")
            assert jobs == 2 * len(DEMO_FILES), "jobs are queued once, at first start"
        finally:
            await hub.stop()
            await demo.stop()
