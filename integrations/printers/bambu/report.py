"""Bambu `push_status` reports: merge partial reports in place, map them to PrinterState."""

from __future__ import annotations

import time
from typing import Any

from hub.model import (
    AmsTray,
    AmsUnit,
    HmsError,
    Job,
    PrinterState,
    PrintState,
    Temperatures,
)
from integrations.printers.merge import merge
from integrations.printers.values import parse_float, parse_int

# print_error value the printer reports when the user cancelled the print.
CANCELLED_BY_USER = 50348044
EXTERNAL_SPOOL = 254
NO_TRAY = 255

# Only these keys of the `print` object feed the normalized state; the rest
# (ipcam, net, xcam, upgrade_state, ...) are skipped at merge time, which keeps
# memory and per-report work small for a thousand printers.
RELEVANT_KEYS = frozenset(
    {
        "gcode_state", "mc_percent", "mc_remaining_time", "layer_num", "total_layer_num",
        "nozzle_temper", "nozzle_target_temper", "bed_temper", "bed_target_temper",
        "chamber_temper", "gcode_file", "subtask_name", "task_id", "subtask_id",
        "print_error", "hms", "spd_lvl", "cooling_fan_speed", "big_fan1_speed",
        "big_fan2_speed", "heatbreak_fan_speed", "stg_cur", "wifi_signal",
        "lights_report", "ams", "vt_tray", "gcode_start_time", "job_id",
    }
)  # fmt: skip

# The AMS part of a report: large on X1 (four units are most of a 12 KB report) and rarely
# changing, so it is merged and turned into AmsUnit objects only when it changed.
_AMS_KEYS = ("ams", "vt_tray")

_GCODE_STATES = {
    "IDLE": PrintState.IDLE,
    "INIT": PrintState.IDLE,  # firmware booting, no job yet
    "UNKNOWN": PrintState.IDLE,
    "SLICING": PrintState.PREPARING,
    "PREPARE": PrintState.PREPARING,
    "RUNNING": PrintState.PRINTING,
    "PAUSE": PrintState.PAUSED,
    "FINISH": PrintState.FINISHED,
    "FAILED": PrintState.FAILED,
    "OFFLINE": PrintState.OFFLINE,
}
# stg_cur values during which a RUNNING printer has not laid down plastic yet:
# bed leveling, preheating, XY sweep, hotend heating, extrusion calibration,
# bed scan, plate detection, lidar calibration, homing, nozzle cleaning.
_PREPARATION_STAGES = frozenset({1, 2, 3, 7, 8, 9, 11, 12, 13, 14})
_FANS = {
    "cooling_fan_speed": "part",
    "big_fan1_speed": "aux",
    "big_fan2_speed": "chamber",
    "heatbreak_fan_speed": "heatbreak",
}
_HMS_SEVERITY = {1: "fatal", 2: "error", 3: "warning", 4: "info"}
_HMS_MODULES = {0x03: "motion controller", 0x05: "mainboard", 0x07: "AMS", 0x08: "toolhead",
                0x0C: "camera", 0x12: "AMS"}  # fmt: skip


def hms_code(attr: int, code: int) -> str:
    """`HMS_AAAA_AAAA_CCCC_CCCC` from the integer attr and code of an HMS entry."""
    return f"HMS_{attr >> 16:04X}_{attr & 0xFFFF:04X}_{code >> 16:04X}_{code & 0xFFFF:04X}"


def hms_error(attr: int, code: int) -> HmsError:
    """Decode one HMS entry; severity sits in the upper half of `code`, the module in `attr`."""
    severity = _HMS_SEVERITY.get(code >> 16, "error")
    module = _HMS_MODULES.get(attr >> 24, "printer")
    return HmsError(code=hms_code(attr, code), text=f"{module} {severity}", severity=severity)


def print_error(value: int) -> HmsError:
    """A non-zero `print_error` as an error entry (`PRINT_XXXX_XXXX`)."""
    return HmsError(
        code=f"PRINT_{value >> 16:04X}_{value & 0xFFFF:04X}",
        text="print error reported by the printer",
        severity="error",
    )


def _tray_slot(unit: int, tray: int) -> int:
    # Matches `tray_now`: ams_id * 4 + tray_id, except AMS-HT units (128-135) with one tray.
    return unit if unit >= 128 else unit * 4 + tray


