"""The requests a `/ws` client may send once authenticated (`subscribe`, `ping`) and the
snapshot a subscription starts with: pure functions of the hub, the client and the message."""

from __future__ import annotations

import json
from typing import Any

from hub.broadcast import MESSAGE_TYPES, Client, encode
from hub.runtime import Hub

REQUEST_FIELDS = {
    "subscribe": {"type", "id", "printers", "types", "batch"},
    "ping": {"type", "id"},
}


def error_frame(detail: str, request_id: Any = None) -> str:
    """An `error` message with the problem (and the request id it answers)."""
    payload: dict[str, Any] = {"detail": detail}
    if request_id is not None:
        payload["id"] = request_id
    return encode("error", payload)


def _filter_payload(client: Client) -> dict[str, Any]:
    return {
        "printers": None if client.printers is None else sorted(client.printers),
        "types": None if client.types is None else sorted(client.types),
    }


def _parse_subscribe(
    message: dict[str, Any],
) -> tuple[frozenset[str] | None, frozenset[str] | None, bool] | str:
    """The new (printers, types) filter and batch mode, or the problem with the request."""
    printers = message.get("printers")
    types = message.get("types")
    batch = message.get("batch", False)
    if not isinstance(batch, bool):
        return "subscribe: 'batch' must be true or false"
    if printers is not None and (
        not isinstance(printers, list) or not all(isinstance(p, str) for p in printers)
    ):
        return "subscribe: 'printers' must be a list of printer ids (strings) or null"
    if types is not None:
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            return "subscribe: 'types' must be a list of message types (strings) or null"
        unknown = sorted(set(types) - set(MESSAGE_TYPES))
        if unknown:
            return f"subscribe: unknown types {unknown}; known: {list(MESSAGE_TYPES)}"
    return (
        None if printers is None else frozenset(printers),
        None if types is None else frozenset(types),
        batch,
    )


def offer_snapshot(h: Hub, client: Client) -> None:
    """Queue a `printer.status` of every printer the client's filter covers.

    It is the last one published for each printer (encoded once, shared by every client that
    connects); a newer state still held back by the status rate limit follows as usual.
    """
    if client.types is not None and "printer.status" not in client.types:
        return
    cached = h.broadcaster.last_status
    for printer_id in list(h.printers):
        if client.printers is not None and printer_id not in client.printers:
            continue
        message = cached.get(printer_id)
        if message is None:
            try:
                message = h.status_message(printer_id)
            except (KeyError, RuntimeError):  # being added or removed right now, or hub stopping
                continue
            cached[printer_id] = message
        client.offer(message)


def handle_request(h: Hub, client: Client, raw: str | bytes, max_bytes: int) -> str:
    """The reply to one client message (requests never raise; problems become `error`)."""
    if len(raw) > max_bytes:
        return error_frame(f"message too large (limit {max_bytes} bytes)")
    try:
        message = json.loads(raw)
    except (ValueError, RecursionError):
        return error_frame("malformed JSON: messages must be JSON objects")
    if not isinstance(message, dict):
        return error_frame(f"messages must be JSON objects, not {type(message).__name__}")
    kind = message.get("type")
    request_id = message.get("id")
    if request_id is not None and not isinstance(request_id, (str, int, float)):
        return error_frame("'id' must be a string or a number")
    if kind == "auth":
        return error_frame("already authenticated", request_id)
    if not isinstance(kind, str) or kind not in REQUEST_FIELDS:
        return error_frame(
            f"unknown message type {kind!r}; send 'subscribe' or 'ping'",
            request_id,
        )
    extra = sorted(set(message) - REQUEST_FIELDS[kind])
    if extra:
        return error_frame(
            f"{kind}: unknown fields {extra}; allowed: {sorted(REQUEST_FIELDS[kind])}",
            request_id,
        )
    if kind == "ping":
        return encode("pong", {} if request_id is None else {"id": request_id})
    parsed = _parse_subscribe(message)
    if isinstance(parsed, str):
        return error_frame(parsed, request_id)
    h.broadcaster.subscribe(client, *parsed)
    offer_snapshot(h, client)
    payload = _filter_payload(client)
    if "batch" in message:
        payload["batch"] = client.batch
    if request_id is not None:
        payload["id"] = request_id
    return encode("subscribed", payload)


def auth_token(raw: str | bytes, max_bytes: int) -> str | None:
    """The token of a first-message `{"type": "auth", "token": …}`, or None for anything else."""
    if len(raw) > max_bytes:
        return None
    try:
        message = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(message, dict) or message.get("type") != "auth":
        return None
    token = message.get("token")
    return token if isinstance(token, str) and token else None
