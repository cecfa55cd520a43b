"""The truth check of print records: every physical print in the simulator's log has exactly one
history row, with the outcome the hub could know."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from databases import Database

from hub.store import prints as prints_store
from hub.store.prints import PrintRecord, history_outcome
from integrations.simulator import Fleet, SimPrinter
from integrations.simulator.model import PrintLogEntry
from tests.helpers import wait_for

PROTOCOLS = ("bambu", "moonraker", "prusalink", "octoprint")
# Protocols that can tell, after the hub was away, how a print ended when the printer has
# already started the next one (Moonraker keeps a job history; the others show only the
# current job).
HISTORY_PROTOCOLS = frozenset({"moonraker"})


def printer_entry(sim: SimPrinter) -> dict[str, Any]:
    """A simulated printer as a printer record (what the import or the API would store)."""
    entry = sim.describe()
    return {k: v for k, v in entry.items() if v is not None}


def expected_outcome(sim: SimPrinter, entry: PrintLogEntry, unseen_next: set[str]) -> str:
    """The outcome the hub must record for one physical print.

    `unseen_next` holds the task ids of prints that ended while the hub was away and were
    followed by another print before it came back: only a printer with a job history can say
    how those ended; for the others the honest answer is `unknown`.
    """
    if entry.task_id in unseen_next and sim.protocol not in HISTORY_PROTOCOLS:
        return "unknown"
    assert entry.outcome is not None, f"{sim.name}: {entry.file} has not ended"
    return history_outcome(entry.outcome)  # the simulator's `finished` is history's `completed`


async def rows_of(db: Database, printer_id: str) -> list[PrintRecord]:
    """A printer's history rows in the order the prints ended (open ones last).

    One printer runs one print at a time, so that is also the order they started in; a
    start time derived from a printer's elapsed time (PrusaLink) is skewed by the simulator's
    accelerated clock, an end time is not."""
    page, _ = await prints_store.list_page(db, printer_id=printer_id, limit=500, offset=0)
    return sorted(page, key=lambda r: (r.ended_at is None, r.ended_at or 0.0, r.started_at))


async def closed_count(db: Database, printer_ids: Iterable[str]) -> int:
    """How many rows of these printers are closed."""
    total = 0
    for printer_id in printer_ids:
        total += sum(r.outcome is not None for r in await rows_of(db, printer_id))
    return total


async def open_count(db: Database, printer_ids: Iterable[str]) -> int:
    """How many rows of these printers are still open."""
    total = 0
    for printer_id in printer_ids:
        total += sum(r.outcome is None for r in await rows_of(db, printer_id))
    return total


async def check_every_print(
    db: Database, fleet: Fleet, ids: dict[str, str], unseen_next: set[str]
) -> list[str]:
    """Compare the simulator's log with the history; return the mismatches (empty: all true)."""
    problems: list[str] = []
    for sim in fleet.printers:
        rows = await rows_of(db, ids[sim.name])
        log = sim.printer.log
        if len(rows) != len(log):
            problems.append(
                f"{sim.protocol}: {len(log)} physical prints but {len(rows)} rows: "
                f"{[(r.file, r.outcome) for r in rows]} vs {[(e.file, e.outcome) for e in log]}"
            )
            continue
        for row, entry in zip(rows, log, strict=True):
            want = expected_outcome(sim, entry, unseen_next)
            if row.file.rsplit(".", 1)[0] != entry.file.rsplit(".", 1)[0] or row.outcome != want:
                problems.append(
                    f"{sim.protocol}: {entry.file} ended {entry.outcome}, expected {want}, "
                    f"recorded {row.file} {row.outcome}"
                )
    return problems


async def describe_rows(db: Database, fleet: Fleet, ids: dict[str, str]) -> str:
    """Every printer's rows beside the simulator's log, for a failure message."""
    lines = []
    for sim in fleet.printers:
        rows = await rows_of(db, ids[sim.name])
        lines.append(
            f"{sim.protocol} rows: {[(r.job_key.split('/', 1)[1], r.file, r.outcome, r.progress) for r in rows]}"
        )
        lines.append(
            f"{sim.protocol} log:  {[(e.file, e.outcome, e.percent) for e in sim.printer.log]}"
        )
    return "\n".join(lines)


async def wait_rows(
    db: Database,
    fleet: Fleet,
    ids: dict[str, str],
    *,
    closed: int,
    open_: int | None = None,
    timeout: float = 15.0,
) -> None:
    """Wait until the fleet's printers have `closed` closed rows (and `open_` open ones)."""
    try:
        await wait_for(
            lambda: _counts_are(db, ids.values(), closed, open_),
            timeout=timeout,
            interval=0.1,
            what=f"{closed} closed rows" + (f" and {open_} open" if open_ is not None else ""),
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{await describe_rows(db, fleet, ids)}") from None


async def _counts_are(
    db: Database, printer_ids: Iterable[str], closed: int, open_: int | None
) -> bool:
    ids = list(printer_ids)
    if await closed_count(db, ids) != closed:
        return False
    return open_ is None or await open_count(db, ids) == open_
