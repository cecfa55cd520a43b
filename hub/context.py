"""The typed context the composition root hands to every component and plug-in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from databases import Database

from config.loader import Settings
from hub.broadcast import Broadcaster
from hub.bus import EventBus

if TYPE_CHECKING:
    from hub.runtime import Hub


@dataclass(frozen=True, slots=True)
class Context:
    """Settings, the database, the event bus and the domain services of one running hub.

    Plug-ins get this in `setup(ctx, config)`: they subscribe to `bus` for events, use `db`
    for their own tables, and go through `hub` (the printers service: `command`,
    `printer_status`, `printers`) to act, so the API's rules apply to them too."""

    settings: Settings
    db: Database
    bus: EventBus
    broadcaster: Broadcaster
    hub: Hub
