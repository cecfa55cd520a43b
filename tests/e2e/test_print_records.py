"""Every print recorded once and truthfully, on every protocol, across hub restarts and printer
drops: the hub runs in-process on SQLite, a simulated fleet with one printer per protocol on a
gearbox clock, and the simulator's own log of physical prints is the truth.

One run goes through, on all four printers at once:
1. two prints of the same file back to back (the second starts the moment the first finished);
2. a long print whose printer drops every connection mid-print (the link comes back);
3. the hub restarted mid-print (the same print continues under its row), then finishing, and
   restarted again while every printer still shows the print it finished (nothing new);
4. a print that finishes while the hub is down with the next print already running when the
   hub comes back (then that one finishing too).
A print finishing while the hub is down with nothing after it: tests/e2e/test_kill_serve.py.
"""

from __future__ import annotations

import time
from pathlib import Path

from hub.model import PrintState
from hub.runtime import Hub
from hub.store import notifications as notes_store
from integrations.simulator import Fleet, SimPrinter
from integrations.simulator.cli import demo_gcode
from tests.api.conftest import make_settings
from tests.e2e.records import PROTOCOLS, check_every_print, printer_entry, wait_rows
from tests.e2e.test_restart import Gearbox
from tests.helpers import wait_for
from tests.integrations.printers.conftest import FAST, random_subnet

SPEED, CRAWL, RUSH = 150.0, 5.0, 1500.0
POLLED_GAP_S = 0.3  # three polls of the test drivers


async def start_hub(db_url: str, tmp_path: Path) -> Hub:
    """A hub generation on the database, drivers started for the stored printers."""
    hub = Hub(make_settings(db_url, tmp_path), driver_options=FAST)
    await hub.start()
    return hub


def all_states(hub: Hub, ids: dict[str, str], *states: str) -> bool:
    """Does the hub show every printer online in one of `states`?"""
    for printer_id in ids.values():
        status = hub.printer_status(printer_id)
        if status.get("connection") != "online" or status["state"] not in states:
            return False
    return True


def sims_in(fleet: Fleet, state: PrintState) -> bool:
    """Is every simulated printer in `state`?"""
    return all(sim.printer.state is state for sim in fleet.printers)


def start_all(fleet: Fleet, name: str) -> set[str]:
    """Start `name` on every printer; the task ids of the prints started."""
    return {sim.printer.start_print(name).task_id for sim in fleet.printers}


async def progressed(hub: Hub, ids: dict[str, str], percent: float) -> bool:
    """Has the hub seen every printer printing, at `percent` or more?"""
    for printer_id in ids.values():
        status = hub.printer_status(printer_id)
        job = status.get("job") or {}
        if status["state"] != "printing" or (job.get("progress") or 0) < percent:
            return False
    return True


async def test_every_print_one_truthful_row_across_restarts_and_drops(tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
    clock = Gearbox(SPEED)
    async with Fleet(subnet=random_subnet(), clock=clock) as fleet:
        sims: list[SimPrinter] = [await fleet.add(p, port=0) for p in PROTOCOLS]
        for sim in sims:
            await fleet.load_file(sim, "part.gcode", demo_gcode(90, 20, 5.0))
            await fleet.load_file(sim, "long.gcode", demo_gcode(900, 40, 20.0))
        hub = await start_hub(db_url, tmp_path)
        ids = {sim.name: (await hub.add_printer(printer_entry(sim))).id for sim in sims}
        await wait_for(lambda: all_states(hub, ids, "idle"), what="every printer idle")

        # 1. The same file twice, back to back: the second starts as the first finishes (on
        # a polled PrusaLink a moment later, so one poll sees the finish: a finish no poll
        # sees is only a job id that changed, and `unknown` unless it was 99 % done).
        start_all(fleet, "part.gcode")
        restarted: set[str] = set()
        finished_at: dict[str, float] = {}

        def second_started() -> bool:
            now = time.monotonic()
            for sim in sims:
                if sim.name in restarted or sim.printer.state is not PrintState.FINISHED:
                    continue
                since = now - finished_at.setdefault(sim.name, now)
                if sim.protocol != "prusalink" or since >= POLLED_GAP_S:
                    sim.printer.start_print("part.gcode")
                    restarted.add(sim.name)
            return len(restarted) == len(sims)

        await wait_for(second_started, timeout=20, interval=0.005, what="every second print")
        await wait_for(lambda: sims_in(fleet, PrintState.FINISHED), timeout=20, what="done")
        await wait_rows(hub.db, fleet, ids, closed=8, open_=0)

        # 2. A printer dropping every connection mid-print: the same print continues.
        start_all(fleet, "long.gcode")
        await wait_for(lambda: all_states(hub, ids, "printing"), timeout=20, what="printing")
        for sim in sims:
            sim.faults.drop_connection()
        await wait_for(lambda: progressed(hub, ids, 10.0), timeout=20, what="progress 10 %")

        # 3. The hub restarted mid-print.
        clock.shift(CRAWL)
        await hub.stop()
        hub = await start_hub(db_url, tmp_path)
        await wait_for(lambda: all_states(hub, ids, "printing"), timeout=20, what="printing")
        await wait_rows(hub.db, fleet, ids, closed=8, open_=4)
        clock.shift(RUSH)
        await wait_for(lambda: sims_in(fleet, PrintState.FINISHED), timeout=20, what="done")
        await wait_rows(hub.db, fleet, ids, closed=12, open_=0)
        # Restarted with every printer still showing the print it finished: nothing new.
        await hub.stop()
        hub = await start_hub(db_url, tmp_path)
        await wait_for(lambda: all_states(hub, ids, "finished", "idle"), what="seen again")
        await hub.bus.drain(5.0)
        await wait_rows(hub.db, fleet, ids, closed=12, open_=0)

        # 4. A print finishing while the hub is down, and the next one running on its return.
        clock.shift(SPEED)
        start_all(fleet, "long.gcode")
        await wait_for(lambda: progressed(hub, ids, 20.0), timeout=30, what="progress 20 %")
        clock.shift(CRAWL)
        await hub.stop()
        clock.shift(RUSH)
        await wait_for(lambda: sims_in(fleet, PrintState.FINISHED), timeout=20, what="done")
        unseen_next = {sim.printer.log[-1].task_id for sim in sims}
        clock.shift(CRAWL)
        start_all(fleet, "long.gcode")
        hub = await start_hub(db_url, tmp_path)
        await wait_rows(hub.db, fleet, ids, closed=16, open_=4)
        clock.shift(RUSH)
        await wait_for(lambda: sims_in(fleet, PrintState.FINISHED), timeout=20, what="done")
        await wait_rows(hub.db, fleet, ids, closed=20, open_=0)

        problems = await check_every_print(hub.db, fleet, ids, unseen_next)
        notes, _ = await notes_store.list_page(hub.db, unread_only=False, limit=500, offset=0)
        kinds = [n.kind for n in notes]
        await hub.stop()
    assert problems == [], "\n".join(problems)
    assert "print_failed" not in kinds  # nothing failed, so nobody hears that it did
    assert kinds.count("print_ended_unobserved") == 3  # one per printer without a history
