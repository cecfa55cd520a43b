"""Schemas of outbound deliveries (webhooks and notification channels)."""

from __future__ import annotations

from typing import Any

from api.schemas.common import PAGE_QUERY, TIMESTAMP, TIMESTAMP_OR_NULL
from hub.outbound import PATTERN

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
