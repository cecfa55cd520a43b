"""Bambu report merging and mapping, on payloads shaped like real X1C and P1S reports."""

from __future__ import annotations

import copy
import json

from hypothesis import given
from hypothesis import strategies as st

from hub.model import AmsTray, PrintState
from integrations.printers.bambu.driver import reports_full_state
from integrations.printers.bambu.report import (
    CANCELLED_BY_USER,
    BambuReport,
    hms_code,
    hms_error,
)
from integrations.printers.merge import merge


def test_x1c_full_report_maps_every_field(payload):
    report = BambuReport()
    assert report.apply(payload("bambu_x1c_full.json")["print"])
    state = report.to_state("x1")
    assert state.online and state.state is PrintState.PRINTING
    job = state.job
    assert job is not None
    assert (job.file, job.progress, job.layer, job.total_layers) == ("benchy_x1", 42.0, 57, 210)
    assert job.remaining_s == 37 * 60
    assert job.started_at == 1732800000.0
    assert job.key == "538712345"
    assert state.temps.nozzle == 219.8 and state.temps.bed_target == 55.0
    assert state.temps.chamber == 31.0
    assert state.fans == {"part": 100, "aux": 67, "chamber": 0, "heatbreak": 100}
    assert state.speed_level == 2
    assert state.wifi_signal == -45
    assert state.light is True
    assert state.active_tray == 1
    units = {u.unit: u for u in state.ams}
    assert set(units) == {0, 1, 254}
    # Percent from humidity_raw; a unit with only the 1-5 index has no percentage.
    assert units[0].humidity == 31 and units[0].temperature == 22.7
    assert units[1].humidity is None
    trays = units[0].trays
    assert trays[0] == AmsTray(slot=0, material="PLA", color="FF0000FF", remain=80, uuid="A1B2")
    assert trays[1] == AmsTray(slot=1, material="PLA", color="FFFFFFFF", remain=None)
    assert trays[2] == AmsTray(slot=2, empty=True)
    assert [t.slot for t in units[1].trays] == [4, 5, 6, 7]
    assert units[254].trays == (AmsTray(slot=254, material="PETG", color="00FF00FF"),)
    codes = [(e.code, e.severity) for e in state.errors]
    assert codes == [("HMS_0300_0100_0001_0007", "fatal"), ("HMS_0700_8000_0003_0002", "warning")]


def test_identical_full_report_is_not_a_change(payload):
    report = BambuReport()
    body = payload("bambu_x1c_full.json")["print"]
    assert report.apply(copy.deepcopy(body))
    assert not report.apply(copy.deepcopy(body))
    body["nozzle_temper"] = 221.0
    assert report.apply(body)


def test_irrelevant_fields_are_not_kept(payload):
    report = BambuReport()
    report.apply(payload("bambu_x1c_full.json")["print"])
    assert "ipcam" not in report.raw and "upgrade_state" not in report.raw


def test_p1s_deltas_merge_into_the_full_state(payload):
    report = BambuReport()
    report.apply(payload("bambu_p1s_full.json")["print"])
    assert report.to_state("p1").state is PrintState.IDLE
    assert report.to_state("p1").job is None
    deltas = payload("bambu_p1s_deltas.json")
    report.apply(deltas[0]["print"])
    state = report.to_state("p1")
    assert state.state is PrintState.PREPARING
    assert state.job is not None and state.job.file == "bracket"
    assert state.job.key is None  # LAN prints carry task id 0
    assert state.job.started_at is not None
    report.apply(deltas[1]["print"])
    state = report.to_state("p1")
    assert state.temps.nozzle == 150.5 and state.temps.bed_target == 60.0
    assert state.temps.nozzle_target == 0.0  # untouched fields survive the delta
    report.apply(deltas[2]["print"])
    state = report.to_state("p1")
    assert state.state is PrintState.PRINTING and state.job is not None
    assert (state.job.progress, state.job.layer, state.job.remaining_s) == (4.0, 3, 88 * 60)
    report.apply(deltas[3]["print"])
    state = report.to_state("p1")
    trays = state.ams[0].trays
    assert trays[1] == AmsTray(slot=1, material="PLA", color="FF0000FF", remain=44)
    assert trays[0].material == "PLA"  # sibling tray untouched
    assert state.active_tray == 1 and state.ams[0].humidity == 12
    report.apply(deltas[4]["print"])
    assert report.to_state("p1").ams[0].trays[0] == AmsTray(slot=0, empty=True)
    report.apply(deltas[5]["print"])
    state = report.to_state("p1")
    assert state.fans["part"] == 53 and state.wifi_signal == -58
    assert state.light is False


