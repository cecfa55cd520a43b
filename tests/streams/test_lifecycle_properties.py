"""lifecycle$ invariants for any sequence of reports: one start and one end per job_key."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.model import Job, PrinterState, PrintState
from streams import TERMINAL_KINDS, ActiveJob, LifecycleEvent, LifecycleKind
from tests.streams.harness import job, offline, report, run

JOBS = [
    None,
    job(key="A"),
    job(key="B"),
    job(file="c.gcode", started_at=50.0),
    job(file="d.gcode"),
    job(file=""),
]


@st.composite
def reports(draw: st.DrawFn) -> list[PrinterState]:
    """A printer's reports: any state, any of a few jobs, links dropping in between."""
    steps = draw(
        st.lists(
            st.tuples(
                st.sampled_from(list(PrintState)),
                st.integers(0, len(JOBS) - 1),
                st.floats(0, 100, allow_nan=False),
            ),
            min_size=1,
            max_size=30,
        )
    )
    out = []
    for i, (state, which, progress) in enumerate(steps):
        at = float(i + 1)
        base: Job | None = JOBS[which]
        if state is PrintState.OFFLINE:
            out.append(offline(at))
        else:
            reported = None if base is None else replace(base, progress=progress)
            out.append(report(at, state, reported))
    return out


def check(events: list[LifecycleEvent], seeded_key: str | None) -> None:
    """Every job_key: started once (or seeded) first, ended at most once, nothing after its end."""
    open_key = seeded_key
    started: set[str] = set() if seeded_key is None else {seeded_key}
    ended: set[str] = set()
    paused = False
    for event in events:
        key = event.job_key
        assert key not in ended, f"event after the end of {key}"
        if event.kind is LifecycleKind.STARTED:
            assert key not in started, f"second start of {key}"
            assert open_key is None, f"{key} started while {open_key} was open"
            started.add(key)
            open_key, paused = key, False
            continue
        assert key == open_key, f"{event.kind} for {key}, but {open_key} is the open print"
        if event.kind in TERMINAL_KINDS:
            ended.add(key)
            open_key = None
        elif event.kind is LifecycleKind.PAUSED:
            assert not paused
            paused = True
        else:
            assert paused
            paused = False


@settings(max_examples=300, deadline=None)
@given(reports())
def test_one_start_and_one_end_per_print(sequence: list[PrinterState]) -> None:
    out = run(sequence)
    check([e for _, e in out.lifecycle], None)


@settings(max_examples=200, deadline=None)
@given(reports())
def test_one_end_per_print_after_a_seeded_restart(sequence: list[PrinterState]) -> None:
    seed = ActiveJob("p1/A", job(40.0, key="A"), started_at=0.0)
    out = run(sequence, seed={"p1": seed})
    check([e for _, e in out.lifecycle], "p1/A")
