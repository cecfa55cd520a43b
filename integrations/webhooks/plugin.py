"""Webhooks plug-in entry: events → outbox rows for every endpoint that wants them."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence

from config.loader import WebhookSettings
from hub.context import Context
from hub.outbound import OUTBOUND_EVENTS, matches, outbound
from hub.outbox import TargetKind
from hub.runtime import package_version
from hub.store import webhooks as webhooks_store
from hub.store.outbox import NewMessage
from integrations.webhooks.guard import parse_networks
from integrations.webhooks.sender import WebhookSender

KIND = "webhook"


def setup(ctx: Context, config: WebhookSettings) -> Callable[[], Awaitable[None]] | None:
    """Register the sender and planner with the outbox, subscribe to the bus; the result stops all."""
    if not config.enabled:
        return None
    outbox = ctx.hub.outbox
    sender = WebhookSender(
        ctx.db,
        parse_networks(config.allow_networks),
        outbox.settings.timeout_s,
        f"3DPrintForge/{package_version()}",
    )
    unregister = outbox.register(TargetKind(KIND, "webhook", sender.send))

    async def plan(events: Sequence[object], now: float) -> list[NewMessage]:
        items = [item for event in events for item in outbound(event, now)]
        if not items:
            return []
        hooks = await webhooks_store.enabled(ctx.db)  # once for all the events
        return [
            NewMessage(KIND, hook.id, item.id, item.type, json.dumps(item.body()))
            for item in items
            for hook in hooks
            if matches(hook.events, item.type)
        ]

    async def on_event(event: object) -> None:
        if getattr(event, "outboxed", False):
            # Its rows were written with its own row, in the writer's transaction.
            return
        # One connection for the lookup and the write (SQLite opens one per query otherwise).
        async with ctx.db.connection():
            await outbox.enqueue(await plan([event], time.time()))

    unplan = outbox.plan(plan)
    # No event may be shed: every one taken from the bus becomes outbox rows.
    unsubscribe = ctx.bus.subscribe(OUTBOUND_EVENTS, on_event, name="webhooks", max_pending=None)

    async def stop() -> None:
        # Events still buffered for this subscriber become rows before it goes.
        await ctx.bus.drain(5.0)
        unsubscribe()
        unplan()
        unregister()
        await sender.close()

    return stop
