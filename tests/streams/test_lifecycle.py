"""lifecycle$: one stable job_key per print, correct through reconnects, restarts and skipped states."""

from __future__ import annotations

from streams import ActiveJob, LifecycleKind, StreamSettings, job_key_for
from tests.streams.harness import P, job, offline, report, run

STARTED, PAUSED, RESUMED = "started", "paused", "resumed"
FINISHED, FAILED, CANCELLED = "finished", "failed", "cancelled"
UNKNOWN = "unknown"


def test_a_print_from_start_to_finish() -> None:
    out = run(
        [
            report(1.0, P.IDLE),
            report(2.0, P.PREPARING, job(0.0, key="T1")),
            report(3.0, P.PRINTING, job(40.0, key="T1")),
            report(4.0, P.PRINTING, job(99.0, key="T1")),
            report(5.0, P.FINISHED, job(100.0, key="T1")),
            report(6.0, P.FINISHED, job(100.0, key="T1")),  # the final state lingers
            report(7.0, P.IDLE),
        ]
    )
    assert out.kinds() == [STARTED, FINISHED]
    started, finished = (e for _, e in out.lifecycle)
    assert started.job_key == finished.job_key == "p1/T1"
    assert (started.at, finished.at) == (2.0, 5.0)
    assert finished.progress == 100.0 and not finished.inferred


def test_job_key_prefers_protocol_key_then_started_at_then_first_sight() -> None:
    assert job_key_for("p1", job(key="42", started_at=5.0), 9.0) == "p1/42"
    assert job_key_for("p1", job(started_at=1700000000.7), 9.0) == "p1/benchy.gcode@1700000000"
    assert job_key_for("p1", job(), 1234.5) == "p1/benchy.gcode@1234"


def test_job_key_without_any_id_is_stable_for_the_whole_print() -> None:
    out = run(
        [
            report(10.0, P.PRINTING, job(1.0)),
            report(11.0, P.PRINTING, job(2.0)),
            report(12.0, P.FINISHED, job(100.0)),
        ]
    )
    assert [e.job_key for _, e in out.lifecycle] == ["p1/benchy.gcode@10"] * 2


def test_started_at_is_used_for_key_and_start_time() -> None:
    out = run([report(10.0, P.PRINTING, job(5.0, started_at=7.9))])
    ((_, started),) = out.lifecycle
    assert (started.job_key, started.at) == ("p1/benchy.gcode@7", 7.9)


def test_started_at_jitter_within_tolerance_is_the_same_print() -> None:
    out = run(
        [
            report(10.0, P.PRINTING, job(5.0, started_at=100.0)),
            report(11.0, P.PRINTING, job(6.0, started_at=103.0)),  # derived as now - elapsed
            report(12.0, P.PRINTING, job(1.0, started_at=500.0)),  # same file started again
        ],
        StreamSettings(start_tolerance_s=60.0),
    )
    assert out.kinds() == [STARTED, UNKNOWN, STARTED]


def test_partial_reports_without_job_neither_start_nor_end_a_print() -> None:
    out = run(
        [
            report(1.0, P.PRINTING, None),  # which print? not yet known
            report(2.0, P.PRINTING, job(3.0, file="", key=None)),  # still nothing to go by
            report(3.0, P.PRINTING, job(4.0, key="T1")),
            report(4.0, P.PRINTING, None),  # a partial report mid-print
            report(5.0, P.PAUSED, None),
            report(6.0, P.PRINTING, job(10.0, file="")),  # a key-less, file-less fragment
            report(7.0, P.FINISHED, None),  # final state without job details
        ]
    )
    assert out.kinds() == [STARTED, PAUSED, RESUMED, FINISHED]
    assert {e.job_key for _, e in out.lifecycle} == {"p1/T1"}
    assert out.lifecycle[0][0] == 3.0


def test_key_appearing_late_keeps_the_first_job_key() -> None:
    out = run(
        [
            report(1.0, P.PRINTING, job(1.0)),
            report(2.0, P.PRINTING, job(2.0, key="T9")),
            report(3.0, P.FINISHED, job(100.0, key="T9")),
        ]
    )
    assert out.kinds() == [STARTED, FINISHED]
    assert {e.job_key for _, e in out.lifecycle} == {"p1/benchy.gcode@1"}