def test_full_report_drops_what_it_no_longer_has(payload):
    report = BambuReport()
    report.apply(payload("bambu_x1c_full.json")["print"])
    body = payload("bambu_x1c_full.json")["print"]
    body["ams"]["ams"] = body["ams"]["ams"][:1]
    del body["vt_tray"]
    assert report.apply(body)
    assert [u.unit for u in report.to_state("x1").ams] == [0]


def test_cancel_is_latched_after_print_error_resets(payload):
    report = BambuReport()
    report.apply(payload("bambu_x1c_full.json")["print"])
    report.apply({"gcode_state": "FAILED", "print_error": CANCELLED_BY_USER})
    state = report.to_state("x1")
    assert state.state is PrintState.CANCELLED
    assert state.errors[-1].code.startswith("HMS_")  # the cancel code is not an error
    report.apply({"print_error": 0})
    assert report.to_state("x1").state is PrintState.CANCELLED
    report.apply({"gcode_state": "RUNNING"})
    report.apply({"gcode_state": "FAILED", "print_error": 0x07008011})
    state = report.to_state("x1")
    assert state.state is PrintState.FAILED
    assert state.errors[-1].code == "PRINT_0700_8011"


def test_running_during_preheat_is_preparing():
    report = BambuReport()
    report.apply({"msg": 0, "gcode_state": "RUNNING", "stg_cur": 2, "layer_num": 0})
    assert report.print_state() is PrintState.PREPARING
    report.apply({"stg_cur": 0, "layer_num": 1})
    assert report.print_state() is PrintState.PRINTING


def test_unknown_and_odd_values_do_not_crash():
    report = BambuReport()
    report.apply({"gcode_state": "SOMETHING_NEW", "mc_percent": "n/a", "wifi_signal": "weird",
                  "ams": {"ams": [{"id": "x"}], "tray_now": "oops"}, "hms": [None]})  # fmt: skip
    state = report.to_state("p")
    assert state.state is PrintState.IDLE and state.ams == () and state.active_tray is None


def test_hms_code_format():
    assert hms_code(0x07008000, 0x00030002) == "HMS_0700_8000_0003_0002"
    error = hms_error(0x0C000300, 0x00040001)
    assert error.severity == "info" and "camera" in error.text


def test_full_reporters_by_model_or_serial():
    assert reports_full_state("X1C", "")
    assert reports_full_state("H2D", "")
    assert not reports_full_state("P1S", "00M000000000000")
    assert not reports_full_state("A1 mini", "")
    assert reports_full_state("", "00M09A350100000")
    assert not reports_full_state("", "01P00A000000000")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(
    st.dictionaries(st.text(max_size=4), json_values, max_size=5),
    st.dictionaries(st.text(max_size=4), json_values, max_size=5),
)
def test_merge_then_full_equals_the_full_report(first, second):
    target = copy.deepcopy(first)
    merge(target, copy.deepcopy(second), full=True)
    # A full report replaces everything except id-keyed list order details.
    assert json.dumps(sorted(target)) == json.dumps(sorted(second))


@given(st.dictionaries(st.text(max_size=4), json_values, max_size=5))
def test_merging_a_report_into_itself_changes_nothing(report):
    target = copy.deepcopy(report)
    assert not merge(target, copy.deepcopy(report))
