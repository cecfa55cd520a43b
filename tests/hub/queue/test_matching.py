"""Matching printers and jobs: target, file type, model, nozzle, filament and Bambu's ams_mapping."""

from __future__ import annotations

from hub.model import AmsTray, AmsUnit
from hub.queue.matching import (
    JobNeeds,
    Need,
    PrinterView,
    Tray,
    ams_mapping,
    fit,
    same_model,
    trays_from_ams,
)
from integrations.printers.registry import default_registry


def printer(protocol: str = "bambu", trays: tuple[Tray, ...] = (), **kw: object) -> PrinterView:
    """A printer of `protocol` as its driver's manifest describes it."""
    manifest = default_registry().manifest(protocol)
    fields: dict[str, object] = {
        "id": "p1", "name": "X1C-01", "print_files": manifest.print_files,
        "tray_mapping": manifest.tray_mapping, "model": "X1C", "nozzle_diameter": 0.4,
        "tags": frozenset({"farm-a"}), "trays": trays,
    }  # fmt: skip
    fields.update(kw)
    return PrinterView(**fields)  # type: ignore[arg-type]


def job(*needs: Need, kind: str = "3mf", **kw: object) -> JobNeeds:
    fields: dict[str, object] = {
        "kind": kind, "model": "X1C", "nozzle_diameter": 0.4, "target": {}, "needs": needs,
    }  # fmt: skip
    fields.update(kw)
    return JobNeeds(**fields)  # type: ignore[arg-type]


TRAYS = (
    Tray(0, "PLA", "#FFFFFF", 300.0),
    Tray(1, "PETG", "#1E90FF", 50.0),
    Tray(2, "PLA", "#FFFFFF", 800.0),
    Tray(5, "PETG", "#1E90FF", 400.0),
)


def test_slots_map_to_trays_with_the_most_filament_and_build_ams_mapping() -> None:
    mapping, why = fit(
        job(Need(1, "PLA", "#FFFFFF", 10.0), Need(3, "PETG", "#1E90FF", 100.0)),
        printer(trays=TRAYS),
    )
    assert why is None and mapping == {1: 2, 3: 5}
    assert ams_mapping(mapping) == (2, -1, 5)


def test_reasons_name_what_is_missing() -> None:
    p = printer(trays=TRAYS)
    assert fit(job(Need(1, "ABS", "#000000")), p) == (None, "no ABS #000000 loaded")
    _, why = fit(job(Need(1, "PETG", "#1E90FF", 500.0)), p)
    assert why == "not enough PETG #1E90FF (500 g needed, 400 g left)"
    _, why = fit(job(Need(1, "PLA", None), kind="gcode"), p)
    assert why == "X1C-01 takes sliced 3MF projects, not plain G-code"
    _, why = fit(job(Need(1, "PLA", None), model="P1S"), p)
    assert why == "sliced for P1S, printer is X1C"
    _, why = fit(job(Need(1, "PLA", None), nozzle_diameter=0.6), p)
    assert why == "needs a 0.6 mm nozzle, printer has 0.4"
    _, why = fit(job(Need(1, "PLA", None), target={"tags": ["farm-b"]}), p)
    assert why == "missing tag(s) farm-b"
    _, why = fit(job(Need(1, "PLA", None), target={"printer_id": "p2"}), p)
    assert why == "the job is for another printer"


def test_single_extruder_printers_take_one_filament_from_their_spool() -> None:
    voron = printer("moonraker", (Tray(254, "PLA", "#FF0000", 500.0),), model="Voron 2.4")
    gcode = {"kind": "gcode", "model": None}
    assert fit(job(Need(1, "PLA", "#FF0000", 20.0), **gcode), voron) == ({1: 254}, None)
    _, why = fit(job(Need(1, "PLA", "#FF0000"), Need(2, "PETG", None), **gcode), voron)
    assert why == "needs 2 filaments, printer has one extruder"
    bare = printer("octoprint", (), model=None)
    _, why = fit(job(Need(1, None, None)), bare)
    assert why == "X1C-01 takes plain G-code, not sliced 3MF projects"
    assert fit(job(Need(1, None, None), **gcode), bare) == ({1: 0}, None)
    _, why = fit(job(Need(1, "PLA", None), **gcode), bare)
    assert why == "no filament known on the printer (assign a spool to its tray)"


def test_model_names_and_live_trays() -> None:
    assert same_model("Bambu Lab X1 Carbon", "X1C") and same_model("BL-P001", "x1c")
    assert not same_model("P1S", "P1P")
    units = (
        AmsUnit(0, trays=(AmsTray(0, "PLA", "FF0000FF", 50), AmsTray(1, empty=True))),
        AmsUnit(254, trays=(AmsTray(254, "PETG", "00FF00FF", None),)),
    )
    assert trays_from_ams(units) == (
        Tray(0, "PLA", "#FF0000", 500.0),
        Tray(254, "PETG", "#00FF00", None),
    )