def test_reconnect_mid_print_continues_the_same_print() -> None:
    out = run(
        [
            report(1.0, P.PRINTING, job(10.0, key="T1")),
            offline(2.0),
            offline(3.0),
            report(4.0, P.PRINTING, job(30.0, key="T1")),
            report(5.0, P.FINISHED, job(100.0, key="T1")),
        ]
    )
    assert out.kinds() == [STARTED, FINISHED]


def test_reconnect_without_any_job_id_continues_the_same_print() -> None:
    out = run(
        [
            report(1.0, P.PRINTING, job(10.0)),
            offline(2.0),
            report(30.0, P.PRINTING, job(35.0)),
            report(31.0, P.FINISHED, job(100.0)),
        ]
    )
    assert out.kinds() == [STARTED, FINISHED]
    assert len({e.job_key for _, e in out.lifecycle}) == 1


def test_reconnect_to_a_print_paused_meanwhile() -> None:
    out = run(
        [
            report(1.0, P.PRINTING, job(10.0, key="T1")),
            offline(2.0),
            report(3.0, P.PAUSED, job(12.0, key="T1")),
            report(4.0, P.PRINTING, job(12.0, key="T1")),
        ]
    )
    assert out.kinds() == [STARTED, PAUSED, RESUMED]


def test_reconnect_after_the_print_ended_while_offline() -> None:
    out = run(
        [
            report(1.0, P.PRINTING, job(10.0, key="T1")),
            offline(2.0),
            report(3.0, P.CANCELLED, job(12.0, key="T1")),
        ]
    )
    assert out.kinds() == [STARTED, CANCELLED]


def seeded(progress: float = 40.0, key: str | None = "T1", paused: bool = False) -> ActiveJob:
    """What the database says p1 is printing when the hub restarts."""
    return ActiveJob("p1/T1", job(progress, key=key), started_at=-500.0, paused=paused)


def test_restart_mid_print_resumes_without_a_second_start() -> None:
    out = run(
        [
            offline(1.0),
            report(2.0, P.PRINTING, job(45.0, key="T1")),
            report(3.0, P.FINISHED, job(100.0, key="T1")),
        ],
        seed={"p1": seeded()},
    )
    assert out.kinds() == [FINISHED]
    assert out.lifecycle[0][1].job_key == "p1/T1"


def test_restart_seed_with_only_the_job_key_still_matches() -> None:
    # The database kept the job_key and a display name, not the protocol's key or file.
    seed = ActiveJob("p1/T1", job(40.0, file="Plate 1"), started_at=-500.0)
    out = run(
        [report(2.0, P.PRINTING, job(45.0, key="T1")), report(3.0, P.FAILED, job(50.0, key="T1"))],
        seed={"p1": seed},
    )
    assert out.kinds() == [FAILED]
    assert out.lifecycle[0][1].job_key == "p1/T1"


def test_restart_seed_of_a_keyless_print_matches_by_file() -> None:
    seed = ActiveJob("p1/benchy.gcode@900", job(40.0), started_at=900.0)
    out = run(
        [report(2.0, P.PRINTING, job(41.0)), report(3.0, P.FINISHED, job(100.0))],
        seed={"p1": seed},
    )
    assert out.kinds() == [FINISHED]
    assert out.lifecycle[0][1].job_key == "p1/benchy.gcode@900"


def test_restart_finds_the_seeded_print_finished() -> None:
    out = run([report(2.0, P.FINISHED, job(100.0, key="T1"))], seed={"p1": seeded()})
    assert out.kinds() == [FINISHED]
    assert not out.lifecycle[0][1].inferred


def test_restart_finds_the_seeded_print_cancelled_without_job_details() -> None:
    out = run([report(2.0, P.CANCELLED)], seed={"p1": seeded()})
    assert out.kinds() == [CANCELLED]
    assert out.lifecycle[0][1].job_key == "p1/T1"


def test_restart_finds_the_printer_idle_judges_by_progress() -> None:
    failed = run([report(2.0, P.IDLE)], seed={"p1": seeded(progress=40.0)})
    done = run([report(2.0, P.IDLE)], seed={"p1": seeded(progress=99.5)})
    assert failed.kinds() == [UNKNOWN] and failed.lifecycle[0][1].inferred
    assert done.kinds() == [FINISHED] and done.lifecycle[0][1].inferred


def test_restart_finds_another_print_running() -> None:
    out = run([report(2.0, P.PRINTING, job(5.0, key="T2"))], seed={"p1": seeded()})
    assert [(e.kind, e.job_key) for _, e in out.lifecycle] == [
        (LifecycleKind.UNKNOWN, "p1/T1"),
        (LifecycleKind.STARTED, "p1/T2"),
    ]