def _tray(raw: dict[str, Any], slot: int) -> AmsTray:
    # An empty slot is only its id; an unset external spool has every field, the type empty.
    if len(raw) <= 1 or raw.get("tray_type") == "":
        return AmsTray(slot=slot, empty=True)
    remain = parse_int(raw.get("remain"))
    color = raw.get("tray_color")
    uuid = raw.get("tray_uuid")
    return AmsTray(
        slot=slot,
        material=raw.get("tray_type") or None,
        color=color.upper() if isinstance(color, str) and color else None,
        remain=remain if remain is not None and remain >= 0 else None,
        # All zeros: a spool without an RFID tag.
        uuid=uuid.upper() if isinstance(uuid, str) and uuid.strip("0") else None,
    )


def _ams_units(raw: dict[str, Any]) -> tuple[AmsUnit, ...]:
    units: list[AmsUnit] = []
    ams = raw.get("ams")
    for unit_raw in ams.get("ams", []) if isinstance(ams, dict) else []:
        unit = parse_int(unit_raw.get("id"))
        if unit is None:
            continue
        trays = []
        for tray_raw in unit_raw.get("tray") or []:
            tray_id = parse_int(tray_raw.get("id"))
            if tray_id is not None:
                trays.append(_tray(tray_raw, _tray_slot(unit, tray_id)))
        units.append(
            AmsUnit(
                unit=unit,
                # Percent, as the model defines it; the 1-5 "humidity" field is only an index.
                humidity=parse_int(unit_raw.get("humidity_raw")),
                temperature=parse_float(unit_raw.get("temp")),
                trays=tuple(sorted(trays, key=lambda t: t.slot)),
            )
        )
    units.sort(key=lambda u: u.unit)
    vt = raw.get("vt_tray")
    if isinstance(vt, dict):
        # The external spool is presented as its own single-tray unit numbered like its
        # tray (254), so `active_tray == 254` resolves the same way as AMS trays.
        units.append(AmsUnit(unit=EXTERNAL_SPOOL, trays=(_tray(vt, EXTERNAL_SPOOL),)))
    return tuple(units)


