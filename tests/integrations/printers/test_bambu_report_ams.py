"""The Bambu AMS is rebuilt only when it changed, by full reports and by deltas alike."""

from __future__ import annotations

import copy

from integrations.printers.bambu.report import BambuReport


def test_unchanged_ams_is_the_same_object(payload):
    report = BambuReport()
    body = payload("bambu_x1c_full.json")["print"]
    assert report.apply(copy.deepcopy(body))
    first = report.to_state("x1").ams
    changed = copy.deepcopy(body)
    changed["nozzle_temper"] = 221.0
    assert report.apply(changed)
    assert report.to_state("x1").ams is first  # streams compare it by identity first
    drained = copy.deepcopy(changed)
    drained["ams"]["ams"][0]["tray"][0]["remain"] = 5
    assert report.apply(drained)
    ams = report.to_state("x1").ams
    assert ams is not first and ams[0].trays[0].remain == 5


def test_ams_delta_and_ams_dropped_by_a_full_report(payload):
    report = BambuReport()
    body = payload("bambu_p1s_full.json")["print"]
    assert report.apply(copy.deepcopy(body))
    first = report.to_state("p1").ams
    assert report.apply({"command": "push_status", "msg": 1, "nozzle_temper": 200.5})
    assert report.to_state("p1").ams is first
    unit = body["ams"]["ams"][0]
    delta = {"ams": {"ams": [{"id": unit["id"], "humidity_raw": "55"}]}, "msg": 1}
    assert report.apply(delta)
    after = report.to_state("p1").ams
    assert after is not first and after[0].humidity == 55
    assert not report.apply(copy.deepcopy(delta))
    assert report.to_state("p1").ams is after
    # A full report without an AMS (unit removed) takes it away.
    bare = copy.deepcopy(body)
    del bare["ams"]
    assert report.apply(bare)
    assert all(u.unit == 254 for u in report.to_state("p1").ams)
