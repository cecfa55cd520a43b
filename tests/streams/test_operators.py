"""The generic operators: throttle_latest on marble timings, scan_emit, merge_now."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
import reactivex
from reactivex.subject import Subject
from reactivex.testing import ReactiveTest, TestScheduler

from streams.operators import merge_now, scan_emit, throttle_latest
from tests.streams.harness import ProbeScheduler, marbles

on_next, on_completed = ReactiveTest.on_next, ReactiveTest.on_completed


def test_throttle_latest_first_at_once_then_latest_at_window_end() -> None:
    # One frame is 0.1 s, so the 0.5 s window is five frames.
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(marbles("a-b-c----d-----e-f-g-h|"))
    expected = marbles("a----c----d----e----g-(h|)")
    result = scheduler.start(lambda: source.pipe(throttle_latest(0.5, scheduler)))
    assert result.messages == expected


def test_throttle_latest_spaces_emissions_by_the_interval() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(
        [on_next(t, t) for t in (201.0, 201.1, 201.2, 201.3, 201.6, 201.7, 203.0)]
    )
    result = scheduler.start(lambda: source.pipe(throttle_latest(0.5, scheduler)))
    assert result.messages == [
        on_next(201.0, 201.0),  # first goes out at once
        on_next(201.5, 201.3),  # 201.1-201.3 coalesced, latest wins at the window's end
        on_next(202.0, 201.7),  # the next window opened at 201.5
        on_next(203.0, 203.0),  # quiet for a window: at once again
    ]


def test_throttle_latest_flushes_the_pending_value_on_completion() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(
        on_next(201.0, "a"), on_next(201.1, "b"), on_completed(201.2)
    )
    result = scheduler.start(lambda: source.pipe(throttle_latest(0.5, scheduler)))
    assert result.messages == [on_next(201.0, "a"), on_next(201.2, "b"), on_completed(201.2)]


def test_throttle_latest_disposed_cancels_the_pending_timer() -> None:
    scheduler = ProbeScheduler()
    source = scheduler.create_hot_observable(on_next(201.0, "a"), on_next(201.1, "b"))
    result = scheduler.start(lambda: source.pipe(throttle_latest(0.5, scheduler)), disposed=201.3)
    assert result.messages == [on_next(201.0, "a")]
    assert len(scheduler.timers) == 1
    assert scheduler.timers[0].is_disposed  # type: ignore[attr-defined]


def test_throttle_latest_holds_one_window_at_most_when_the_clock_steps_back() -> None:
    scheduler = ProbeScheduler()
    source = scheduler.create_hot_observable(on_next(201.0, "a"), on_next(201.6, "b"))

    def step_back(*_: object) -> None:
        scheduler.skew = timedelta(hours=-1)  # NTP moved the wall clock back an hour

    scheduler.schedule_absolute(201.5, step_back)
    result = scheduler.start(lambda: source.pipe(throttle_latest(0.5, scheduler)))
    assert result.messages == [on_next(201.0, "a"), on_next(202.1, "b")]


def test_scan_emit_keeps_state_per_subscription() -> None:
    def count(n: int, _: str) -> tuple[int, tuple[int, ...]]:
        return n + 1, (n + 1,)

    source: Subject[str] = Subject()
    counted = source.pipe(scan_emit("count", count, 0))
    first: list[int] = []
    second: list[int] = []
    counted.subscribe(first.append)
    source.on_next("x")
    counted.subscribe(second.append)
    source.on_next("y")
    assert first == [1, 2]
    assert second == [1]


def test_scan_emit_emits_outputs_in_order_and_none_when_empty() -> None:
    def step(_: None, value: int) -> tuple[None, tuple[int, ...]]:
        return None, tuple(range(value))

    seen: list[int] = []
    reactivex.from_iterable([0, 3, 0, 2]).pipe(scan_emit("s", step, None)).subscribe(seen.append)
    assert seen == [0, 1, 2, 0, 1]


def test_scan_emit_skips_a_report_whose_step_raises(caplog: pytest.LogCaptureFixture) -> None:
    def step(total: int, value: int) -> tuple[int, tuple[int, ...]]:
        if value < 0:
            raise ValueError("bad report")
        return total + value, (total + value,)

    seen: list[int] = []
    errors: list[Exception] = []
    with caplog.at_level(logging.ERROR):
        reactivex.from_iterable([1, -1, 2]).pipe(scan_emit("sum", step, 0)).subscribe(
            seen.append, errors.append
        )
    assert seen == [1, 3]  # state unchanged by the bad report, stream alive
    assert errors == []
    assert "stream step sum failed" in caplog.text


def test_merge_now_subscribes_every_source_before_returning() -> None:
    source: Subject[int] = Subject()
    seen: list[str] = []
    merged = merge_now(
        source.pipe(reactivex.operators.map(lambda v: f"a{v}")),
        source.pipe(reactivex.operators.map(lambda v: f"b{v}")),
    )
    merged.subscribe(seen.append, scheduler=TestScheduler())
    source.on_next(1)  # no scheduler ran: both parts must already be listening
    assert seen == ["a1", "b1"]
