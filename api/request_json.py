"""Strict reading of JSON request bodies: media type, size, UTF-8, nesting depth, duplicate
keys and non-standard numbers are each a clear 4xx, never a 500."""

from __future__ import annotations

import json
from typing import Any

from quart import Request

from api.errors import ApiError

# Deeper than any document the API takes; a bound keeps the parser's recursion and the
# validators' work small whatever a client sends.
MAX_DEPTH = 64


def _invalid(detail: str, rule: str) -> ApiError:
    return ApiError(
        400,
        "invalid_json",
        detail,
        extra={"errors": [{"field": "(body)", "rule": rule, "message": detail}]},
    )


def is_json_media_type(content_type: str | None) -> bool:
    """True for application/json and any application/*+json type (parameters ignored)."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _invalid(f"the body has the key {key!r} twice", "duplicate_key")
        out[key] = value
    return out


def _constant(name: str) -> Any:
    raise _invalid(f"{name} is not a JSON number", "number")


def _too_deep(value: Any, depth: int = 1) -> bool:
    if depth > MAX_DEPTH:
        return True
    if isinstance(value, dict):
        return any(_too_deep(v, depth + 1) for v in value.values())
    if isinstance(value, list):
        return any(_too_deep(v, depth + 1) for v in value)
    return False


def parse(raw: bytes) -> Any:
    """The JSON value of a request body, or ApiError 400 naming what is wrong with it."""
    if not raw.strip():
        raise _invalid("the request body must be JSON (it is empty)", "required")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _invalid(f"the body is not UTF-8 (byte {exc.start})", "encoding") from None
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_constant)
    except RecursionError:
        data = None
        deep = True
    except json.JSONDecodeError as exc:
        raise _invalid(f"the body is not valid JSON: {exc.msg} at {exc.pos}", "syntax") from None
    else:
        deep = _too_deep(data)
    if deep:
        raise _invalid(f"the body nests deeper than {MAX_DEPTH} levels", "max_depth")
    return data


async def read(request: Request, max_bytes: int) -> Any:
    """Check the media type and size of the request's body, then parse it."""
    if not is_json_media_type(request.headers.get("Content-Type")):
        raise ApiError(
            415,
            "unsupported_media_type",
            "the request body must be sent as Content-Type: application/json",
            headers={"Accept": "application/json"},
        )
    if request.content_length is not None and request.content_length > max_bytes:
        raise ApiError(413, "payload_too_large", f"body over {max_bytes} bytes")
    data = await request.get_data(as_text=False)
    raw = data if isinstance(data, bytes) else data.encode()
    if len(raw) > max_bytes:
        raise ApiError(413, "payload_too_large", f"body over {max_bytes} bytes")
    return parse(raw)
