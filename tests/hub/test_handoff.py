"""The drivers → telemetry hand-off: bounded, latest wins per printer, no print step lost."""

from __future__ import annotations

import asyncio

from hub.handoff import ReportHandoff
from hub.model import Connection, PrinterState
from tests.helpers import wait_for
from tests.streams.harness import P, job, offline, report, run


def coalesced(reports: list[PrinterState]) -> list[PrinterState]:
    """What the streams get of `reports` when all of them arrive before one drain."""
    out: list[PrinterState] = []
    handoff = ReportHandoff(out.append, slice_s=60.0)
    for r in reports:
        handoff.offer(r)
    assert handoff.drain_slice()
    assert handoff.delivered + handoff.shed == len(reports)
    return out


async def test_a_flood_passes_only_the_newest_report_per_printer_and_counts_the_rest() -> None:
    got: list[PrinterState] = []
    handoff = ReportHandoff(got.append)
    handoff.start()
    try:
        printers = [f"p{i}" for i in range(20)]
        for n in range(50):  # all before the hand-off's task gets a turn
            for printer_id in printers:
                handoff.offer(report(float(n), P.PRINTING, job(n, key="T"), printer_id))
        assert len(handoff) == 20
        await wait_for(lambda: handoff.delivered == 20, timeout=10, what="the newest reports")
        assert sorted((s.printer_id, s.job.progress) for s in got if s.job) == sorted(
            (p, 49.0) for p in printers
        )
        assert handoff.stats() == {
            "offered": 1000, "delivered": 20, "shed": 980, "shed_marks": 0, "waiting": 0,
        }  # fmt: skip
    finally:
        await handoff.stop()


async def test_reports_offered_faster_than_drained_come_through_newest_and_in_order() -> None:
    got: list[PrinterState] = []
    # One printer per turn of the loop: drained much slower than the flood below offers.
    handoff = ReportHandoff(got.append, slice_s=0.0)
    handoff.start()
    try:
        printers = [f"p{i}" for i in range(30)]
        for n in range(100):
            for printer_id in printers:
                handoff.offer(report(float(n), P.PRINTING, job(n, key="T"), printer_id))
            await asyncio.sleep(0)
        await wait_for(lambda: len(handoff) == 0, timeout=10, what="the hand-off drained")
        assert handoff.shed > 0  # the flood outran the drain
        assert handoff.delivered + handoff.shed == handoff.offered == 3000
        assert len(got) == handoff.delivered
        for printer_id in printers:
            seen = [s.job.progress for s in got if s.printer_id == printer_id and s.job]
            assert seen == sorted(set(seen)) and seen[-1] == 99.0  # newer each time, newest last
    finally:
        await handoff.stop()


def test_state_changes_are_never_coalesced_away() -> None:
    reports = [
        *(report(float(n), P.PRINTING, job(n, key="T1")) for n in range(10, 60)),
        report(60.0, P.PAUSED, job(60, key="T1")),
        report(61.0, P.PAUSED, job(60, key="T1")),
        report(62.0, P.PRINTING, job(61, key="T1")),
        report(63.0, P.PRINTING, job(99, key="T1")),
        report(64.0, P.FINISHED, job(100, key="T1")),
        report(65.0, P.FINISHED, job(100, key="T1")),
        offline(66.0),
        report(67.0, P.IDLE),
        report(68.0, P.IDLE),
    ]
    out = coalesced(reports)
    assert [(r.state, r.updated_at) for r in out] == [
        (P.PRINTING, 59.0), (P.PAUSED, 61.0), (P.PRINTING, 63.0), (P.FINISHED, 65.0),
        (P.OFFLINE, 66.0), (P.IDLE, 68.0),
    ]  # fmt: skip


def test_a_file_started_again_is_kept_apart_even_without_keys() -> None:
    reports = [report(float(n), P.PRINTING, job(n * 10.0)) for n in range(1, 10)]
    reports += [report(10.0 + n, P.PRINTING, job(n * 1.0)) for n in range(5)]
    out = coalesced(reports)
    assert [r.job.progress for r in out if r.job] == [90.0, 4.0]


def test_print_tracking_is_the_same_with_and_without_coalescing() -> None:
    """The lifecycle steps from a burst of reports equal those from each report seen alone."""
    scenarios = [
        [
            report(1.0, P.IDLE),
            *(report(2.0 + n, P.PRINTING, job(n, key="A")) for n in range(100)),
            report(200.0, P.FINISHED, job(100, key="A")),
            report(201.0, P.IDLE),
            *(report(300.0 + n, P.PRINTING, job(n, key="B")) for n in range(30)),
            report(400.0, P.CANCELLED, job(30, key="B")),
            *(report(500.0 + n, P.PRINTING, job(n, key="C")) for n in range(0, 100, 7)),
            *(report(600.0 + n, P.PRINTING, job(n, key="D")) for n in range(40)),
            report(700.0, P.ERROR, job(40, key="D")),
        ],
        [
            report(1.0, P.IDLE),
            *(report(2.0 + n, P.PRINTING, job(n, started_at=2.0)) for n in range(50)),
            report(60.0, P.PAUSED, job(50, started_at=2.0)),
            report(61.0, P.PRINTING, job(51, started_at=2.0)),
            offline(70.0),
            *(report(80.0 + n, P.PRINTING, job(60 + n, started_at=2.0)) for n in range(20)),
            report(120.0, P.IDLE),
            *(report(130.0 + n, P.PRINTING, job(n * 5.0)) for n in range(19)),
            *(report(160.0 + n, P.PRINTING, job(n * 1.0)) for n in range(10)),
            report(200.0, P.FINISHED, job(100)),
        ],
    ]
    for reports in scenarios:
        alone, burst = run(reports), run(coalesced(reports))
        assert burst.kinds() == alone.kinds()
        # A print with neither a protocol key nor a start time is keyed by when it was first
        # seen: in a burst that is its newest waiting report, so only the stamp may differ.
        assert [(key(e.job_key), e.inferred) for _, e in burst.lifecycle] == [
            (key(e.job_key), e.inferred) for _, e in alone.lifecycle
        ]


def key(job_key: str) -> str:
    """A job key without the first-seen stamp of a print that has no key of its own."""
    return job_key.rsplit("@", 1)[0] if "@" in job_key and "benchy" in job_key else job_key


def test_a_flapping_printer_keeps_at_most_max_marks_reports_waiting() -> None:
    out: list[PrinterState] = []
    handoff = ReportHandoff(out.append, max_marks=4)
    for n in range(10):
        connection = Connection.ONLINE if n % 2 == 0 else Connection.STALE
        handoff.offer(report(float(n), P.IDLE, connection=connection))
    assert len(handoff) == 4 and handoff.shed_marks == 6
    handoff.drain_slice()
    assert [r.updated_at for r in out] == [6.0, 7.0, 8.0, 9.0]


async def test_paused_reports_wait_bounded_and_stop_passes_the_newest_on() -> None:
    got: list[PrinterState] = []
    handoff = ReportHandoff(got.append)
    handoff.start()
    handoff.pause()
    for n in range(30):
        handoff.offer(report(float(n), P.IDLE, printer_id=f"p{n % 3}"))
    for _ in range(20):  # the loop gets round many times; a paused hand-off passes nothing on
        await asyncio.sleep(0)
    assert got == [] and len(handoff) == 3
    await handoff.stop(within=5.0)
    assert sorted(r.updated_at for r in got) == [27.0, 28.0, 29.0]
    assert handoff.shed == 27 and len(handoff) == 0
