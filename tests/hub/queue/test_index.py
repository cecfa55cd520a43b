"""The index of queued jobs by what they need: the same choice as walking the queue in order."""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import replace

from hub.queue.index import JobIndex
from hub.queue.matching import JobNeeds, PrinterView, Tray, fit, needs_from_json
from hub.store.queue import JobRow

MATERIALS = ["PLA", "PETG", "ABS"]


def _job(material: str, priority: int, position: float, target: dict[str, str]) -> JobRow:
    now = time.time()
    return JobRow(
        id=str(uuid.uuid4()), file_id="f", plate=1, copies=1, copies_done=0, priority=priority,
        position=position, target=target, materials=[{"slot": 1, "material": material}],
        state="queued", attempts=0, waiting_reason=None, last_error=None, added_by=None,
        printer_id=None, run_id=None, created_at=now, updated_at=now,
    )  # fmt: skip


def _needs(job: JobRow) -> JobNeeds:
    return JobNeeds("3mf", None, None, job.target, needs_from_json(job.materials))


def _printer(pid: str, material: str) -> PrinterView:
    trays = (Tray(0, material, None, None),)
    return PrinterView(pid, pid, frozenset({"3mf"}), True, None, None, frozenset(), trays)


def _walk(jobs: dict[str, JobRow], printer: PrinterView) -> str | None:
    """What the dispatcher did before the index: the first queued job in order that fits."""
    for job in sorted((j for j in jobs.values() if j.state == "queued"), key=JobRow.sort_key):
        if fit(_needs(job), printer)[0] is not None:
            return job.id
    return None


def test_the_index_picks_what_walking_the_ordered_queue_picks() -> None:
    rng = random.Random(15)
    jobs: dict[str, JobRow] = {}
    index = JobIndex(_needs)
    printers = [_printer(f"p{i}", MATERIALS[i % 3]) for i in range(6)]
    for step in range(600):
        action = rng.random()
        if action < 0.5 or not jobs:
            target = {"printer_id": f"p{rng.randrange(6)}"} if rng.random() < 0.2 else {}
            job = _job(rng.choice(MATERIALS), rng.randrange(3), float(step), target)
        else:
            job = rng.choice(list(jobs.values()))
            if action < 0.7:
                job = replace(job, priority=rng.randrange(3))  # reordered
            elif action < 0.85:
                job = replace(job, state=rng.choice(["held", "queued", "dispatching"]))
            else:
                job = replace(job, state="done")
        jobs[job.id] = job
        index.update(job)
        printer = rng.choice(printers)
        found = index.best(lambda needs, p=printer: fit(needs, p)[0])
        assert (found[0] if found else None) == _walk(jobs, printer)
    assert len(index) == sum(j.state == "queued" for j in jobs.values())


def test_a_job_taken_in_a_pass_is_back_once_seen_queued_again() -> None:
    index = JobIndex(_needs)
    first, second = _job("PLA", 0, 1.0, {}), _job("PLA", 0, 2.0, {})
    for job in (first, second):
        index.update(job)
    printer = _printer("p0", "PLA")
    index.take(first.id)
    assert index.best(lambda needs: fit(needs, printer)[0]) == (second.id, {1: 0})
    index.update(first)  # the claim was lost: still queued
    assert index.best(lambda needs: fit(needs, printer)[0]) == (first.id, {1: 0})
