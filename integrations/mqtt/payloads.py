"""What the MQTT integration publishes: its topic names and the JSON of each message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hub.model import ACTIVE_STATES, AmsTray, AmsUnit, PrinterState, rfc3339
from hub.runtime import status_payload
from integrations.printers.base import LinkInfo

ONLINE = "online"
OFFLINE = "offline"
#: The commands Home Assistant's buttons and light switch send (`commands = true`).
COMMANDS = ("pause", "resume", "stop", "light")


@dataclass(frozen=True, slots=True)
class Topics:
    """Every topic under one base topic (`[mqtt] base_topic`)."""

    base: str

    @property
    def hub_status(self) -> str:
        """`online` / `offline` (the last will) of the hub itself, retained."""
        return f"{self.base}/status"

    @property
    def notifications(self) -> str:
        """Notifications that concern no single printer."""
        return f"{self.base}/notification"

    @property
    def filament(self) -> str:
        """Spool changes: created, edited, weighed, consumed from, (un)assigned, deleted."""
        return f"{self.base}/filament"

    @property
    def queue(self) -> str:
        """Print queue jobs as they are added and change state."""
        return f"{self.base}/queue"

    @property
    def commands(self) -> str:
        """The filter the hub subscribes to for commands."""
        return f"{self.base}/printer/+/command/+"

    def printer(self, printer_id: str, leaf: str) -> str:
        """A topic of one printer, e.g. `printforge/printer/<id>/state`."""
        return f"{self.base}/printer/{printer_id}/{leaf}"

    def tray(self, printer_id: str, slot: int) -> str:
        """One AMS tray (slot numbering as the state's `ams`), retained."""
        return f"{self.base}/printer/{printer_id}/ams/{slot}"

    def command(self, printer_id: str, name: str) -> str:
        """Where a command for a printer is sent."""
        return f"{self.base}/printer/{printer_id}/command/{name}"

    def parse_command(self, topic: str) -> tuple[str, str] | None:
        """(printer id, command) of a command topic, or None when it is not one."""
        head = f"{self.base}/printer/"
        if not topic.startswith(head):
            return None
        parts = topic[len(head) :].split("/")
        if len(parts) != 3 or parts[1] != "command" or not parts[0]:
            return None
        return parts[0], parts[2]


def _tray_of(state: PrinterState, slot: int | None) -> AmsTray | None:
    if slot is None:
        return None
    for unit in state.ams:
        for tray in unit.trays:
            if tray.slot == slot:
                return tray
    return None


def filament_label(tray: AmsTray | None) -> str | None:
    """`PLA #FF8800` for a loaded tray (colour without its alpha byte), None otherwise."""
    if tray is None or tray.empty or not tray.material:
        return None
    return f"{tray.material} #{tray.color[:6]}" if tray.color else tray.material


def state_message(state: PrinterState, link: LinkInfo | None, name: str) -> dict[str, Any]:
    """The retained state JSON: the API's status payload plus flat fields for automations."""
    payload = status_payload(state, link)
    job = state.job
    remaining = job.remaining_s if job is not None else None
    active = state.state in ACTIVE_STATES
    payload.update(
        name=name,
        file=job.file if job is not None else None,
        progress=job.progress if job is not None else None,
        layer=job.layer if job is not None else None,
        total_layers=job.total_layers if job is not None else None,
        remaining_s=remaining,
        # When the print will end at the current estimate (printing or paused only).
        eta=rfc3339(state.updated_at + remaining) if active and remaining is not None else None,
        active_filament=filament_label(_tray_of(state, state.active_tray)),
    )
    return payload


def tray_message(unit: AmsUnit, tray: AmsTray, active_tray: int | None) -> dict[str, Any]:
    """One AMS tray as its sensor and its attributes read it."""
    return {
        "unit": unit.unit,
        "slot": tray.slot,
        "material": None if tray.empty else tray.material,
        "color": tray.color,
        "remain": tray.remain,
        "empty": tray.empty,
        "active": tray.slot == active_tray,
        "humidity": unit.humidity,
        "label": filament_label(tray) or "empty",
    }


def trays(units: tuple[AmsUnit, ...]) -> list[tuple[AmsUnit, AmsTray]]:
    """Every tray with its unit, in slot order."""
    return [(unit, tray) for unit in units for tray in unit.trays]
