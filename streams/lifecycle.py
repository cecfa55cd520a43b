"""lifecycle$ and progress$: one stable job_key per print, and the steps of its life.

The rules (also in docs/streams.md):
- Reports over a dead link are ignored: a reconnect continues the same print.
- A print is identified by its protocol key, else by file + started_at (within
  a tolerance), else by file alone. Without protocol keys, progress falling back
  means the file was started again (start times within the tolerance or not).
  Two different protocol keys are always two prints.
- Prints a report lists as ended while unobserved (`PrinterState.ended`, from the
  printer's own history) are settled first, with the outcome the printer gives;
  one the history already holds, or from before the newest recorded print, is old news.
- A print that vanishes without a final state (printing → idle, or printing A
  → printing B) is closed as finished if it had reached `complete_pct`, else
  as `unknown` (never as failed), with `inferred=True`.
- ERROR closes the running print as failed; it never starts one.
- A final state of a print never seen running is news (started + final) unless
  it is the first live report of a printer the hub had no seed for: then it is
  history from before the hub started and only remembered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import NamedTuple

from reactivex import Observable

from hub.model import ACTIVE_STATES, EndedJob, Job, PrinterState, PrintState
from streams.events import (
    TERMINAL_KINDS,
    ActiveJob,
    LifecycleEvent,
    LifecycleKind,
    ProgressEvent,
    RecordedPrints,
)
from streams.operators import NOTHING, scan_emit
from streams.reports import identified_job, is_up
from streams.settings import StreamSettings

_FINAL_KINDS: dict[PrintState, LifecycleKind] = {
    PrintState.FINISHED: LifecycleKind.FINISHED,
    PrintState.FAILED: LifecycleKind.FAILED,
    PrintState.CANCELLED: LifecycleKind.CANCELLED,
    PrintState.ERROR: LifecycleKind.FAILED,
}
_OUTCOMES = {kind.value: kind for kind in TERMINAL_KINDS}

JobOutput = LifecycleEvent | ProgressEvent


def job_key_for(printer_id: str, job: Job, first_seen: float) -> str:
    """The stable, idempotent key of one print: the protocol's key, else file + start time."""
    if job.key:
        return _protocol_key(printer_id, job.key)
    stamp = job.started_at if job.started_at is not None else first_seen
    return f"{printer_id}/{job.file}@{int(stamp)}"


def _protocol_key(printer_id: str, key: str) -> str:
    # Prefixed: protocol ids (Moonraker job ids, task ids) are only unique per printer.
    return f"{printer_id}/{key}"


# How many ended job_keys a printer remembers, to keep a reused protocol key from
# reopening a finished record.
_ENDED_MEMORY = 32


class _Track(NamedTuple):
    """Everything the tracker remembers about one printer between reports."""

    active: ActiveJob | None  # the print in progress
    closed: ActiveJob | None  # the print last closed; its final state may linger in reports
    seen: bool  # a live report or a seed came before, so final states are news
    shown: ProgressEvent | None  # the last progress sent
    ended: tuple[str, ...]  # job_keys of the prints ended lately, oldest first
    # Start of the newest print known (or of the first live report): older history is not news.
    floor: float | None


