"""JSON Schemas of request and response payloads: they validate requests and build the OpenAPI document."""

from __future__ import annotations

from typing import Any

from hub.model import PROTOCOLS

ROLE_ENUM = ["viewer", "operator", "admin"]

# Every timestamp the API sends or takes: RFC 3339 in UTC (hub/model.py: rfc3339, parse_rfc3339).
TIMESTAMP: dict[str, Any] = {"type": "string", "format": "date-time"}
TIMESTAMP_OR_NULL: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}

PROBLEM: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "code", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "rule": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        },
    },
}

LOGIN: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["username", "password"],
    "properties": {
        "username": {"type": "string", "minLength": 1, "maxLength": 64},
        "password": {"type": "string", "minLength": 1, "maxLength": 1024, "writeOnly": True},
    },
}

TOKEN: dict[str, Any] = {
    "type": "object",
    "required": ["token", "expiresIn"],
    "properties": {"token": {"type": "string"}, "expiresIn": {"type": "string"}},
}

USER: dict[str, Any] = {
    "type": "object",
    "required": ["id", "username", "role"],
    "properties": {
        "id": {"type": "string"},
        "username": {"type": "string"},
        "role": {"enum": ROLE_ENUM},
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
    },
}

USERNAME = {"type": "string", "pattern": "^[A-Za-z0-9_.@-]{1,64}$"}
PASSWORD = {"type": "string", "minLength": 8, "maxLength": 1024, "writeOnly": True}

USER_CREATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["username", "password", "role"],
    "properties": {"username": USERNAME, "password": PASSWORD, "role": {"enum": ROLE_ENUM}},
}

USER_UPDATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {"password": PASSWORD, "role": {"enum": ROLE_ENUM}},
}

API_TOKEN: dict[str, Any] = {
    "type": "object",
    "required": ["id", "user_id", "username", "name", "role", "created_at", "expires_at"],
    "properties": {
        "id": {"type": "string"},
        "user_id": {"type": "string"},
        "username": {"type": "string"},
        "name": {"type": "string"},
        "role": {"enum": ROLE_ENUM},
        "created_at": TIMESTAMP,
        "expires_at": TIMESTAMP_OR_NULL,
        "last_used_at": TIMESTAMP_OR_NULL,
    },
}

API_TOKEN_CREATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 100},
        "role": {"enum": ROLE_ENUM, "description": "default: the creator's role"},
        "expires_at": {
            **TIMESTAMP_OR_NULL,
            "description": "in the future; null or absent: never expires",
        },
    },
}

API_TOKEN_CREATED: dict[str, Any] = {
    **API_TOKEN,
    "required": [*API_TOKEN["required"], "token"],
    "properties": {
        **API_TOKEN["properties"],
        "token": {"type": "string", "description": "the secret, shown only in this answer"},
    },
}

# Bounds keep the row offset inside a 64-bit integer on every engine.
MAX_PAGE = 1_000_000
MAX_PER_PAGE = 500
PAGE_QUERY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "page": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1},
        "per_page": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE, "default": 50},
    },
}


def collection(item: dict[str, Any], paginated: bool = False) -> dict[str, Any]:
    """The `{"items": [...], "total": n}` envelope around an item schema."""
    props: dict[str, Any] = {
        "items": {"type": "array", "items": item},
        "total": {"type": "integer"},
    }
    if paginated:
        props["page"] = {"type": "integer"}
        props["per_page"] = {"type": "integer"}
    return {"type": "object", "required": ["items", "total"], "properties": props}


_SECRET = {"type": ["string", "null"], "minLength": 1, "maxLength": 256, "writeOnly": True}

_PRINTER_FIELDS: dict[str, Any] = {
    "name": {"type": "string", "minLength": 1, "maxLength": 100},
    "protocol": {"enum": list(PROTOCOLS)},
    "host": {
        "type": "string",
        "minLength": 1,
        "maxLength": 255,
        "pattern": r"^[A-Za-z0-9.:\[\]_-]+$",
    },
    "port": {"type": "integer", "minimum": 1, "maximum": 65535},
    "serial": {"type": ["string", "null"], "pattern": "^[A-Za-z0-9_-]{1,64}$"},
    "model": {"type": ["string", "null"], "maxLength": 64},
    "nozzle_diameter": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 2},
    "tags": {
        "type": "array",
        "maxItems": 32,
        "items": {"type": "string", "minLength": 1, "maxLength": 40},
        "uniqueItems": True,
    },
    "enabled": {"type": "boolean"},
    "maintenance": {"type": "boolean"},
    "auto_clear_bed": {"type": "boolean"},
    "ftps_port": {"type": ["integer", "null"], "minimum": 1, "maximum": 65535},
    "access_code": _SECRET,
    "api_key": _SECRET,
    "username": _SECRET,
    "password": _SECRET,
}

