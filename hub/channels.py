"""Notification channel administration: apprise URLs checked and masked, tests, deliveries."""

from __future__ import annotations

import json
import uuid
from typing import Any

from hub.errors import Invalid, NotFound
from hub.model import rfc3339
from hub.outbound import message_id, notification_type, unmatched
from hub.runtime import Hub
from hub.store import channels as store
from hub.store import outbox as outbox_store
from hub.store.channels import Channel
from hub.store.outbox import Delivery, NewMessage
from integrations.notify.apprise_urls import describe
from integrations.notify.quiet import zone
from streams.events import NotificationKind

KIND = "channel"

#: The types a channel can be sent: every notification kind, dotted (`print_failed` → `print.failed`).
CHANNEL_TYPES = (
    *(notification_type(kind.value) for kind in NotificationKind),
    # Raised by the hub's services rather than the stream pipelines.
    *(
        notification_type(kind)
        for kind in (
            "filament.runout",
            "queue_empty",
            "queue_job_started",
            "queue_job_completed",
            "queue_job_failed",
            "webhook_disabled",
            "channel_disabled",
        )
    ),
)


def public(channel: Channel) -> dict[str, Any]:
    """The JSON form: the URL with its secrets masked, never as stored."""
    described = describe(channel.url)
    return {
        "id": channel.id,
        "name": channel.name,
        "service": described.service if described else None,
        "url": described.masked if described else None,
        "events": channel.events,
        "min_severity": channel.min_severity,
        "quiet_hours": channel.quiet_hours,
        "enabled": channel.enabled,
        "disabled_reason": channel.disabled_reason,
        "created_at": rfc3339(channel.created_at),
        "updated_at": rfc3339(channel.updated_at),
    }


def _check(data: dict[str, Any]) -> None:
    if "url" in data and describe(data["url"]) is None:
        raise Invalid(
            "url is not a notification URL apprise understands (e.g. ntfy://topic,"
            " mailto://user:pass@host, json://host/path)",
            field="url",
        )
    events = data.get("events", [])
    index = unmatched(events, CHANNEL_TYPES)
    if index is not None:
        raise Invalid(
            f"events.{index}: {events[index]!r} matches no notification type"
            " (see docs/notifications.md)",
            field=f"events.{index}",
        )
    quiet = data.get("quiet_hours")
    if quiet and zone(quiet["timezone"]) is None:
        raise Invalid(
            f"quiet_hours.timezone: no time zone named {quiet['timezone']!r}"
            " (use an IANA name such as Europe/Berlin)",
            field="quiet_hours.timezone",
        )


async def list_all(hub: Hub) -> list[Channel]:
    """Every channel."""
    return await store.list_all(hub.db)


async def get(hub: Hub, channel_id: str) -> Channel:
    """One channel, or NotFound."""
    channel = await store.get(hub.db, channel_id)
    if channel is None:
        raise NotFound(f"no notification channel with id {channel_id}")
    return channel


async def create(hub: Hub, data: dict[str, Any]) -> Channel:
    """Add a channel."""
    _check(data)
    return await store.create(hub.db, data)


async def update(hub: Hub, channel_id: str, data: dict[str, Any]) -> Channel:
    """Change a channel; enabling it resumes its waiting messages."""
    _check(data)
    channel = await store.update(hub.db, channel_id, data)
    if channel is None:
        raise NotFound(f"no notification channel with id {channel_id}")
    # The worker reads the target again: resumes it when enabled, stops when disabled.
    hub.outbox.wake(KIND, channel.id)
    return channel


async def delete(hub: Hub, channel_id: str) -> None:
    """Remove a channel and its messages."""
    if not await store.delete(hub.db, channel_id):
        raise NotFound(f"no notification channel with id {channel_id}")
    await outbox_store.delete_target(hub.db, KIND, channel_id)


async def send_test(hub: Hub, channel_id: str) -> Delivery:
    """Queue a test notification (quiet hours do not hold it back)."""
    channel = await get(hub, channel_id)
    body = {
        "title": "3DPrintForge test",
        "body": f"Test message for channel {channel.name}",
        "severity": "info",
    }
    return await hub.outbox.send_now(
        NewMessage(KIND, channel.id, message_id(f"test:{uuid.uuid4()}"), "channel.test",
                   json.dumps(body))
    )  # fmt: skip


async def deliveries(
    hub: Hub, channel_id: str, *, state: str | None, limit: int, offset: int
) -> tuple[list[Delivery], int]:
    """A page of the channel's messages, newest first."""
    await get(hub, channel_id)
    return await outbox_store.list_page(
        hub.db, KIND, channel_id, state=state, limit=limit, offset=offset
    )


async def redeliver(hub: Hub, channel_id: str, delivery_id: str) -> Delivery:
    """Send a message again."""
    await get(hub, channel_id)
    found = await hub.outbox.redeliver(KIND, channel_id, delivery_id)
    if found is None:
        raise NotFound(f"no delivery with id {delivery_id} for channel {channel_id}")
    return found
