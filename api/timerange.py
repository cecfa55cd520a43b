"""`since`/`until` query fields: RFC 3339 timestamps turned into a bounded window of Unix seconds."""

from __future__ import annotations

import time
from typing import Any

from api import schemas
from api.errors import ApiError
from api.registry import Rule
from hub.model import parse_rfc3339

DAY_S = 86400.0

#: Query properties every time-filtered endpoint shares.
RANGE_PROPERTIES: dict[str, Any] = {"since": schemas.TIMESTAMP, "until": schemas.TIMESTAMP}

#: The rule of every window (published with each endpoint that takes one).
ORDER_RULE = Rule(400, "since", "order", "since is before until")


def span_rule(max_days: float) -> Rule:
    """The rule of a window at most `max_days` long."""
    return Rule(400, "until", "maxDays", f"since..until spans at most {max_days:g} days")


def _bad(field: str, rule: str, message: str) -> ApiError:
    return ApiError(
        400,
        "validation_error",
        f"query field '{field}' breaks rule '{rule}': {message}",
        extra={"errors": [{"field": field, "rule": rule, "message": message}]},
    )


def instant(query: dict[str, Any], field: str) -> float | None:
    """One timestamp query field as Unix seconds (None when absent; 400 naming it when bad)."""
    raw = query.get(field)
    if raw is None:
        return None
    try:
        return parse_rfc3339(str(raw))
    except ValueError:
        raise _bad(field, "format", f"{raw!r} is not an RFC 3339 timestamp") from None


def window(
    query: dict[str, Any], *, default_days: float, max_days: float | None = None
) -> tuple[float, float]:
    """[since, until) from the query: until defaults to now, since to `default_days` before it;
    400 when since is not before until or the span is over `max_days`."""
    until = instant(query, "until")
    until = time.time() if until is None else until
    since = instant(query, "since")
    since = until - default_days * DAY_S if since is None else since
    if since >= until:
        raise _bad("since", "order", "since must be before until")
    if max_days is not None and until - since > max_days * DAY_S:
        raise _bad("until", "maxDays", f"since..until spans more than {max_days:g} days")
    return since, until
