"""Schemas of printers: the printer, its status and a command's result.

The request schemas (create, update, command) are composed from the drivers' manifests in
`hub.protocols`; they are re-exported here.
"""

from __future__ import annotations

from typing import Any

from api.schemas.common import TIMESTAMP, TIMESTAMP_OR_NULL
from hub.model import Connection, PrintState
from hub.protocols import COMMAND, PRINTER_CREATE, PRINTER_FIELDS, PRINTER_UPDATE

__all__ = [
    "COMMAND",
    "COMMAND_RESULT",
    "PRINTER",
    "PRINTER_CREATE",
    "PRINTER_STATUS",
    "PRINTER_UPDATE",
]

PRINTER: dict[str, Any] = {
    "type": "object",
    "required": ["id", "name", "protocol", "host", "port", "enabled"],
    "properties": {
        "id": {"type": "string"},
        **{k: v for k, v in PRINTER_FIELDS.items() if not v.get("writeOnly")},
        "has_secret": {"type": "object", "additionalProperties": {"type": "boolean"}},
        "bed_clear": {"type": "boolean"},
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
    },
}

PRINTER_STATUS: dict[str, Any] = {
    "type": "object",
    "required": ["printer_id", "online", "state", "connection"],
    "properties": {
        "printer_id": {"type": "string"},
        "online": {"type": "boolean"},
        "state": {"enum": [s.value for s in PrintState]},
        "connection": {"enum": [c.value for c in Connection]},
        "last_seen": TIMESTAMP_OR_NULL,
        "last_error": {"type": ["string", "null"]},
        "job": {"type": ["object", "null"]},
        "temps": {"type": "object"},
        "fans": {"type": "object"},
        "speed_level": {"type": ["integer", "null"]},
        "ams": {"type": "array"},
        "active_tray": {"type": ["integer", "null"]},
        "errors": {"type": "array"},
        "wifi_signal": {"type": ["integer", "null"]},
        "light": {"type": ["boolean", "null"]},
        "updated_at": TIMESTAMP,
    },
}

COMMAND_RESULT: dict[str, Any] = {
    "type": "object",
    "required": ["command", "result"],
    "properties": {"command": {"type": "string"}, "result": {"type": "string"}, "detail": {}},
}
