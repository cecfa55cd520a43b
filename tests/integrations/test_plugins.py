"""The plug-in loader: toy printer and outbound plug-ins from the test suite, end to end."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hub.model import PrintState
from hub.runtime import Hub
from integrations import loader
from integrations.loader import Catalog
from tests.api.conftest import make_settings, reset_database
from tests.helpers import wait_for
from tests.integrations.toy.toyout import plugin as toyout

TOY = Path(__file__).parent / "toy"
TOY_PACKAGE = "tests.integrations.toy"


def toy_catalog() -> Catalog:
    """The shipped plug-ins plus the toy ones."""
    return Catalog().with_root(TOY, TOY_PACKAGE)


def test_manifests_are_read_before_any_import(caplog: pytest.LogCaptureFixture) -> None:
    for name in ("toyprinter.driver", "crashing.plugin"):
        sys.modules.pop(f"{TOY_PACKAGE}.{name}", None)
    with caplog.at_level(logging.WARNING):
        found = {m.id: m for m in loader.discover(TOY, TOY_PACKAGE)}
    assert sorted(found) == ["crashing", "toyout", "toyprinter"]
    assert "badmanifest" in caplog.text and "'version' is a required property" in caplog.text
    assert found["toyprinter"].kind == "printer" and found["toyprinter"].extra["protocol"] == "toy"
    assert found["toyout"].config_section == "toyout"
    assert f"{TOY_PACKAGE}.toyprinter.driver" not in sys.modules
    assert f"{TOY_PACKAGE}.crashing.plugin" not in sys.modules
    shipped = {m.extra["protocol"] for m in Catalog().manifests(loader.PRINTER)}
    assert shipped == {"bambu", "moonraker", "octoprint", "prusalink"}


@pytest.mark.parametrize(
    ("manifest", "field"),
    [
        ({"name": "x", "version": "1", "entry_point": "m:f"}, "kind"),
        (
            {"kind": "outbound", "name": "x", "version": "1", "entry_point": "nocolon"},
            "entry_point",
        ),
        ({"kind": "printer", "name": "x", "version": "1", "entry_point": "m:C"}, "protocol"),
    ],
)
def test_a_bad_manifest_names_the_field(
    tmp_path: Path, manifest: dict[str, Any], field: str
) -> None:
    import json

    (tmp_path / "plug").mkdir()
    (tmp_path / "plug" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(loader.PluginError, match=field):
        loader.read_manifest(tmp_path / "plug", "pkg")


async def test_config_is_checked_against_the_schema_and_failures_are_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    manifests = [m for m in toy_catalog().manifests() if m.id in {"crashing", "toyout"}]
    with caplog.at_level(logging.ERROR):
        bad = await loader.start(manifests, object(), {"toyout": {"prefix": ""}})
    assert bad.names == [] and sorted(bad.failed) == ["crashing", "toyout"]
    assert "config [toyout] prefix" in bad.failed["toyout"]
    assert "broker at 127.0.0.1:1 refused" in caplog.text
    toyout.INSTANCES.clear()

    class FakeBus:
        def __init__(self) -> None:
            self.subscribed: list[str] = []

        def subscribe(self, kind: type, handler: Any, *, name: str) -> Any:
            self.subscribed.append(name)
            return lambda: self.subscribed.remove(name)

    class Ctx:
        bus = FakeBus()

    good = await loader.start(manifests, Ctx(), {"toyout": {"prefix": "farm"}})
    assert good.names == ["toyout"]
    (box,) = toyout.INSTANCES
    assert box.prefix == "farm" and Ctx.bus.subscribed == ["toyout.state", "toyout.configured"]
    await good.stop()
    assert box.stopped and Ctx.bus.subscribed == [] and good.names == []


@pytest.fixture
async def toy_hub(db_url: str, tmp_path: Path) -> AsyncIterator[Hub]:
    """A hub that knows the toy plug-ins besides the shipped ones."""
    await reset_database(db_url)
    toyout.INSTANCES.clear()
    hub = Hub(make_settings(db_url, tmp_path), plugins=toy_catalog())
    await hub.start()
    try:
        yield hub
    finally:
        await hub.stop()


async def test_toy_printer_and_toy_outbound_end_to_end(toy_hub: Hub) -> None:
    hub = toy_hub
    # The shipped outbound plug-ins run too; the toy one was started after them.
    assert hub.integrations.names[-1] == "toyout" and "crashing" in hub.integrations.failed
    assert "toy" in hub.drivers.available_protocols()
    (box,) = toyout.INSTANCES

    row = await hub.add_printer({"name": "Toy 1", "protocol": "toy", "host": "toy.local",
                                 "api_key": "k-1"})  # fmt: skip
    assert row.port == 4242  # the default port comes from the toy manifest
    await wait_for(lambda: f"toy {row.id} printing" in box.sent, what="state through the bus")
    assert "toy configured Toy 1 (toy)" in box.sent
    assert hub.printer_status(row.id)["job"]["file"] == "toy.gcode"

    reply = await hub.command(row.id, "pause", {})
    assert reply["detail"] == {"command": "pause", "accepted": True, "key": "k-1"}
    await wait_for(lambda: f"toy {row.id} paused" in box.sent, what="the paused state")
    assert hub.manager.state(row.id).state is PrintState.PAUSED

    await hub.stop()
    assert box.stopped and hub.integrations.names == []
