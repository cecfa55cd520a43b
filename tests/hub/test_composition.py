"""The composition root: link facts inside the state, and the simulator started only on request."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

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


def _connections(client: Client, printer_id: str) -> list[str]:
    found = [json.loads(m.text)["payload"] for m in client.take()]
    return [p["connection"] for p in found if p["printer_id"] == printer_id]


async def test_link_facts_travel_inside_the_state(hub: Hub) -> None:
    client = Client(types=frozenset({"printer.connection"}))
    hub.broadcaster.register(client)
    seen: list[PrinterState] = []
    hub.bus.subscribe(PrinterState, seen.append, name="test.states")
    row = await hub.add_printer(
        {"name": "Toy", "protocol": "toy", "host": "toy.local", "api_key": "k"}
    )
    sent: list[str] = []
    await wait_for(lambda: sent.extend(_connections(client, row.id)) or "online" in sent)
    await wait_for(lambda: any(s.connection is Connection.ONLINE for s in seen))
    # A new report over the same link changes the state, not the connection: no message.
    await hub.command(row.id, "pause", {})
    await wait_for(lambda: any(s.state.value == "paused" for s in seen), what="paused state")
    sent.extend(_connections(client, row.id))
    assert sent == ["connecting", "online"]

    await hub.update_printer(row.id, {"enabled": False})
    await wait_for(lambda: sent.extend(_connections(client, row.id)) or "disabled" in sent)
    assert sent == ["connecting", "online", "disabled"]
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
