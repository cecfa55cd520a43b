"""Print records against the simulator's own print log under faults: a print that fails on an
OctoPrint printer (which then shows "Offline after error"), and a Moonraker print of the same
file started again while the simulator's clock crawls."""

from __future__ import annotations

from pathlib import Path

from hub.model import PrintState
from integrations.simulator import Fleet, SimPrinter
from integrations.simulator.cli import demo_gcode
from tests.e2e.records import check_every_print, printer_entry, rows_of, wait_rows
from tests.e2e.test_print_records import all_states, progressed, start_hub
from tests.e2e.test_restart import Gearbox
from tests.helpers import wait_for
from tests.integrations.printers.conftest import random_subnet

SPEED, CRAWL = 150.0, 5.0


async def _one_printer(fleet: Fleet, protocol: str) -> SimPrinter:
    sim = await fleet.add(protocol, port=0)
    await fleet.load_file(sim, "long.gcode", demo_gcode(900, 40, 20.0))
    await fleet.load_file(sim, "part.gcode", demo_gcode(90, 20, 5.0))
    return sim


async def test_octoprint_print_failing_is_one_failed_row(tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
    async with Fleet(subnet=random_subnet(), clock=Gearbox(SPEED)) as fleet:
        sim = await _one_printer(fleet, "octoprint")
        hub = await start_hub(db_url, tmp_path)
        try:
            ids = {sim.name: (await hub.add_printer(printer_entry(sim))).id}
            await wait_for(lambda: all_states(hub, ids, "idle"), what="idle")
            sim.printer.start_print("long.gcode")
            await wait_for(lambda: progressed(hub, ids, 2.0), timeout=10, what="printing")
            # It fails as every connection drops: the push socket, which would have told
            # PrintFailed, is down; the polls find OctoPrint "Offline after error" (409).
            sim.faults.drop_connection()
            sim.faults.fail_print(message="thermal runaway")
            await wait_rows(hub.db, fleet, ids, closed=1, open_=0, timeout=5)
            assert hub.printer_status(ids[sim.name])["state"] == "error"
            # The error cleared (as reconnecting the serial link does), the next print gets a
            # row of its own.
            sim.printer.clear_job()
            await wait_for(lambda: all_states(hub, ids, "idle", "failed"), what="operational")
            sim.printer.start_print("part.gcode")
            await wait_for(lambda: sim.printer.state is PrintState.FINISHED, timeout=10)
            await wait_rows(hub.db, fleet, ids, closed=2, open_=0, timeout=5)
            log = [e.outcome for _, e in fleet.print_log()]
            problems = await check_every_print(hub.db, fleet, ids, set())
        finally:
            await hub.stop()
    assert log == ["failed", "finished"]
    assert problems == [], "\n".join(problems)


async def test_moonraker_same_file_restarted_on_a_slow_clock_is_one_row_per_print(
    tmp_path: Path,
) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
    clock = Gearbox(SPEED)
    async with Fleet(subnet=random_subnet(), clock=clock) as fleet:
        sim = await _one_printer(fleet, "moonraker")
        hub = await start_hub(db_url, tmp_path)
        try:
            ids = {sim.name: (await hub.add_printer(printer_entry(sim))).id}
            await wait_for(lambda: all_states(hub, ids, "idle"), what="idle")
            sim.printer.start_print("long.gcode")
            await wait_for(lambda: progressed(hub, ids, 2.0), timeout=10, what="printing")
            # The clock slows down, and the operator cancels and starts the same file again.
            clock.shift(CRAWL)
            sim.printer.cancel()
            sim.printer.start_print("long.gcode")
            await wait_rows(hub.db, fleet, ids, closed=1, open_=1, timeout=5)
            # Again while the hub is down: on its return the job history tells both apart.
            await hub.stop()
            sim.printer.cancel()
            sim.printer.start_print("long.gcode")
            hub = await start_hub(db_url, tmp_path)
            await wait_rows(hub.db, fleet, ids, closed=2, open_=1, timeout=5)
            clock.shift(SPEED * 10)
            await wait_for(
                lambda: sim.printer.state is PrintState.FINISHED, timeout=10, what="finished"
            )
            await wait_rows(hub.db, fleet, ids, closed=3, open_=0, timeout=5)
            log = [e.outcome for _, e in fleet.print_log()]
            problems = await check_every_print(hub.db, fleet, ids, set())
        finally:
            await hub.stop()
    assert log == ["cancelled", "cancelled", "finished"]
    assert problems == [], "\n".join(problems)


async def test_moonraker_without_history_same_file_restarted_is_two_rows(tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
    clock = Gearbox(SPEED)
    async with Fleet(subnet=random_subnet(), clock=clock) as fleet:
        sim = await _one_printer(fleet, "moonraker")
        sim.frontend.disable_history()  # prints told apart by file and start time only
        hub = await start_hub(db_url, tmp_path)
        try:
            ids = {sim.name: (await hub.add_printer(printer_entry(sim))).id}
            await wait_for(lambda: all_states(hub, ids, "idle"), what="idle")
            sim.printer.start_print("long.gcode")
            await wait_for(lambda: progressed(hub, ids, 10.0), timeout=10, what="printing")
            # Cancelled and started again within one status update, seconds after the first
            # start (within the start-time tolerance), on a crawling clock: progress falls back.
            clock.shift(CRAWL)
            sim.printer.cancel()
            sim.printer.start_print("long.gcode")
            await wait_rows(hub.db, fleet, ids, closed=1, open_=1, timeout=5)
            clock.shift(SPEED * 10)
            await wait_for(lambda: sim.printer.state is PrintState.FINISHED, timeout=10)
            await wait_rows(hub.db, fleet, ids, closed=2, open_=0, timeout=5)
            log = [(e.file, e.outcome) for _, e in fleet.print_log()]
            rows = [(r.file, r.outcome) for r in await rows_of(hub.db, ids[sim.name])]
        finally:
            await hub.stop()
    assert log == [("long.gcode", "cancelled"), ("long.gcode", "finished")]
    # No history and no final state seen for the first: how it ended is unknown, not merged.
    assert rows == [("long.gcode", "unknown"), ("long.gcode", "completed")]
