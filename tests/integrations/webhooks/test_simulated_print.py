"""A real print on a simulated Moonraker printer reaches a webhook receiver as signed events.

Nothing is published by hand: the simulator speaks Moonraker's protocol on loopback, the hub's
driver and stream pipelines raise the print's lifecycle, the history writer records it and
publishes PrintRecorded, and the webhooks plug-in delivers it."""

from __future__ import annotations

from pathlib import Path

from standardwebhooks.webhooks import Webhook

from hub import webhooks
from hub.model import PrintState
from hub.runtime import Hub
from integrations.simulator import Fleet
from integrations.simulator.cli import demo_gcode
from tests.api.conftest import make_settings
from tests.e2e.records import printer_entry
from tests.helpers import wait_for
from tests.integrations.conftest import FAST as OUTBOX_FAST
from tests.integrations.printers.conftest import FAST, random_subnet
from tests.integrations.receiver import Receiver


async def test_simulated_print_lifecycle_arrives_signed(tmp_path: Path, receiver: Receiver) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
    hub = Hub(make_settings(db_url, tmp_path, **OUTBOX_FAST), driver_options=FAST)
    async with Fleet(speed=120.0, subnet=random_subnet()) as fleet:
        sim = await fleet.add("moonraker", port=0)
        await fleet.load_file(sim, "benchy.gcode", demo_gcode(60, 10, 3.0))
        await hub.start()
        try:
            hook = await webhooks.create(
                hub, {"url": receiver.url + "/farm", "events": ["print.*", "printer.added"]}
            )
            row = await hub.add_printer(printer_entry(sim))
            await wait_for(
                lambda: hub.printer_status(row.id).get("connection") == "online",
                timeout=15,
                what="the printer online",
            )
            sim.printer.start_print("benchy.gcode")
            await wait_for(
                lambda: sim.printer.state is PrintState.FINISHED, timeout=20, what="print done"
            )

            def types() -> list[str]:
                verify = Webhook(hook.secret)
                return [verify.verify(r.body, r.headers)["type"] for r in receiver.received]

            await wait_for(lambda: "print.finished" in types(), timeout=15, what="print.finished")
        finally:
            await hub.stop()
    assert types() == ["printer.added", "print.started", "print.finished"]
    finished = Webhook(hook.secret).verify(
        receiver.received[-1].body, receiver.received[-1].headers
    )
    assert finished["data"]["printer_id"] == row.id and finished["data"]["file"] == "benchy.gcode"
