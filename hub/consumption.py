"""Filament consumption: what each print used, per tray and spool, deducted exactly once.

A print's use is worked out at its terminal lifecycle step (`PrintRecorded` of a finished,
failed, cancelled or unknown print), from the trays it was seen drawing from and the printer's
own figures (see docs/filament.md for which source wins). The ledger's unique (print, spool)
makes a replayed finish or a restart harmless; the record's `filament_g` marks it accounted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from databases import Database

from hub.bus import EventBus, Unsubscribe
from hub.events import AmsEvent, PrintRecorded, ProgressEvent
from hub.filament import EXTERNAL_TRAY, FilamentService
from hub.file_figures import FileFigures, ReadFile
from hub.model import HmsError, Job, PrinterState
from hub.retry import until_stored
from hub.store import history as history_store
from hub.store import prints as prints_store
from hub.store import spools as spools_store
from hub.store.db import held_connection
from hub.store.spools import DENSITIES, Spool
from streams.events import LifecycleKind

log = logging.getLogger(__name__)

# 1.75 mm PLA: what a millimetre weighs when no spool says otherwise.
DEFAULT_G_PER_MM = 3.141592653589793 * (0.175 / 2) ** 2 * 0.1 * DENSITIES["PLA"]
STARTED = LifecycleKind.STARTED
IN_BETWEEN = (LifecycleKind.PAUSED, LifecycleKind.RESUMED)


@dataclass(frozen=True, slots=True)
class Usage:
    """How much of the whole file a print used: grams, or millimetres, or nothing known."""

    grams: float | None
    mm: float | None
    source: str


def usage_of(job: Job, outcome: str, progress: float) -> Usage:
    """The print's total use by the best source the printer offers.

    Moonraker's `filament_used` counter wins: it is what the extruder actually pushed (purges,
    retractions, speed and flow changes included) up to the very end, whatever the outcome. Else
    the file's estimate (grams, or a length) scaled by the progress reached: a finished print
    used all of it, a failed or cancelled one its share."""
    if job.filament_used_mm is not None and job.filament_used_mm > 0:
        return Usage(None, job.filament_used_mm, "printer_counter")
    share = 1.0 if outcome == "finished" else min(max(progress, 0.0), 100.0) / 100.0
    if job.filament_g is not None:
        return Usage(job.filament_g * share, None, "file_estimate")
    if job.filament_mm is not None:
        return Usage(None, job.filament_mm * share, "file_estimate")
    return Usage(None, None, "unknown")


def tray_shares(
    segments: list[tuple[int, float]] | None, progress: float
) -> dict[int, float] | None:
    """Each tray's share of a print from when each became active (progress %, from the start)
    up to the progress reached; None when unknown or one tray fed it all."""
    if not segments or len({tray for tray, _ in segments}) < 2:
        return None
    ends = [start for _, start in segments[1:]] + [max(progress, segments[-1][1])]
    fed: dict[int, float] = {}
    for (tray, start), end in zip(segments, ends, strict=True):
        fed[tray] = fed.get(tray, 0.0) + max(0.0, end - start)
    total = sum(fed.values())
    return None if total <= 0 else {tray: part / total for tray, part in fed.items()}


class Consumption:
    """Bus subscriber that books each print's filament once and watches for running out."""

    def __init__(
        self,
        db: Database,
        bus: EventBus,
        filament: FilamentService,
        has_trays: Callable[[str], bool] = lambda printer_id: True,
        read_file: ReadFile | None = None,
    ) -> None:
        self.db = db
        # The file's figures for printers that state none themselves (Bambu).
        self.figures = FileFigures(db, read_file)
        # Whether a printer reports trays (Bambu AMS); the others print from tray 254.
        self.has_trays = has_trays
        self.bus = bus
        self.filament = filament
        self._unsubscribe: list[Unsubscribe] = []
        self._open: dict[str, str] = {}  # printer -> print id of its running print
        self._active: dict[str, int | None] = {}  # printer -> active tray
        # (print id, tray) pairs already written to history: an AMS report (remain %,
        # humidity) arrives many times per print, a tray change only a few times.
        self._noted: set[tuple[str, int]] = set()
        self._job: dict[str, Job] = {}  # printer -> latest job seen
        self._errors: dict[str, tuple[HmsError, ...]] = {}  # printer -> errors during the print
        self._runout: set[tuple[str, str]] = set()  # (print, spool) already warned
        self._checked: dict[str, int] = {}  # printer -> whole percent last checked for run-out
        # print id -> (tray, progress % when it became active), from the print's start: which
        # tray fed which part of the print, for a print whose file has no slot -> tray mapping.
        # Stored with the print at every change (`prints.tray_feed`), so a restart keeps it.
        self._segments: dict[str, list[tuple[int, float]]] = {}

    async def start(self) -> None:
        """Resume tracking the prints the database says are running; subscribe."""
        for record in await prints_store.open_prints(self.db):
            self._open[record.printer_id] = record.id
        self._segments.update(await history_store.tray_feeds(self.db, list(self._open.values())))
        bus = self.bus
        self._unsubscribe = [
            bus.subscribe(PrinterState, self._on_state, name="consumption-state", inline=True),
            bus.subscribe(AmsEvent, self._on_ams, name="consumption-ams"),
            bus.subscribe(ProgressEvent, self._on_progress, name="consumption-progress"),
            bus.subscribe(PrintRecorded, self._on_print, name="consumption", max_pending=None),
        ]

    def stop(self) -> None:
        """Stop listening."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []

    # Following prints -------------------------------------------------------------------------

    def _on_state(self, state: PrinterState) -> None:
        # Inline and cheap: keep only what the terminal step needs.
        if state.job is not None:
            self._job[state.printer_id] = state.job
        if state.errors:
            self._errors[state.printer_id] = state.errors

    async def _on_ams(self, event: AmsEvent) -> None:
        self._active[event.printer_id] = event.active_tray
        print_id = self._open.get(event.printer_id)
        segments = None if print_id is None else self._segments.get(print_id)
        changed = segments is not None and event.active_tray not in (None, segments[-1][0])
        if segments is not None and changed:
            assert event.active_tray is not None
            # The progress in the report that moved the tray (the status stream is throttled,
            # so the last state seen may lag); never before the previous change.
            job = self._job.get(event.printer_id)
            at = event.progress
            if at is None:
                at = job.progress if job is not None else 0.0
            at = max(at, segments[-1][1])
            segments.append((event.active_tray, at))
        # Noting a tray and warning of a run-out are once-only: an outage delays them.
        await until_stored(
            f"tray note of {event.printer_id}",
            lambda: self._ams_step(event, changed),
            retry_any=False,
        )

    async def _ams_step(self, event: AmsEvent, changed: bool = False) -> None:
        print_id = self._open.get(event.printer_id)
        segments = None if print_id is None else self._segments.get(print_id)
        if print_id is not None and segments is not None and changed:
            await history_store.save_tray_feed(self.db, print_id, segments)
        if print_id is not None and event.active_tray is not None:
            await self._note_tray(event.printer_id, print_id, event.active_tray)
        if print_id is not None:
            for unit in event.units:
                for tray in unit.trays:
                    if tray.empty and tray.slot == event.active_tray:
                        await self._warn_runout(event.printer_id, print_id, tray.slot, None)

    async def _note_tray(self, printer_id: str, print_id: str, tray: int) -> None:
        if (print_id, tray) in self._noted:
            return
        spool = await self._spool_on(printer_id, tray)
        await history_store.note_tray(
            self.db, print_id, tray, None if spool is None else spool.id,
            None if spool is None else spool.material, None if spool is None else spool.color,
        )  # fmt: skip
        self._noted.add((print_id, tray))

    async def _tray_entry(self, printer_id: str, tray: int) -> dict[str, Any]:
        spool = await self._spool_on(printer_id, tray)
        return {"tray": tray, "spool_id": None if spool is None else spool.id,
                "material": None if spool is None else spool.material,
                "color": None if spool is None else spool.color}  # fmt: skip

    async def _spool_on(self, printer_id: str, tray: int) -> Spool | None:
        spool_id = (await spools_store.assignments(self.db, printer_id)).get((printer_id, tray))
        return None if spool_id is None else await spools_store.get(self.db, spool_id)

    async def _on_print(self, event: PrintRecorded) -> None:
        async def step() -> None:
            # One connection for the handful of statements a step takes (see held_connection).
            async with held_connection(self.db):
                await self._print_step(event)

        # Every statement of a step is safe to run again: an outage delays it, never loses it.
        await until_stored(
            f"filament step {event.event.kind.value} of {event.job_key}", step, retry_any=False
        )

    async def _print_step(self, event: PrintRecorded) -> None:
        kind = event.event.kind
        if kind is STARTED:
            self._open[event.printer_id] = event.print_id
            self._errors.pop(event.printer_id, None)
            await history_store.set_printer_name(
                self.db, event.print_id, self.filament.name_of(event.printer_id)
            )
            active = self._active.get(event.printer_id)
            if not self.has_trays(event.printer_id):
                active = EXTERNAL_TRAY
            if active is not None:
                seen_from_start = event.event.progress <= 1.0
                if active != EXTERNAL_TRAY and seen_from_start:
                    # Seen from its start: the tray changes that follow tell the shares (a
                    # feed already stored is kept: the start step may be replayed).
                    if event.print_id not in self._segments:
                        self._segments[event.print_id] = [(active, 0.0)]
                    await history_store.save_tray_feed(
                        self.db, event.print_id, self._segments[event.print_id]
                    )
                await self._note_tray(event.printer_id, event.print_id, active)
            return
        if kind in IN_BETWEEN:
            return
        if self._open.get(event.printer_id) == event.print_id:
            del self._open[event.printer_id]
        self._noted = {noted for noted in self._noted if noted[0] != event.print_id}
        await history_store.set_printer_name(
            self.db, event.print_id, self.filament.name_of(event.printer_id)
        )
        await self.account(event)
        self._segments.pop(event.print_id, None)

    # Booking a finished print -----------------------------------------------------------------

    async def account(self, event: PrintRecorded) -> None:
        """Deduct what the print used from its spools (once) and write its filament record."""
        if await history_store.accounted(self.db, event.print_id):
            return  # a replayed terminal step: already booked
        lifecycle = event.event
        job = lifecycle.job
        live = self._job.get(event.printer_id)
        if (
            job.filament_used_mm is None and job.filament_g is None and job.filament_mm is None
            and live is not None and live.file == job.file
        ):  # fmt: skip
            # A step learnt after the fact (a printer's job history) may lack the figures the
            # live reports of the same print carried.
            job = live
        outcome = lifecycle.kind.value
        usage = usage_of(job, outcome, lifecycle.progress)
        problems: list[dict[str, str]] = []
        per_tray: dict[int, float] | None = None
        if usage.source == "unknown" and self.has_trays(event.printer_id):
            figures = await self.figures.of(event.printer_id, event.print_id, job.file)
            if figures.grams is not None:
                scaled = usage_of(
                    Job(job.file, filament_g=figures.grams), outcome, lifecycle.progress
                )
                usage = Usage(scaled.grams, None, figures.source)
                per_tray = figures.per_tray
            elif figures.why:
                problems.append({"code": "filament_unknown", "message": figures.why})
        trays = await history_store.noted_trays(self.db, event.print_id)
        if not trays:
            tray = self._active.get(event.printer_id)
            if tray is None or not self.has_trays(event.printer_id):
                tray = EXTERNAL_TRAY
            trays = [await self._tray_entry(event.printer_id, tray)]
        if per_tray:
            # The slots' own trays: each gets its slot's share (a tray never seen active too).
            seen = {entry["tray"] for entry in trays}
            trays += [
                await self._tray_entry(event.printer_id, t) for t in per_tray if t not in seen
            ]
        segments = self._segments.get(event.print_id)
        if segments is None:
            # Followed by an earlier hub process (a restart before this print was tracked).
            segments = (await history_store.tray_feeds(self.db, [event.print_id])).get(
                event.print_id
            )
        shares = tray_shares(segments, lifecycle.progress)
        booked: list[dict[str, Any]] = []
        for entry in trays:
            # Per-slot figures with the slot -> tray mapping: each tray its own; else the share
            # of the print each tray fed (AMS tray changes seen from the start); else evenly.
            share = 1.0 / len(trays)
            if per_tray:
                share = per_tray.get(entry["tray"], 0.0) / sum(per_tray.values())
            elif shares is not None:
                share = shares.get(entry["tray"], 0.0)
            spool = None
            if entry["spool_id"] is not None:
                spool = await spools_store.get(self.db, entry["spool_id"])
            g_per_mm = DEFAULT_G_PER_MM if spool is None else spool.grams_per_mm()
            if usage.grams is not None:
                grams, mm = usage.grams * share, usage.grams * share / g_per_mm
            elif usage.mm is not None:
                grams, mm = usage.mm * share * g_per_mm, usage.mm * share
            else:
                grams, mm = 0.0, 0.0
            price = None if spool is None else spool.price_per_kg
            booked.append({
                **entry,
                "material": entry["material"] or (spool.material if spool else None),
                "color": entry["color"] or (spool.color if spool else None),
                "grams": round(grams, 3), "mm": round(mm, 1),
                "cost": None if price is None else round(grams * price / 1000.0, 4),
            })  # fmt: skip
            if spool is not None and grams > 0:
                await self._deduct(event, spool, entry["tray"], grams, usage.source)
        errors = [
            {"code": e.code, "message": e.text} for e in self._errors.pop(event.printer_id, ())
        ] + problems
        layer = job.layer if job.layer is not None else None
        await history_store.write_usage(self.db, event.print_id, booked, layer=layer, errors=errors)

    async def _deduct(
        self, event: PrintRecorded, spool: Spool, tray: int, grams: float, source: str
    ) -> None:
        # The deduction, a low-stock notification and the spool's event commit together.
        async with self.filament.emitter.batch():
            new = await spools_store.record(
                self.db, spool.id, "print", -grams, print_id=event.print_id,
                printer_id=event.printer_id, tray=tray,
                note=f"{event.event.kind.value} ({source})",
            )  # fmt: skip
            if not new:
                return
            after = await spools_store.get(self.db, spool.id)
            if after is None:
                return
            await self.filament.check_low(after)
            after = await spools_store.get(self.db, spool.id) or after
            await self.filament.changed(after, "consumed", where=(event.printer_id, tray))

    # Running out ------------------------------------------------------------------------------

    async def _on_progress(self, event: ProgressEvent) -> None:
        print_id = self._open.get(event.printer_id)
        job = self._job.get(event.printer_id)
        if print_id is None or job is None:
            return
        # progress$ also fires for remaining-time changes: look at the spools once per percent.
        if self._checked.get(event.printer_id) == event.progress:
            return
        self._checked[event.printer_id] = event.progress
        usage = usage_of(job, "running", float(event.progress))
        if usage.grams is None and usage.mm is None:
            return
        trays = await history_store.noted_trays(self.db, print_id)
        for entry in trays:
            if entry["spool_id"] is None:
                continue
            spool = await spools_store.get(self.db, entry["spool_id"])
            if spool is None:
                continue
            if usage.grams is not None:
                used = usage.grams / len(trays)
            else:
                used = (usage.mm or 0.0) / len(trays) * spool.grams_per_mm()
            if spool.remaining_g - used <= 0:
                await self._warn_runout(event.printer_id, print_id, entry["tray"], spool)

    async def _warn_runout(
        self, printer_id: str, print_id: str, tray: int, spool: Spool | None
    ) -> None:
        if spool is None:
            spool = await self._spool_on(printer_id, tray)
        key = (print_id, spool.id if spool is not None else f"tray-{tray}")
        if key in self._runout:
            return
        name = self.filament.name_of(printer_id)
        what = "" if spool is None else f" (spool {spool.name or spool.material} {spool.color})"
        await self.filament.notify(
            printer_id, "filament.runout", "Filament ran out",
            f"{name}: tray {tray}{what} ran out during the print",
            {"tray": tray, "print_id": print_id, "spool_id": None if spool is None else spool.id},
        )  # fmt: skip
        self._runout.add(key)
