"""Driver discovery: manifests are read first, broken plug-ins are skipped."""

from __future__ import annotations

import json
import logging
import sys

import jsonschema
import pytest

from integrations.printers import registry
from integrations.printers.base import PrinterDriver
from integrations.printers.registry import DriverRegistry, DriverUnavailable

PROTOCOLS = ["bambu", "moonraker", "octoprint", "prusalink"]


def test_shipped_drivers_are_discovered():
    assert registry.available_protocols() == PROTOCOLS
    assert registry.default_port("bambu") == 8883
    assert registry.default_port("moonraker") == 7125
    assert registry.capabilities("prusalink") == {"pause", "resume", "stop"}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_manifest_matches_the_driver_class(protocol):
    cls = registry.load_driver_class(protocol)
    assert issubclass(cls, PrinterDriver)
    assert cls.protocol == protocol
    assert cls.capabilities == registry.capabilities(protocol)
    assert cls.default_port == registry.default_port(protocol)
    jsonschema.Draft202012Validator.check_schema(registry.config_schema(protocol))


def test_unknown_protocol():
    with pytest.raises(DriverUnavailable, match="no printer driver for protocol 'makerbot'"):
        registry.load_driver_class("makerbot")


def _plugin(root, name, protocol, code, manifest_extra=None):
    directory = root / name
    directory.mkdir()
    (directory / "__init__.py").write_text("")
    (directory / "driver.py").write_text(code)
    (directory / "schema.json").write_text("{}")
    manifest = {
        "name": name, "protocol": protocol, "version": "1", "default_port": 1,
        "capabilities": [], "config_schema": "schema.json", "entry_point": "driver:Driver",
        **(manifest_extra or {}),
    }  # fmt: skip
    (directory / "manifest.json").write_text(json.dumps(manifest))


def test_broken_plugins_are_logged_and_skipped(tmp_path, monkeypatch, caplog):
    package = tmp_path / "fakeprinters"
    package.mkdir()
    (package / "__init__.py").write_text("")
    _plugin(package, "crashy", "crashy", "raise ImportError('needs libfoo')\n")
    _plugin(package, "good", "good", "from integrations.printers.moonraker.driver import "
            "MoonrakerDriver as Driver\n")  # fmt: skip
    _plugin(package, "notadriver", "notadriver", "Driver = object\n")
    _plugin(package, "badmanifest", "bad", "", {"default_port": "eighty"})
    (package / "notes").mkdir()  # a directory without a manifest is ignored
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = DriverRegistry(package, "fakeprinters")
    with caplog.at_level(logging.WARNING):
        assert reg.available_protocols() == ["crashy", "good", "notadriver"]
    assert "default_port" in caplog.text
    assert "fakeprinters.crashy.driver" not in sys.modules  # nothing imported yet
    assert reg.load_driver_class("good").protocol == "moonraker"
    with caplog.at_level(logging.ERROR), pytest.raises(DriverUnavailable, match="needs libfoo"):
        reg.load_driver_class("crashy")
    with pytest.raises(DriverUnavailable, match="not a PrinterDriver"):
        reg.load_driver_class("notadriver")
    with pytest.raises(DriverUnavailable, match="needs libfoo"):
        reg.load_driver_class("crashy")  # remembered, not re-imported
    assert reg.available_protocols() == ["good"]
