"""Notification channels plug-in entry: stored notifications → outbox rows → apprise."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from config.loader import NotifySettings
from hub.context import Context
from hub.events import NotificationStored
from hub.outbound import SEVERITIES, matches, message_id, notification_type
from hub.outbox import Attempt, TargetKind
from hub.store import channels as channels_store
from hub.store.channels import Channel
from hub.store.outbox import Delivery, NewMessage
from integrations.notify import apprise_urls
from integrations.notify.quiet import quiet_until
from integrations.webhooks.guard import parse_networks

KIND = "channel"


def wants(channel: Channel, event_type: str, severity: str) -> bool:
    """True when the channel's event filter and minimum severity let this notification through."""
    rank = SEVERITIES.index(severity) if severity in SEVERITIES else 0
    return rank >= SEVERITIES.index(channel.min_severity) and matches(channel.events, event_type)


def message(note: dict[str, Any]) -> dict[str, Any]:
    """The stored form of one channel message: what apprise is given."""
    return {
        "title": str(note.get("title", "")),
        "body": str(note.get("message", "")),
        "severity": str(note.get("severity", "info")),
    }


def setup(ctx: Context, config: NotifySettings) -> Callable[[], Awaitable[None]] | None:
    """Register the apprise sender with the outbox and subscribe to stored notifications."""
    if not config.enabled:
        return None
    outbox = ctx.hub.outbox
    allow = parse_networks(config.allow_networks)

    async def send(delivery: Delivery) -> Attempt:
        channel = await channels_store.get(ctx.db, delivery.target_id)
        if channel is None:
            return Attempt(False, error="the channel was deleted", retry=False)
        payload = json.loads(delivery.payload)
        sent = await apprise_urls.send(
            channel.url, payload["title"], payload["body"], payload["severity"], allow
        )
        # A refused address stays refused until an admin lists its network: no retries.
        return Attempt(sent.ok, error=sent.error, retry=not sent.refused)

    unregister = outbox.register(TargetKind(KIND, "notification channel", send))

    async def plan(events: Sequence[object], now: float) -> list[NewMessage]:
        notes = [event.note for event in events if isinstance(event, NotificationStored)]
        if not notes:
            return []
        channels = await channels_store.enabled(ctx.db)  # once for all the notifications
        messages = []
        for note in notes:
            event_type = notification_type(str(note.get("kind", "")))
            severity = str(note.get("severity", "info"))
            messages += [
                NewMessage(
                    KIND,
                    channel.id,
                    message_id(f"note:{note['id']}"),
                    event_type,
                    json.dumps(message(note)),
                    not_before=quiet_until(now, channel.quiet_hours),
                )
                for channel in channels
                if wants(channel, event_type, severity)
            ]
        return messages

    async def on_note(event: NotificationStored) -> None:
        if event.outboxed:
            # Its rows were written with the notification, in the writer's transaction.
            return
        async with ctx.db.connection():
            await outbox.enqueue(await plan([event], time.time()))

    unplan = outbox.plan(plan)
    unsubscribe = ctx.bus.subscribe(
        NotificationStored, on_note, name="notify-channels", max_pending=None
    )

    async def stop() -> None:
        # Notifications still buffered for this subscriber become rows before it goes.
        await ctx.bus.drain(5.0)
        unsubscribe()
        unplan()
        unregister()

    return stop
