"""The toy outbound plug-in: one line per printer event, as an outbound channel would send it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hub.context import Context
from hub.events import PrinterConfigured, PrinterState

#: Every running instance, so a test can look at what it sent.
INSTANCES: list[Outbox] = []


@dataclass
class Outbox:
    """What the plug-in "sent", and whether it has been stopped."""

    prefix: str
    sent: list[str] = field(default_factory=list)
    stopped: bool = False
    unsubscribe: list[Callable[[], None]] = field(default_factory=list)

    def stop(self) -> None:
        """Leave the bus."""
        for cancel in self.unsubscribe:
            cancel()
        self.stopped = True


async def setup(ctx: Context, config: dict[str, Any]) -> Outbox:
    """Subscribe to printer events; the returned outbox stops it."""
    box = Outbox(config.get("prefix", "toy"))

    def on_state(state: PrinterState) -> None:
        box.sent.append(f"{box.prefix} {state.printer_id} {state.state.value}")

    async def on_configured(event: PrinterConfigured) -> None:
        box.sent.append(f"{box.prefix} configured {event.name} ({event.protocol})")

    box.unsubscribe.append(ctx.bus.subscribe(PrinterState, on_state, name="toyout.state"))
    box.unsubscribe.append(
        ctx.bus.subscribe(PrinterConfigured, on_configured, name="toyout.configured")
    )
    INSTANCES.append(box)
    return box
