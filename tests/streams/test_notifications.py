"""notification$: lifecycle, HMS raise/clear, offline/online, filament low and AMS humidity."""

from __future__ import annotations

from hub.model import AmsUnit, HmsError
from streams import NotificationEvent, Severity, StreamSettings
from tests.streams.harness import P, ams, hms, job, offline, report, run


def notes(events: list[tuple[float, NotificationEvent]]) -> list[tuple[float, str]]:
    """(time, kind) of each notification."""
    return [(t, str(e.kind)) for t, e in events]


def test_lifecycle_notifications_and_severities() -> None:
    out = run(
        [
            report(1.0, P.PRINTING, job(5.0, key="A")),
            report(2.0, P.PAUSED, job(5.0, key="A")),
            report(3.0, P.PRINTING, job(6.0, key="A")),  # resumed: nobody is told
            report(4.0, P.FINISHED, job(100.0, key="A")),
            report(5.0, P.PRINTING, job(5.0, key="B")),
            report(6.0, P.FAILED, job(7.0, key="B")),
            report(7.0, P.PRINTING, job(5.0, key="C")),
            report(8.0, P.CANCELLED, job(9.0, key="C")),
        ]
    )
    assert [(str(e.kind), str(e.severity)) for _, e in out.notification] == [
        ("print_started", "info"),
        ("print_paused", "warning"),
        ("print_finished", "info"),
        ("print_started", "info"),
        ("print_failed", "error"),
        ("print_started", "info"),
        ("print_cancelled", "warning"),
    ]
    failed = out.notification[4][1]
    assert failed.data["job_key"] == "p1/B" and failed.data["file"] == "benchy.gcode"
    assert failed.at == 6.0 and "benchy.gcode" in failed.message


def test_an_inferred_outcome_says_so() -> None:
    out = run([report(1.0, P.PRINTING, job(99.5, key="A")), report(2.0, P.IDLE)])
    finished = out.notification[-1][1]
    assert finished.kind == "print_finished"
    assert finished.data["inferred"] is True and "without a final state" in finished.message


def test_a_print_ended_unobserved_is_no_failure() -> None:
    out = run([report(1.0, P.PRINTING, job(30.0, key="A")), report(2.0, P.IDLE)])
    assert out.notes() == ["print_started", "print_ended_unobserved"]
    note = out.notification[-1][1]
    assert note.severity == "info" and "unobserved" in note.message


def test_hms_each_code_once_on_raise_and_once_on_clear() -> None:
    out = run(
        [
            report(1.0),
            report(2.0, errors=hms("A")),
            report(3.0, errors=hms("A")),  # still there: no repeat
            report(4.0, errors=hms("A", "B")),
            offline(5.0),  # a dead link does not clear errors
            report(6.0, errors=hms("A", "B")),
            report(7.0, errors=hms("B")),
            report(8.0),
            report(9.0, errors=hms("A")),  # raised again: a new occurrence
        ]
    )
    hms_notes = [(t, str(e.kind), e.data["code"]) for t, e in out.notification if "hms" in e.kind]
    assert hms_notes == [
        (2.0, "hms_raised", "A"),
        (4.0, "hms_raised", "B"),
        (7.0, "hms_cleared", "A"),
        (8.0, "hms_cleared", "B"),
        (9.0, "hms_raised", "A"),
    ]
    raised = next(e for _, e in out.notification if e.kind == "hms_raised")
    assert raised.data["text"] == "text of A" and "text of A" in raised.message


def test_hms_present_at_first_sight_is_raised_and_severity_follows_the_printer() -> None:
    errors = (
        HmsError("F", "nozzle clog", severity="fatal"),
        HmsError("C", "door open", severity="common"),
        HmsError("I", "calibrating", severity="info"),
        HmsError("I", "calibrating", severity="info"),  # listed twice: raised once
    )
    out = run([report(1.0, errors=errors)])
    assert [(e.data["code"], e.severity) for _, e in out.notification] == [
        ("F", Severity.ERROR),
        ("C", Severity.WARNING),
        ("I", Severity.INFO),
    ]


def test_offline_online_only_on_change_and_not_at_first_sight() -> None:
    out = run(
        [
            report(1.0),  # first seen online: not news
            report(2.0),
            offline(3.0),
            offline(4.0),
            report(5.0),
            report(6.0),
        ]
    )
    assert notes(out.notification) == [(3.0, "printer_offline"), (5.0, "printer_online")]
    assert out.notification[0][1].severity is Severity.WARNING


