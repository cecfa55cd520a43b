"""Filament spools on the farm: which spool is on which tray (by hand or matched automatically
from the AMS reports), edits with their ledger entries, and the events every change publishes.

Tray numbers follow Bambu's `tray_now`: AMS unit u, slot s is u*4+s (AMS-HT units 128-135 are
their own number) and 254 is the external spool of a Bambu printer and the single extruder of
Moonraker, PrusaLink and OctoPrint printers. Consumption per print is `hub/consumption.py`.
Every change is one transaction with its events' outbox rows and notifications (`hub/emit.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from databases import Database

from hub.broadcast import Broadcaster
from hub.bus import EventBus, Unsubscribe
from hub.emit import Emitter
from hub.errors import Conflict, Invalid, NotFound
from hub.events import AmsEvent, PrinterRemoved, SpoolChanged
from hub.retry import until_stored
from hub.store import spools as store
from hub.store.db import held_connection
from hub.store.spools import DENSITIES, Spool

log = logging.getLogger(__name__)

EXTERNAL_TRAY = 254
DEFAULT_LOW_THRESHOLD_G = 100.0


@dataclass(frozen=True, slots=True)
class TraySpool:
    """A spool sitting on a printer's tray."""

    tray: int
    spool_id: str
    material: str
    color: str
    remaining_g: float


async def trays_with_spools(db: Database, printer_id: str) -> list[TraySpool]:
    """Per tray of `printer_id` that holds a spool: the spool's id, material, colour (`#RRGGBB`)
    and remaining grams, ordered by tray number (trays without a spool are left out)."""
    rows = await db.fetch_all(
        "SELECT a.tray, s.id, s.material, s.color, s.remaining_g FROM tray_assignments a"
        " JOIN spools s ON s.id = a.spool_id WHERE a.printer_id = :p ORDER BY a.tray",
        {"p": printer_id},
    )
    return [
        TraySpool(int(r["tray"]), r["id"], r["material"], r["color"], float(r["remaining_g"]))
        for r in rows
    ]


def tray_color(color: str | None) -> str | None:
    """A printer's tray colour (`RRGGBB` or `RRGGBBAA`, any case, `#` or not) as `#RRGGBB`."""
    if not color:
        return None
    text = color.lstrip("#").upper()
    return f"#{text[:6]}" if len(text) >= 6 else None


