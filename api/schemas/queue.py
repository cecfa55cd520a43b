"""Schemas of the print queue: jobs, their targets and materials, and dispatch."""

from __future__ import annotations

from typing import Any

from api.schemas.common import TIMESTAMP

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