class JobTracker:
    """The lifecycle rules for one printer, as a pure step over (track, report)."""

    __slots__ = ("complete_pct", "printer_id", "restart_drop", "tolerance")

    def __init__(self, printer_id: str, settings: StreamSettings) -> None:
        self.printer_id = printer_id
        self.complete_pct = settings.complete_pct
        self.tolerance = settings.start_tolerance_s
        self.restart_drop = settings.restart_drop_pct

    def initial(self, seed: ActiveJob | None, recorded: RecordedPrints | None = None) -> _Track:
        """The state before the first report: the seeded print and what history holds."""
        recorded = recorded or RecordedPrints()
        seen = seed is not None or recorded.latest_start is not None
        floor = recorded.latest_start
        if seed is not None:
            floor = max(floor or seed.started_at, seed.started_at)
        return _Track(seed, None, seen, None, recorded.ended[-_ENDED_MEMORY:], floor)

    def step(self, track: _Track, report: PrinterState) -> tuple[_Track, tuple[JobOutput, ...]]:
        """Fold one report into the track; return the events it causes."""
        if not report.online:
            return track, NOTHING  # a dead link says nothing about the print
        settled: tuple[JobOutput, ...] = NOTHING
        if report.ended:  # told even while the printer itself is not ready
            track, settled = self._settle(track, report.ended, report.updated_at)
        if not is_up(report):
            return track, settled
        if track.floor is None:
            track = track._replace(floor=report.updated_at)
        track, events = self._live(track, report)
        return track, settled + events

    def _settle(
        self, track: _Track, ended: tuple[EndedJob, ...], now: float
    ) -> tuple[_Track, tuple[JobOutput, ...]]:
        """Close the prints the printer says ended while unobserved, with its own outcome."""
        events: tuple[JobOutput, ...] = NOTHING
        for item in ended:
            kind = _OUTCOMES.get(item.outcome, LifecycleKind.UNKNOWN)
            job, at = item.job, item.ended_at if item.ended_at is not None else now
            active = track.active
            if active is not None and self._identity(active, job):
                # Progress: what the printer reports, else what was seen last.
                final = job if job.progress > 0 else replace(job, progress=active.job.progress)
                record = ActiveJob(active.job_key, final, active.started_at)
                step = self._event(kind, record, final, at, inferred=kind is LifecycleKind.UNKNOWN)
                events += (step,)
                track = track._replace(
                    active=None, closed=record, ended=_remember(track.ended, (step,), record)
                )
                continue
            if not track.seen or self._is_old(track, job):
                continue  # history from before the hub knew the printer, or already recorded
            record = self._new(track, job, job.started_at or at)
            started = self._event(LifecycleKind.STARTED, record, job, record.started_at)
            step = self._event(kind, record, job, at, inferred=kind is LifecycleKind.UNKNOWN)
            events += (started, step)
            floor = max(track.floor or record.started_at, record.started_at)
            track = track._replace(
                closed=record, ended=_remember(track.ended, (step,), record), floor=floor
            )
        return track, events

    def _is_old(self, track: _Track, job: Job, *, strict: bool = True) -> bool:
        """Is an ended print already recorded, or older than the newest print known? Without a
        start time it counts as old when `strict` (history always has one)."""
        recorded = {key.split("#", 1)[0] for key in track.ended}
        if job.key and _protocol_key(self.printer_id, job.key) in recorded:
            return True
        if job.started_at is not None and job_key_for(self.printer_id, job, 0.0) in recorded:
            return True
        if track.closed is not None and self._identity(track.closed, job):
            return True
        if job.started_at is None:
            return strict
        return track.floor is not None and job.started_at <= track.floor

    def _live(self, track: _Track, report: PrinterState) -> tuple[_Track, tuple[JobOutput, ...]]:
        """Fold the report's live state into the track."""
        state = report.state
        events: tuple[JobOutput, ...]
        if state in ACTIVE_STATES:
            active, closed, events = self._running(track, report)
        elif state in _FINAL_KINDS:
            active, closed, events = self._ended(track, report, _FINAL_KINDS[state])
        else:
            active, closed, events = self._idle(track, report)
        ended = track.ended
        if closed is not track.closed:
            ended = _remember(ended, events, closed)
        shown = track.shown
        if active is not None and state in ACTIVE_STATES:
            progress = self._progress(active, shown)
            if progress is not None:
                shown = progress
                events += (progress,)
        floor = track.floor
        if active is not None and active is not track.active:
            floor = max(floor or active.started_at, active.started_at)
        return _Track(active, closed, True, shown, ended, floor), events

    def _running(
        self, track: _Track, report: PrinterState
    ) -> tuple[ActiveJob | None, ActiveJob | None, tuple[JobOutput, ...]]:
        active, closed = track.active, track.closed
        events: tuple[JobOutput, ...] = NOTHING
        now = report.updated_at
        job = identified_job(report)
        if job is None:
            if active is None:
                return None, closed, NOTHING  # running, but which print? wait for a fuller report
            job = active.job
        elif active is not None and not self._same(active, job):
            events = (self._vanished(active, now),)
            active, closed = None, active
        if active is None:
            if closed is not None and self._is_closed(closed, job, running=True):
                return None, closed, events  # never reopen a print already closed
            # The print just closed may share the file + start time key: keep the two apart.
            active = self._new(
                track._replace(ended=_remember(track.ended, events, closed)), job, now
            )
            events += (self._event(LifecycleKind.STARTED, active, job, active.started_at),)
        elif job is not active.job:
            active = ActiveJob(active.job_key, job, active.started_at, active.paused)
        paused = report.state is PrintState.PAUSED
        if paused != active.paused:
            active = ActiveJob(active.job_key, job, active.started_at, paused)
            kind = LifecycleKind.PAUSED if paused else LifecycleKind.RESUMED
            events += (self._event(kind, active, job, now),)
        return active, closed, events

    def _ended(
        self, track: _Track, report: PrinterState, kind: LifecycleKind
    ) -> tuple[None, ActiveJob | None, tuple[JobOutput, ...]]:
        active, closed = track.active, track.closed
        events: tuple[JobOutput, ...] = NOTHING
        now = report.updated_at
        job = identified_job(report)
        if active is not None:
            if job is None or self._same(active, job):
                final = job or active.job
                record = ActiveJob(active.job_key, final, active.started_at)
                return None, record, (self._event(kind, record, final, now),)
            # Another print has ended since: ours ended before it, unreported.
            events = (self._vanished(active, now),)
            closed = active
        if job is None or report.state is PrintState.ERROR:
            return None, closed, events  # an error state's job may be stale: never start one
        if closed is not None and self._is_closed(closed, job, running=False):
            return None, closed, events  # the final state of a print already closed lingers
        if self._is_old(track._replace(closed=closed), job, strict=False):
            # Recorded before (its final state lingers across a restart of the hub), or it
            # started before the newest print known: remembered, not news.
            known = ActiveJob(job_key_for(self.printer_id, job, now), job, job.started_at or now)
            return None, known, events
        record = self._new(track, job, now)
        if not track.seen:
            return None, record, events  # ended before the hub started: history, not news
        started = self._event(LifecycleKind.STARTED, record, job, record.started_at)
        return None, record, (*events, started, self._event(kind, record, job, now))

    def _idle(
        self, track: _Track, report: PrinterState
    ) -> tuple[None, ActiveJob | None, tuple[JobOutput, ...]]:
        active = track.active
        if active is None:
            return None, track.closed, NOTHING
        job = identified_job(report)
        if job is not None and self._same(active, job):
            active = ActiveJob(active.job_key, job, active.started_at)
        return None, active, (self._vanished(active, report.updated_at),)

    def _new(self, track: _Track, job: Job, now: float) -> ActiveJob:
        """A print seen for the first time, under a job_key no ended print had."""
        started_at = job.started_at if job.started_at is not None else now
        base = key = job_key_for(self.printer_id, job, now)
        copy = 1
        while key in track.ended:
            copy += 1  # the printer reused a protocol key: keep the records apart
            key = f"{base}#{copy}"
        return ActiveJob(key, job, started_at)

    def _vanished(self, active: ActiveJob, at: float) -> LifecycleEvent:
        """Close a print that ended without a final state: finished if it got that far, else
        unknown (it ended unobserved; nothing says it failed)."""
        done = active.job.progress >= self.complete_pct
        kind = LifecycleKind.FINISHED if done else LifecycleKind.UNKNOWN
        return self._event(kind, active, active.job, at, inferred=True)

    def _event(
        self, kind: LifecycleKind, active: ActiveJob, job: Job, at: float, inferred: bool = False
    ) -> LifecycleEvent:
        progress = 100.0 if kind is LifecycleKind.FINISHED else job.progress
        return LifecycleEvent(self.printer_id, kind, job, active.job_key, at, progress, inferred)

    def _known_key(self, known: ActiveJob) -> str | None:
        """The protocol key of a known print: its job's, else the one its job_key was made of."""
        if known.job.key:
            return known.job.key
        rest = known.job_key.removeprefix(f"{self.printer_id}/").split("#", 1)[0]
        name, _, stamp = rest.rpartition("@")
        if name and stamp.isdigit():
            return None  # a file + start time key: the print had no protocol key
        return rest

    def _identity(self, known: ActiveJob, job: Job) -> bool | None:
        """Whether `job` is `known`'s print, by key, file or start time; None if only the file agrees."""
        if job.key:
            known_key = self._known_key(known)
            if known_key:
                return known_key == job.key  # two protocol keys: never the same print twice
        if job.file and known.job.file and job.file != known.job.file:
            return False
        if known.job.started_at is not None and job.started_at is not None:
            return abs(known.job.started_at - job.started_at) <= self.tolerance
        return None

    def _fell_back(self, known: ActiveJob, job: Job) -> bool:
        """Without protocol keys, did progress fall back so far that the file started again?"""
        if job.key and self._known_key(known):
            return False  # the keys decide
        return job.progress < known.job.progress - self.restart_drop

    def _same(self, active: ActiveJob, job: Job) -> bool:
        """Is the reported job the print being tracked?"""
        same = self._identity(active, job)
        # Start times within the tolerance do not make a restart of the file the same print.
        return same is not False and not self._fell_back(active, job)

    def _is_closed(self, closed: ActiveJob, job: Job, running: bool) -> bool:
        """Is the reported job the print last closed?"""
        same = self._identity(closed, job)
        if same is not None:
            return same and not (running and self._fell_back(closed, job))
        # Only the file agrees: a lingering final state is the closed print; a
        # running one must be that file started again, since a closed print never runs.
        return not running

    def _progress(self, active: ActiveJob, shown: ProgressEvent | None) -> ProgressEvent | None:
        job = active.job
        percent = min(100, max(0, int(job.progress)))
        if (
            shown is not None
            and shown.job_key == active.job_key
            and shown.progress == percent
            and shown.layer == job.layer
            and shown.remaining_s == job.remaining_s
        ):
            return None
        return ProgressEvent(
            self.printer_id,
            job.file,
            percent,
            job.layer,
            job.total_layers,
            job.remaining_s,
            active.job_key,
        )


def _remember(
    ended: tuple[str, ...], events: tuple[JobOutput, ...], closed: ActiveJob | None
) -> tuple[str, ...]:
    """Add the keys of prints that ended in this step (and a remembered one) to `ended`."""
    keys = [e.job_key for e in events if isinstance(e, LifecycleEvent) and e.kind in TERMINAL_KINDS]
    if closed is not None:
        keys.append(closed.job_key)
    for key in keys:
        if key not in ended:
            ended = (*ended[-(_ENDED_MEMORY - 1) :], key)
    return ended


def track_jobs(
    printer_id: str,
    settings: StreamSettings,
    seed: ActiveJob | None,
    recorded: RecordedPrints | None = None,
) -> Callable[[Observable[PrinterState]], Observable[JobOutput]]:
    """One printer's reports → its LifecycleEvents and ProgressEvents, resuming from `seed`."""
    tracker = JobTracker(printer_id, settings)
    return scan_emit("lifecycle", tracker.step, tracker.initial(seed, recorded))
