"""What a printer offers the queue: its driver's start abilities and the filament on its trays."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from hub.events import SpoolChanged
from hub.filament import TraySpool, trays_with_spools
from hub.model import PrinterState
from hub.queue.matching import PrinterView, Tray, trays_from_ams
from hub.slicer_meta import normalize_color
from hub.store.printers import PrinterRow
from integrations.printers.registry import DriverManifest, DriverUnavailable

if TYPE_CHECKING:
    from hub.runtime import Hub


@dataclass(frozen=True)
class NoDriver:
    """A printer whose protocol has no usable driver: it starts nothing."""

    print_files: frozenset[str] = frozenset()
    tray_mapping: bool = False


NO_DRIVER = NoDriver()


class Offers:
    """The part of the dispatcher that knows what each printer offers a job."""

    hub: Hub
    spools: dict[str, list[TraySpool]]  # printer id -> spools on its trays
    spools_stale: set[str]  # printers whose spools changed since they were read
    spool_holders: dict[str, set[str]]  # spool id -> printers with it on a tray
    _wake: asyncio.Event

    def trays(self, row: PrinterRow, state: PrinterState) -> tuple[Tray, ...]:
        """The filament a printer offers: what its AMS reports (material, colour), with the
        assigned spool's grams where one is assigned; spools alone where nothing is reported
        (the single extruder of Moonraker, PrusaLink and OctoPrint printers)."""
        spools = {s.tray: s for s in self.spools.get(row.id, ())}
        live = trays_from_ams(state.ams)
        trays = [
            replace(t, grams=spools[t.slot].remaining_g) if t.slot in spools else t for t in live
        ]
        reported = {t.slot for t in live}
        for slot, spool in spools.items():
            if slot not in reported and not (self.manifest(row).tray_mapping and live):
                color = normalize_color(spool.color)
                trays.append(Tray(slot, spool.material.upper(), color, spool.remaining_g))
        return tuple(trays)

    def set_spools(self, printer_id: str, spools: list[TraySpool]) -> None:
        """Keep the spools on a printer's trays, and which printers hold each spool."""
        for old in self.spools.get(printer_id, ()):
            holders = self.spool_holders.get(old.spool_id)
            if holders is not None:
                holders.discard(printer_id)
                if not holders:
                    del self.spool_holders[old.spool_id]
        self.spools[printer_id] = spools
        for spool in spools:
            self.spool_holders.setdefault(spool.spool_id, set()).add(printer_id)

    def _on_spool(self, event: SpoolChanged) -> None:
        # The printers holding the spool, by the reverse map (a spool changes with every print
        # end: no walk over every printer's trays).
        holders = set(self.spool_holders.get(event.spool_id, ()))
        if event.printer_id:
            holders.add(event.printer_id)
        self.spools_stale.update(holders)
        self._wake.set()

    async def refresh_spools(self) -> None:
        """Read the spools of printers whose spools changed (before a pass matches them; one
        that fails to read stays stale and is read again at the next pass)."""
        for printer_id in list(self.spools_stale):
            self.set_spools(printer_id, await trays_with_spools(self.hub.db, printer_id))
            self.spools_stale.discard(printer_id)

    def view(self, row: PrinterRow) -> PrinterView:
        """A printer as matching sees it."""
        try:
            state = self.hub.manager.state(row.id)
        except KeyError:
            state = PrinterState(printer_id=row.id)
        manifest = self.manifest(row)
        return PrinterView(
            row.id, row.name, manifest.print_files, manifest.tray_mapping, row.model,
            row.nozzle_diameter, frozenset(row.tags), self.trays(row, state),
        )  # fmt: skip

    def manifest(self, row: PrinterRow) -> DriverManifest | NoDriver:
        """What the printer's driver declares about starting prints (file kinds, tray mapping)."""
        try:
            return self.hub.drivers.manifest(row.protocol)
        except DriverUnavailable:
            return NO_DRIVER
