"""The composition root: link facts inside the state, and the simulator started only on request."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from config.loader import SimulatorSettings
from hub.broadcast import Client
from hub.events import PrinterState
from hub.model import Connection
from hub.runtime import Hub
from tests.api.conftest import make_settings, reset_database
from tests.helpers import wait_for
from tests.integrations.printers.conftest import FAST, random_subnet
from tests.integrations.test_plugins import toy_catalog


@pytest.fixture
async def hub(db_url: str, tmp_path: Path) -> AsyncIterator[Hub]:
    """A started hub that knows the toy printer protocol."""
    await reset_database(db_url)
    running = Hub(make_settings(db_url, tmp_path), plugins=toy_catalog())
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


def _recording(hub: Hub) -> list[tuple[str, str]]:
    """Every `printer.connection` message the broadcaster is handed, in order, as (printer,
    connection): a client's buffer keeps only the newest per printer, so it cannot show them all."""
    sent: list[tuple[str, str]] = []
    publish = hub.broadcaster.publish

    def record(kind: str, payload: Any, *args: Any, **kwargs: Any) -> Any:
        if kind == "printer.connection":
            sent.append((payload["printer_id"], payload["connection"]))
        return publish(kind, payload, *args, **kwargs)

    hub.broadcaster.publish = record  # type: ignore[method-assign]
    return sent


async def test_link_facts_travel_inside_the_state(hub: Hub) -> None:
    client = Client(types=frozenset({"printer.connection"}))
    hub.broadcaster.register(client)
    seen: list[PrinterState] = []
    hub.bus.subscribe(PrinterState, seen.append, name="test.states")
    recorded = _recording(hub)
    row = await hub.add_printer(
        {"name": "Toy", "protocol": "toy", "host": "toy.local", "api_key": "k"}
    )

    def sent() -> list[str]:
        return [connection for printer_id, connection in recorded if printer_id == row.id]

    await wait_for(lambda: any(s.connection is Connection.ONLINE for s in seen))
    # A new report over the same link changes the state, not the connection: no message.
    await hub.command(row.id, "pause", {})
    await wait_for(lambda: any(s.state.value == "paused" for s in seen), what="paused state")
    assert sent() == ["connecting", "online"]
    # A client hears of it too (its buffer keeps the newest per printer).
    assert [json.loads(m.text)["payload"]["connection"] for m in client.take()] == ["online"]

    await hub.update_printer(row.id, {"enabled": False})
    await wait_for(lambda: "disabled" in sent(), what="disabled announced")
    assert sent() == ["connecting", "online", "disabled"]
    await wait_for(lambda: seen[-1].connection is Connection.DISABLED, what="disabled state")
    assert seen[-1].online is False and hub.printer_status(row.id)["connection"] == "disabled"


async def test_the_simulator_runs_only_when_the_composition_root_asks(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'sim.db'}"
    sim = SimulatorSettings(enabled=True, bambu=0, moonraker=1, prusalink=0, octoprint=0,
                            speed=60, subnet=random_subnet())  # fmt: skip
    settings = replace(make_settings(url, tmp_path), simulator=sim)
    plain = Hub(settings, driver_options=FAST)  # a tool or test building a hub: no fleet
    await plain.start()
    try:
        assert plain.printers == {}
    finally:
        await plain.stop()
    serving = Hub(settings, driver_options=FAST, simulator=True)
    await serving.start()
    try:
        (printer_id,) = serving.printers
        await wait_for(
            lambda: serving.printer_status(printer_id)["connection"] == "online",
            timeout=20,
            what="the simulated printer online",
        )
    finally:
        await serving.stop()
    assert serving._demo is None  # stopped with the hub
