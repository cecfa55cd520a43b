"""Schemas of the file library: a print file and what its slicer wrote into it."""

from __future__ import annotations

from typing import Any

from api.schemas.common import TIMESTAMP

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