def test_restart_with_a_paused_seed_resumes() -> None:
    out = run([report(2.0, P.PRINTING, job(45.0, key="T1"))], seed={"p1": seeded(paused=True)})
    assert out.kinds() == [RESUMED]


def test_seed_for_another_printer_is_not_used() -> None:
    out = run([report(2.0, P.PRINTING, job(45.0, key="T1"))], seed={"p2": seeded()})
    assert out.kinds() == [STARTED]


def test_cancel_and_failure_and_error_are_told_apart() -> None:
    def ending(state: P) -> list[str]:
        return run(
            [report(1.0, P.PRINTING, job(10.0, key="T")), report(2.0, state, job(11.0, key="T"))]
        ).kinds()

    assert ending(P.CANCELLED) == [STARTED, CANCELLED]
    assert ending(P.FAILED) == [STARTED, FAILED]
    assert ending(P.ERROR) == [STARTED, FAILED]
    assert ending(P.FINISHED) == [STARTED, FINISHED]


def test_idle_to_finished_of_a_new_print_is_started_then_finished() -> None:
    out = run(
        [
            report(1.0, P.IDLE),
            report(9.0, P.FINISHED, job(100.0, key="T5", started_at=3.0)),
            report(10.0, P.FINISHED, job(100.0, key="T5")),
        ]
    )
    assert [(e.kind, e.at) for _, e in out.lifecycle] == [
        (LifecycleKind.STARTED, 3.0),
        (LifecycleKind.FINISHED, 9.0),
    ]


def test_final_state_at_first_sight_is_history_not_news() -> None:
    out = run(
        [
            report(1.0, P.FINISHED, job(100.0)),  # finished before the hub started
            report(2.0, P.FINISHED, job(100.0)),
            report(3.0, P.PREPARING, job(0.0)),  # the same file started again
            report(4.0, P.FINISHED, job(100.0)),
        ]
    )
    assert out.kinds() == [STARTED, FINISHED]
    assert out.lifecycle[0][0] == 3.0


def test_error_never_starts_a_print() -> None:
    out = run([report(1.0, P.IDLE), report(2.0, P.ERROR, job(30.0, key="OLD"))])
    assert out.kinds() == []


def test_print_a_to_print_b_closes_a_by_its_progress() -> None:
    nearly_done = run(
        [report(1.0, P.PRINTING, job(99.2, key="A")), report(2.0, P.PRINTING, job(1.0, key="B"))]
    )
    halfway = run(
        [report(1.0, P.PRINTING, job(50.0, key="A")), report(2.0, P.PRINTING, job(1.0, key="B"))]
    )
    assert [(e.kind, e.job_key, e.inferred) for _, e in nearly_done.lifecycle] == [
        (LifecycleKind.STARTED, "p1/A", False),
        (LifecycleKind.FINISHED, "p1/A", True),
        (LifecycleKind.STARTED, "p1/B", False),
    ]
    assert halfway.kinds() == [STARTED, UNKNOWN, STARTED]


def test_print_a_to_finished_b_closes_a_then_records_b() -> None:
    out = run(
        [report(1.0, P.PRINTING, job(20.0, key="A")), report(2.0, P.FINISHED, job(100.0, key="B"))]
    )
    assert [(e.kind, e.job_key) for _, e in out.lifecycle] == [
        (LifecycleKind.STARTED, "p1/A"),
        (LifecycleKind.UNKNOWN, "p1/A"),
        (LifecycleKind.STARTED, "p1/B"),
        (LifecycleKind.FINISHED, "p1/B"),
    ]


def test_same_file_restarted_is_a_new_print() -> None:
    out = run(
        [
            report(1.0, P.PRINTING, job(60.0)),
            report(2.0, P.PRINTING, job(0.5)),  # progress fell back: started again
            report(3.0, P.PRINTING, job(3.0)),
        ]
    )
    assert out.kinds() == [STARTED, UNKNOWN, STARTED]
    assert out.lifecycle[0][1].job_key != out.lifecycle[2][1].job_key


