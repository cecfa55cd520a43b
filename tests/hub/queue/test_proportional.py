"""The dispatcher's periodic looks cost what changed: the resync reads only printers that
reported (or that the bus moved) since the last one, the start watchdog only the jobs it
watches, and waiting reasons look at the fleet once per kind of job, with the same answers as a
walk of everything."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any

from hub.model import PrinterState, PrintState
from hub.queue.readiness import Readiness
from hub.queue.service import QueueService
from hub.store.queue import JobRow


class _Manager:
    """The printer manager's state store, counting reads; reports go to its trackers."""

    def __init__(self) -> None:
        self.states: dict[str, PrinterState] = {}
        self.trackers: list[set[str]] = []
        self.reads = 0

    def track(self) -> set[str]:
        tracker: set[str] = set()
        self.trackers.append(tracker)
        return tracker

    def report(self, printer_id: str, state: PrintState) -> None:
        self.states[printer_id] = PrinterState(printer_id, online=True, state=state)
        for tracker in self.trackers:
            tracker.add(printer_id)

    def state(self, printer_id: str) -> PrinterState:
        self.reads += 1
        return self.states[printer_id]


@dataclass
class _Hub:
    manager: _Manager = field(default_factory=_Manager)
    printers: dict[str, Any] = field(default_factory=dict)
    dispatcher: Any = field(default_factory=lambda: SimpleNamespace(wake=lambda: None))


def _fleet(size: int) -> tuple[_Hub, Readiness]:
    hub = _Hub()
    for i in range(size):
        pid = f"p{i}"
        hub.printers[pid] = object()
        hub.manager.report(pid, PrintState.PRINTING)
    ready = Readiness(hub, None)  # type: ignore[arg-type]
    ready.track()
    return hub, ready


def test_resync_reads_only_printers_that_reported_and_agrees_with_a_full_walk() -> None:
    hub, ready = _fleet(200)
    ready.resync()  # the first one reads every printer
    assert hub.manager.reads == 200 and ready.idle == set()
    hub.manager.report("p3", PrintState.FINISHED)
    hub.manager.report("p7", PrintState.IDLE)
    hub.manager.reads = 0
    ready.resync()
    assert hub.manager.reads == 2
    assert ready.idle == {"p3", "p7"}
    # A report heard late on the bus (older than the state read) is put right at the next one.
    ready.observe(PrinterState("p3", online=True, state=PrintState.PRINTING))
    assert "p3" not in ready.idle
    hub.manager.reads = 0
    ready.resync()
    assert hub.manager.reads == 1 and ready.idle == {"p3", "p7"}
    # Nothing reported: nothing read; a full walk would find the same.
    hub.manager.reads = 0
    ready.resync()
    assert hub.manager.reads == 0
    walked = {p for p, s in hub.manager.states.items() if s.state is not PrintState.PRINTING}
    assert ready.idle == walked


def test_a_printer_reported_before_it_is_configured_is_read_once_it_is() -> None:
    hub, ready = _fleet(3)
    ready.resync()
    hub.manager.report("new", PrintState.IDLE)
    ready.resync()
    assert "new" not in ready.idle  # not a configured printer yet
    hub.printers["new"] = object()
    ready.resync()
    assert "new" in ready.idle


def _job(state: str, run_id: str | None = None) -> JobRow:
    now = time.time()
    return JobRow(
        id=str(uuid.uuid4()), file_id="f", plate=1, copies=1, copies_done=0, priority=0,
        position=1.0, target={}, materials=[], state=state, attempts=0, waiting_reason=None,
        last_error=None, added_by=None, printer_id="p1" if run_id else None, run_id=run_id,
        created_at=now, updated_at=now,
    )  # fmt: skip


def test_the_watchdog_watches_jobs_from_claim_until_they_leave_the_printer() -> None:
    queue = QueueService(SimpleNamespace())  # type: ignore[arg-type]
    queued = _job("queued")
    queue.remember(queued, announce=False)
    assert queue.watched == set()
    claimed = replace(queued, state="dispatching", run_id="r1", printer_id="p1")
    queue.remember(claimed, announce=False)
    assert queue.watched == {queued.id}
    queue.watched.discard(queued.id)  # the watchdog saw it printing
    queue.remember(claimed, announce=False)  # the same version again: no change
    assert queue.watched == set()
    printing = replace(claimed, state="printing")
    queue.remember(printing, announce=False)  # a new state is looked at again
    assert queue.watched == {queued.id}
    done = replace(printing, state="done", run_id=None, printer_id=None)
    queue.remember(done, announce=False)
    assert queue.watched == set()
