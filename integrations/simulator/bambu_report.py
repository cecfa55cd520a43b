"""Bambu `push_status` reports: the full `print` object per model profile, and partial diffs."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from hub.model import PrintState
from integrations.simulator.ams import EXTERNAL_SLOT, MATERIALS, Tray
from integrations.simulator.model import RUNOUT_CODE, PrintModel


@dataclass(frozen=True, slots=True)
class BambuProfile:
    """What differs between Bambu models on the wire."""

    model: str
    product: str
    project: str
    serial_prefix: str
    firmware: str
    full_reports: bool  # X1 pushes the whole object every time; P1/A1 push diffs
    ams_units: int
    ams_hw: str
    nozzle_type: str
    modules: tuple[tuple[str, str, str], ...]  # (name, hw_ver, sw_ver) besides ota and ams


PROFILES: dict[str, BambuProfile] = {
    "X1C": BambuProfile(
        "X1C",
        "X1 Carbon",
        "BL-P001",
        "00M09A",
        "01.08.02.00",
        True,
        2,
        "AMS08",
        "hardened_steel",
        (
            ("rv1126", "AP05", "00.00.28.55"),
            ("mc", "MC07", "00.00.26.43"),
            ("th", "TH07", "00.00.08.32"),
            ("xm", "XM15", "00.00.02.14"),
            ("ahb", "AHB00", "00.00.00.42"),
        ),
    ),
    "P1S": BambuProfile(
        "P1S",
        "P1S",
        "C12",
        "01P00A",
        "01.06.01.00",
        False,
        1,
        "AMS08",
        "stainless_steel",
        (("mc", "MC01", "00.00.25.26"), ("th", "TH09", "00.00.06.29")),
    ),
    "P1P": BambuProfile(
        "P1P",
        "P1P",
        "C11",
        "01S00A",
        "01.06.01.00",
        False,
        0,
        "AMS08",
        "stainless_steel",
        (("mc", "MC01", "00.00.25.26"), ("th", "TH09", "00.00.06.29")),
    ),
    "A1": BambuProfile(
        "A1",
        "A1",
        "N2S",
        "03919A",
        "01.04.00.00",
        False,
        1,
        "AMS_F102",
        "stainless_steel",
        (("mc", "MC04", "00.00.16.11"), ("th", "TH10", "00.00.03.16")),
    ),
}

_GCODE_STATE = {
    PrintState.IDLE: "IDLE",
    PrintState.PREPARING: "PREPARE",
    PrintState.PRINTING: "RUNNING",
    PrintState.PAUSED: "PAUSE",
    PrintState.FINISHED: "FINISH",
    PrintState.FAILED: "FAILED",
    PrintState.CANCELLED: "FAILED",  # Bambu reports a user stop as FAILED + print_error 50348044
    PrintState.ERROR: "FAILED",
}
_SUB_BRANDS = {"PLA": "PLA Basic", "PETG": "PETG HF", "ABS": "ABS", "ASA": "ASA", "TPU": "TPU 95A"}


def _fan_step(percent: int) -> str:
    """Bambu reports fans as a 0-15 step in a string."""
    return str(round(max(0, min(100, percent)) * 15 / 100))


def tray_object(tray: Tray, tray_id: str) -> dict[str, Any]:
    """A tray as Bambu reports it; an empty slot is only `{"id": ...}`."""
    if tray.empty:
        return {"id": tray_id}
    info_idx, temp_min, temp_max, bed = MATERIALS.get(tray.material, MATERIALS["PLA"])
    return {
        "id": tray_id,
        "bed_temp": str(bed),
        "bed_temp_type": "1",
        "cali_idx": -1,
        "cols": [tray.color],
        "ctype": 0,
        "drying_temp": "55" if tray.material.startswith("PLA") else "65",
        "drying_time": "8",
        "k": 0.02,
        "n": 1,
        "nozzle_temp_max": str(temp_max),
        "nozzle_temp_min": str(temp_min),
        "remain": tray.remain,
        "state": 11,
        "tag_uid": tray.uuid[:16] if tray.uuid else "0000000000000000",
        "total_len": 330000,
        "tray_color": tray.color,
        "tray_diameter": "1.75",
        "tray_id_name": f"A00-{tray.color[:1]}{tray.slot % 10}",
        "tray_info_idx": info_idx,
        "tray_sub_brands": _SUB_BRANDS.get(tray.material, tray.material),
        "tray_temp": "55",
        "tray_time": "8",
        "tray_type": tray.material,
        "tray_uuid": tray.uuid or "0" * 32,
        "tray_weight": str(int(tray.capacity)),
        "xcam_info": "D007D007E803E8039A99193F",
    }


def _unset_spool() -> dict[str, Any]:
    """The external spool with nothing set: every field present, the material empty."""
    return {
        "id": str(EXTERNAL_SLOT), "tag_uid": "0000000000000000", "tray_id_name": "",
        "tray_info_idx": "", "tray_type": "", "tray_sub_brands": "", "tray_color": "00000000",
        "tray_weight": "0", "tray_diameter": "0.00", "tray_temp": "0", "tray_time": "0",
        "bed_temp_type": "0", "bed_temp": "0", "nozzle_temp_max": "0", "nozzle_temp_min": "0",
        "xcam_info": "000000000000000000000000", "tray_uuid": "0" * 32, "remain": 0,
        "k": 0.02, "n": 1, "cali_idx": -1,
    }  # fmt: skip


def ams_object(printer: PrintModel, version: int) -> dict[str, Any]:
    """The `ams` object: units, trays and which tray feeds the nozzle."""
    units = []
    exist_bits = tray_bits = 0
    for unit in printer.ams:
        exist_bits |= 1 << unit.unit
        trays = []
        for i, tray in enumerate(unit.trays):
            if not tray.empty:
                tray_bits |= 1 << (unit.unit * 4 + i)
            trays.append(tray_object(tray, str(i)))
        units.append(
            {
                "id": str(unit.unit),
                "humidity": str(unit.humidity),
                "humidity_raw": str(unit.humidity_raw),
                "temp": f"{unit.temperature:.1f}",
                "dry_time": 0,
                "info": "1001",
                "tray": trays,
            }
        )
    job = printer.job
    tray_now = str(printer.active_slot)
    return {
        "ams": units,
        "ams_exist_bits": format(exist_bits, "x"),
        "insert_flag": True,
        "power_on_flag": False,
        "tray_exist_bits": format(tray_bits, "x"),
        "tray_is_bbl_bits": format(tray_bits, "x"),
        "tray_now": tray_now,
        "tray_pre": str(job.slot) if job else tray_now,
        "tray_read_done_bits": format(tray_bits, "x"),
        "tray_reading_bits": "0",
        "tray_tar": tray_now,
        "version": version,
    }


def _stage(printer: PrintModel) -> int:
    """Bambu `stg_cur`: 2 bed preheat, 1 leveling, 7 hotend heating, 0 printing, 16/6 paused."""
    state = printer.state
    if state is PrintState.PRINTING:
        return 0
    if state is PrintState.PAUSED:
        return 6 if any(code == RUNOUT_CODE for _, code in printer.hms) else 16
    if state is PrintState.PREPARING:
        if printer.bed < printer.bed_target - 2:
            return 2
        if printer.nozzle < printer.nozzle_target - 2:
            return 7
        return 1
    return 255


def print_object(
    printer: PrintModel,
    profile: BambuProfile,
    host: str,
    sequence: int,
    wifi: int,
    ams_version: int,
) -> dict[str, Any]:
    """The full `print` report object (`msg: 0`)."""
    job = printer.job
    state = printer.state
    active = printer.active
    stage = _stage(printer)
    external = printer.external
    vt = tray_object(external, str(EXTERNAL_SLOT)) if not external.empty else _unset_spool()
    vt.pop("cols", None)
    ip = int(ipaddress.IPv4Address(host)) if host[:1].isdigit() else 0
    report: dict[str, Any] = {
        "ams": ams_object(printer, ams_version),
        "ams_rfid_status": 6,
        "ams_status": 768 if active and printer.ams else 0,
        "aux_part_fan": True,
        "bed_target_temper": round(printer.bed_target, 1),
        "bed_temper": round(printer.bed, 2),
        "big_fan1_speed": _fan_step(printer.part_fan // 2 if active else 0),
        "big_fan2_speed": _fan_step(printer.part_fan // 3 if active else 0),
        "cali_version": 0,
        "chamber_temper": round(printer.chamber, 2),
        "command": "push_status",
        "cooling_fan_speed": _fan_step(printer.part_fan),
        "fail_reason": "0",
        "fan_gear": 0,
        "filam_bak": [],
        "force_upgrade": False,
        "gcode_file": job.file if job else "",
        "gcode_file_prepare_percent": "100" if job else "0",
        "gcode_start_time": str(int(job.started_at)) if job else "0",
        "gcode_state": _GCODE_STATE.get(state, "IDLE"),
        "heatbreak_fan_speed": _fan_step(100 if printer.nozzle > 50 else 0),
        "hms": [{"attr": attr, "code": code} for attr, code in printer.hms],
        "home_flag": 6 if not active else 7,
        "hw_switch_state": 1,
        "ipcam": {
            "ipcam_dev": "1",
            "ipcam_record": "enable",
            "mode_bits": 2,
            "resolution": "1080p" if profile.full_reports else "720p",
            "rtsp_url": f"rtsps://{host}/streaming/live/1" if profile.full_reports else "disable",
            "timelapse": "disable",
            "tutk_server": "disable",
        },
        "job_attr": 0,
        "layer_num": job.layer if job else 0,
        "lifecycle": "product",
        "lights_report": [{"node": node, "mode": mode} for node, mode in printer.lights.items()],
        "maintain": 3,
        "mc_percent": job.percent if job else 0,
        "mc_print_error_code": "0",
        "mc_print_stage": "2" if active else "1",
        "mc_print_sub_stage": 0,
        "mc_remaining_time": int(job.remaining_s(printer.speed_percent) // 60) if job else 0,
        "mess_production_state": "active",
        "msg": 0,
        "net": {"conf": 16, "info": [{"ip": ip, "mask": 16777215}, {"ip": 0, "mask": 0}]},
        "nozzle_diameter": "0.4",
        "nozzle_target_temper": round(printer.nozzle_target, 1),
        "nozzle_temper": round(printer.nozzle, 2),
        "nozzle_type": profile.nozzle_type,
        "online": {"ahb": profile.full_reports, "rfid": False, "version": 7},
        "print_error": printer.print_error,
        "print_gcode_action": 0,
        "print_real_action": 0,
        "print_type": "local" if job else "idle",
        "profile_id": "",
        "project_id": "",
        "queue_est": 0,
        "queue_number": 0,
        "queue_sts": 0,
        "queue_total": 0,
        "s_obj": [],
        "sdcard": True,
        "sequence_id": str(sequence),
        "spd_lvl": printer.speed_level,
        "spd_mag": printer.speed_percent,
        "stg": [2, 14, 1, 8] if job else [],
        "stg_cur": -1 if stage == 255 and profile.full_reports else stage,
        "subtask_id": job.task_id if job else "",
        "job_id": job.task_id if job else "",
        "subtask_name": job.subtask_name if job else "",
        "task_id": job.task_id if job else "",
        "total_layer_num": job.meta.layers if job else 0,
        "upgrade_state": _upgrade_state(profile),
        "upload": {
            "file_size": 0,
            "finish_size": 0,
            "message": "Good",
            "oss_url": "",
            "progress": 0,
            "sequence_id": "0903",
            "speed": 0,
            "status": "idle",
            "task_id": "",
            "time_remaining": 0,
            "trouble_id": "",
        },
        "vt_tray": vt,
        "wifi_signal": f"-{wifi}dBm",
        "xcam": {
            "allow_skip_parts": False,
            "buildplate_marker_detector": True,
            "first_layer_inspector": profile.full_reports,
            "halt_print_sensitivity": "medium",
            "print_halt": True,
            "printing_monitor": True,
            "spaghetti_detector": True,
        },
        "xcam_status": "0",
    }
    if profile.full_reports:
        # Fields only the X1 family's firmware sends.
        report.update(
            {
                "mc_print_line_number": str(int((job.progress if job else 0) * 250_000)),
                "model_id": "",
                "plate_idx": 1 if job else 0,
                "design_id": "",
                "fun": "3EC1AFFF9CFF",
                "stat": "46258008",
                "aux": "4000000",
                "cfg": "1DE9A9A8",
            }
        )
    return report


def _upgrade_state(profile: BambuProfile) -> dict[str, Any]:
    versions = [
        {"name": "ota", "cur_ver": profile.firmware, "new_ver": profile.firmware},
        *({"name": name, "cur_ver": sw, "new_ver": sw} for name, _hw, sw in profile.modules),
    ]
    return {
        "ahb_new_version_number": "",
        "ams_new_version_number": "",
        "consistency_request": False,
        "dis_state": 0,
        "err_code": 0,
        "ext_new_version_number": "",
        "force_upgrade": False,
        "idx": 1,
        "idx2": 0,
        "lower_limit": "00.00.00.00",
        "message": "0%, 0B/s",
        "module": "null",
        "new_version_state": 2,
        "ota_new_version_number": "",
        "progress": "0",
        "sequence_id": 0,
        "sn": "",
        "status": "IDLE",
        "new_ver_list": versions,
    }


_SAME = object()


def diff(old: Any, new: Any) -> Any:
    """The partial of `new` against `old` as P1/A1 send it; `_SAME` when nothing changed.

    Dicts keep only changed keys; lists of objects with an `id` keep only changed items (with
    their id), so a client can merge them by id; any other changed value is sent whole.
    """
    if isinstance(new, dict) and isinstance(old, dict):
        if old.keys() - new.keys():
            return new  # something disappeared (a tray emptied): resend the whole object
        out = {}
        for key, value in new.items():
            if key not in old:
                out[key] = value
                continue
            changed = diff(old[key], value)
            if changed is not _SAME:
                out[key] = changed
        return out if out else _SAME
    if isinstance(new, list) and isinstance(old, list) and _keyed(new) and _keyed(old):
        if [item["id"] for item in new] != [item["id"] for item in old]:
            return new
        items = []
        for before, after in zip(old, new, strict=True):
            changed = diff(before, after)
            if changed is _SAME:
                continue
            if isinstance(changed, dict) and "id" not in changed:
                changed = {"id": after["id"], **changed}
            items.append(changed)
        return items if items else _SAME
    return _SAME if old == new else new


def _keyed(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(item, dict) and "id" in item for item in items)


def partial(old: dict[str, Any], new: dict[str, Any], sequence: int) -> dict[str, Any]:
    """A `msg: 1` partial report of what changed between two full objects."""
    changed = diff(old, new)
    out: dict[str, Any] = changed if isinstance(changed, dict) else {}
    out["command"] = "push_status"
    out["msg"] = 1
    out["sequence_id"] = str(sequence)
    return out


def version_modules(profile: BambuProfile, serial: str, ams_units: int) -> list[dict[str, Any]]:
    """The `module` list of a `get_version` reply."""
    modules = [
        {
            "name": "ota",
            "project_name": profile.project,
            "sw_ver": profile.firmware,
            "hw_ver": "OTA",
            "sn": serial,
            "flag": 0,
        },
    ]
    for name, hw, sw in profile.modules:
        modules.append(
            {
                "name": name,
                "project_name": "",
                "sw_ver": sw,
                "hw_ver": hw,
                "sn": f"{serial[:6]}{name.upper()}{serial[-4:]}",
                "flag": 0,
            }
        )
    ams_name = "ams_f1" if profile.ams_hw.startswith("AMS_F") else "ams"
    for unit in range(ams_units):
        modules.append(
            {
                "name": f"{ams_name}/{unit}",
                "project_name": "",
                "sw_ver": "00.00.06.49",
                "hw_ver": profile.ams_hw,
                "sn": f"006A0{serial[-6:]}{unit:04d}",
                "flag": 0,
            }
        )
    return modules