def test_printing_to_idle_closes_by_progress() -> None:
    out = run(
        [
            report(1.0, P.PRINTING, job(30.0, key="A")),
            report(2.0, P.IDLE),
            report(3.0, P.PRINTING, job(99.0, key="B")),
            report(4.0, P.IDLE, job(99.0, key="B")),
        ]
    )
    assert [(e.kind, e.inferred) for _, e in out.lifecycle] == [
        (LifecycleKind.STARTED, False),
        (LifecycleKind.UNKNOWN, True),
        (LifecycleKind.STARTED, False),
        (LifecycleKind.FINISHED, True),
    ]


def test_a_closed_print_is_never_reopened() -> None:
    out = run(
        [
            report(1.0, P.PRINTING, job(30.0, key="A")),
            report(2.0, P.IDLE),
            report(3.0, P.PRINTING, job(31.0, key="A")),  # a glitch: same print again
            report(4.0, P.FINISHED, job(100.0, key="A")),
        ]
    )
    assert out.kinds() == [STARTED, UNKNOWN]


def test_pause_resume_pairs() -> None:
    out = run(
        [
            report(1.0, P.PRINTING, job(10.0, key="A")),
            report(2.0, P.PAUSED, job(10.0, key="A")),
            report(3.0, P.PAUSED, job(10.0, key="A")),
            report(4.0, P.PRINTING, job(11.0, key="A")),
            report(5.0, P.PAUSED, job(12.0, key="A")),
            report(6.0, P.PRINTING, job(12.0, key="A")),
            report(7.0, P.FINISHED, job(100.0, key="A")),
        ]
    )
    assert [(t, e.kind) for t, e in out.lifecycle] == [
        (1.0, LifecycleKind.STARTED),
        (2.0, LifecycleKind.PAUSED),
        (4.0, LifecycleKind.RESUMED),
        (5.0, LifecycleKind.PAUSED),
        (6.0, LifecycleKind.RESUMED),
        (7.0, LifecycleKind.FINISHED),
    ]


def test_cancelled_while_paused_and_first_seen_paused() -> None:
    out = run(
        [
            report(1.0, P.PAUSED, job(10.0, key="A")),
            report(2.0, P.CANCELLED, job(10.0, key="A")),
        ]
    )
    assert out.kinds() == [STARTED, PAUSED, CANCELLED]


def test_events_carry_the_latest_job_and_progress() -> None:
    out = run(
        [
            report(1.0, P.PRINTING, job(10.0, key="A", layer=3)),
            report(2.0, P.PRINTING, job(20.0, key="A", layer=9)),
            report(3.0, P.CANCELLED, None),
        ]
    )
    cancelled = out.lifecycle[-1][1]
    assert (cancelled.progress, cancelled.job.layer) == (20.0, 9)


def test_printers_are_tracked_independently() -> None:
    out = run(
        [
            report(1.0, P.PRINTING, job(10.0, key="A"), printer_id="p1"),
            report(1.0, P.PRINTING, job(10.0, key="A"), printer_id="p2"),
            report(2.0, P.FINISHED, job(100.0, key="A"), printer_id="p1"),
        ]
    )
    assert [(e.printer_id, e.kind, e.job_key) for _, e in out.lifecycle] == [
        ("p1", LifecycleKind.STARTED, "p1/A"),
        ("p2", LifecycleKind.STARTED, "p2/A"),
        ("p1", LifecycleKind.FINISHED, "p1/A"),
    ]


def test_a_reused_protocol_key_gets_a_record_of_its_own() -> None:
    out = run(
        [
            report(1.0, P.PRINTING, job(10.0, key="0")),
            report(2.0, P.FINISHED, job(100.0, key="0")),
            report(3.0, P.PRINTING, job(5.0, key="B")),
            report(4.0, P.FINISHED, job(100.0, key="B")),
            report(5.0, P.PRINTING, job(1.0, key="0")),  # the driver's key came round again
            report(6.0, P.FINISHED, job(100.0, key="0")),
        ]
    )
    assert [(e.kind, e.job_key) for _, e in out.lifecycle][-2:] == [
        (LifecycleKind.STARTED, "p1/0#2"),
        (LifecycleKind.FINISHED, "p1/0#2"),
    ]


def test_a_finished_print_is_reported_at_full_progress() -> None:
    reset = run(
        [report(1.0, P.PRINTING, job(80.0, key="A")), report(2.0, P.FINISHED, job(0.0, key="A"))]
    )
    inferred = run([report(1.0, P.PRINTING, job(99.2, key="A")), report(2.0, P.IDLE)])
    assert reset.lifecycle[-1][1].progress == 100.0  # some printers zero progress at the end
    assert inferred.lifecycle[-1][1].progress == 100.0
