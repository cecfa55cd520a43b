"""The print model shared by every protocol front end: heat-up, layers, filament, errors."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from hub.model import ACTIVE_STATES, PrintState
from integrations.simulator.ams import (
    EXTERNAL_SLOT,
    MATERIALS,
    NO_SLOT,
    AmsUnit,
    Tray,
    stock_ams,
    stock_tray,
)
from integrations.simulator.clock import Clock
from integrations.simulator.gcode_meta import GcodeMeta, parse_file

AMBIENT_C = 24.0
CANCELLED_BY_USER = 50348044  # Bambu print_error for a print stopped by the user
DEFAULT_FAILURE = 50364426  # Bambu print_error 0x0300800A: spaghetti / pile-up detected
RUNOUT_CODE = 0x00020001  # HMS code "filament has run out" (attr names the slot)

# Bambu's speed levels (spd_lvl) and the feed-rate multiplier (spd_mag %) each one applies.
SPEED_LEVELS = {1: 50, 2: 100, 3: 124, 4: 166}
# Degrees per simulated second; cooling is slower than heating, as on a real machine.
NOZZLE_HEAT, NOZZLE_COOL = 3.0, 1.5
BED_HEAT, BED_COOL = 0.8, 0.3
KEEP_FILE_BYTES = 4 * 1024 * 1024  # keep small uploads so a .3mf plate can be re-read at start

_task_ids = itertools.count(100_000_000)


class SimError(Exception):
    """A request the simulated printer refuses: wrong state, unknown file, empty tray."""


def runout_hms_attr(slot: int) -> int:
    """HMS attr for a run-out slot, e.g. 0x07002000 = AMS A slot 1, 0x07FF2000 = external spool."""
    if slot == EXTERNAL_SLOT or slot >= NO_SLOT:
        return 0x07FF2000
    return 0x07000000 | ((slot // 4) << 16) | 0x2000 | ((slot % 4) << 8)


@dataclass(slots=True)
class SimFile:
    """A file on the printer's storage with the slicer metadata read from it."""

    name: str
    size: int
    meta: GcodeMeta
    uploaded_at: float
    data: bytes | None = None


@dataclass(slots=True)
class SimJob:
    """The print running (or last run) on a simulated printer; times in simulated seconds."""

    file: str
    meta: GcodeMeta
    task_id: str
    subtask_name: str
    slot: int
    started_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    work_s: float = 0.0  # printing done, in seconds of the file's estimate
    elapsed_s: float = 0.0  # since start, heat-up and pauses included
    printing_s: float = 0.0  # time spent in the printing state
    prepare_s: float = 0.0
    grams_used: float = 0.0

    @property
    def progress(self) -> float:
        """Fraction done, 0.0-1.0, following the file's time estimate."""
        return min(1.0, self.work_s / self.meta.time_s) if self.meta.time_s > 0 else 1.0

    @property
    def percent(self) -> int:
        """Whole percent done, as printers show it."""
        return int(self.progress * 100)

    @property
    def layer(self) -> int:
        """The layer being printed (0 before the first one starts)."""
        if self.work_s <= 0:
            return 0
        return min(self.meta.layers, int(self.progress * self.meta.layers) + 1)

    def remaining_s(self, speed_percent: int = 100) -> float:
        """Simulated seconds left at the given speed magnitude."""
        return max(0.0, self.meta.time_s - self.work_s) * 100.0 / max(1, speed_percent)


@dataclass(slots=True)
class PrintLogEntry:
    """One physical print as the simulated printer lived it: the truth tests compare against."""

    task_id: str
    file: str
    started_at: float  # wall-clock time, as the job's own started_at
    ended_at: float | None = None
    # finished | failed | cancelled | interrupted (power lost mid-print); None while running.
    outcome: str | None = None
    percent: int = 0  # whole percent reached when it ended


# A job event for listeners: ("started" | "ended", the job, the log entry).
JobListener = Callable[[str, SimJob, PrintLogEntry], None]