class BambuReport:
    """The merged `print` object of one printer and what is derived across reports."""

    def __init__(self) -> None:
        self.raw: dict[str, Any] = {}
        self.has_full = False
        self._cancelled = False
        self._job_identity: tuple[Any, ...] | None = None
        self._job_seen_at: float | None = None
        # AmsUnit objects of the current raw AMS, built once per change (None: to build).
        self._ams: tuple[AmsUnit, ...] | None = None

    def apply(self, report: dict[str, Any]) -> bool:
        """Merge one `push_status` report; True if anything the state shows changed."""
        full = report.get("msg") == 0
        relevant = {k: v for k, v in report.items() if k in RELEVANT_KEYS}
        raw = self.raw
        if full:
            self.has_full = True
            # A full report replaces everything: one C-level comparison instead of a merge
            # walking ~12 KB (list items keyed by id may come back in a new order; nothing
            # derived from them depends on it).
            changed = relevant != raw
            if changed:
                if any(relevant.get(k) != raw.get(k) for k in _AMS_KEYS):
                    self._ams = None
                self.raw = relevant
        else:
            # Merged apart, so an unchanged AMS is known to be unchanged.
            ams = {k: raw.pop(k) for k in _AMS_KEYS if k in raw}
            changed = merge(raw, {k: v for k, v in relevant.items() if k not in _AMS_KEYS})
            if merge(ams, {k: relevant[k] for k in _AMS_KEYS if k in relevant}):
                self._ams = None
                changed = True
            raw.update(ams)
        if changed:
            self._track_job()
        return changed

    def _track_job(self) -> None:
        raw = self.raw
        error = parse_int(raw.get("print_error"))
        gcode_state = raw.get("gcode_state")
        if error == CANCELLED_BY_USER:
            # print_error resets to 0 a moment later while gcode_state stays FAILED,
            # so the cancel is latched until the next print starts.
            self._cancelled = True
        elif gcode_state in ("PREPARE", "SLICING", "RUNNING", "PAUSE"):
            self._cancelled = False
        identity = (raw.get("task_id"), raw.get("subtask_id"), raw.get("gcode_file"),
                    raw.get("subtask_name"))  # fmt: skip
        if identity != self._job_identity and gcode_state in ("PREPARE", "RUNNING", "SLICING"):
            self._job_identity = identity
            self._job_seen_at = time.time()

    def print_state(self) -> PrintState:
        """The normalized print state of the merged report."""
        raw = self.raw
        state = _GCODE_STATES.get(str(raw.get("gcode_state", "IDLE")).upper(), PrintState.IDLE)
        if state is PrintState.FAILED and self._cancelled:
            return PrintState.CANCELLED
        if (
            state is PrintState.PRINTING
            and parse_int(raw.get("stg_cur")) in _PREPARATION_STAGES
            and (parse_int(raw.get("layer_num")) or 0) <= 0
        ):
            return PrintState.PREPARING
        return state

    def _job(self, state: PrintState) -> Job | None:
        raw = self.raw
        if state in (PrintState.IDLE, PrintState.OFFLINE, PrintState.ERROR):
            return None
        remaining = parse_int(raw.get("mc_remaining_time"))
        started = parse_float(raw.get("gcode_start_time"))
        # The print's identity: its task / subtask / job id, else (LAN prints may carry none)
        # the second it started, which two prints never share.
        key = next(
            (
                str(raw[k])
                for k in ("task_id", "subtask_id", "job_id")
                if str(raw.get(k, "0")) not in ("", "0")
            ),
            f"start-{int(started)}" if started else None,
        )
        return Job(
            file=str(raw.get("subtask_name") or raw.get("gcode_file") or ""),
            progress=float(parse_int(raw.get("mc_percent")) or 0),
            layer=parse_int(raw.get("layer_num")),
            total_layers=parse_int(raw.get("total_layer_num")),
            remaining_s=remaining * 60 if remaining is not None else None,
            started_at=started if started else self._job_seen_at,
            key=key,
        )

    def _errors(self) -> tuple[HmsError, ...]:
        raw = self.raw
        errors = [
            hms_error(int(entry.get("attr", 0)), int(entry.get("code", 0)))
            for entry in raw.get("hms") or []
            if isinstance(entry, dict)
        ]
        error = parse_int(raw.get("print_error")) or 0
        if error and error != CANCELLED_BY_USER:
            errors.append(print_error(error))
        return tuple(errors)

    def _fans(self) -> dict[str, int]:
        fans = {}
        for key, name in _FANS.items():
            step = parse_int(self.raw.get(key))
            if step is not None:
                # Fan speeds come as a 0-15 step; the hub speaks percent.
                fans[name] = round(min(max(step, 0), 15) * 100 / 15)
        return fans

    def _light(self) -> bool | None:
        for node in self.raw.get("lights_report") or []:
            if isinstance(node, dict) and node.get("node") == "chamber_light":
                return node.get("mode") in ("on", "flashing")
        return None

    def _ams_units(self) -> tuple[AmsUnit, ...]:
        # The same tuple while the AMS is unchanged: comparisons downstream stop at identity.
        if self._ams is None:
            self._ams = _ams_units(self.raw)
        return self._ams

    def _active_tray(self) -> int | None:
        ams = self.raw.get("ams")
        tray = parse_int(ams.get("tray_now")) if isinstance(ams, dict) else None
        return None if tray is None or tray == NO_TRAY else tray

    def to_state(self, printer_id: str) -> PrinterState:
        """Build the normalized snapshot of the merged report."""
        raw = self.raw
        state = self.print_state()
        wifi = raw.get("wifi_signal")
        return PrinterState(
            printer_id=printer_id,
            online=True,
            state=state,
            job=self._job(state),
            temps=Temperatures(
                nozzle=parse_float(raw.get("nozzle_temper")),
                nozzle_target=parse_float(raw.get("nozzle_target_temper")),
                bed=parse_float(raw.get("bed_temper")),
                bed_target=parse_float(raw.get("bed_target_temper")),
                chamber=parse_float(raw.get("chamber_temper")),
            ),
            fans=self._fans(),
            speed_level=parse_int(raw.get("spd_lvl")),
            ams=self._ams_units(),
            active_tray=self._active_tray(),
            errors=self._errors(),
            wifi_signal=parse_int(wifi.lower().removesuffix("dbm"))
            if isinstance(wifi, str)
            else None,
            light=self._light(),
            updated_at=time.time(),
        )