PRINTER_CREATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "protocol", "host"],
    "properties": _PRINTER_FIELDS,
    "allOf": [
        {
            "if": {"properties": {"protocol": {"const": "bambu"}}},
            # Present and not null: a Bambu printer is reached by serial + LAN access code.
            "then": {
                "required": ["serial", "access_code"],
                "properties": {
                    "serial": {"type": "string"},
                    "access_code": {"type": "string", "writeOnly": True},
                },
            },
        }
    ],
}

PRINTER_UPDATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": _PRINTER_FIELDS,
}

PRINTER: dict[str, Any] = {
    "type": "object",
    "required": ["id", "name", "protocol", "host", "port", "enabled"],
    "properties": {
        "id": {"type": "string"},
        **{k: v for k, v in _PRINTER_FIELDS.items() if not v.get("writeOnly")},
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
        "state": {
            "enum": [
                "idle",
                "preparing",
                "printing",
                "paused",
                "finished",
                "failed",
                "cancelled",
                "error",
                "offline",
            ]
        },
        "connection": {"type": "string"},
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

COMMANDS = [
    "pause",
    "resume",
    "stop",
    "light",
    "speed",
    "gcode",
    "ams_change",
    "home",
    "set_temperature",
]

COMMAND: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["command"],
    "properties": {
        "command": {"enum": COMMANDS},
        "params": {"type": "object"},
    },
    "allOf": [
        {
            "if": {"properties": {"command": {"const": "light"}}},
            "then": {
                "required": ["params"],
                "properties": {
                    "params": {
                        "type": "object",
                        "required": ["on"],
                        "properties": {"on": {"type": "boolean"}},
                    }
                },
            },
        },
        {
            "if": {"properties": {"command": {"const": "speed"}}},
            "then": {
                "required": ["params"],
                "properties": {
                    "params": {
                        "type": "object",
                        "required": ["level"],
                        "properties": {"level": {"type": "integer", "minimum": 1, "maximum": 4}},
                    }
                },
            },
        },
        {
            "if": {"properties": {"command": {"const": "gcode"}}},
            "then": {
                "required": ["params"],
                "properties": {
                    "params": {
                        "type": "object",
                        "required": ["line"],
                        "properties": {
                            "line": {"type": "string", "minLength": 1, "maxLength": 4096}
                        },
                    }
                },
            },
        },
        {
            "if": {"properties": {"command": {"const": "ams_change"}}},
            "then": {
                "required": ["params"],
                "properties": {
                    "params": {
                        "type": "object",
                        "required": ["tray"],
                        "properties": {"tray": {"type": "integer", "minimum": 0, "maximum": 254}},
                    }
                },
            },
        },
        {
            "if": {"properties": {"command": {"const": "set_temperature"}}},
            "then": {
                "required": ["params"],
                "properties": {
                    "params": {
                        "type": "object",
                        "required": ["heater", "target"],
                        "properties": {
                            "heater": {"enum": ["nozzle", "bed"]},
                            "target": {"type": "number", "minimum": 0, "maximum": 350},
                        },
                    }
                },
            },
        },
    ],
}

COMMAND_RESULT: dict[str, Any] = {
    "type": "object",
    "required": ["command", "result"],
    "properties": {"command": {"type": "string"}, "result": {"type": "string"}, "detail": {}},
}

HEALTH: dict[str, Any] = {
    "type": "object",
    "required": ["status", "database", "version", "uptime_s"],
    "properties": {
        "status": {"enum": ["ok", "degraded"]},
        "database": {"enum": ["ok", "unreachable"]},
        "version": {"type": "string"},
        "uptime_s": {"type": "number"},
    },
}


SLOT_MATERIAL: dict[str, Any] = {
    "type": "object",
    "required": ["slot", "material", "color"],
    "properties": {
        "slot": {"type": "integer", "minimum": 1},
        "material": {"type": ["string", "null"]},
        "color": {"type": ["string", "null"]},
        "grams": {"type": ["number", "null"]},
    },
}

FILE_METADATA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "estimated_time_s": {"type": ["number", "null"]},
        "layers": {"type": ["integer", "null"]},
        "grams": {"type": ["number", "null"]},
        "materials": {"type": "array", "items": SLOT_MATERIAL},
        "nozzle_diameter": {"type": ["number", "null"]},
        "printer_model": {"type": ["string", "null"]},
        "plate_count": {"type": ["integer", "null"]},
        "slicer": {"type": ["string", "null"]},
    },
}

FILE: dict[str, Any] = {
    "type": "object",
    "required": ["id", "name", "kind", "size", "sha256", "metadata", "created_at"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "kind": {"enum": ["gcode", "3mf"]},
        "size": {"type": "integer"},
        "sha256": {"type": "string"},
        "metadata": FILE_METADATA,
        "thumbnail_url": {"type": ["string", "null"]},
        "uploaded_by": {"type": ["string", "null"]},
        "created_at": TIMESTAMP,
    },
}
