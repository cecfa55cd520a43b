"""progress$ on whole-percent, layer or remaining-time changes of an active print; ams$ on any change."""

from __future__ import annotations

from hub.model import AmsTray, AmsUnit, PrintState
from tests.streams.harness import P, ams, job, offline, report, run


def test_progress_on_whole_percent_layer_or_remaining_time() -> None:
    out = run(
        [
            report(1.0, P.PRINTING, job(12.2, key="A", layer=3, total_layers=90, remaining_s=600)),
            report(2.0, P.PRINTING, job(12.9, key="A", layer=3, total_layers=90, remaining_s=600)),
            report(3.0, P.PRINTING, job(13.0, key="A", layer=3, total_layers=90, remaining_s=600)),
            report(4.0, P.PRINTING, job(13.1, key="A", layer=4, total_layers=90, remaining_s=600)),
            report(5.0, P.PRINTING, job(13.2, key="A", layer=4, total_layers=90, remaining_s=540)),
            report(6.0, P.PRINTING, job(13.3, key="A", layer=4, total_layers=90, remaining_s=540)),
        ]
    )
    assert [(t, e.progress, e.layer, e.remaining_s) for t, e in out.progress] == [
        (1.0, 12, 3, 600),
        (3.0, 13, 3, 600),
        (4.0, 13, 4, 600),
        (5.0, 13, 4, 540),
    ]
    first = out.progress[0][1]
    assert (first.printer_id, first.file, first.total_layers, first.job_key) == (
        "p1",
        "benchy.gcode",
        90,
        "p1/A",
    )


def test_progress_only_while_a_print_is_active() -> None:
    out = run(
        [
            report(1.0, P.IDLE, job(50.0, key="old")),
            report(2.0, P.FINISHED, job(100.0, key="old")),
            report(3.0, P.PRINTING, job(1.0, key="A")),
            report(4.0, P.PAUSED, job(2.0, key="A")),
            offline(5.0),
            report(6.0, P.PAUSED, job(2.0, key="A")),  # back, nothing moved: nothing to say
            report(7.0, P.FINISHED, job(100.0, key="A")),
            report(8.0, P.IDLE, job(100.0, key="A")),
        ]
    )
    assert [(t, e.progress) for t, e in out.progress] == [(3.0, 1), (4.0, 2)]


def test_progress_carries_the_lifecycle_job_key() -> None:
    out = run([report(1.0, P.PRINTING, job(1.0)), report(2.0, P.PRINTING, job(2.0))])
    keys = {e.job_key for _, e in out.progress} | {e.job_key for _, e in out.lifecycle}
    assert keys == {"p1/benchy.gcode@1"}


def test_progress_restarts_with_a_new_print_at_the_same_values() -> None:
    out = run(
        [
            report(1.0, P.PRINTING, job(0.0, key="A")),
            report(2.0, P.PRINTING, job(0.0, key="B")),
        ]
    )
    assert [e.job_key for _, e in out.progress] == ["p1/A", "p1/B"]


def test_progress_is_clamped_to_whole_percent() -> None:
    out = run(
        [report(1.0, P.PRINTING, job(99.99, key="A")), report(2.0, P.PRINTING, job(104.0, key="A"))]
    )
    assert [e.progress for _, e in out.progress] == [99, 100]


def test_ams_on_tray_unit_or_active_tray_change() -> None:
    damp = (AmsUnit(0, humidity=35, trays=ams(80, 50)[0].trays),)
    swapped = (
        AmsUnit(0, humidity=35, trays=(AmsTray(0, "PETG", "000000", 100), ams(80, 50)[0].trays[1])),
    )
    out = run(
        [
            report(1.0, ams=ams(80, 50)),
            report(2.0, ams=ams(80, 50)),  # equal, though new objects
            report(3.0, ams=ams(79, 50)),  # remain moved
            report(4.0, ams=ams(79, 50), active_tray=1),  # active tray
            report(5.0, ams=damp, active_tray=1),  # unit humidity
            report(6.0, ams=swapped, active_tray=1),  # new spool
            report(7.0, ams=swapped + ams(100, unit=1), active_tray=1),  # unit added
        ]
    )
    assert [t for t, _ in out.ams] == [1.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    last = out.ams[-1][1]
    assert (last.printer_id, len(last.units), last.active_tray) == ("p1", 2, 1)
    assert last.units[0].trays[0].material == "PETG"


def test_a_tray_change_carries_the_progress_of_its_own_report() -> None:
    """Where a print moved to another tray, from the report that says so (not a later one)."""
    printing = PrintState.PRINTING
    out = run(
        [
            report(1.0, printing, job(10.0), ams=ams(80, 50), active_tray=0),
            report(2.0, printing, job(37.0), ams=ams(80, 50), active_tray=1),
            report(3.0, printing, job(38.0), ams=ams(80, 50), active_tray=1),
        ]
    )
    assert [(e.active_tray, e.progress) for _, e in out.ams] == [(0, 10.0), (1, 37.0)]


def test_ams_keeps_the_last_reading_over_a_dead_link() -> None:
    out = run([report(1.0, ams=ams(80)), offline(2.0), report(3.0, ams=ams(80))])
    assert [t for t, _ in out.ams] == [1.0]


def test_no_ams_is_no_event() -> None:
    out = run([report(1.0), report(2.0, P.PRINTING, job(1.0))])
    assert out.ams == []
