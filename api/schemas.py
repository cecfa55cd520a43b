"""JSON Schemas of request and response payloads: they validate requests and build the OpenAPI document."""

from __future__ import annotations

from typing import Any

from hub.model import Connection, PrintState
from hub.outbound import PATTERN
from hub.protocols import COMMAND, PRINTER_CREATE, PRINTER_FIELDS, PRINTER_UPDATE
from hub.store.users import ROLES

__all__ = ["COMMAND", "PRINTER_CREATE", "PRINTER_UPDATE"]

ROLE_ENUM = list(ROLES)

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
        "disabled": {"type": "boolean"},
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
    },
}

USERNAME = {"type": "string", "pattern": "^[A-Za-z0-9_.@-]{1,64}$"}
PASSWORD = {"type": "string", "minLength": 8, "maxLength": 1024, "writeOnly": True}

PASSWORD_CHANGE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["current_password", "new_password"],
    "properties": {
        "current_password": {
            "type": "string",
            "minLength": 1,
            "maxLength": 1024,
            "writeOnly": True,
        },
        "new_password": PASSWORD,
    },
}

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
    "properties": {
        "password": PASSWORD,
        "role": {"enum": ROLE_ENUM},
        "disabled": {
            "type": "boolean",
            "description": "a disabled account cannot log in and its tokens stop working",
        },
    },
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


# Outbound deliveries (webhooks and notification channels) ------------------------------

EVENT_FILTER: dict[str, Any] = {
    "type": "array",
    "minItems": 1,
    "maxItems": 50,
    "uniqueItems": True,
    "items": {"type": "string", "pattern": PATTERN, "maxLength": 64},
    "description": "Event types wanted: `*`, a type such as `print.finished`, or `print.*`.",
}
DELIVERY: dict[str, Any] = {
    "type": "object",
    "required": ["id", "event_id", "event_type", "state", "attempts", "created_at"],
    "properties": {
        "id": {"type": "string"},
        "event_id": {"type": "string", "description": "The webhook-id header of every attempt."},
        "event_type": {"type": "string"},
        "state": {"enum": ["pending", "delivered", "failed"]},
        "attempts": {"type": "integer"},
        "created_at": TIMESTAMP,
        "next_attempt_at": TIMESTAMP_OR_NULL,
        "last_attempt_at": TIMESTAMP_OR_NULL,
        "last_status": {"type": ["integer", "null"]},
        "last_error": {"type": ["string", "null"]},
        "delivered_at": TIMESTAMP_OR_NULL,
    },
}

DELIVERY_QUERY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        **PAGE_QUERY["properties"],
        "state": {"enum": ["pending", "delivered", "failed"]},
    },
}

_TARGET: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "description": "{} any printer; {printer_id} one printer; {model, tags} any matching printer",
    "properties": {
        "printer_id": {"type": "string", "minLength": 1, "maxLength": 36},
        "model": {"type": "string", "minLength": 1, "maxLength": 64},
        "tags": {
            "type": "array",
            "maxItems": 32,
            "items": {"type": "string", "minLength": 1, "maxLength": 40},
            "uniqueItems": True,
        },
    },
    "not": {"required": ["printer_id", "model"]},
}

_JOB_MATERIALS: dict[str, Any] = {
    "type": "array",
    "maxItems": 32,
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["slot"],
        "properties": {
            "slot": {"type": "integer", "minimum": 1, "maximum": 32},
            "material": {"type": ["string", "null"], "minLength": 1, "maxLength": 32},
            "color": {"type": ["string", "null"], "pattern": "^#[0-9A-Fa-f]{6}$"},
            "grams": {"type": ["number", "null"], "minimum": 0},
        },
    },
}

_JOB_FIELDS: dict[str, Any] = {
    "copies": {"type": "integer", "minimum": 1, "maximum": 1000},
    "priority": {"type": "integer", "minimum": -1000, "maximum": 1000},
    "position": {"type": "number"},
    "target": _TARGET,
    "materials": _JOB_MATERIALS,
    "hold": {"type": "boolean"},
}

JOB_CREATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["file_id"],
    "properties": {
        "file_id": {"type": "string", "minLength": 1, "maxLength": 36},
        "plate": {"type": "integer", "minimum": 1, "maximum": 64},
        **_JOB_FIELDS,
    },
}

JOB_UPDATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": _JOB_FIELDS,
}

QUEUE_JOB: dict[str, Any] = {
    "type": "object",
    "required": ["id", "file_id", "state", "copies", "priority", "position", "target"],
    "properties": {
        "id": {"type": "string"},
        "file_id": {"type": "string"},
        "file_name": {"type": ["string", "null"]},
        "plate": {"type": "integer"},
        "copies": {"type": "integer"},
        "copies_done": {"type": "integer"},
        "priority": {"type": "integer"},
        "position": {"type": "number"},
        "target": {"type": "object"},
        "materials": {"type": "array"},
        "state": {
            "enum": ["queued", "held", "dispatching", "printing", "done", "failed", "cancelled"]
        },
        "attempts": {"type": "integer"},
        "waiting_reason": {"type": ["string", "null"]},
        "last_error": {"type": ["string", "null"]},
        "added_by": {"type": ["string", "null"]},
        "printer_id": {"type": ["string", "null"]},
        "prints": {"type": "array", "items": {"type": "string"}},
        "runs": {"type": "array", "items": {"type": "object"}},
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
    },
}

DISPATCH: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "job_id": {"type": "string", "minLength": 1, "maxLength": 36},
        "printer_id": {"type": "string", "minLength": 1, "maxLength": 36},
    },
}

DISPATCH_RESULT: dict[str, Any] = {
    "type": "object",
    "required": ["dispatched"],
    "properties": {
        "dispatched": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "job_id": {"type": "string"},
                    "printer_id": {"type": "string"},
                    "run_id": {"type": "string"},
                    "filename": {"type": "string"},
                    "ams_mapping": {"type": ["array", "null"]},
                },
            },
        }
    },
}
