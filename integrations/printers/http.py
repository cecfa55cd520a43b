"""HTTP plumbing shared by the drivers that talk REST (Moonraker uploads, PrusaLink, OctoPrint)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from integrations.printers.base import AuthFailed, CommandRejected, CommandTimeout


def _reason(body: str) -> str:
    """The human part of an error body: a JSON `error`/`title`/`message`, else the text."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:200]
    if isinstance(data, dict):
        for key in ("error", "title", "message", "detail"):
            value = data.get(key)
            if isinstance(value, dict):
                value = value.get("message")
            if value:
                return str(value)[:200]
    return body.strip()[:200]


async def command_request(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    what: str,
    printer_id: str,
    limit_s: float,
    **kwargs: Any,
) -> Any:
    """Send one command over HTTP; 2xx returns the JSON body (or None), anything else raises.

    401/403 and 409 become CommandRejected with the printer's reason, a timeout
    CommandTimeout, a network error CommandRejected.
    """
    try:
        async with http.request(
            method, url, timeout=aiohttp.ClientTimeout(total=limit_s), **kwargs
        ) as response:
            body = await response.text()
            status = response.status
    except TimeoutError:
        raise CommandTimeout(
            f"printer {printer_id} did not answer '{what}' within {limit_s:g}s"
        ) from None
    except aiohttp.ClientError as exc:
        raise CommandRejected(f"printer {printer_id}: '{what}' failed: {exc}") from None
    if 200 <= status < 300:
        if not body.strip():
            return None
        try:
            return json.loads(body)
        except ValueError:
            return None
    if status in (401, 403):
        raise CommandRejected(f"printer {printer_id} refused the credentials for '{what}'")
    reason = _reason(body) or f"HTTP {status}"
    if status == 409:
        raise CommandRejected(
            f"printer {printer_id} refused '{what}' in its current state: {reason}"
        )
    raise CommandRejected(f"printer {printer_id} refused '{what}' (HTTP {status}): {reason}")


async def poll_json(
    http: aiohttp.ClientSession, path: str, *, printer_id: str, accept: tuple[int, ...] = ()
) -> tuple[int, Any]:
    """GET `path` for telemetry: (status, JSON or None) for 2xx and `accept`; raises otherwise.

    401/403 raise AuthFailed, other statuses ConnectionError, so the link supervisor
    reconnects (or slows down) as it should.
    """
    async with http.get(path) as response:
        status = response.status
        if status in (401, 403):
            raise AuthFailed(
                f"printer {printer_id} refused the credentials (HTTP {status} on {path}); "
                "check the API key or password"
            )
        if not (200 <= status < 300 or status in accept):
            raise ConnectionError(f"HTTP {status} on {path}")
        if status == 204 or response.content_length == 0:
            return status, None
        try:
            return status, await response.json(content_type=None)
        except ValueError:
            if 200 <= status < 300:
                raise ConnectionError(f"invalid JSON from {path}") from None
            return status, None