def test_silence_until_a_printer_has_been_up_once() -> None:
    # Drivers report every printer offline until they first connect.
    out = run([offline(1.0), offline(2.0), report(3.0), offline(4.0)])
    assert notes(out.notification) == [(4.0, "printer_offline")]


def test_online_flag_and_offline_state_both_mean_down() -> None:
    out = run([report(1.0), report(2.0, P.IDLE, online=False), report(3.0)])
    assert notes(out.notification) == [(2.0, "printer_offline"), (3.0, "printer_online")]


def test_back_online_comes_before_what_the_reconnect_reveals() -> None:
    out = run(
        [
            report(1.0, P.PRINTING, job(5.0, key="A")),
            offline(2.0),
            report(3.0, P.FINISHED, job(100.0, key="A")),
        ]
    )
    assert [k for t, k in notes(out.notification) if t == 3.0] == [
        "printer_online",
        "print_finished",
    ]


def test_filament_low_once_per_crossing() -> None:
    out = run(
        [
            report(1.0, ams=ams(50, 30)),
            report(2.0, ams=ams(11, 30)),
            report(3.0, ams=ams(9, 30)),  # crosses below 10%
            report(4.0, ams=ams(8, 30)),
            report(5.0, ams=ams(10, 30)),  # jitter back to the threshold does not re-arm
            report(6.0, ams=ams(9, 30)),
            offline(7.0),
            report(8.0, ams=ams(9, 30)),
            report(9.0, ams=ams(100, 30)),  # new spool re-arms
            report(10.0, ams=ams(5, 30)),  # second crossing
            report(11.0, ams=ams(None, 30)),  # unknown remain changes nothing
            report(12.0, ams=ams(4, 30)),
        ]
    )
    low = [
        (t, e.data["slot"], e.data["remain"])
        for t, e in out.notification
        if e.kind == "filament.low"
    ]
    assert low == [(3.0, 0, 9), (10.0, 0, 5)]
    note = next(e for _, e in out.notification if e.kind == "filament.low")
    assert note.severity is Severity.WARNING and note.data["threshold"] == 10
    assert note.data["material"] == "PLA" and "9%" in note.message


def test_filament_low_already_low_at_first_sight_and_per_tray() -> None:
    out = run([report(1.0, ams=ams(5, 50)), report(2.0, ams=ams(5, 3))])
    assert [(t, e.data["slot"]) for t, e in out.notification] == [(1.0, 0), (2.0, 1)]


def test_filament_threshold_from_settings() -> None:
    settings = StreamSettings(filament_low_pct=25, filament_rearm_margin_pct=0)
    out = run(
        [
            report(1.0, ams=ams(30)),
            report(2.0, ams=ams(24)),
            report(3.0, ams=ams(25)),
            report(4.0, ams=ams(24)),
        ],
        settings,
    )
    assert [t for t, e in out.notification if e.kind == "filament.low"] == [2.0, 4.0]


def humid(percent: int | None, unit: int = 0) -> tuple[AmsUnit, ...]:
    """An AMS unit at the given humidity."""
    return ams(80, humidity=percent, unit=unit)


def test_humidity_high_once_per_crossing() -> None:
    out = run(
        [
            report(1.0, ams=humid(30)),
            report(2.0, ams=humid(41)),  # crosses above 40%
            report(3.0, ams=humid(45)),
            report(4.0, ams=humid(39)),  # not down by the margin yet
            report(5.0, ams=humid(42)),
            report(6.0, ams=humid(None)),
            report(7.0, ams=humid(38)),  # re-armed
            report(8.0, ams=humid(41)),  # second crossing
            report(9.0, ams=humid(41) + humid(60, unit=1)),  # another unit
        ]
    )
    damp = [
        (t, e.data["unit"], e.data["humidity"])
        for t, e in out.notification
        if e.kind == "humidity_high"
    ]
    assert damp == [(2.0, 0, 41), (8.0, 0, 41), (9.0, 1, 60)]


def test_humidity_threshold_from_settings() -> None:
    settings = StreamSettings(humidity_high_pct=20)
    out = run([report(1.0, ams=humid(15)), report(2.0, ams=humid(21))], settings)
    assert [(t, str(e.kind)) for t, e in out.notification] == [(2.0, "humidity_high")]
