"""Home Assistant discovery on the real broker, checked against the field rules of HA's MQTT
documentation, and the retained state the entities read.

Rules (https://www.home-assistant.io/integrations/mqtt/, "MQTT Discovery"; the platform pages
https://www.home-assistant.io/integrations/sensor.mqtt/, binary_sensor.mqtt/, button.mqtt/,
light.mqtt/; and https://developers.home-assistant.io/docs/core/entity/sensor/ for device
classes and units), each checked below under its number:
  R1 The config topic is `<discovery_prefix>/<component>/[<node_id>/]<object_id>/config`; node
     and object ids only use `[a-zA-Z0-9_-]`; best practice: object id = unique id, no node id.
  R2 The payload is a JSON object; configs are retained so HA finds them after it restarts.
  R3 `unique_id` is set (needed for the device registry) and unique; `device` has
     `identifiers`; `via_device` names the identifier of another device; `configuration_url`
     is an http(s) URL.
  R4 `availability` is a list of mappings with a `topic`; `availability_mode` is all, any or
     latest; `payload_available` / `payload_not_available` are what those topics carry.
  R5 Sensors: `state_class` is measurement, total or total_increasing; device class
     `temperature` takes a unit of °C, °F or K; `duration` one of d, h, min, s, ms;
     `timestamp` has no unit and its state is an ISO 8601 time with a time zone; `enum` has
     `options` and neither unit nor state class.
  R6 A binary sensor has a `state_topic`; its rendered value matches `payload_on`/`payload_off`.
  R7 A button has a `command_topic` and no `state_topic`.
  R8 A light (default schema) has a `command_topic`; `state_value_template` renders to
     `payload_on` or `payload_off`.
  R9 HA publishes `online` to its birth topic (https://www.home-assistant.io/docs/mqtt/birth_will/,
     default `homeassistant/status`; here the test's own) when it starts; devices re-send
     their configs then.
  R10 An empty retained payload on a config topic removes the entity.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import jinja2

from hub.store.printers import PrinterRow
from integrations.mqtt.discovery import Discovery
from integrations.mqtt.payloads import Topics
from tests.helpers import wait_for
from tests.integrations.mqtt.conftest import MqttHub, Watcher

COMPONENTS = {"sensor", "binary_sensor", "button", "light"}
ID = re.compile(r"^[a-zA-Z0-9_-]+$")
TEMPERATURE_UNITS = {"°C", "°F", "K"}
DURATION_UNITS = {"d", "h", "min", "s", "ms"}
STATE_CLASSES = {"measurement", "total", "total_increasing"}
_jinja = jinja2.Environment()


def render(template: str, value_json: Any) -> str:
    """A value template as HA renders it (`value_json` is the parsed payload)."""
    return _jinja.from_string(template).render(value_json=value_json)


def configs(watcher: Watcher, prefix: str) -> dict[str, tuple[dict[str, Any], bool]]:
    """The newest non-empty config per discovery topic, and whether it arrived retained."""
    found: dict[str, tuple[dict[str, Any], bool]] = {}
    for topic, payload, retained in watcher.messages:
        if topic.startswith(prefix + "/") and topic.endswith("/config"):
            if payload:
                found[topic] = (json.loads(payload), retained)
            else:
                found.pop(topic, None)
    return found


def check_config(topic: str, config: Any, prefix: str, device_ids: set[str]) -> str:
    """Apply R1-R8 to one config; return its component."""
    parts = topic.split("/")
    assert parts[0] == prefix and parts[-1] == "config", topic  # R1
    assert len(parts) in (4, 5), topic  # R1: optional node id
    component, object_id = parts[1], parts[-2]
    assert component in COMPONENTS, topic
    assert all(ID.match(p) for p in parts[2:-1]), topic  # R1
    assert isinstance(config, dict), topic  # R2
    assert config["unique_id"] == object_id and len(parts) == 4  # R1 best practice, R3
    device = config["device"]
    assert device["identifiers"] and all(isinstance(i, str) for i in device["identifiers"])  # R3
    if "via_device" in device:
        assert device["via_device"] in device_ids  # R3
        assert device["via_device"] not in device["identifiers"]
    assert re.match(r"^https?://", device.get("configuration_url", "http://")), device  # R3
    if "availability" in config:  # R4
        assert isinstance(config["availability"], list) and config["availability"]
        assert all(isinstance(a, dict) and a["topic"] for a in config["availability"])
        assert config["availability_mode"] in {"all", "any", "latest"}
        assert {config["payload_available"], config["payload_not_available"]} == {
            "online",
            "offline",
        }
    if "state_class" in config:
        assert config["state_class"] in STATE_CLASSES  # R5
    device_class = config.get("device_class")
    if component == "sensor":
        assert config["state_topic"]
        if device_class == "temperature":
            assert config["unit_of_measurement"] in TEMPERATURE_UNITS  # R5
        if device_class == "duration":
            assert config["unit_of_measurement"] in DURATION_UNITS  # R5
        if device_class in ("timestamp", "enum"):
            assert "unit_of_measurement" not in config  # R5
        if device_class == "enum":
            assert config["options"] and "state_class" not in config  # R5
    if component == "binary_sensor":
        assert config["state_topic"] and device_class in (None, "connectivity")  # R6
    if component == "button":
        assert config["command_topic"] and "state_topic" not in config  # R7
    if component == "light":
        assert config["command_topic"]  # R8
    return component


async def running_print(m: MqttHub) -> tuple[str, Any]:
    """A simulated P1S (with AMS) printing a small file, registered with the hub."""
    from integrations.simulator.cli import demo_gcode

    sim = await m.fleet.add("bambu", model="P1S")
    printer_id = await m.add_bambu(sim)
    await m.fleet.load_file(sim, "cube.gcode", demo_gcode(240, 40, 120.0))
    sim.printer.start_print("cube.gcode")
    return printer_id, sim


async def test_discovery_configs_follow_the_ha_rules_and_read_the_retained_state(
    mqtt_hub: MqttHub,
) -> None:
    m = mqtt_hub
    printer_id, _ = await running_print(m)
    state_topic = f"{m.base}/printer/{printer_id}/state"
    async with m.watch() as live:
        await wait_for(
            lambda: (
                (live.json(state_topic) or {}).get("state") == "printing"
                and live.json(state_topic)["eta"] is not None
            ),
            timeout=15,
            what="a printing state with an ETA",
        )
    # A client connecting now gets everything HA needs from retained messages alone (R2).
    async with m.watch() as fresh:
        await wait_for(
            lambda: len(configs(fresh, m.prefix)) >= 20 and fresh.last(state_topic),
            timeout=5,
            what="retained configs and state",
        )
        found = configs(fresh, m.prefix)
        state = fresh.json(state_topic)
        assert fresh.last(f"{m.base}/status") == b"online"
        assert fresh.last(f"{m.base}/printer/{printer_id}/availability") == b"online"
        assert all(retained for _, retained in found.values())  # R2
        assert all(r for t, _, r in fresh.messages if t in (state_topic, f"{m.base}/status"))

    device_ids = {i for c, _ in found.values() for i in c["device"]["identifiers"]}
    components = [check_config(t, c, m.prefix, device_ids) for t, (c, _) in found.items()]
    unique_ids = [c["unique_id"] for c, _ in found.values()]
    assert len(unique_ids) == len(set(unique_ids))  # R3

    by_key = {
        c["unique_id"].removeprefix(f"printforge_{printer_id}_"): c for c, _ in found.values()
    }
    hub_configs = [c for c, _ in found.values() if "via_device" not in c["device"]]
    assert len(hub_configs) == 1 and hub_configs[0]["device"]["model"] == "Print farm hub"
    device = by_key["state"]["device"]
    row = m.hub.printer(printer_id)
    assert device["name"] == row.name and device["manufacturer"] == "Bambu Lab"
    assert device["model"] == "P1S" and device["serial_number"] == row.serial
    assert device["via_device"] == hub_configs[0]["device"]["identifiers"][0]
    assert device["configuration_url"] == "https://hub.example.test:3443"
    assert components.count("button") == 3 and components.count("light") == 1
    for key in ("nozzle_temperature", "bed_temperature", "chamber_temperature"):
        assert by_key[key]["device_class"] == "temperature"
    trays = [k for k in by_key if k.startswith("ams_")]
    # One P1S AMS unit (four trays) and the external spool.
    assert sorted(trays) == ["ams_0", "ams_1", "ams_2", "ams_254", "ams_3"], sorted(by_key)
    assert by_key["ams_254"]["name"] == "External spool"

    # The templates render the published state into what each entity type expects (R5, R6, R8).
    rendered = {
        k: render(c["value_template"], state)
        for k, c in by_key.items()
        if "value_template" in c and not k.startswith("ams_")
    }
    assert rendered["state"] == "printing" and rendered["state"] in by_key["state"]["options"]
    assert 0 <= float(rendered["progress"]) <= 100
    assert float(rendered["nozzle_temperature"]) > 100  # heated for printing
    assert int(rendered["remaining"]) > 0 and rendered["file"].startswith("cube")
    assert datetime.fromisoformat(rendered["eta"]).tzinfo is not None  # R5
    assert rendered["online"] == by_key["online"]["payload_on"]  # R6
    assert render(by_key["light"]["state_value_template"], state) in ("ON", "OFF")  # R8
    assert rendered["filament"].startswith(("PLA", "PETG", "ABS", "TPU", "ASA", "PA", "PC"))
    # The printer's entities are unavailable while it is offline, its connectivity sensor is not.
    assert len(by_key["state"]["availability"]) == 2 and len(by_key["online"]["availability"]) == 1

    # A tray sensor reads its own retained topic, with the tray as attributes.
    tray = by_key[trays[0]]
    async with m.watch() as again:
        await wait_for(lambda: again.json(tray["state_topic"]), timeout=5, what="tray state")
        tray_state = again.json(tray["state_topic"])
    assert tray["json_attributes_topic"] == tray["state_topic"]
    assert {"material", "color", "remain", "unit", "slot"} <= set(tray_state)
    assert render(tray["value_template"], tray_state) == (tray_state["label"])

    # Unique ids and the hub's identity survive a restart; a clean stop says `offline`.
    async with m.watch() as around:
        await wait_for(lambda: around.last(f"{m.base}/status") == b"online", what="online")
        await m.restart()
        await wait_for(lambda: around.count(f"{m.base}/status") >= 3, what="offline, online")
        said = [p for t, p, _ in around.messages if t == f"{m.base}/status"]
        assert said[-2:] == [b"offline", b"online"], said
    async with m.watch() as after:
        await wait_for(
            lambda: after.count(f"{m.base}/status") and after.last(f"{m.base}/status") == b"online",
            timeout=10,
            what="online after restart",
        )
        await wait_for(
            lambda: len(configs(after, m.prefix)) >= len(found),
            timeout=10,
            what="configs after restart",
        )
        assert {c["unique_id"] for c, _ in configs(after, m.prefix).values()} == set(unique_ids)


async def test_ha_birth_republishes_and_a_deleted_printer_is_removed(mqtt_hub: MqttHub) -> None:
    m = mqtt_hub
    sim = await m.fleet.add("bambu", model="P1S")
    printer_id = await m.add_bambu(sim)
    state_topic = f"{m.base}/printer/{printer_id}/state"
    async with m.watch() as watcher:
        await wait_for(lambda: len(configs(watcher, m.prefix)) >= 20, timeout=10, what="configs")
        pause_topic = f"{m.prefix}/button/printforge_{printer_id}_pause/config"
        before = watcher.count(pause_topic)
        await watcher.client.publish(f"{m.prefix}/status", b"online", qos=1)  # R9
        await wait_for(
            lambda: watcher.count(pause_topic) > before, timeout=5, what="re-sent configs"
        )
        arrived = [r for t, _, r in watcher.messages if t == pause_topic]
        assert arrived[-1] is False  # sent live, not replayed from the broker

        await m.hub.delete_printer(printer_id)
        await wait_for(lambda: watcher.last(pause_topic) == b"", timeout=5, what="removal")
    async with m.watch() as fresh:  # R10: nothing of the printer is retained any more
        await wait_for(lambda: fresh.last(f"{m.base}/status"), timeout=5, what="hub status")
        left = [t for t, p, _ in fresh.messages if printer_id in t and p]
        assert left == [] and fresh.last(state_topic) is None
        assert len(configs(fresh, m.prefix)) == 1  # the hub's own


def test_commands_off_or_unsupported_leave_the_command_entities_out() -> None:
    row = PrinterRow(
        id="p-1", name="Bench", protocol="bambu", host="127.0.0.1", port=8883, serial="S1",
        model="X1C", nozzle_diameter=None, tags=[], enabled=True, secrets={}, created_at=0.0,
        updated_at=0.0,
    )  # fmt: skip
    base = {"prefix": "homeassistant", "topics": Topics("printforge"), "hub_id": "h",
            "hub_url": "https://hub:3443", "version": "1"}  # fmt: skip
    every = frozenset({"pause", "resume", "stop", "light"})
    on = dict(Discovery(**base, commands=True).printer(row, every))
    off = dict(Discovery(**base, commands=False).printer(row, every))
    assert on.keys() == off.keys()
    commands = [t for t, c in on.items() if isinstance(c, dict) and "command_topic" in c]
    assert sorted(t.split("/")[1] for t in commands) == ["button", "button", "button", "light"]
    # With commands off those configs are sent empty, which removes them from HA (R10).
    assert all(off[t] == "" for t in commands)
    assert all(
        isinstance(c, dict) and "command_topic" not in c
        for t, c in off.items()
        if t not in commands
    )
    # A protocol without a light (e.g. Moonraker's manifest) gets no light entity.
    no_light = dict(Discovery(**base, commands=True).printer(row, every - {"light"}))
    assert [t for t, c in no_light.items() if c == ""] == [t for t in commands if "/light/" in t]
