"""status$: distinct until a meaningful change, at most 2 per second per printer, latest wins."""

from __future__ import annotations

import itertools
from dataclasses import fields, replace

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.model import Connection, PrinterState, PrintState
from streams.status import _EXACT_FIELDS, same_status
from tests.streams.harness import P, job, offline, report, run, temps


def test_updated_at_alone_is_no_change() -> None:
    out = run([report(1.0, temps=temps()), report(2.0, temps=temps()), report(3.0, temps=temps())])
    assert [t for t, _ in out.status] == [1.0]


def test_temperature_jitter_below_half_a_degree_is_no_change() -> None:
    out = run(
        [
            report(1.0, temps=temps(nozzle=210.0)),
            report(2.0, temps=temps(nozzle=210.4)),
            report(3.0, temps=temps(nozzle=209.6)),
            report(4.0, temps=temps(nozzle=210.5)),  # half a degree is a change
        ]
    )
    assert [(t, s.temps.nozzle) for t, s in out.status] == [(1.0, 210.0), (4.0, 210.5)]


def test_slow_drift_is_measured_from_what_went_out() -> None:
    readings = [60.0, 60.3, 60.6, 60.9]
    out = run([report(float(i + 1), temps=temps(bed=b)) for i, b in enumerate(readings)])
    assert [s.temps.bed for _, s in out.status] == [60.0, 60.6]


def test_targets_and_missing_readings_are_changes() -> None:
    out = run(
        [
            report(1.0, temps=temps()),
            report(2.0, temps=temps(nozzle_target=220.0)),
            report(3.0, temps=temps(nozzle_target=220.0, chamber=None)),
            report(4.0, temps=temps(nozzle_target=220.0, chamber=30.0)),
        ]
    )
    assert [t for t, _ in out.status] == [1.0, 2.0, 4.0]


def test_every_other_field_is_meaningful() -> None:
    base = report(1.0, temps=temps())
    changed = {
        "online": False,
        "state": P.PRINTING,
        "job": job(10.0),
        "fans": {"part": 100},
        "speed_level": 3,
        "ams": (None,),
        "active_tray": 2,
        "errors": ("e",),
        "wifi_signal": -60,
        "light": True,
        # The link's facts are part of the state: a link change is a status change.
        "connection": Connection.STALE,
        "last_error": "connection refused",
    }
    same = same_status(0.5)
    # Every model field is either listed here, compared with a tolerance, or deliberately ignored.
    assert set(changed) == set(_EXACT_FIELDS)
    assert {f.name for f in fields(PrinterState)} == set(changed) | {
        "printer_id",
        "temps",
        "updated_at",
        "ended",
    }
    for name, value in changed.items():
        assert not same(base, replace(base, **{name: value})), name
    assert same(base, replace(base, updated_at=99.0))


def test_at_most_two_per_second_latest_wins() -> None:
    times = [10.0, 10.1, 10.2, 10.3, 10.4, 10.6, 10.7]
    out = run([report(t, P.PRINTING, job(float(i))) for i, t in enumerate(times)])
    assert [(t, s.job.progress) for t, s in out.status if s.job] == [
        (10.0, 0.0),  # the first change at once
        (10.5, 4.0),  # 10.1-10.4 coalesced, the latest at the window's end
        (11.0, 6.0),  # 10.6-10.7 coalesced; the last report is not lost
    ]


def test_change_undone_inside_a_window_is_not_resent() -> None:
    out = run(
        [
            report(10.0, temps=temps()),
            report(10.1, temps=temps(bed=70.0)),
            report(10.2, temps=temps(bed=60.0)),
        ]
    )
    assert [t for t, _ in out.status] == [10.0]


def test_rate_is_per_printer() -> None:
    reports = []
    for pid in ("a", "b"):
        reports += [
            report(10.0, P.IDLE, printer_id=pid),
            report(10.1, P.PRINTING, job(1.0), printer_id=pid),
        ]
    out = run(reports)
    assert sorted((t, s.printer_id) for t, s in out.status) == [
        (10.0, "a"),
        (10.0, "b"),
        (10.5, "a"),
        (10.5, "b"),
    ]


def test_offline_goes_out_like_any_change() -> None:
    out = run([report(1.0, P.PRINTING, job(5.0)), offline(2.0), report(3.0, P.PRINTING, job(5.0))])
    assert [(t, s.online) for t, s in out.status] == [(1.0, True), (2.0, False), (3.0, True)]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(min_value=1, max_value=15), st.integers(0, 3)),
        min_size=1,
        max_size=40,
    )
)
def test_bounded_rate_and_nothing_lost_at_the_end(steps: list[tuple[int, int]]) -> None:
    """Any report pattern: outputs ≥ 0.5 s apart, and the last meaningful state always goes out."""
    at = 100.0
    reports = []
    for gap, speed in steps:
        at = round(at + gap / 10, 6)
        reports.append(report(at, P.IDLE, speed_level=speed))
    out = run(reports)
    times = [t for t, _ in out.status]
    assert all(b - a >= 0.5 - 1e-9 for a, b in itertools.pairwise(times))
    assert out.status[-1][1].speed_level == reports[-1].speed_level
    assert out.status[0][0] == reports[0].updated_at
    # Only values that were reported go out, in the order reported.
    order = [r.updated_at for r in reports]
    sent = [s.updated_at for _, s in out.status]
    assert sent == sorted(sent) and set(sent) <= set(order)


def test_state_enum_and_job_changes_are_distinct() -> None:
    out = run(
        [
            report(1.0, P.PREPARING, job(0.0)),
            report(2.0, P.PRINTING, job(0.0)),
            report(3.0, P.PRINTING, job(0.0)),
            report(4.0, P.PRINTING, job(1.0)),
        ]
    )
    assert [(t, s.state) for t, s in out.status] == [
        (1.0, PrintState.PREPARING),
        (2.0, PrintState.PRINTING),
        (4.0, PrintState.PRINTING),
    ]