class PrintModel:
    """One simulated printer's physical state, advanced by `tick()` on an injected clock."""

    def __init__(
        self,
        clock: Clock,
        *,
        serial: str = "SIM",
        ams_units: int = 0,
        prepare_s: float = 60.0,
    ) -> None:
        self.clock = clock
        self.serial = serial
        self.prepare_s = prepare_s
        self.ams: list[AmsUnit] = stock_ams(ams_units, serial)
        self.external: Tray = stock_tray(EXTERNAL_SLOT, serial)
        self.active_slot: int = 0 if self.ams else EXTERNAL_SLOT
        self.files: dict[str, SimFile] = {}
        self.lights: dict[str, str] = {"chamber_light": "on", "work_light": "off"}
        # Every print started on this printer, in order; survives power cycles.
        self.log: list[PrintLogEntry] = []
        self.ignore_starts = False  # acknowledge print starts without beginning them
        self.ignored_starts = 0
        # Front ends that announce jobs (Moonraker history, OctoPrint events) listen here.
        self.job_listeners: list[JobListener] = []
        self._last = clock.now()
        self._reset()

    def _reset(self) -> None:
        self.state: PrintState = PrintState.IDLE
        self.job: SimJob | None = None
        self.nozzle = self.bed = AMBIENT_C
        self.chamber = AMBIENT_C + 1.0
        self.nozzle_target = self.bed_target = 0.0
        self.part_fan = 0  # percent
        self.hms: list[tuple[int, int]] = []
        self.print_error = 0
        self.speed_level = 2
        self.message = ""

    # -- queries -----------------------------------------------------------------------------
    @property
    def speed_percent(self) -> int:
        """Feed-rate multiplier in percent for the current speed level."""
        return SPEED_LEVELS[self.speed_level]

    @property
    def active(self) -> bool:
        """True while a job is preparing, printing or paused."""
        return self.state in ACTIVE_STATES

    def tray(self, slot: int) -> Tray | None:
        """The tray with global id `slot` (ams*4+tray, or 254 for the external spool)."""
        if slot == EXTERNAL_SLOT:
            return self.external
        unit, index = divmod(slot, 4)
        if 0 <= unit < len(self.ams) and 0 <= index < len(self.ams[unit].trays):
            return self.ams[unit].trays[index]
        return None

    @property
    def active_tray(self) -> Tray | None:
        """The tray feeding the nozzle, if any."""
        return self.tray(self.active_slot)

    # -- files -------------------------------------------------------------------------------
    def add_file(self, name: str, data: bytes) -> SimFile:
        """Store an uploaded file (replacing one of the same name) and read its metadata."""
        name = name.lstrip("/")
        if not name:
            raise SimError("file name is empty")
        meta = parse_file(name, data)
        kept = data if len(data) <= KEEP_FILE_BYTES else None
        entry = SimFile(name=name, size=len(data), meta=meta, uploaded_at=time.time(), data=kept)
        self.files[name] = entry
        return entry

    def find_file(self, name: str) -> SimFile | None:
        """A stored file by name, ignoring leading slashes and storage prefixes like `sdcard/`."""
        name = name.lstrip("/")
        if name in self.files:
            return self.files[name]
        base = name.rsplit("/", 1)[-1]
        return self.files.get(base)

    # -- commands ----------------------------------------------------------------------------
    def start_print(
        self,
        filename: str,
        *,
        subtask_name: str | None = None,
        task_id: str | None = None,
        slot: int | None = None,
        plate: str | None = None,
    ) -> SimJob:
        """Begin printing a stored file: heat up first, then print (refused while busy)."""
        if self.active:
            raise SimError(f"printer is busy ({self.state.value})")
        entry = self.find_file(filename)
        if entry is None:
            raise SimError(f"no such file: {filename}")
        if self.ignore_starts:
            # Firmware that acknowledges the start and then never begins (the fault below).
            self.ignored_starts += 1
            return SimJob(file=entry.name, meta=entry.meta, task_id="0", subtask_name="", slot=0)
        meta = entry.meta
        if plate and entry.data is not None and entry.name.lower().endswith(".3mf"):
            meta = parse_file(entry.name, entry.data, plate)
        if slot is not None:
            if self.tray(slot) is None:
                raise SimError(f"no tray {slot}")
            self.active_slot = slot
        tray = self.active_tray
        material = tray.material if tray else "PLA"
        # Without temperatures in the file, heat for the loaded material (10 °C under its max).
        _, _, nozzle_max, bed_default = MATERIALS.get(material, MATERIALS["PLA"])
        nozzle_default = nozzle_max - 10
        self.job = SimJob(
            file=entry.name,
            meta=meta,
            task_id=task_id or str(next(_task_ids)),
            subtask_name=subtask_name or entry.name.rsplit(".", 1)[0],
            slot=self.active_slot,
        )
        self.nozzle_target = meta.nozzle_temp or float(nozzle_default)
        self.bed_target = meta.bed_temp or float(bed_default)
        self.print_error = 0
        self.message = ""
        self.state = PrintState.PREPARING
        record = PrintLogEntry(self.job.task_id, entry.name, self.job.started_at)
        self.log.append(record)
        self._announce("started", self.job, record)
        return self.job

    def pause(self) -> None:
        """Pause the running print."""
        if self.state not in (PrintState.PRINTING, PrintState.PREPARING):
            raise SimError(f"cannot pause while {self.state.value}")
        self.state = PrintState.PAUSED

    def resume(self) -> None:
        """Resume a paused print; refused while the active tray is empty."""
        if self.state is not PrintState.PAUSED or self.job is None:
            raise SimError(f"cannot resume while {self.state.value}")
        tray = self.active_tray
        if tray is None or not tray.has_filament:
            raise SimError(f"no filament in tray {self.active_slot}")
        self.hms = [(a, c) for a, c in self.hms if c != RUNOUT_CODE]
        self.state = PrintState.PRINTING if self.job.work_s > 0 else PrintState.PREPARING

    def cancel(self) -> None:
        """Stop the print at the user's request."""
        if not self.active:
            raise SimError(f"nothing to cancel while {self.state.value}")
        self._end(PrintState.CANCELLED)
        self.print_error = CANCELLED_BY_USER

    def fail(self, code: int = DEFAULT_FAILURE, message: str = "print failed") -> None:
        """Make the current print fail with a printer error code."""
        if not self.active:
            raise SimError(f"no print to fail while {self.state.value}")
        self._end(PrintState.FAILED)
        self.print_error = code
        self.message = message

    def clear_job(self) -> None:
        """Forget the finished job and return to idle, as when the bed is cleared."""
        if self.active:
            raise SimError("a print is still running")
        self.state = PrintState.IDLE
        self.job = None
        self.print_error = 0
        self.message = ""

    def power_cycle(self) -> None:
        """Lose everything a power cycle loses (job, heat, errors); files and spools remain."""
        if self.job is not None and self.active:
            self.job.ended_at = time.time()
            self._log_end(self.job, "interrupted")
        self._reset()
        self._last = self.clock.now()

    def _end(self, state: PrintState) -> None:
        self.state = state
        self.nozzle_target = self.bed_target = 0.0
        self.part_fan = 0
        if self.job is not None:
            self.job.ended_at = time.time()
            self._log_end(self.job, state.value)

    def _log_end(self, job: SimJob, outcome: str) -> None:
        entry = self.log_entry(job)
        if entry is None or entry.outcome is not None:
            return
        entry.ended_at = job.ended_at
        entry.outcome = outcome
        entry.percent = job.percent
        self._announce("ended", job, entry)

    def log_entry(self, job: SimJob) -> PrintLogEntry | None:
        """The log entry of `job` (the latest one with its task id)."""
        for entry in reversed(self.log):
            if entry.task_id == job.task_id and entry.started_at == job.started_at:
                return entry
        return None

    def _announce(self, what: str, job: SimJob, entry: PrintLogEntry) -> None:
        for listener in list(self.job_listeners):
            listener(what, job, entry)

    def raise_hms(self, attr: int, code: int) -> None:
        """Add an HMS error (no duplicate)."""
        if (attr, code) not in self.hms:
            self.hms.append((attr, code))

    def clear_hms(self) -> None:
        """Clear every HMS error."""
        self.hms.clear()

    def runout(self) -> None:
        """Empty the active tray; a running print pauses with a run-out HMS error."""
        tray = self.active_tray
        if tray is not None:
            tray.grams = 0.0
        self._on_runout()

    def _on_runout(self) -> None:
        self.raise_hms(runout_hms_attr(self.active_slot), RUNOUT_CODE)
        if self.state in (PrintState.PRINTING, PrintState.PREPARING):
            self.state = PrintState.PAUSED
            self.message = "filament runout"

    def change_tray(self, slot: int) -> None:
        """Switch the nozzle's feed to tray `slot` (255 unloads)."""
        if slot == NO_SLOT:
            if self.state is PrintState.PRINTING:
                raise SimError("cannot unload while printing")
            self.active_slot = NO_SLOT
            return
        tray = self.tray(slot)
        if tray is None:
            raise SimError(f"no tray {slot}")
        if not tray.has_filament:
            raise SimError(f"tray {slot} is empty")
        self.active_slot = slot
        if self.job is not None and self.active:
            self.job.slot = slot

    def set_speed_level(self, level: int) -> None:
        """Set the speed level: 1 silent, 2 standard, 3 sport, 4 ludicrous."""
        if level not in SPEED_LEVELS:
            raise SimError(f"speed level must be 1-4, not {level}")
        self.speed_level = level

    def set_light(self, node: str, mode: str) -> None:
        """Switch a light (`chamber_light`, `work_light`) on, off or flashing."""
        if mode not in ("on", "off", "flashing"):
            raise SimError(f"light mode must be on, off or flashing, not {mode}")
        self.lights[node] = mode

    def gcode(self, script: str) -> list[str]:
        """Run G-code lines the simulator understands (heaters, fans); others are accepted as-is."""
        replies: list[str] = []
        for raw in script.splitlines():
            line = raw.split(";", 1)[0].strip().upper()
            if not line:
                continue
            word = line.split()[0]
            value = re.search(r"\bS(-?\d+(?:\.\d+)?)", line)
            number = float(value.group(1)) if value else None
            if word in ("M104", "M109") and number is not None:
                self.nozzle_target = max(0.0, number)
            elif word in ("M140", "M190") and number is not None:
                self.bed_target = max(0.0, number)
            elif word == "M106":
                self.part_fan = int(min(255.0, number if number is not None else 255.0) / 2.55)
            elif word == "M107":
                self.part_fan = 0
            elif word == "M220" and number is not None:
                closest = min(SPEED_LEVELS, key=lambda lvl: abs(SPEED_LEVELS[lvl] - number))
                self.speed_level = closest
            replies.append("ok")
        return replies

    # -- time --------------------------------------------------------------------------------
    def tick(self) -> None:
        """Advance the model to the clock's current time."""
        now = self.clock.now()
        dt = now - self._last
        self._last = now
        if dt > 0:
            self.advance(dt)

    def advance(self, dt: float) -> None:
        """Advance the model by `dt` simulated seconds."""
        self.nozzle = _approach(self.nozzle, self.nozzle_target, NOZZLE_HEAT, NOZZLE_COOL, dt)
        self.bed = _approach(self.bed, self.bed_target, BED_HEAT, BED_COOL, dt)
        # The chamber follows the bed slowly (enclosed printers warm up while printing).
        chamber_goal = AMBIENT_C + 1.0 + max(0.0, self.bed - AMBIENT_C) * 0.25
        self.chamber = _approach(self.chamber, chamber_goal, 0.05, 0.05, dt)
        job = self.job
        if job is None or not self.active:
            return
        job.elapsed_s += dt
        if self.state is PrintState.PREPARING:
            job.prepare_s += dt
            hot = (
                abs(self.nozzle - self.nozzle_target) < 2.0
                and abs(self.bed - self.bed_target) < 2.0
            )
            if hot and job.prepare_s >= self.prepare_s:
                self.state = PrintState.PRINTING
                self.part_fan = 100
        elif self.state is PrintState.PRINTING:
            self._print(job, dt)

    def _print(self, job: SimJob, dt: float) -> None:
        job.printing_s += dt
        before = job.progress
        job.work_s = min(job.meta.time_s, job.work_s + dt * self.speed_percent / 100.0)
        need = (job.progress - before) * job.meta.grams
        tray = self.active_tray
        shortfall = tray.consume(need) if tray is not None else 0.0
        job.grams_used += need - shortfall
        if shortfall > 1e-9:
            # Give back the work the missing filament would have printed, then stop for a spool.
            if job.meta.grams > 0:
                job.work_s -= shortfall / job.meta.grams * job.meta.time_s
            self._on_runout()
            return
        if job.progress >= 1.0:
            self._end(PrintState.FINISHED)


def _approach(value: float, target: float, up: float, down: float, dt: float) -> float:
    goal = target if target > 0 else AMBIENT_C
    if value < goal:
        return min(goal, value + up * dt)
    return max(goal, value - down * dt)
