"""A print's filament from its file, for printers that report no figure of their own (Bambu).

Two sources, the first that answers wins: the queue's record of the print (the stored file's
per-slot grams and the `ams_mapping` it was started with, so each tray gets its own slot's
share), else the 3MF project read back from the printer (the plate's total). See docs/filament.md.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from databases import Database

from hub.slicer_meta import SlicerMeta, UnreadableFile, parse_3mf
from hub.store import queue as queue_store
from integrations.printers.base import CommandTimeout

log = logging.getLogger(__name__)

# Reading a print's 3MF from the printer: bounded so a slow card only delays booking.
FILE_TIMEOUT_S = 20.0
FILE_LIMIT = 200 * 1024 * 1024
FILES_CACHED = 32
# (printer id, path on its storage, time limit s, byte limit) -> the file's bytes.
ReadFile = Callable[[str, str, float, int], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class Figures:
    """The whole file's grams, per tray when the slots' trays are known; else why not."""

    grams: float | None
    per_tray: dict[int, float] | None = None
    source: str = "unknown"
    why: str = ""


class FileFigures:
    """Finds the file's figures of a print; caches what it read from printers."""

    def __init__(self, db: Database, read_file: ReadFile | None) -> None:
        self.db = db
        self.read_file = read_file
        self._files: OrderedDict[tuple[str, str], SlicerMeta] = OrderedDict()

    async def of(self, printer_id: str, print_id: str, file: str) -> Figures:
        """The file's figures of the print `print_id` of `file` on `printer_id`."""
        queued = await self.from_queue(print_id)
        if queued is not None:
            return queued
        return await self.from_printer(printer_id, file)

    async def from_queue(self, print_id: str) -> Figures | None:
        """Per tray, from the stored file's slots and the mapping the queue started it with."""
        run = await queue_store.run_of_print(self.db, print_id)
        if run is None or not run.ams_mapping:
            return None
        job = await queue_store.get_job(self.db, run.job_id)
        if job is None:
            return None
        per_tray: dict[int, float] = {}
        for material in job.materials:
            slot, grams = material.get("slot"), material.get("grams")
            if not isinstance(slot, int) or not isinstance(grams, int | float) or slot < 1:
                continue
            tray = run.ams_mapping[slot - 1] if slot <= len(run.ams_mapping) else -1
            if tray >= 0:
                per_tray[tray] = per_tray.get(tray, 0.0) + float(grams)
        if not per_tray:
            return None
        return Figures(sum(per_tray.values()), per_tray, "queue_file")

    async def from_printer(self, printer_id: str, file: str) -> Figures:
        """The plate's total from the 3MF slice info read from the printer's storage."""
        read = self.read_file
        if read is None or not file:
            return Figures(None)
        # Bambu reports the project's name without `.3mf` (subtask_name) or the stored name.
        names = [file] if file.lower().endswith(".3mf") else [f"{file}.3mf", file]
        why = ""
        for name in names:
            meta = self._files.get((printer_id, name))
            if meta is None:
                try:
                    data = await read(printer_id, name, FILE_TIMEOUT_S, FILE_LIMIT)
                    meta = await asyncio.to_thread(parse_3mf, data)
                except UnreadableFile as exc:
                    why = f"{name}: {exc}"
                    continue
                except CommandTimeout as exc:
                    why = f"could not read {name} from the printer: {exc}"
                    break  # a printer that hangs on one name would on the next: don't wait twice
                except Exception as exc:  # any failure: book nothing, say why
                    why = f"could not read {name} from the printer: {exc}"
                    continue
                self._files[(printer_id, name)] = meta
                while len(self._files) > FILES_CACHED:
                    self._files.popitem(last=False)
            self._files.move_to_end((printer_id, name))
            grams = meta.grams
            if grams is None and any(s.grams is not None for s in meta.slots):
                grams = sum(s.grams or 0.0 for s in meta.slots)
            if grams is None:
                return Figures(None, why=f"{name} states no filament weight")
            return Figures(grams, None, "file_slice_info")
        log.info("printer %s: no filament figure for %s (%s)", printer_id, file, why)
        return Figures(None, why=why)
