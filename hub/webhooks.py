"""Webhook administration: endpoints, test messages, deliveries and redelivery (one function each)."""

from __future__ import annotations

import ipaddress
import json
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

from hub.errors import Invalid, NotFound
from hub.outbound import EVENT_TYPES, Outbound, message_id, unmatched
from hub.runtime import Hub
from hub.store import outbox as outbox_store
from hub.store import webhooks as store
from hub.store.outbox import Delivery, NewMessage
from hub.store.webhooks import Webhook
from integrations.webhooks.guard import parse_networks, refusal

KIND = "webhook"


def check_url(hub: Hub, url: str) -> None:
    """Refuse a URL that can never be delivered to: not http(s), no host, or an IP literal in a
    refused range. Names are judged again on every connection (see the SSRF guard)."""
    try:
        parts = urlsplit(url)
        host, scheme = parts.hostname, parts.scheme
    except ValueError:  # a bracketed host that is no IPv6 address
        host, scheme = None, ""
    if not host or scheme not in ("http", "https"):
        raise Invalid("url must be an http:// or https:// URL with a host", field="url")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return
    reason = refusal(host, parse_networks(hub.settings.webhooks.allow_networks))
    if reason is not None:
        raise Invalid(f"url: {reason}", field="url")


def check_events(events: list[str]) -> None:
    """Refuse a filter entry that selects no event type (a typo would silently get nothing)."""
    index = unmatched(events, EVENT_TYPES)
    if index is not None:
        raise Invalid(
            f"events.{index}: {events[index]!r} matches no event type (see docs/webhooks.md)",
            field=f"events.{index}",
        )


async def list_page(hub: Hub, limit: int, offset: int) -> tuple[list[Webhook], int]:
    """A page of endpoints, oldest first."""
    return await store.list_page(hub.db, limit, offset)


async def get(hub: Hub, hook_id: str) -> Webhook:
    """One endpoint, or NotFound."""
    hook = await store.get(hub.db, hook_id)
    if hook is None:
        raise NotFound(f"no webhook with id {hook_id}")
    return hook


async def create(hub: Hub, data: dict[str, Any]) -> Webhook:
    """Add an endpoint (its secret is in the result, shown this once)."""
    check_url(hub, data["url"])
    check_events(data["events"])
    return await store.create(hub.db, data)


async def update(hub: Hub, hook_id: str, data: dict[str, Any]) -> Webhook:
    """Change an endpoint; enabling it resumes its waiting deliveries."""
    if "url" in data:
        check_url(hub, data["url"])
    if "events" in data:
        check_events(data["events"])
    hook = await store.update(hub.db, hook_id, data)
    if hook is None:
        raise NotFound(f"no webhook with id {hook_id}")
    # The worker reads the target again: resumes it when enabled, stops when disabled.
    hub.outbox.wake(KIND, hook.id)
    return hook


async def delete(hub: Hub, hook_id: str) -> None:
    """Remove an endpoint and its deliveries."""
    if not await store.delete(hub.db, hook_id):
        raise NotFound(f"no webhook with id {hook_id}")
    await outbox_store.delete_target(hub.db, KIND, hook_id)


async def send_test(hub: Hub, hook_id: str) -> Delivery:
    """Queue a `webhook.test` message to the endpoint (behind any it is still waiting for)."""
    hook = await get(hub, hook_id)
    event = Outbound(
        "webhook.test",
        message_id(f"test:{uuid.uuid4()}"),
        time.time(),
        {"webhook_id": hook.id, "message": "Test message from 3DPrintForge"},
    )
    return await hub.outbox.send_now(
        NewMessage(KIND, hook.id, event.id, event.type, json.dumps(event.body()))
    )


async def deliveries(
    hub: Hub, hook_id: str, *, state: str | None, limit: int, offset: int
) -> tuple[list[Delivery], int]:
    """A page of the endpoint's deliveries, newest first."""
    await get(hub, hook_id)
    return await outbox_store.list_page(
        hub.db, KIND, hook_id, state=state, limit=limit, offset=offset
    )


async def redeliver(hub: Hub, hook_id: str, delivery_id: str) -> Delivery:
    """Send a message again (same webhook-id, a fresh retry window)."""
    await get(hub, hook_id)
    found = await hub.outbox.redeliver(KIND, hook_id, delivery_id)
    if found is None:
        raise NotFound(f"no delivery with id {delivery_id} for webhook {hook_id}")
    return found
