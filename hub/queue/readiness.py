"""Is a printer ready for the next queued job, and why does a waiting job wait."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from dataclasses import replace
from typing import TYPE_CHECKING

from hub.model import ACTIVE_STATES, Connection, PrinterState, PrintState
from hub.queue.matching import machine_reason, map_filament, target_reason
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

    def observe(self, state: PrinterState) -> None:
        """Note a printer's state; a dispatch pass is asked for when it became idle."""
        idle = state.online and state.state in IDLE_STATES
        was = state.printer_id in self.idle
        if idle:
            self.idle.add(state.printer_id)
        else:
            self.idle.discard(state.printer_id)
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
        """Observe every printer's current state (a backstop for a state change not heard)."""
        for printer_id in list(self.hub.printers):
            try:
                state = self.hub.manager.state(printer_id)
            except KeyError:
                self.idle.discard(printer_id)
                continue
            self.observe(state)

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
        if job.state == "held":
            return job.waiting_reason or "held"
        if job.state != "queued":
            return job.state
        needs = self.queue.needs(job)
        machine: Counter[str] = Counter()
        material: Counter[str] = Counter()
        busy: list[str] = []
        ready: list[str] = []
        for row in self.hub.printers.values():
            view = dispatcher.view(row)
            why = target_reason(needs, view) or machine_reason(needs, view)
            if why:
                machine[why] += 1
                continue
            _, why = map_filament(needs.needs, view)
            if why:
                material[why] += 1
                continue
            gate = self.reason(row)
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
