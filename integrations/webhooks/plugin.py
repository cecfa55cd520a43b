"""Webhooks plug-in entry: bus events → outbox rows for every endpoint that wants them."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable

from config.loader import WebhookSettings
from hub.outbound import OUTBOUND_EVENTS, matches, outbound
from hub.outbox import OutboundContext, TargetKind
from hub.store import webhooks as webhooks_store
from hub.store.outbox import NewMessage
from integrations.webhooks.guard import parse_networks
from integrations.webhooks.sender import WebhookSender

KIND = "webhook"


def setup(ctx: OutboundContext, config: WebhookSettings) -> Callable[[], Awaitable[None]]:
    """Register the sender with the outbox and subscribe to the bus; the result stops both."""
    sender = WebhookSender(
        ctx.db,
        parse_networks(config.allow_networks),
        ctx.outbox.settings.timeout_s,
        ctx.user_agent,
    )
    unregister = ctx.outbox.register(TargetKind(KIND, "webhook", sender.send))

    async def on_event(event: object) -> None:
        items = outbound(event, time.time())
        if not items:
            return
        hooks = await webhooks_store.enabled(ctx.db)
        messages = [
            NewMessage(KIND, hook.id, item.id, item.type, json.dumps(item.body()))
            for item in items
            for hook in hooks
            if matches(hook.events, item.type)
        ]
        await ctx.outbox.enqueue(messages)

    # No event may be shed: every one taken from the bus becomes outbox rows.
    unsubscribe = ctx.bus.subscribe(OUTBOUND_EVENTS, on_event, name="webhooks", max_pending=None)

    async def stop() -> None:
        unsubscribe()
        unregister()
        await sender.close()

    return stop
