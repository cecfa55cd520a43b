"""Print rows under printer-link faults: a Bambu and a Moonraker printer print several short jobs
through TCP fault proxies that reset the link, go silent (half-open) and refuse reconnects, with
prints ending while the link is down; the simulator's own log of what was printed is the truth,
and every print has exactly one history row with its real outcome."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from hub.model import PrintState
from hub.runtime import Hub
from integrations.simulator import Fleet, SimPrinter
from integrations.simulator.cli import demo_gcode
from tests.api.conftest import make_settings
from tests.e2e.records import check_every_print, describe_rows, printer_entry, wait_rows
from tests.e2e.test_print_records import all_states, progressed
from tests.e2e.test_restart import Gearbox
from tests.faults.proxy import FaultProxy
from tests.helpers import wait_for
from tests.integrations.printers.conftest import FAST, random_subnet

PROTOCOLS = ("bambu", "moonraker")
# A print of 10 simulated minutes: at SPEED it runs long enough to be seen printing and hit by
# a fault; at RUSH it ends within a report or two.
SPEED, RUSH = 60.0, 3000.0
STALE_AFTER_S = 1.0


async def test_every_print_one_row_through_resets_silence_and_refusals(tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
    clock = Gearbox(SPEED)
    async with Fleet(subnet=random_subnet(), clock=clock) as fleet:
        sims: list[SimPrinter] = [await fleet.add(p, port=0) for p in PROTOCOLS]
        proxies: list[FaultProxy] = []
        for sim in sims:
            await fleet.load_file(sim, "part.gcode", demo_gcode(600, 30, 5.0))
            proxies.append(await FaultProxy(sim.host, sim.port).start())
        options = FAST.with_overrides({"stale_after_s": STALE_AFTER_S})
        hub = Hub(make_settings(db_url, tmp_path), driver_options=options)
        await hub.start()
        try:
            ids: dict[str, str] = {}
            for sim, proxy in zip(sims, proxies, strict=True):
                entry = {**printer_entry(sim), "host": "127.0.0.1", "port": proxy.port}
                ids[sim.name] = (await hub.add_printer(entry)).id

            def links(state: str) -> bool:
                return all(hub.printer_status(i)["connection"] == state for i in ids.values())

            async def start_all() -> None:
                clock.shift(SPEED)
                for sim in sims:
                    sim.printer.start_print("part.gcode")
                await wait_for(lambda: progressed(hub, ids, 1.0), timeout=15, what="printing")

            async def finish_all() -> None:
                clock.shift(RUSH)
                await wait_for(
                    lambda: all(not s.printer.active for s in sims), timeout=15, what="ended"
                )

            async def resets() -> None:
                # Three resets mid-print, each waited out until the links are back.
                for _ in range(3):
                    accepted = [p.accepted for p in proxies]
                    for proxy in proxies:
                        proxy.reset_all()
                    await wait_for(
                        lambda a=accepted: (
                            all(  # type: ignore[misc]
                                p.accepted > n for p, n in zip(proxies, a, strict=True)
                            )
                            and links("online")
                        ),
                        timeout=15,
                        what="reconnected after a reset",
                    )
                await finish_all()

            async def silence_over_the_end() -> None:
                for proxy in proxies:
                    proxy.silent = True
                await wait_for(lambda: not any_online(), timeout=10, what="links stale")
                await finish_all()  # the prints end while the hub hears nothing
                for proxy in proxies:
                    proxy.silent = False
                    proxy.reset_all()

            async def refused_over_the_end() -> None:
                for proxy in proxies:
                    await proxy.refuse()
                await wait_for(lambda: not any_online(), timeout=10, what="links down")
                await finish_all()  # the prints end while every reconnect is refused
                for proxy in proxies:
                    await proxy.resume()

            async def cancelled_during_resets() -> None:
                for proxy in proxies:
                    proxy.reset_all()
                for sim in sims:
                    sim.printer.cancel()

            def any_online() -> bool:
                return any(hub.printer_status(i)["connection"] == "online" for i in ids.values())

            faults: list[Callable[[], Awaitable[None]]] = [
                resets,
                silence_over_the_end,
                refused_over_the_end,
                cancelled_during_resets,
            ]
            for done, fault in enumerate(faults, start=1):
                await wait_for(lambda: links("online"), timeout=15, what="links online")
                await start_all()
                await fault()
                await wait_rows(hub.db, fleet, ids, closed=done * len(sims), open_=0, timeout=15)
                await wait_for(
                    lambda: all_states(hub, ids, "idle", "finished", "cancelled"),
                    timeout=15,
                    what="printers idle again",
                )
            outcomes = [e.outcome for _, e in fleet.print_log()]
            problems = await check_every_print(hub.db, fleet, ids, set())
            detail = await describe_rows(hub.db, fleet, ids)
        finally:
            await hub.stop()
            for proxy in proxies:
                await proxy.close()
    assert sorted(outcomes) == sorted(["finished"] * 6 + ["cancelled"] * 2), outcomes
    assert all(sim.printer.state in (PrintState.CANCELLED,) for sim in sims)
    assert problems == [], "\n".join(problems) + "\n" + detail