class FilamentService:
    """Spool edits and tray assignments, each publishing `SpoolChanged` and `filament.update`."""

    def __init__(
        self,
        db: Database,
        bus: EventBus,
        broadcaster: Broadcaster,
        name_of: Callable[[str], str] = str,
        emitter: Emitter | None = None,
    ) -> None:
        self.db = db
        self.emitter = emitter or Emitter(db, bus)
        self.bus = bus
        self.broadcaster = broadcaster
        self.name_of = name_of
        self._unsubscribe: list[Unsubscribe] = []
        # (printer, tray) -> what the printer last said about it, so unchanged trays cost nothing.
        self._seen: dict[tuple[str, int], tuple[Any, ...]] = {}

    def start(self) -> None:
        """Subscribe to the AMS reports and printer removals."""
        self._unsubscribe = [
            self.bus.subscribe(AmsEvent, self._on_ams, name="filament-trays"),
            self.bus.subscribe(
                PrinterRemoved, self._on_removed, name="filament-removed", max_pending=None
            ),
        ]

    def stop(self) -> None:
        """Stop listening."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []

    # Reading ------------------------------------------------------------------------------

    async def spool(self, spool_id: str) -> Spool:
        """One spool, or NotFound."""
        found = await store.get(self.db, spool_id)
        if found is None:
            raise NotFound(f"no spool with id {spool_id}")
        return found

    # Editing ------------------------------------------------------------------------------

    async def create(self, data: dict[str, Any]) -> Spool:
        """Store a new spool (density and threshold defaulted) with its opening ledger entry."""
        data = dict(data)
        data["color"] = data["color"].upper()
        data.setdefault("diameter_mm", 1.75)
        data.setdefault("density_g_cm3", DENSITIES[data["material"]])
        data.setdefault("weight_total_g", 1000.0)
        data.setdefault("low_threshold_g", DEFAULT_LOW_THRESHOLD_G)
        # More remaining than the label's total is allowed (spools are often overfilled, and a
        # correction or weighing may book it later anyway); `used_g` then reads 0.
        async with self.emitter.batch():
            spool = await store.create(self.db, data)
            await self.check_low(spool)
            spool = await self.spool(spool.id)
            await self.changed(spool, "created")
        return spool

    async def update(self, spool_id: str, data: dict[str, Any]) -> Spool:
        """Change some fields; `weight_remaining_g` or `measured_gross_g` books a ledger entry."""
        spool = await self.spool(spool_id)
        data = dict(data)
        if "color" in data:
            data["color"] = data["color"].upper()
        if "material" in data and "density_g_cm3" not in data:
            data["density_g_cm3"] = DENSITIES[data["material"]]
        tare = data.get("spool_weight_g", spool.spool_weight_g)
        if "measured_gross_g" in data and tare is None:
            raise Invalid(
                "a weighed gross weight needs spool_weight_g (the empty spool's weight)",
                field="measured_gross_g",
            )
        async with self.emitter.batch():
            await store.update(self.db, spool_id, data)
            reason = "updated"
            if "measured_gross_g" in data:
                net = max(0.0, float(data["measured_gross_g"]) - float(tare or 0.0))
                await store.record(
                    self.db, spool_id, "weighing", net - spool.remaining_g,
                    note=f"weighed {data['measured_gross_g']} g gross",
                )  # fmt: skip
                reason = "weighed"
            elif "weight_remaining_g" in data:
                delta = float(data["weight_remaining_g"]) - spool.remaining_g
                if delta:
                    await store.record(
                        self.db, spool_id, "correction", delta, note=data.get("correction_note")
                    )
                reason = "corrected"
            spool = await self.spool(spool_id)
            await self.check_low(spool)
            spool = await self.spool(spool_id)
            await self.changed(spool, reason)
        return spool

    async def delete(self, spool_id: str, *, force: bool) -> None:
        """Remove a spool; one on a tray needs `force` (then it is taken off first)."""
        spool = await self.spool(spool_id)
        if spool.assigned_printer is not None and not force:
            raise Conflict(
                f"spool {spool_id} is on printer {self.name_of(spool.assigned_printer)}"
                f" ({spool.assigned_printer}) tray {spool.assigned_tray}; unassign it first"
                " or delete with ?force=true",
                field="assigned_to",
            )
        async with self.emitter.batch():
            await store.delete(self.db, spool_id)
            await self.changed(spool, "deleted", deleted=True)

    async def assign(
        self, printer_id: str, tray: int, spool_id: str | None, *, only_if_free: bool = False
    ) -> Spool | None:
        """Put a spool on a tray (moving it from wherever it was); None frees the tray.

        With `only_if_free` (automatic matching) nothing moves unless spool and tray are
        both still free when it is written; None then says nothing was placed."""
        if spool_id is None:
            async with self.emitter.batch():
                freed = await store.unassign_tray(self.db, printer_id, tray)
                if freed is not None:
                    await self.changed(
                        await self.spool(freed), "unassigned", where=(printer_id, tray)
                    )
            return None
        spool = await self.spool(spool_id)
        if spool.archived:
            raise Invalid(f"spool {spool_id} is archived", field="spool_id")
        before = await store.assignments(self.db, printer_id)
        async with self.emitter.batch():
            placed = await store.assign(
                self.db, printer_id, tray, spool_id, only_if_free=only_if_free
            )
            if not placed:
                return None
            displaced = before.get((printer_id, tray))
            if displaced is not None and displaced != spool_id:
                await self.changed(
                    await self.spool(displaced), "unassigned", where=(printer_id, tray)
                )
            spool = await self.spool(spool_id)
            await self.changed(spool, "assigned")
        return spool

    async def unassign(self, spool_id: str) -> Spool:
        """Take a spool off its tray."""
        spool = await self.spool(spool_id)
        if spool.assigned_printer is not None:
            async with self.emitter.batch():
                await store.unassign_spool(self.db, spool_id)
                where = (spool.assigned_printer, spool.assigned_tray or 0)
                spool = await self.spool(spool_id)
                await self.changed(spool, "unassigned", where=where)
        return spool

    # Events -------------------------------------------------------------------------------

    async def changed(
        self,
        spool: Spool,
        reason: str,
        *,
        where: tuple[str, int] | None = None,
        deleted: bool = False,
    ) -> None:
        """Write a spool's change's outbox rows in the change's transaction; once it has
        committed, publish it on the bus and to /ws (`filament.update`)."""
        printer_id, tray = where or (spool.assigned_printer, spool.assigned_tray)
        public = spool.public()
        if deleted:
            public["assigned_to"] = None
        payload = {"reason": reason, "printer_id": printer_id, "tray": tray, "spool": public}
        async with self.emitter.batch() as change:
            await change.emit(
                SpoolChanged(
                    spool.id, reason, printer_id, tray, round(spool.remaining_g, 3), public
                )
            )
            change.then(lambda: self.broadcaster.publish("filament.update", payload, printer_id))

    async def notify(
        self, printer_id: str | None, kind: str, title: str, message: str, data: dict[str, Any]
    ) -> None:
        """Store a notification with its outbox rows (in the change open, if any); published
        like the stream's own (`NotificationStored`) once committed."""
        if printer_id is not None:
            data = {**data, "printer_name": self.name_of(printer_id)}
        async with self.emitter.batch() as change:
            await change.notify(
                printer_id=printer_id, kind=kind, severity="warning",
                title=title, message=message, data=data,
            )  # fmt: skip

    async def check_low(self, spool: Spool) -> None:
        """Raise `filament.low` once when a spool falls below its threshold; re-arm above it."""
        below = spool.remaining_g < spool.low_threshold_g
        if below and not spool.low_alerted:
            label = spool.name or f"{spool.material} {spool.color}"
            async with self.emitter.batch():
                await store.set_low_alerted(self.db, spool.id, True)
                await self.notify(
                    spool.assigned_printer,
                    "filament.low",
                    "Filament low",
                    f"spool {label} has {spool.remaining_g:.0f} g left"
                    f" (threshold {spool.low_threshold_g:.0f} g)",
                    {
                        "spool_id": spool.id,
                        "remaining_g": round(spool.remaining_g, 1),
                        "threshold_g": spool.low_threshold_g,
                        "tray": spool.assigned_tray,
                    },
                )
        elif not below and spool.low_alerted:
            await store.set_low_alerted(self.db, spool.id, False)

    # Automatic assignment ---------------------------------------------------------------------

    async def _on_ams(self, event: AmsEvent) -> None:
        changed = []
        for unit in event.units:
            for tray in unit.trays:
                key = (event.printer_id, tray.slot)
                facts = (tray.empty, tray.material, tray.color, tray.uuid)
                if self._seen.get(key) != facts:
                    self._seen[key] = facts
                    changed.append((tray.slot, facts))
        if not changed:
            return

        async def match() -> None:
            async with held_connection(self.db):
                for slot, facts in changed:
                    await self._match(event.printer_id, slot, *facts)

        # Matching again is harmless: an outage delays the tray's spool, never loses it.
        await until_stored(f"tray match of {event.printer_id}", match, retry_any=False)

    async def _match(
        self, printer_id: str, tray: int, empty: bool, material: str | None,
        color: str | None, uuid: str | None,
    ) -> None:  # fmt: skip
        current_id = (await store.assignments(self.db, printer_id)).get((printer_id, tray))
        current = None if current_id is None else await store.get(self.db, current_id)
        if empty:
            if current is not None:
                await self.assign(printer_id, tray, None)
            return
        if uuid is not None:
            known = await self.db.fetch_val(
                "SELECT id FROM spools WHERE tray_uuid = :u AND archived = 0", {"u": uuid}
            )
            if known is not None:
                if known != current_id:
                    await self.assign(printer_id, tray, str(known))
                return
            if current is not None and current.tray_uuid is None:
                await store.set_tray_uuid(self.db, current.id, uuid)  # learn its tag
                return
            if current is not None:  # a different tagged spool now sits there
                await self.assign(printer_id, tray, None)
                current = None
        if current is not None:
            return
        wanted = tray_color(color)
        if material is None or wanted is None:
            return
        candidates = await self.db.fetch_all(
            "SELECT s.id FROM spools s LEFT JOIN tray_assignments a ON a.spool_id = s.id"
            " WHERE s.material = :m AND s.color = :c AND s.archived = 0"
            " AND a.spool_id IS NULL",
            {"m": material.upper(), "c": wanted},
        )
        if len(candidates) != 1:
            return  # none, or ambiguous: leave it to a person
        spool_id = str(candidates[0]["id"])
        # Placed only if still free: a person may have put it on another tray meanwhile.
        if await self.assign(printer_id, tray, spool_id, only_if_free=True) is None:
            return
        if uuid is not None:
            await store.set_tray_uuid(self.db, spool_id, uuid)

    async def _on_removed(self, event: PrinterRemoved) -> None:
        for (printer_id, tray), _spool in (
            await store.assignments(self.db, event.printer_id)
        ).items():
            await self.assign(printer_id, tray, None)
        for key in [k for k in self._seen if k[0] == event.printer_id]:
            del self._seen[key]
