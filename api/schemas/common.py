"""Schemas every resource shares: timestamps, the problem+json body, paging and collections."""

from __future__ import annotations

from typing import Any

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
