"""Keep a running hub's printers in step with the database when another process changes them
(`printforge printers import` while the hub runs): a cheap fingerprint query every POLL_S."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from hub.events import PrinterConfigured
from hub.store import printers as printers_store

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger(__name__)

# Seconds between two looks at the printers table's fingerprint; a change made by another
# process is applied on the second look that sees it (within 2 * POLL_S).
POLL_S = 1.0
PICKUP_S = 2 * POLL_S


async def sync_once(hub: Hub) -> tuple[int, int, int]:
    """Apply the stored printers to the hub: (added, changed, removed)."""
    from hub.runtime import to_record

    rows = {row.id: row for row in await printers_store.list_all(hub.db)}
    removed = [pid for pid in hub.printers if pid not in rows]
    for printer_id in removed:
        await hub.forget_printer(printer_id)
    found = [(row, hub.printers.get(pid)) for pid, row in rows.items()]
    news = [(row, current) for row, current in found if current != row]
    if news:
        # Another process stored the changes; their events commit with their outbox rows from
        # here, in one transaction (an import of thousands is one write, not one each).
        async with hub.emitter.batch() as change:
            for row, current in news:
                await change.emit(
                    PrinterConfigured(
                        row.id, row.name, row.protocol, row.model or "", current is None
                    )
                )
    for row, _ in news:
        hub.printers[row.id] = row
        await hub.manager.apply(to_record(row))
    added = sum(1 for _, current in news if current is None)
    return added, len(news) - added, len(removed)


def _own_fingerprint(hub: Hub) -> tuple[int, float]:
    """The fingerprint the database would have if it held exactly the hub's printers."""
    rows = hub.printers.values()
    return len(rows), max((row.updated_at for row in rows), default=0.0)


async def watch(hub: Hub, poll_s: float = POLL_S) -> None:
    """Until cancelled: when the printers table's fingerprint moves, bring the hub in step.

    A fingerprint the hub's own table explains was this hub's change; any other is loaded once
    two looks in a row agree, so a change the hub is making (stored, not yet in its table) is
    never loaded as if another process had made it."""
    seen = await printers_store.fingerprint(hub.db)
    candidate: tuple[int, float] | None = None
    while True:
        await asyncio.sleep(poll_s)
        try:
            now = await printers_store.fingerprint(hub.db)
            if now == seen or now == _own_fingerprint(hub):
                seen, candidate = now, None
                continue
            if now != candidate:
                candidate = now
                continue
            added, changed, removed = await sync_once(hub)
            seen, candidate = now, None
            if added or changed or removed:
                log.info(
                    "printers changed in the database: %d added, %d changed, %d removed",
                    added,
                    changed,
                    removed,
                )
        except Exception as exc:
            # The database may be away for a while; the next look tries again.
            log.warning("printer table check failed: %s", exc)
