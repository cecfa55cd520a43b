"""Schemas of outbound deliveries (webhooks and notification channels)."""

from __future__ import annotations

from typing import Any

from api.schemas.common import PAGE_QUERY, TIMESTAMP, TIMESTAMP_OR_NULL
from hub.outbound import EVENT_TYPES, filter_entries


def event_filter(known: tuple[str, ...]) -> dict[str, Any]:
    """A filter of the `known` event types: entries that select none are not in the enum."""
    return {
        "type": "array",
        "minItems": 1,
        "maxItems": 50,
        "uniqueItems": True,
        "items": {"enum": filter_entries(known)},
        "description": "Event types wanted: `*`, a type such as `print.finished`, or `print.*`.",
    }


EVENT_FILTER: dict[str, Any] = event_filter(EVENT_TYPES)
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
