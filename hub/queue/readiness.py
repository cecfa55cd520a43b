"""Is a printer ready for the next queued job, and why does a waiting job wait."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Hashable
from dataclasses import replace
from typing import TYPE_CHECKING

from hub.model import ACTIVE_STATES, Connection, PrinterState, PrintState
from hub.queue.index import group_key
from hub.queue.matching import (
    JobNeeds,
    PrinterView,
    machine_reason,
    map_filament,
    target_reason,
)
from hub.store import printers as printers_store
from hub.store.printers import PrinterRow
from hub.store.queue import JobRow

if TYPE_CHECKING:
    from hub.queue.dispatcher import Dispatcher
    from hub.queue.service import QueueService
    from hub.runtime import Hub

IDLE_STATES = frozenset(
    {PrintState.IDLE, PrintState.FINISHED, PrintState.CANCELLED, PrintState.FAILED}
)


class Readiness:
    """The gates in front of a printer: online and idle, not in maintenance, bed cleared, not
    taken over by hand, not already holding a queued job."""

    def __init__(self, hub: Hub, queue: QueueService) -> None:
        self.hub = hub
        self.queue = queue
        self.idle_since: dict[str, float] = {}  # monotonic time the printer last became idle
        self.idle_seen: dict[str, float] = {}  # same, until a start is sent (for latency)
        self.manual: set[str] = set()  # printers a person started a print on
        # Printers that refused starts: (refusals in a row, monotonic time they may be tried).
        self.cooldown: dict[str, tuple[int, float]] = {}
        self.idle: set[str] = set()  # printers online and idle: the dispatcher's candidates
        # Printers to look at in the next resync: those that reported to the manager since (its
        # tracker, set at `track`), and those whose idleness the bus changed since (a report
        # heard late may be older than the state the last resync read). None: every printer.
        self._reported: set[str] | None = None
        self._heard: set[str] = set()
        self._synced = False

    def track(self) -> None:
        """From now on a resync reads only the printers that reported or changed since the last
        one (the first reads every printer)."""
        self._reported = self.hub.manager.track()
        self._synced = False

    def observe(self, state: PrinterState) -> None:
        """Note a printer's state; a dispatch pass is asked for when it became idle."""
        idle = state.online and state.state in IDLE_STATES
        was = state.printer_id in self.idle
        if idle:
            self.idle.add(state.printer_id)
        else:
            self.idle.discard(state.printer_id)
        if idle != was:
            self._heard.add(state.printer_id)
        if idle and not was:
            now = time.monotonic()
            self.idle_since[state.printer_id] = now
            self.idle_seen[state.printer_id] = now
            self.hub.dispatcher.wake()

    def refused(self, printer_id: str) -> float:
        """The printer refused a start (or did not begin it): leave it alone for a while,
        twice as long for each refusal in a row, at most `cooldown_max_s`; the delay."""
        settings = self.hub.settings.queue
        refusals = self.cooldown.get(printer_id, (0, 0.0))[0] + 1
        delay = min(settings.cooldown_s * 2 ** (refusals - 1), settings.cooldown_max_s)
        self.cooldown[printer_id] = (refusals, time.monotonic() + delay)
        asyncio.get_running_loop().call_later(delay, self.hub.dispatcher.wake)
        return delay

    def started(self, printer_id: str) -> None:
        """The printer took a start: its cooldown is over."""
        self.cooldown.pop(printer_id, None)

    def cooling(self, row: PrinterRow) -> str | None:
        """Why the printer is left alone after refused starts (None when it is not)."""
        refusals, until = self.cooldown.get(row.id, (0, 0.0))
        left = until - time.monotonic()
        if left <= 0:
            return None
        starts = "start" if refusals == 1 else f"{refusals} starts in a row"
        return f"{row.name} refused its last {starts}: next try in {math.ceil(left)} s"

    def resync(self) -> None:
        """Observe the current state of every printer whose state may differ from what was last
        observed (a backstop for a state change not heard): those that reported since the last
        resync, and those the bus changed since; every printer the first time."""
        table = self.hub.printers
        if self._reported is None or not self._synced:
            ids: set[str] = set(table)
            if self._reported is not None:
                self._reported.clear()
            self._synced = True
        else:
            ids = self._reported | self._heard
            self._reported.clear()
        self._heard.clear()
        manager = self.hub.manager
        later: list[str] = []
        for printer_id in ids:
            try:
                state = manager.state(printer_id)
            except KeyError:
                self.idle.discard(printer_id)
                continue
            if printer_id not in table:
                later.append(printer_id)  # not configured yet: looked at once it is
                continue
            self.observe(state)
        self._heard.clear()  # what this resync itself changed is up to date
        if self._reported is not None:
            self._reported.update(later)

    def reason(self, row: PrinterRow, forced: bool = False) -> str | None:
        """Why the printer cannot take a job now (None when it can).

        A forced dispatch stands for a person at the printer: it skips the cooldown, bed and
        hand gates."""
        if not row.enabled:
            return f"{row.name} is disabled"
        if row.maintenance:
            return f"{row.name} is in maintenance"
        if self.queue.active_job(row.id) is not None:
            return f"{row.name} is busy with a queued job"
        try:
            state = self.hub.manager.state(row.id)
            link = self.hub.manager.link(row.id)
        except KeyError:
            return f"{row.name} is not connected"
        if link.connection is not Connection.ONLINE or not state.online:
            return f"{row.name} is {link.connection.value}"
        if state.state in ACTIVE_STATES:
            return f"{row.name} is {state.state.value}"
        if state.state not in IDLE_STATES:
            return f"{row.name} is {state.state.value}"
        if forced:
            return None
        cooling = self.cooling(row)
        if cooling:
            return cooling
        if row.id in self.manual:
            return f"{row.name} was taken over by hand (confirm its bed is clear to give it back)"
        if not (row.bed_clear or row.auto_clear_bed):
            return f"bed not cleared on {row.name}"
        return None

    async def _set_bed(self, printer_id: str, clear: bool) -> None:
        row = self.hub.printers.get(printer_id)
        if row is None or row.bed_clear == clear:
            return
        await printers_store.set_bed_clear(self.hub.db, printer_id, clear)
        self.hub.printers[printer_id] = replace(row, bed_clear=clear)

    async def bed_used(self, printer_id: str) -> None:
        """A print is going onto (or came off) the bed: it needs clearing before the next."""
        await self._set_bed(printer_id, False)

    async def beds_used(self, printer_ids: list[str]) -> None:
        """`bed_used` for many printers, in one statement."""
        ids = []
        for printer_id in dict.fromkeys(printer_ids):
            row = self.hub.printers.get(printer_id)
            if row is not None and row.bed_clear:
                ids.append(printer_id)
        if not ids:
            return
        await printers_store.set_beds_clear(self.hub.db, ids, False)
        for printer_id in ids:
            row = self.hub.printers.get(printer_id)
            if row is not None:
                self.hub.printers[printer_id] = replace(row, bed_clear=False)

    async def bed_cleared(self, printer_id: str) -> PrinterRow:
        """A person confirmed the bed is clear: the printer is the queue's again."""
        self.manual.discard(printer_id)
        await self._set_bed(printer_id, True)
        self.hub.dispatcher.wake()
        return self.hub.printer(printer_id)

    def why_waiting(self, job: JobRow | None, dispatcher: Dispatcher) -> str:
        """One line on why a queued or held job is not printing."""
        if job is None:
            return "no such job"
        return self.waiting_reasons([job], dispatcher)[job.id]

    def waiting_reasons(self, jobs: list[JobRow], dispatcher: Dispatcher) -> dict[str, str]:
        """Why each queued or held job is not printing (job id -> one line). Jobs with the
        same needs wait for the same reason: the fleet is looked at once per kind of job, each
        printer's view and gates once per call, not once per job."""
        reasons: dict[str, str] = {}
        by_kind: dict[Hashable, str] = {}
        views: dict[str, PrinterView] = {}
        gates: dict[str, str | None] = {}
        for job in jobs:
            if job.state == "held":
                reasons[job.id] = job.waiting_reason or "held"
                continue
            if job.state != "queued":
                reasons[job.id] = job.state
                continue
            needs = self.queue.needs(job)
            key = group_key(needs)
            found = by_kind.get(key)
            if found is None:
                found = by_kind[key] = self._why(needs, dispatcher, views, gates)
            reasons[job.id] = found
        return reasons

    def _why(
        self,
        needs: JobNeeds,
        dispatcher: Dispatcher,
        views: dict[str, PrinterView],
        gates: dict[str, str | None],
    ) -> str:
        machine: Counter[str] = Counter()
        material: Counter[str] = Counter()
        busy: list[str] = []
        ready: list[str] = []
        for row in self.hub.printers.values():
            view = views.get(row.id)
            if view is None:
                view = views[row.id] = dispatcher.view(row)
            why = target_reason(needs, view) or machine_reason(needs, view)
            if why:
                machine[why] += 1
                continue
            _, why = map_filament(needs.needs, view)
            if why:
                material[why] += 1
                continue
            if row.id not in gates:
                gates[row.id] = self.reason(row)
            gate = gates[row.id]
            if gate:
                busy.append(gate)
            else:
                ready.append(row.name)
        if ready:
            return f"next in line for {ready[0]}"
        if busy:
            more = f" (+{len(busy) - 3} more)" if len(busy) > 3 else ""
            return "; ".join(busy[:3]) + more
        if material:
            top = material.most_common(1)[0][0]
            if top.startswith("no ") and top.endswith(" loaded"):
                return f"no printer with {top[3:]}"
            return f"no printer with the filament: {top}"
        if machine:
            return f"no compatible printer: {machine.most_common(1)[0][0]}"
        return "no printers configured"
