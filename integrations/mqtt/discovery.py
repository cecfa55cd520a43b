"""Home Assistant MQTT discovery: each printer as one device whose entities are declared as data.

Topics follow `<discovery_prefix>/<component>/<object_id>/config` with the unique id as the
object id (HA's recommended form); unique ids are built from the printer's database id, so they
stay the same across restarts. An empty retained payload on a config topic removes the entity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hub.model import AmsTray, AmsUnit, PrintState
from hub.store.printers import PrinterRow
from integrations.mqtt.payloads import OFFLINE, ONLINE, Topics

MANUFACTURERS = {
    "bambu": "Bambu Lab",
    "moonraker": "Klipper",
    "prusalink": "Prusa Research",
    "octoprint": "OctoPrint",
}
EXTERNAL_SPOOL = 254


@dataclass(frozen=True, slots=True)
class Entity:
    """One Home Assistant entity of every printer."""

    key: str  # the unique id's suffix
    component: str  # sensor, binary_sensor, button, light
    name: str
    options: dict[str, Any] = field(default_factory=dict)
    command: str | None = None  # the printer command its command topic sends
    # False: stays available while the printer is offline (the connectivity sensor says so).
    follows_printer: bool = True


def _temperature(key: str, name: str, path: str) -> Entity:
    return Entity(
        key,
        "sensor",
        name,
        {
            "value_template": f"{{{{ value_json.temps.{path} }}}}",
            "device_class": "temperature",
            "unit_of_measurement": "°C",
            "state_class": "measurement",
            "suggested_display_precision": 0,
        },
    )


PRINTER_ENTITIES: tuple[Entity, ...] = (
    Entity(
        "state",
        "sensor",
        "State",
        {
            "value_template": "{{ value_json.state }}",
            "device_class": "enum",
            "options": [s.value for s in PrintState],
            "icon": "mdi:printer-3d",
        },
    ),
    Entity(
        "progress",
        "sensor",
        "Progress",
        {
            "value_template": "{{ value_json.progress }}",
            "unit_of_measurement": "%",
            "state_class": "measurement",
            "icon": "mdi:progress-clock",
        },
    ),
    Entity(
        "remaining",
        "sensor",
        "Remaining time",
        {
            "value_template": "{{ value_json.remaining_s }}",
            "device_class": "duration",
            "unit_of_measurement": "s",
        },
    ),
    Entity(
        "eta",
        "sensor",
        "Finishes at",
        {"value_template": "{{ value_json.eta }}", "device_class": "timestamp"},
    ),
    Entity(
        "layer",
        "sensor",
        "Layer",
        {
            "value_template": "{{ value_json.layer }}",
            "state_class": "measurement",
            "icon": "mdi:layers-triple",
        },
    ),
    _temperature("nozzle_temperature", "Nozzle temperature", "nozzle"),
    _temperature("bed_temperature", "Bed temperature", "bed"),
    _temperature("chamber_temperature", "Chamber temperature", "chamber"),
    Entity("file", "sensor", "Current file", {"value_template": "{{ value_json.file }}"}),
    Entity(
        "filament",
        "sensor",
        "Active filament",
        {"value_template": "{{ value_json.active_filament }}", "icon": "mdi:printer-3d-nozzle"},
    ),
    Entity(
        "online",
        "binary_sensor",
        "Online",
        {
            "value_template": "{{ 'ON' if value_json.online else 'OFF' }}",
            "device_class": "connectivity",
            "payload_on": "ON",
            "payload_off": "OFF",
        },
        follows_printer=False,
    ),
)

COMMAND_ENTITIES: tuple[Entity, ...] = (
    Entity("pause", "button", "Pause", {"payload_press": "PRESS", "icon": "mdi:pause"}, "pause"),
    Entity("resume", "button", "Resume", {"payload_press": "PRESS", "icon": "mdi:play"}, "resume"),
    Entity("stop", "button", "Stop", {"payload_press": "PRESS", "icon": "mdi:stop"}, "stop"),
    Entity(
        "light",
        "light",
        "Light",
        {
            "payload_on": "ON",
            "payload_off": "OFF",
            "state_value_template": "{{ 'ON' if value_json.light else 'OFF' }}",
        },
        "light",
    ),
)


@dataclass(frozen=True, slots=True)
class Discovery:
    """Builds discovery topics and configs for one hub."""

    prefix: str
    topics: Topics
    hub_id: str
    hub_url: str
    version: str
    commands: bool
    ha_status: str = "homeassistant/status"  # where Home Assistant announces itself

    @property
    def hub_identifier(self) -> str:
        """The hub device's identifier (each printer's `via_device`)."""
        return f"printforge_hub_{self.hub_id}"

    def topic(self, component: str, unique_id: str) -> str:
        """`<prefix>/<component>/<unique id>/config`."""
        return f"{self.prefix}/{component}/{unique_id}/config"

    def _origin(self) -> dict[str, Any]:
        return {"name": "3DPrintForge", "sw_version": self.version}

    def hub(self) -> tuple[str, dict[str, Any]]:
        """The hub's own device, with a connectivity sensor reading its availability topic."""
        unique_id = f"{self.hub_identifier}_online"
        config = {
            "name": "Hub online",
            "unique_id": unique_id,
            "state_topic": self.topics.hub_status,
            "payload_on": ONLINE,
            "payload_off": OFFLINE,
            "device_class": "connectivity",
            "device": {
                "identifiers": [self.hub_identifier],
                "name": "3DPrintForge",
                "manufacturer": "3DPrintForge",
                "model": "Print farm hub",
                "sw_version": self.version,
                "configuration_url": self.hub_url,
            },
            "origin": self._origin(),
        }
        return self.topic("binary_sensor", unique_id), config

    def device(self, row: PrinterRow) -> dict[str, Any]:
        """The printer as a Home Assistant device."""
        device: dict[str, Any] = {
            "identifiers": [f"printforge_{row.id}"],
            "name": row.name,
            "manufacturer": MANUFACTURERS.get(row.protocol, row.protocol),
            "model": row.model or row.protocol,
            "via_device": self.hub_identifier,
            "configuration_url": self.hub_url,
        }
        if row.serial:
            device["serial_number"] = row.serial
        return device

    def _availability(self, printer_id: str, follows_printer: bool) -> dict[str, Any]:
        sources = [{"topic": self.topics.hub_status}]
        if follows_printer:
            sources.append({"topic": self.topics.printer(printer_id, "availability")})
        return {
            "availability": sources,
            "availability_mode": "all",
            "payload_available": ONLINE,
            "payload_not_available": OFFLINE,
        }

    def _config(self, row: PrinterRow, entity: Entity) -> dict[str, Any]:
        unique_id = f"printforge_{row.id}_{entity.key}"
        config: dict[str, Any] = {
            "name": entity.name,
            "unique_id": unique_id,
            **self._availability(row.id, entity.follows_printer),
            "device": self.device(row),
            "origin": self._origin(),
            **entity.options,
        }
        if entity.component != "button":
            config["state_topic"] = self.topics.printer(row.id, "state")
        if entity.command is not None:
            config["command_topic"] = self.topics.command(row.id, entity.command)
        return config

    def printer(
        self, row: PrinterRow, capabilities: frozenset[str]
    ) -> list[tuple[str, str | dict[str, Any]]]:
        """(topic, config) of every entity of a printer; an empty string where a command
        entity must be removed because commands are off or the printer's protocol lacks it."""
        out: list[tuple[str, str | dict[str, Any]]] = []
        for entity in PRINTER_ENTITIES:
            out.append((self.topic(entity.component, f"printforge_{row.id}_{entity.key}"),
                        self._config(row, entity)))  # fmt: skip
        for entity in COMMAND_ENTITIES:
            topic = self.topic(entity.component, f"printforge_{row.id}_{entity.key}")
            offered = self.commands and entity.command in capabilities
            out.append((topic, self._config(row, entity) if offered else ""))
        return out

    def tray(self, row: PrinterRow, unit: AmsUnit, tray: AmsTray) -> tuple[str, dict[str, Any]]:
        """The sensor of one AMS tray: its material, with colour, remain and more as attributes."""
        unique_id = f"printforge_{row.id}_ams_{tray.slot}"
        if unit.unit == EXTERNAL_SPOOL:
            name = "External spool"
        else:
            name = f"AMS {unit.unit + 1} tray {tray.slot % 4 + 1}"
        topic = self.topics.tray(row.id, tray.slot)
        config = {
            "name": name,
            "unique_id": unique_id,
            **self._availability(row.id, True),
            "state_topic": topic,
            "value_template": "{{ value_json.label }}",
            "json_attributes_topic": topic,
            "icon": "mdi:printer-3d-nozzle",
            "device": self.device(row),
            "origin": self._origin(),
        }
        return self.topic("sensor", unique_id), config

    def removals(self, printer_id: str, slots: set[int]) -> list[str]:
        """Config topics of every entity a printer may have (to clear when it is deleted)."""
        keys = [e for e in (*PRINTER_ENTITIES, *COMMAND_ENTITIES)]
        topics = [self.topic(e.component, f"printforge_{printer_id}_{e.key}") for e in keys]
        topics += [self.topic("sensor", f"printforge_{printer_id}_ams_{s}") for s in sorted(slots)]
        return topics
