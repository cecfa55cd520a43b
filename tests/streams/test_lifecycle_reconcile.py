"""lifecycle$ after the hub was away: prints a printer reports as ended while unobserved."""

from __future__ import annotations

from hub.model import EndedJob, Job
from streams import ActiveJob, LifecycleKind, RecordedPrints
from tests.streams.harness import P, job, offline, report, run

STARTED, FINISHED, CANCELLED, UNKNOWN = "started", "finished", "cancelled", "unknown"


def ended(key: str, outcome: str, started: float, at: float, progress: float = 0.0) -> EndedJob:
    """A print the printer's history says ended."""
    return EndedJob(job(progress, key=key, started_at=started), outcome, at)


def seed_a(progress: float = 40.0) -> dict[str, ActiveJob]:
    """The database says p1 was printing A (its job_key only; the key is not kept apart)."""
    return {"p1": ActiveJob("p1/A", Job("benchy.gcode", progress), started_at=100.0)}


def steps(out: object) -> list[tuple[str, str, bool]]:
    """(kind, job_key, inferred) of each lifecycle step."""
    return [(str(e.kind), e.job_key, e.inferred) for _, e in out.lifecycle]  # type: ignore[attr-defined]


def test_history_settles_the_seeded_print_and_records_the_one_missed_in_between() -> None:
    live = report(
        500.0,
        P.PRINTING,
        job(5.0, key="C", started_at=450.0),
        ended=(
            ended("A", "finished", 100.0, 200.0, 100.0),
            ended("B", "cancelled", 250.0, 300.0, 30.0),
        ),
    )
    out = run([live], seed=seed_a())
    assert steps(out) == [
        (FINISHED, "p1/A", False),
        (STARTED, "p1/B", False),
        (CANCELLED, "p1/B", False),
        (STARTED, "p1/C", False),
    ]
    finished = out.lifecycle[0][1]
    assert (finished.at, finished.progress) == (200.0, 100.0)
    assert out.notes() == ["print_finished", "print_started", "print_cancelled", "print_started"]


def test_a_replayed_history_is_not_news_twice() -> None:
    history = (ended("A", "finished", 100.0, 200.0), ended("B", "finished", 250.0, 300.0))
    out = run(
        [
            report(1.0, P.IDLE),
            report(500.0, P.IDLE, ended=history),
            offline(501.0),
            report(502.0, P.IDLE, ended=history),  # the same history after a reconnect
        ],
        recorded={"p1": RecordedPrints(("p1/A",), latest_start=100.0)},
    )
    assert steps(out) == [(STARTED, "p1/B", False), (FINISHED, "p1/B", False)]


def test_history_from_before_the_hub_knew_the_printer_is_not_news() -> None:
    old = (ended("A", "finished", 100.0, 200.0),)
    first = run([report(500.0, P.IDLE, ended=old)])
    assert first.lifecycle == []
    later = run([report(1000.0, P.IDLE), report(1001.0, P.IDLE, ended=old)])
    assert later.lifecycle == []  # started before the hub first heard of the printer


def test_an_outcome_the_printer_does_not_know_is_unknown_never_failed() -> None:
    out = run(
        [report(500.0, P.IDLE, ended=(ended("A", "unknown", 100.0, 200.0),))],
        seed=seed_a(progress=60.0),
    )
    assert steps(out) == [(UNKNOWN, "p1/A", True)]
    assert out.lifecycle[0][1].progress == 60.0  # the last progress seen
    assert out.notes() == ["print_ended_unobserved"]


def test_two_protocol_keys_are_two_prints_even_for_one_file_and_start_second() -> None:
    out = run(
        [
            report(1.0, P.PRINTING, job(50.0, key="A", started_at=10.0)),
            report(2.0, P.FINISHED, job(100.0, key="A", started_at=10.0)),
            report(3.0, P.PRINTING, job(1.0, key="B", started_at=10.0)),
        ]
    )
    assert [(k, key) for k, key, _ in steps(out)] == [
        (STARTED, "p1/A"),
        (FINISHED, "p1/A"),
        (STARTED, "p1/B"),
    ]


def test_a_seed_with_a_protocol_key_never_matches_another_key() -> None:
    out = run([report(2.0, P.PRINTING, job(45.0, key="B"))], seed=seed_a())
    assert [k for k, _, _ in steps(out)] == [UNKNOWN, STARTED]
    assert out.lifecycle[0][1].kind is LifecycleKind.UNKNOWN


def test_a_recorded_final_state_lingering_after_a_restart_is_not_news() -> None:
    recorded = {"p1": RecordedPrints(("p1/A",), latest_start=100.0)}
    lingering = run([report(500.0, P.FINISHED, job(100.0, key="A", started_at=100.0))],
                    recorded=recorded)  # fmt: skip
    assert lingering.lifecycle == []
    no_key = {"p1": RecordedPrints(("p1/benchy.gcode@100",), latest_start=100.0)}
    assert (
        run([report(500.0, P.FINISHED, job(100.0, started_at=100.7))], recorded=no_key).lifecycle
        == []
    )


def test_a_print_that_ran_entirely_while_the_hub_was_away_gets_its_row() -> None:
    recorded = {"p1": RecordedPrints(("p1/A",), latest_start=100.0)}
    out = run([report(500.0, P.FINISHED, job(100.0, key="B", started_at=300.0))],
              recorded=recorded)  # fmt: skip
    assert steps(out) == [(STARTED, "p1/B", False), (FINISHED, "p1/B", False)]
