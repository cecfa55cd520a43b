"""build_pipelines as the hub uses it: shared hot streams, isolated sinks, one dispose for all."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from reactivex import GroupedObservable
from reactivex.disposable import CompositeDisposable
from reactivex.subject import Subject
from reactivex.testing import ReactiveTest, TestScheduler

from hub.model import Job, PrinterState
from streams import StreamSettings, build_pipelines, subscribe_isolated
from tests.streams.harness import P, ProbeScheduler, job, report, run

log = logging.getLogger("tests.streams.sinks")


def test_every_stream_runs_once_over_a_single_telemetry_subscription() -> None:
    scheduler = TestScheduler()
    telemetry = scheduler.create_hot_observable(
        ReactiveTest.on_next(1.0, report(1.0, P.PRINTING, job(5.0, key="A")))
    )
    pipes = build_pipelines(telemetry, scheduler, StreamSettings(), {})
    sinks: list[list[Any]] = [[] for _ in range(6)]
    for stream in (pipes.status, pipes.lifecycle, pipes.progress):
        for sink in sinks[:2]:
            stream.subscribe(sink.append)
    pipes.connect()
    pipes.connect()  # idempotent
    scheduler.start()
    assert len(telemetry.subscriptions) == 1
    assert len(sinks[0]) == len(sinks[1]) == 3  # one status, one started, one progress each
    assert sinks[0] == sinks[1]


def test_nothing_flows_before_connect() -> None:
    telemetry: Subject[PrinterState] = Subject()
    pipes = build_pipelines(telemetry, TestScheduler())
    seen: list[PrinterState] = []
    pipes.status.subscribe(seen.append)
    telemetry.on_next(report(1.0))
    pipes.connect()
    telemetry.on_next(report(2.0, P.PRINTING, job(1.0)))
    assert [s.updated_at for s in seen] == [2.0]


def test_a_raising_sink_breaks_neither_the_stream_nor_other_sinks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    scheduler = TestScheduler()
    telemetry: Subject[PrinterState] = Subject()
    pipes = build_pipelines(telemetry, scheduler)
    disposables = CompositeDisposable()
    before: list[PrinterState] = []
    after: list[PrinterState] = []
    lifecycle: list[Any] = []

    def broken(_: PrinterState) -> None:
        raise RuntimeError("sink is down")

    subscribe_isolated(pipes.status, before.append, "before", disposables, log)
    subscribe_isolated(pipes.status, broken, "broken", disposables, log)
    subscribe_isolated(pipes.status, after.append, "after", disposables, log)
    subscribe_isolated(pipes.lifecycle, lifecycle.append, "history", disposables, log)
    disposables.add(pipes.connect())
    with caplog.at_level(logging.ERROR):
        for at, state, reported in [
            (1.0, P.IDLE, None),
            (2.0, P.PRINTING, job(1.0, key="A")),
            (3.0, P.FINISHED, job(100.0, key="A")),
        ]:
            scheduler.advance_to(at)
            telemetry.on_next(report(at, state, reported))
    assert len(before) == len(after) == 3
    assert [str(e.kind) for e in lifecycle] == ["started", "finished"]
    assert caplog.text.count("sink broken failed") == 1  # logged once, not once per value
    assert "RuntimeError: sink is down" in caplog.text


def test_subscribe_isolated_supplies_on_error(caplog: pytest.LogCaptureFixture) -> None:
    source: Subject[int] = Subject()
    disposables = CompositeDisposable()
    subscribe_isolated(source, lambda _: None, "quiet", disposables, log)
    with caplog.at_level(logging.ERROR):
        source.on_error(ValueError("upstream broke"))  # would raise without an on_error
    assert "stream feeding sink quiet failed" in caplog.text
    assert len(disposables) == 1


def test_telemetry_error_reaches_every_sink_as_on_error(caplog: pytest.LogCaptureFixture) -> None:
    telemetry: Subject[PrinterState] = Subject()
    pipes = build_pipelines(telemetry, TestScheduler())
    disposables = CompositeDisposable()
    for name in ("status", "progress", "ams", "lifecycle", "notification"):
        subscribe_isolated(getattr(pipes, name), lambda _: None, name, disposables, log)
    disposables.add(pipes.connect())
    with caplog.at_level(logging.ERROR):
        telemetry.on_error(RuntimeError("hub shut the feed"))
    assert caplog.text.count("failed; the sink gets nothing more") == 5


def test_dispose_stops_everything_including_pending_timers() -> None:
    scheduler = ProbeScheduler()
    telemetry: Subject[PrinterState] = Subject()
    pipes = build_pipelines(telemetry, scheduler)
    disposables = CompositeDisposable()
    seen: list[Any] = []
    for name in ("status", "progress", "ams", "lifecycle", "notification"):
        subscribe_isolated(getattr(pipes, name), seen.append, name, disposables, log)
    disposables.add(pipes.connect())
    telemetry.on_next(report(0.0, P.PRINTING, job(1.0, key="A")))
    telemetry.on_next(report(0.1, P.PRINTING, job(2.0, key="A")))  # held for the window's end
    count = len(seen)
    assert scheduler.timers and not any(t.is_disposed for t in scheduler.timers)  # type: ignore[attr-defined]
    disposables.dispose()
    assert all(t.is_disposed for t in scheduler.timers)  # type: ignore[attr-defined]
    scheduler.advance_to(5.0)
    telemetry.on_next(report(6.0, P.FINISHED, job(100.0, key="A")))
    assert len(seen) == count
    assert not telemetry.observers  # the pipeline let go of telemetry


def test_state_groups_reports_per_printer_even_for_a_late_subscriber() -> None:
    telemetry: Subject[PrinterState] = Subject()
    pipes = build_pipelines(telemetry, TestScheduler())
    early: dict[str, list[float]] = {}

    def watch(into: dict[str, list[float]]) -> Any:
        def on_group(group: GroupedObservable[str, PrinterState]) -> None:
            into.setdefault(group.key, [])
            group.subscribe(lambda s: into[group.key].append(s.updated_at))

        return on_group

    pipes.state.subscribe(watch(early))
    pipes.connect()
    telemetry.on_next(report(1.0, printer_id="a"))
    telemetry.on_next(report(1.0, printer_id="b"))
    late: dict[str, list[float]] = {}
    pipes.state.subscribe(watch(late))
    telemetry.on_next(report(2.0, printer_id="a"))
    assert early == {"a": [1.0, 2.0], "b": [1.0]}
    assert late == {"a": [2.0], "b": []}


def test_one_printers_broken_report_spares_the_rest(caplog: pytest.LogCaptureFixture) -> None:
    broken = Job("x.gcode", progress=None, key="X")  # type: ignore[arg-type]  # a driver bug
    with caplog.at_level(logging.ERROR):
        out = run(
            [
                report(1.0, P.PRINTING, job(5.0, key="A"), printer_id="good"),
                report(1.0, P.PRINTING, broken, printer_id="bad"),
                report(2.0, P.FINISHED, job(100.0, key="A"), printer_id="good"),
                report(2.0, P.PRINTING, job(7.0, key="Y"), printer_id="bad"),
            ]
        )
    assert [(e.printer_id, str(e.kind)) for _, e in out.lifecycle] == [
        ("good", "started"),
        ("good", "finished"),
        ("bad", "started"),
    ]
    assert "on a report of bad" in caplog.text


def test_thousand_printers_each_get_their_own_pipeline() -> None:
    reports = [report(1.0, P.PRINTING, job(1.0, key="A"), printer_id=f"p{i}") for i in range(1000)]
    out = run(reports)
    assert len(out.lifecycle) == len(out.status) == len(out.progress) == 1000
    assert len({e.job_key for _, e in out.lifecycle}) == 1000
